//! Several `serve` processes: in http mode on one PostgreSQL any replica answers any interaction
//! and any button press, and a button pressed 50 times across both acts once; on SQLite a second
//! `serve` on the same file is told that SQLite means one replica.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use invite_bot_testkit::fake_discord::{self, FakeDiscord};
use invite_bot_testkit::signing::InteractionSigner;
use serde_json::Value;

use crate::discord::{admin, ADMIN_ROLE, FIXTURE};
use crate::discord_http::{press_json, ENDPOINT};
use crate::helpers::{Backend, TestApp};

/// A `serve` process: where it listens and what it has logged so far.
struct Replica {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn start(dir: &std::path::Path, url: &str, env: &[(&str, &str)], extra: &[&str]) -> Replica {
        let mut command = Command::new(env!("CARGO_BIN_EXE_invite-bot"));
        command
            .args(["--database-url", url, "serve"])
            .args(extra)
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env_remove("INVITE_BOT_CONFIG")
            .env_remove("SMTP_URL")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    let _ = found.send(addr.to_owned());
                }
                keep.lock().unwrap().push(line);
            }
        });
        let base = address
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not listen: {:?}", log.lock().unwrap()));
        Replica { child, base, log }
    }

    fn logged(&self, fragment: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(fragment))
    }

    /// SIGTERM, then waits (at most 20 s) for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("serve did not stop within 20 s of SIGTERM");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `interaction` to `replica`, signed now; the status and the JSON answer.
async fn interact(
    client: &reqwest::Client,
    signer: &InteractionSigner,
    base: &str,
    interaction: &Value,
) -> (u16, Value) {
    let body = serde_json::to_vec(interaction).unwrap();
    let mut request = client
        .post(format!("{base}{ENDPOINT}"))
        .header("content-type", "application/json")
        .body(body.clone());
    for (name, value) in signer.headers(&body) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The config file of an http-mode replica (the token and SMTP come from the environment).
fn http_mode_config(fake: &FakeDiscord, signer: &InteractionSigner) -> String {
    format!(
        r#"[http]
listen = "127.0.0.1:0"

[discord]
mode = "http"
public_key = "{key}"
application_id = {app}
api_base_url = "{base}"
guild_ids = [{guild}]
# The checks here read their card in the response: a debug build on a busy machine can take longer
# than http mode's 25 ms before it would defer (deferral is tested in discord_http.rs).
answer_within_ms = 2000

[[permissions.grant]]
roles = ["{admin}"]
allow = ["check", "resend_invite", "issue_activation_code"]
"#,
        key = signer.public_key_hex(),
        app = fake_discord::APPLICATION_ID,
        base = fake.base_url,
        guild = fake_discord::GUILD_ID,
        admin = ADMIN_ROLE,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_http_replicas_on_one_postgres_share_checks_and_buttons() {
    crate::discord::init_tracing();
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |_| {}).await else {
        return;
    };
    app.seed(FIXTURE).await;
    let fake = FakeDiscord::start().await;
    let signer = InteractionSigner::generate();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        http_mode_config(&fake, &signer),
    )
    .unwrap();
    let env = [
        ("DISCORD_TOKEN", "test-token"),
        ("SMTP_URL", app.smtp.url.as_str()),
    ];
    let url = app.database_url().to_owned();
    let replicas = [
        Replica::start(dir.path(), &url, &env, &[]),
        Replica::start(dir.path(), &url, &env, &[]),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let on = |which: usize| replicas[which].base.clone();

    // A check answered by the first replica, its button pressed on the second.
    let (_, check) = fake.invite_check_json(&admin(), &[("email", "jane.doe@corp.example")]);
    let (status, answer) = interact(&client, &signer, &on(0), &check).await;
    assert_eq!(
        (status, answer["type"].clone()),
        (200, serde_json::json!(4)),
        "{answer:#}"
    );
    let (token, press) = press_json(&fake, &admin(), &answer, "Issue activation code");
    let (status, ack) = interact(&client, &signer, &on(1), &press).await;
    assert_eq!(
        (status, ack["type"].clone()),
        (200, serde_json::json!(6)),
        "{ack:#}"
    );
    let code = crate::discord_http::followup(&fake, &token).await;
    assert!(
        code.body["content"]
            .as_str()
            .unwrap()
            .contains("Activation code"),
        "{:#}",
        code.body
    );

    // One Resend pressed 50 times at once, spread over both replicas: one email.
    let (_, check) = fake.invite_check_json(&admin(), &[("email", "never@corp.example")]);
    let (_, answer) = interact(&client, &signer, &on(0), &check).await;
    let presses: Vec<(String, Value)> = (0..50)
        .map(|_| press_json(&fake, &admin(), &answer, "Resend invite"))
        .collect();
    let mut pressing = tokio::task::JoinSet::new();
    for (i, (_, press)) in presses.iter().enumerate() {
        let (client, signer, base) = (client.clone(), signer.clone(), on(i % 2));
        let press = press.clone();
        pressing.spawn(async move { interact(&client, &signer, &base, &press).await });
    }
    let sent = pressing.join_all().await;
    for (status, ack) in &sent {
        assert_eq!(
            (*status, ack["type"].clone()),
            (200, serde_json::json!(6)),
            "every press acknowledged: {ack:#}"
        );
    }
    let tokens: Vec<String> = presses.into_iter().map(|(token, _)| token).collect();
    let answered = fake
        .wait_count(
            |r| {
                r.method == "POST"
                    && tokens
                        .iter()
                        .any(|t| r.path.ends_with(&format!("/webhooks/2000/{t}")))
            },
            50,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(answered, 50, "every press got its follow-up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mail: Vec<_> = app
        .smtp
        .received()
        .into_iter()
        .filter(|m| m.to == ["never@corp.example"])
        .collect();
    assert_eq!(mail.len(), 1, "50 presses on two replicas sent one email");

    for replica in replicas {
        replica.stop();
    }
}

/// SQLite is one replica: a second `serve` on the same file says so at start-up; a holder killed
/// with SIGKILL leaves nothing that blocks or misleads the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_one_sqlite_file_is_warned() {
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let url = app.database_url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    const WARNING: &str = "SQLite means one replica";
    let mut first = Replica::start(dir.path(), &url, &[], &["--no-discord"]);
    let second = Replica::start(dir.path(), &url, &[], &["--no-discord"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!first.logged(WARNING), "the first is alone");
    assert!(
        second.logged(WARNING),
        "the second is told: {:?}",
        second.log.lock().unwrap()
    );
    second.stop();

    // Killed without a chance to clean up: the next start is not warned.
    first.child.kill().unwrap();
    let _ = first.child.wait();
    let third = Replica::start(dir.path(), &url, &[], &["--no-discord"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !third.logged(WARNING),
        "a dead holder does not count: {:?}",
        third.log.lock().unwrap()
    );
    third.stop();
}
