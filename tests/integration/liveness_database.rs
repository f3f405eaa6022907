//! A database that is hung, comes back, or whose file is deleted: answers fail fast and say so,
//! the bot recovers on its own, and a missing SQLite file is never quietly replaced by an empty one.

use std::time::Duration;

use invite_bot::app::config::Config;
use invite_bot::error::EngineError;
use invite_bot::store::StoreError;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{fresh_database, run_binary, stderr, stdout, Backend, TestApp};
use crate::http_app::HttpApp;

/// Generous: only there so a hang fails the test instead of holding CI.
const GUARD: Duration = Duration::from_secs(30);

const MEMBER: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "ada@school.example"
role = "learner"
status = "invited"
"#;

/// Accepts connections and never says a word: a database server that is hung.
async fn hung_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (format!("postgres://postgres@{addr}/invite_bot"), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_against_a_hung_database_fails_fast_and_says_so() {
    let (url, server) = hung_server().await;
    let cwd = tempfile::tempdir().unwrap();
    let path = cwd.path().to_owned();
    let run = tokio::task::spawn_blocking(move || {
        run_binary(
            &path,
            &[],
            &["--database-url", &url, "check", "ada@school.example"],
        )
    });
    let output = tokio::time::timeout(GUARD, run)
        .await
        .expect("the check gives up instead of hanging")
        .unwrap();
    server.abort();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("cannot reach the database: it is not answering")
            && message.contains("try again in a minute"),
        "{message}"
    );
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
}

/// A TCP stand-in between the bot and PostgreSQL that can freeze (forward nothing, answer nothing:
/// a hung server) and thaw (the frozen connections are cut, new ones forwarded again).
struct Proxy {
    url: String,
    frozen: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let target = host_port(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = upstream.replacen(&target, &addr.to_string(), 1);
        let (frozen, _) = watch::channel(false);
        let watching = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, target.clone(), watching.subscribe()));
            }
        });
        Proxy { url, frozen, task }
    }

    fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut client: TcpStream, target: String, mut frozen: watch::Receiver<bool>) {
    if !*frozen.borrow_and_update() {
        let Ok(mut upstream) = TcpStream::connect(&target).await else {
            return;
        };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
            _ = frozen.wait_for(|frozen| *frozen) => {}
        }
    }
    // Frozen: hold the line open in silence until thawed, then cut it.
    let _ = frozen.wait_for(|frozen| !*frozen).await;
}

/// `HOST:PORT` of a PostgreSQL URL.
fn host_port(url: &str) -> String {
    let rest = &url[url.find("://").unwrap() + 3..];
    let rest = &rest[rest.rfind('@').map_or(0, |at| at + 1)..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    }
}

async fn check_now(engine: &invite_bot::engine::Engine) -> Result<(), EngineError> {
    let email = invite_bot::domain::email::EmailAddress::parse("ada@school.example").unwrap();
    let acme = invite_bot::domain::workspace::WorkspaceSlug::parse("acme").unwrap();
    tokio::time::timeout(GUARD, engine.check(&email, Some(&acme)))
        .await
        .expect("the check answers instead of hanging")
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_hangs_and_comes_back_is_reported_then_used_again() {
    let Some(database) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let proxy = Proxy::start(&database.url).await;
    let config = Config {
        database_url: proxy.url.clone(),
        ..Config::default()
    };
    // The bot as `serve` builds it: the whole pool open from the start.
    let actions = invite_bot::app::startup::build_with(&config, true)
        .await
        .unwrap();
    let engine = actions.engine().clone();
    let fixture = invite_bot::fixture::Fixture::parse(MEMBER, "test", chrono::Utc::now()).unwrap();
    engine.seed(&fixture).await.unwrap();
    check_now(&engine).await.unwrap();

    proxy.freeze();
    let error = check_now(&engine).await.unwrap_err();
    assert!(
        matches!(
            &error,
            EngineError::Unavailable(StoreError::NotAnswering(_))
        ),
        "{error:?}"
    );
    let message = error.public_message(engine.prompts());
    assert!(
        message.starts_with("The workspace database is not answering right now; nothing was changed. Try again in a minute (ref "),
        "{message}"
    );

    // Back: the same engine answers again, no restart.
    proxy.thaw();
    let mut recovered = check_now(&engine).await;
    for _ in 0..20 {
        if recovered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        recovered = check_now(&engine).await;
    }
    recovered.unwrap();
    engine.store().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_timeout_reaches_postgresql() {
    let Some(database) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let config = Config {
        database_url: database.url.clone(),
        database_statement_timeout_ms: 1200,
        ..Config::default()
    };
    let store = invite_bot::app::startup::connect(&config).await.unwrap();
    let invite_bot::store::Store::Postgres(pool, _) = &store else {
        unreachable!()
    };
    let setting: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(setting, "1200ms");
    // Migrations are exempt, and leave the limit in place behind them.
    store.migrate().await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(setting, "1200ms");
    let slow = sqlx::query("SELECT pg_sleep(5)").execute(&mut *conn).await;
    let error = StoreError::from(slow.unwrap_err());
    assert!(error.is_not_answering(), "{error:?}");
    drop(conn);
    store.close().await;
}

#[test]
fn a_missing_sqlite_file_is_an_error_not_a_fresh_database() {
    let cwd = tempfile::tempdir().unwrap();
    let file = cwd.path().join("gone.db");
    let url = format!("sqlite://{}", file.display());
    for args in [
        vec!["check", "ada@school.example"],
        vec!["resend", "ada@school.example", "--workspace", "acme"],
        vec!["audit"],
        vec!["retry-pending"],
        vec!["chat"],
        vec!["serve", "--no-discord"],
    ] {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend(args.iter().copied());
        let output = run_binary(cwd.path(), &[], &all);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert!(
            message.contains(&format!(
                "the database file {} does not exist",
                file.display()
            )) && message.contains("invite-bot migrate"),
            "{args:?}: {message}"
        );
        assert!(!file.exists(), "{args:?} created the database");
    }

    // `migrate` creates it; then the check runs.
    let migrated = run_binary(cwd.path(), &[], &["--database-url", &url, "migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let checked = run_binary(
        cwd.path(),
        &[],
        &["--database-url", &url, "check", "ada@school.example"],
    );
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
}

#[test]
fn seed_and_demo_create_the_sqlite_file() {
    let cwd = tempfile::tempdir().unwrap();
    let fixture = cwd.path().join("fixture.toml");
    std::fs::write(&fixture, MEMBER).unwrap();
    let seeded_file = cwd.path().join("seeded.db");
    let url = format!("sqlite://{}", seeded_file.display());
    let seeded = run_binary(
        cwd.path(),
        &[],
        &["--database-url", &url, "seed", fixture.to_str().unwrap()],
    );
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    assert!(seeded_file.exists());

    let demo_file = cwd.path().join("demo.db");
    let url = format!("sqlite://{}", demo_file.display());
    let demo = run_binary(
        cwd.path(),
        &[],
        &["--database-url", &url, "demo", "--format", "json"],
    );
    assert!(demo.status.success(), "{}", stderr(&demo));
    assert!(demo_file.exists());
}

/// The SQLite file behind a test app.
fn sqlite_file(app: &TestApp) -> std::path::PathBuf {
    app.database_url()
        .strip_prefix("sqlite://")
        .expect("a SQLite app")
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_sqlite_file_is_deleted() {
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let file = sqlite_file(&app);
    let http = HttpApp::start(app, |_| {}).await;
    assert_eq!(http.get("/readyz").await.status, 200);

    std::fs::remove_file(&file).unwrap();
    let ready = http.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (503, "not ready: the database file is missing\n")
    );
    // Not answered from the deleted file's ghost, and not recreated behind the operator's back.
    assert!(!file.exists());
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_sqlite_file_is_replaced() {
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let file = sqlite_file(&app);
    let http = HttpApp::start(app, |_| {}).await;
    assert_eq!(http.get("/readyz").await.status, 200);

    // Restored from a copy while the bot holds the old one open.
    let copy = file.with_extension("copy");
    std::fs::copy(&file, &copy).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::rename(&copy, &file).unwrap();
    let ready = http.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (
            503,
            "not ready: the database file was replaced while open\n"
        )
    );
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_start_up_against_a_hung_database_fails_fast() {
    // `serve` opens its whole pool at start: against a hung server it gives up, with the same words.
    let (url, server) = hung_server().await;
    let config = Config {
        database_url: url,
        ..Config::default()
    };
    let started = tokio::time::timeout(GUARD, invite_bot::app::startup::build_with(&config, true))
        .await
        .expect("start-up gives up instead of hanging");
    server.abort();
    let error = started.unwrap_err();
    let text = invite_bot::error::error_chain(&error);
    assert!(text.contains("not answering"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_write_lock_held_elsewhere_is_reported_as_not_answering() {
    use sqlx::Connection;
    let Some(database) = fresh_database(Backend::Sqlite).await else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    let migrated = run_binary(
        cwd.path(),
        &[],
        &["--database-url", &database.url, "migrate"],
    );
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    std::fs::write(cwd.path().join("fixture.toml"), MEMBER).unwrap();
    std::fs::write(
        cwd.path().join("config.toml"),
        "database_statement_timeout_ms = 300\n",
    )
    .unwrap();

    // Another process holds the write lock and does not let go.
    let mut other = sqlx::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let (path, url) = (cwd.path().to_owned(), database.url.clone());
    let seed = tokio::task::spawn_blocking(move || {
        run_binary(
            &path,
            &[],
            &["--database-url", &url, "seed", "fixture.toml"],
        )
    });
    let output = tokio::time::timeout(GUARD, seed)
        .await
        .expect("the seed gives up instead of waiting for the lock")
        .unwrap();
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("not answering") && message.contains("try again in a minute"),
        "{message}"
    );
}
