//! `invite-bot sync`: PostgreSQL and MariaDB playing the product, with a schema unlike the bot's
//! (`teams`, `users`, `team_users` with integer role and status codes and soft deletes). Each test
//! creates its own database on that server and drops it afterwards; the bot's own store is SQLite
//! or PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use invite_bot::config::{Config, SourceConfig};
use invite_bot::diagnosis::Verdict;
use invite_bot::domain::member::MemberStatus;
use invite_bot::ingest::SourceKind;
use invite_bot::source::{sync_once, QueryName, Source, SourceError, SyncOptions, SyncReport};
use sqlx::{Connection, Executor};

use crate::helpers::{
    both_backends, fresh_database, random_suffix, run_binary, stderr, stdout, Backend,
    FreshDatabase, TestApp,
};

const PG_SCHEMA: &str = "
    CREATE TABLE teams (id INT PRIMARY KEY, slug TEXT NOT NULL, title TEXT NOT NULL);
    CREATE TABLE users (id INT PRIMARY KEY, email TEXT NOT NULL);
    CREATE TABLE team_users (team_id INT NOT NULL, user_id INT NOT NULL, role_code INT NOT NULL,
        status_code INT NOT NULL, invited_at TIMESTAMP, activated_at TIMESTAMP,
        updated_at TIMESTAMPTZ NOT NULL, deleted_at TIMESTAMPTZ, PRIMARY KEY (team_id, user_id));
    CREATE TABLE invites (team_id INT NOT NULL, user_id INT NOT NULL, sent_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ, message_id TEXT, updated_at TIMESTAMPTZ NOT NULL);
    INSERT INTO teams VALUES (1, 'prod-ws', 'Product Workspace')";

const PG_MEMBERS: &str = "
    SELECT t.slug AS workspace, t.title AS workspace_name, u.email, tu.role_code AS role,
           tu.status_code AS status, tu.invited_at, tu.activated_at, tu.updated_at,
           tu.deleted_at IS NOT NULL AS deleted
    FROM team_users tu JOIN users u ON u.id = tu.user_id JOIN teams t ON t.id = tu.team_id
    WHERE tu.updated_at >= $1";

const PG_INVITATIONS: &str = "
    SELECT t.slug AS workspace, u.email, i.sent_at, i.expires_at, i.message_id, i.updated_at
    FROM invites i JOIN users u ON u.id = i.user_id JOIN teams t ON t.id = i.team_id
    WHERE i.updated_at >= $1";

const MARIADB_SCHEMA: &str = "
    CREATE TABLE teams (id INT PRIMARY KEY, slug VARCHAR(63) NOT NULL, title VARCHAR(200) NOT NULL);
    CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(254) NOT NULL);
    CREATE TABLE team_users (team_id INT NOT NULL, user_id INT NOT NULL, role_code TINYINT NOT NULL,
        status_code TINYINT NOT NULL, invited_at DATETIME, activated_at DATETIME,
        updated_at DATETIME(6) NOT NULL, is_deleted TINYINT(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (team_id, user_id));
    CREATE TABLE invites (team_id INT NOT NULL, user_id INT NOT NULL, sent_at DATETIME NOT NULL,
        expires_at DATETIME, message_id VARCHAR(255), updated_at DATETIME(6) NOT NULL);
    INSERT INTO teams VALUES (1, 'prod-ws', 'Product Workspace')";

const MARIADB_MEMBERS: &str = "
    SELECT t.slug AS workspace, t.title AS workspace_name, u.email, tu.role_code AS role,
           tu.status_code AS status, tu.invited_at, tu.activated_at, tu.updated_at,
           tu.is_deleted AS deleted
    FROM team_users tu JOIN users u ON u.id = tu.user_id JOIN teams t ON t.id = tu.team_id
    WHERE tu.updated_at >= ?";

const MARIADB_INVITATIONS: &str = "
    SELECT t.slug AS workspace, u.email, i.sent_at, i.expires_at, i.message_id, i.updated_at
    FROM invites i JOIN users u ON u.id = i.user_id JOIN teams t ON t.id = i.team_id
    WHERE i.updated_at >= ?";

/// A product database on a real server: PostgreSQL, or MariaDB (`mysql://`).
struct Product {
    url: String,
    mariadb: bool,
    _postgres: Option<FreshDatabase>,
    _mariadb: Option<MariaDbDatabase>,
}

impl Product {
    async fn postgres() -> Option<Product> {
        let database = fresh_database(Backend::Postgres).await?;
        let product = Product {
            url: database.url.clone(),
            mariadb: false,
            _postgres: Some(database),
            _mariadb: None,
        };
        product.run(PG_SCHEMA).await;
        Some(product)
    }

    async fn mariadb() -> Option<Product> {
        let database = MariaDbDatabase::create().await?;
        let product = Product {
            url: database.url.clone(),
            mariadb: true,
            _postgres: None,
            _mariadb: Some(database),
        };
        product.run(MARIADB_SCHEMA).await;
        Some(product)
    }

    /// Runs statements separated by `;` as the product's own application would.
    async fn run(&self, sql: &str) {
        let statements = sql.split(';').map(str::trim).filter(|s| !s.is_empty());
        if self.mariadb {
            let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                conn.execute(sqlx::AssertSqlSafe(statement.to_owned()))
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            for statement in statements {
                conn.execute(sqlx::AssertSqlSafe(statement.to_owned()))
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        }
    }

    /// [`Product::run`] from inside a sync's (synchronous) progress callback.
    fn run_now(&self, sql: &str) {
        let (url, mariadb, sql) = (self.url.clone(), self.mariadb, sql.to_owned());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let product = Product {
                    url,
                    mariadb,
                    _postgres: None,
                    _mariadb: None,
                };
                product.run(&sql).await;
            });
        })
        .join()
        .unwrap();
    }

    /// A member of `prod-ws`: status 0 invited, 1 active, 2 deactivated; role 1 learner.
    async fn add_member(&self, id: i32, email: &str, status: i32, updated_at: &str) {
        self.run(&format!(
            "INSERT INTO users VALUES ({id}, '{email}');
             INSERT INTO team_users (team_id, user_id, role_code, status_code, invited_at, updated_at)
             VALUES (1, {id}, 1, {status}, '2026-11-01 09:00:00', '{updated_at}')"
        ))
        .await;
    }

    async fn set_status(&self, id: i32, status: i32, updated_at: &str) {
        self.run(&format!(
            "UPDATE team_users SET status_code = {status}, updated_at = '{updated_at}' WHERE user_id = {id}"
        ))
        .await;
    }

    fn source(&self, app: &TestApp, batch_size: u32) -> Config {
        let (members, invitations) = if self.mariadb {
            (MARIADB_MEMBERS, MARIADB_INVITATIONS)
        } else {
            (PG_MEMBERS, PG_INVITATIONS)
        };
        let mut config = app.config.clone();
        config.source = SourceConfig {
            url: Some(self.url.clone().into()),
            members_query: Some(members.into()),
            invitations_query: Some(invitations.into()),
            role_map: BTreeMap::from([
                ("1".into(), "learner".into()),
                ("2".into(), "trainer".into()),
            ]),
            status_map: BTreeMap::from([
                ("0".into(), "invited".into()),
                ("1".into(), "active".into()),
                ("2".into(), "deactivated".into()),
            ]),
            batch_size,
            statement_timeout_ms: 5000,
            ..SourceConfig::default()
        };
        config.validate().unwrap();
        config
    }
}

/// A uniquely named database on the test MariaDB server, dropped afterwards.
struct MariaDbDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl MariaDbDatabase {
    /// `None` (with a note) when MariaDB is not reachable and not required; a failure when
    /// `INVITE_BOT_REQUIRE_MARIADB=1` (`.ci/run` sets it).
    async fn create() -> Option<MariaDbDatabase> {
        let admin_url = std::env::var("TEST_MARIADB_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into());
        let connected = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::MySqlConnection::connect(&admin_url),
        )
        .await;
        let mut conn = match connected {
            Ok(Ok(conn)) => conn,
            outcome => {
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no answer within 5 s".into(),
                };
                if std::env::var("INVITE_BOT_REQUIRE_MARIADB").as_deref() == Ok("1") {
                    panic!("INVITE_BOT_REQUIRE_MARIADB=1 but MariaDB at {admin_url} is not reachable: {why}");
                }
                eprintln!("skipping MariaDB: not reachable at {admin_url} ({why}); start it or set TEST_MARIADB_URL");
                return None;
            }
        };
        let name = format!("invite_bot_test_{}", random_suffix());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.trim_end_matches('/'));
        Some(MariaDbDatabase {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for MariaDbDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS `{name}`");
                    let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
                }
            });
        })
        .join();
    }
}

async fn sync(
    app: &TestApp,
    config: &Config,
    options: SyncOptions,
) -> Result<SyncReport, SourceError> {
    let source = Source::open(config).unwrap();
    let report = sync_once(app.engine.store(), &source, options, &mut |_| {}).await;
    source.close().await;
    report
}

async fn sync_ok(app: &TestApp, config: &Config) -> SyncReport {
    sync(app, config, SyncOptions::default())
        .await
        .unwrap_or_else(|e| panic!("sync failed: {e}"))
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

async fn watermark(app: &TestApp) -> Option<(DateTime<Utc>, String)> {
    let state = app
        .engine
        .store()
        .source_state(SourceKind::ProductDb)
        .await
        .unwrap()?;
    state.watermark().map(|mark| (mark.at, mark.key))
}

both_backends! {
    async fn a_first_sync_then_an_update_picked_up_incrementally(app) {
        let Some(product) = Product::postgres().await else { return };
        product.add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00").await;
        product.add_member(2, "bo@corp.example", 1, "2026-11-02 10:00:01+00").await;
        product.add_member(3, "Cy@Corp.example", 0, "2026-11-02 10:00:02+00").await;
        let sent = (Utc::now() - Duration::hours(2)).to_rfc3339();
        product.run(&format!(
            "INSERT INTO invites VALUES (1, 3, '{sent}', NULL, '<p-1@mail.product>', '{sent}')"
        )).await;
        let config = product.source(&app, 1000);

        let first = sync_ok(&app, &config).await;
        assert_eq!((first.members.read, first.members.applied), (3, 3));
        assert_eq!(first.invitations.as_ref().unwrap().applied, 1);
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::InviteNeverSent);
        assert_eq!(app.verdict("bo@corp.example", "prod-ws").await, Verdict::AlreadyActive);
        assert_eq!(app.verdict("cy@corp.example", "prod-ws").await, Verdict::InviteSent);
        assert!(app.dump("workspaces").await.contains("Product Workspace"));
        assert_eq!(
            watermark(&app).await,
            Some((at("2026-11-02T10:00:02Z"), "prod-ws/Cy@Corp.example".into()))
        );
        let state = app.engine.store().source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert!(state.last_success_at.is_some() && state.last_error.is_none());

        // Nothing changed: nothing is read again.
        let again = sync_ok(&app, &config).await;
        assert_eq!((again.members.read, again.members.applied), (0, 0));

        // Ann activates in the product: only her row is read.
        product.set_status(1, 1, "2026-11-03 08:00:00+00").await;
        let update = sync_ok(&app, &config).await;
        assert_eq!((update.members.read, update.members.applied), (1, 1));
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::AlreadyActive);

        // A live refresh reads one address, whatever its age and case.
        let source = Source::open(&config).unwrap();
        let limit = std::time::Duration::from_secs(3);
        let cy = source.read_one(&app.slug("prod-ws"), &app.email("cy@corp.example"), limit).await.unwrap().unwrap();
        assert_eq!((cy.status, cy.updated_at), (MemberStatus::Invited, at("2026-11-02T10:00:02Z")));
        assert!(source.read_one(&app.slug("prod-ws"), &app.email("nobody@corp.example"), limit).await.unwrap().is_none());
        source.close().await;
    }

    async fn equal_timestamps_across_a_batch_boundary_skip_no_row(app) {
        let Some(product) = Product::postgres().await else { return };
        // Batches of 2 and pages of 20 (ten batches), all at one instant.
        for id in 1..=25 {
            product.add_member(id, &format!("m{id:02}@corp.example"), 0, "2026-11-02 10:00:00+00").await;
        }
        let config = product.source(&app, 2);
        let report = sync_ok(&app, &config).await;
        assert_eq!((report.members.read, report.members.applied, report.members.batches), (25, 25, 13));
        assert_eq!(app.count("members").await, 25);

        // Two more at that same instant, one sorting before the watermark's key and one after:
        // the one after is read, the one before is (by the rule) older news and stays unread until
        // its row changes or a full sync.
        product.add_member(98, "m00@corp.example", 0, "2026-11-02 10:00:00+00").await;
        product.add_member(99, "m99@corp.example", 0, "2026-11-02 10:00:00+00").await;
        let next = sync_ok(&app, &config).await;
        assert_eq!(next.members.read, 1);
        assert_eq!(app.verdict("m99@corp.example", "prod-ws").await, Verdict::InviteNeverSent);
        let full = sync(&app, &config, SyncOptions { full: true, ..SyncOptions::default() }).await.unwrap();
        assert_eq!((full.members.read, full.members.applied, full.removed), (27, 1, Some(0)));
    }

    async fn a_soft_delete_applies_incrementally_and_a_deletion_is_reconciled_by_full(app) {
        let Some(product) = Product::postgres().await else { return };
        for (id, email) in [(1, "ann@corp.example"), (2, "bo@corp.example"), (3, "cy@corp.example")] {
            product.add_member(id, email, 0, "2026-11-02 10:00:00+00").await;
        }
        let config = product.source(&app, 1000);
        sync_ok(&app, &config).await;

        product.run("UPDATE team_users SET deleted_at = '2026-11-03 10:00:00+00', updated_at = '2026-11-03 10:00:00+00' WHERE user_id = 1").await;
        let soft = sync_ok(&app, &config).await;
        assert_eq!(soft.members.applied, 1);
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::NotRegistered);

        // A row deleted outright is invisible to an incremental sync...
        product.run("DELETE FROM team_users WHERE user_id = 2").await;
        sync_ok(&app, &config).await;
        assert_eq!(app.verdict("bo@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        // ...a dry run of the full sync says so and changes nothing...
        let dry = sync(&app, &config, SyncOptions { full: true, dry_run: true, count_total: true }).await.unwrap();
        assert_eq!((dry.members.read, dry.removed), (2, Some(1)));
        assert_eq!(app.verdict("bo@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        // ...and a full sync removes it from the bot's view (the row stays for the audit log).
        let full = sync(&app, &config, SyncOptions { full: true, ..SyncOptions::default() }).await.unwrap();
        assert_eq!(full.removed, Some(1));
        assert_eq!(app.verdict("bo@corp.example", "prod-ws").await, Verdict::NotRegistered);
        assert_eq!(app.verdict("cy@corp.example", "prod-ws").await, Verdict::InviteNeverSent);
        assert_eq!(app.count("members").await, 3);
    }

    async fn a_mapping_error_names_the_row_and_nothing_of_its_batch_is_applied(app) {
        let Some(product) = Product::postgres().await else { return };
        product.add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:01+00").await;
        product.add_member(2, "bo@corp.example", 0, "2026-11-02 10:00:02+00").await;
        product.add_member(3, "cy@corp.example", 9, "2026-11-02 10:00:03+00").await;
        product.add_member(4, "di@corp.example", 0, "2026-11-02 10:00:04+00").await;
        let config = product.source(&app, 2);

        let error = sync(&app, &config, SyncOptions::default()).await.unwrap_err();
        let SourceError::Rows { query, rows } = &error else { panic!("{error}") };
        assert_eq!(*query, QueryName::MembersQuery);
        assert_eq!((rows[0].row, rows[0].field.as_str()), (3, "status"));
        assert_eq!(rows[0].email, "c***@corp.example");
        let message = error.to_string();
        assert!(message.contains("\"9\"") && !message.contains("cy@corp.example"), "{message}");

        // The first batch stays, the watermark after it; the bad one and those after it wait.
        assert_eq!(app.count("members").await, 2);
        assert_eq!(watermark(&app).await.unwrap().0, at("2026-11-02T10:00:02Z"));
        let state = app.engine.store().source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert!(state.last_error.unwrap().contains("members_query"));

        product.set_status(3, 1, "2026-11-02 10:00:03+00").await;
        let resumed = sync_ok(&app, &config).await;
        assert_eq!((resumed.members.read, resumed.members.applied), (2, 2));
        assert_eq!(app.verdict("cy@corp.example", "prod-ws").await, Verdict::AlreadyActive);
    }

    async fn a_source_that_goes_down_mid_sync_keeps_committed_batches_and_the_next_run_resumes(app) {
        let Some(product) = Product::postgres().await else { return };
        // Batches of 2, pages of 20; the page boundary after row 20 falls inside a run of equal
        // timestamps (rows 19 to 22).
        for id in 1..=30 {
            let second = if (19..=22).contains(&id) { 19 } else { id };
            product.add_member(id, &format!("m{id:02}@corp.example"), 0, &format!("2026-11-02 10:00:{second:02}+00")).await;
        }
        let config = product.source(&app, 2);
        let source = Source::open(&config).unwrap();
        let mut pages = 0;
        let mut go_down = |_: &invite_bot::source::SyncProgress| {
            pages += 1;
            if pages == 1 {
                product.run_now("ALTER TABLE team_users RENAME TO team_users_moved");
            }
        };
        let error = sync_once(app.engine.store(), &source, SyncOptions::default(), &mut go_down)
            .await
            .unwrap_err();
        source.close().await;
        let message = error.to_string();
        assert!(message.starts_with("members_query:") && message.contains("team_users"), "{message}");
        assert_eq!(app.count("members").await, 20, "the page read before the outage is applied");
        assert_eq!(watermark(&app).await, Some((at("2026-11-02T10:00:19Z"), "prod-ws/m20@corp.example".into())));
        let state = app.engine.store().source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert!(state.last_error.is_some());

        product.run("ALTER TABLE team_users_moved RENAME TO team_users").await;
        let resumed = sync_ok(&app, &config).await;
        assert_eq!((resumed.members.read, resumed.members.applied), (10, 10));
        assert_eq!(app.count("members").await, 30);
        let state = app.engine.store().source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert!(state.last_error.is_none());
    }

    async fn a_bad_query_is_refused_naming_it_before_anything_is_read(app) {
        let Some(product) = Product::postgres().await else { return };
        product.add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00").await;
        let mut config = product.source(&app, 100);

        config.source.members_query = Some(PG_MEMBERS.replace("tu.status_code AS status", "tu.state AS status"));
        let error = sync(&app, &config, SyncOptions::default()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("members_query: the database refused it") && message.contains("state"), "{message}");

        config.source.members_query = Some(PG_MEMBERS.replace(", tu.updated_at,", ", tu.updated_at AS changed,"));
        let message = sync(&app, &config, SyncOptions::default()).await.unwrap_err().to_string();
        assert!(message.starts_with("members_query:") && message.contains("updated_at"), "{message}");

        config.source.members_query = Some(PG_MEMBERS.replace("tu.invited_at,", "tu.user_id AS invited_at,"));
        let message = sync(&app, &config, SyncOptions::default()).await.unwrap_err().to_string();
        assert!(message.contains("invited_at") && message.contains("INT4"), "{message}");

        config.source.members_query = Some(PG_MEMBERS.into());
        config.source.invitations_query = Some("SELECT FROM WHERE".into());
        let message = sync(&app, &config, SyncOptions::default()).await.unwrap_err().to_string();
        assert!(message.starts_with("invitations_query: the database refused it"), "{message}");
        assert_eq!(app.count("members").await, 0, "refused before anything was read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_first_sync_update_boundary_zone_and_soft_delete() {
    let Some(product) = Product::mariadb().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    for id in 1..=5 {
        // DATETIME has no zone: these are Paris times (+01:00 in November).
        product
            .add_member(id, &format!("m{id}@corp.example"), 0, "2026-11-02 11:00:00")
            .await;
    }
    product.run("UPDATE team_users SET status_code = 1, activated_at = '2026-11-02 11:00:00' WHERE user_id = 5").await;
    let sent = (Utc::now() - Duration::hours(2))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S");
    product
        .run(&format!(
            "INSERT INTO invites VALUES (1, 1, '{sent}', NULL, 'p-1@mail.product', '{sent}')"
        ))
        .await;
    let mut config = product.source(&app, 2);
    config.source.timezone = "+01:00".into();

    let first = sync_ok(&app, &config).await;
    assert_eq!(
        (
            first.members.read,
            first.members.applied,
            first.members.batches
        ),
        (5, 5, 3)
    );
    assert_eq!(
        app.verdict("m5@corp.example", "prod-ws").await,
        Verdict::AlreadyActive
    );
    assert_eq!(
        app.verdict("m2@corp.example", "prod-ws").await,
        Verdict::InviteNeverSent
    );
    assert_eq!(watermark(&app).await.unwrap().0, at("2026-11-02T10:00:00Z"));
    // The invitation's DATETIME columns were written in UTC, but read as +01:00: an hour earlier.
    // (Configuring the zone is the operator's job; here it only has to be applied consistently.)
    assert_eq!(first.invitations.unwrap().applied, 1);

    product.set_status(2, 1, "2026-11-02 11:30:00.250").await;
    product.run("UPDATE team_users SET is_deleted = 1, updated_at = '2026-11-02 11:30:00.250' WHERE user_id = 3").await;
    let update = sync_ok(&app, &config).await;
    assert_eq!((update.members.read, update.members.applied), (2, 2));
    assert_eq!(
        app.verdict("m2@corp.example", "prod-ws").await,
        Verdict::AlreadyActive
    );
    assert_eq!(
        app.verdict("m3@corp.example", "prod-ws").await,
        Verdict::NotRegistered
    );
    assert_eq!(
        watermark(&app).await.unwrap().0,
        at("2026-11-02T10:30:00.250Z")
    );

    product
        .run("DELETE FROM team_users WHERE user_id = 4")
        .await;
    let full = sync(
        &app,
        &config,
        SyncOptions {
            full: true,
            ..SyncOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(full.removed, Some(1));
    assert_eq!(
        app.verdict("m4@corp.example", "prod-ws").await,
        Verdict::NotRegistered
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_source_down_mid_sync_and_mapping_errors() {
    let Some(product) = Product::mariadb().await else {
        return;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    // All at one instant; batches of 2, pages of 20.
    for id in 1..=26 {
        product
            .add_member(
                id,
                &format!("m{id:02}@corp.example"),
                0,
                "2026-11-02 10:00:00",
            )
            .await;
    }
    let config = product.source(&app, 2);
    let source = Source::open(&config).unwrap();
    let mut batches = 0;
    let mut go_down = |_: &invite_bot::source::SyncProgress| {
        batches += 1;
        if batches == 1 {
            product.run_now("RENAME TABLE team_users TO team_users_moved");
        }
    };
    let error = sync_once(
        app.engine.store(),
        &source,
        SyncOptions::default(),
        &mut go_down,
    )
    .await
    .unwrap_err();
    source.close().await;
    assert!(error.to_string().starts_with("members_query:"), "{error}");
    assert_eq!(
        app.count("members").await,
        20,
        "the page read before the outage is applied"
    );
    assert_eq!(watermark(&app).await.unwrap().1, "prod-ws/m20@corp.example");

    product
        .run("RENAME TABLE team_users_moved TO team_users")
        .await;
    product
        .run("UPDATE team_users SET role_code = 7 WHERE user_id = 24")
        .await;
    let error = sync(&app, &config, SyncOptions::default())
        .await
        .unwrap_err();
    let SourceError::Rows { rows, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(
        (rows[0].row, rows[0].field.as_str(), rows[0].email.as_str()),
        (4, "role", "m***@corp.example")
    );
    assert_eq!(
        app.count("members").await,
        22,
        "the batch before it, nothing of its own"
    );

    product
        .run("UPDATE team_users SET role_code = 2 WHERE user_id = 24")
        .await;
    let resumed = sync_ok(&app, &config).await;
    assert_eq!((resumed.members.read, resumed.members.applied), (4, 4));
    assert_eq!(app.count("members").await, 26);
}

/// The command line: JSON out, and a clear refusal (exit 2) or outage (exit 1) naming the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_command_reports_in_json_and_refuses_a_bad_query_by_name() {
    let Some(product) = Product::postgres().await else {
        return;
    };
    product
        .add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("bot.db").display());
    let write_config = |members: &str| {
        let toml = format!(
            "[source]\nmembers_query = '''{members}'''\n[source.role_map]\n\"1\" = \"learner\"\n\
             [source.status_map]\n\"0\" = \"invited\"\n\"1\" = \"active\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), toml).unwrap();
    };
    let env = [
        ("DATABASE_URL", store_url.as_str()),
        ("INVITE_BOT_SOURCE_URL", product.url.as_str()),
    ];

    write_config(PG_MEMBERS);
    let output = run_binary(dir.path(), &env, &["sync", "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["members"]["applied"], 1);
    assert_eq!(report["invitations"], serde_json::Value::Null);

    let output = run_binary(dir.path(), &env, &["sync", "--full", "--dry-run"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Dry run") && text.contains("1 read"),
        "{text}"
    );

    write_config(&PG_MEMBERS.replace("FROM team_users", "FROM team_userz"));
    let output = run_binary(dir.path(), &env, &["sync"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("members_query") && message.contains("team_userz"),
        "{message}"
    );

    // `serve` refuses to start with it too.
    let serve_env = [
        ("DATABASE_URL", store_url.as_str()),
        ("INVITE_BOT_SOURCE_URL", product.url.as_str()),
        ("INVITE_BOT_HTTP_LISTEN", "127.0.0.1:0"),
    ];
    let output = run_binary(dir.path(), &serve_env, &["serve", "--no-discord"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("members_query"),
        "{}",
        stderr(&output)
    );

    write_config(PG_MEMBERS);
    let down = [
        ("DATABASE_URL", store_url.as_str()),
        (
            "INVITE_BOT_SOURCE_URL",
            "postgres://postgres:s3cret@127.0.0.1:9/nowhere",
        ),
    ];
    let output = run_binary(dir.path(), &down, &["sync"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("not answering") && !message.contains("s3cret"),
        "{message}"
    );
}

/// A SQLite file as the product, for demos: text timestamps, integer flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_product_works_for_demos() {
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("product.db").display());
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join("product.db"))
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE people (team TEXT, mail TEXT, kind INTEGER, state INTEGER, changed TEXT, gone INTEGER);
         INSERT INTO people VALUES ('demo', 'ann@corp.example', 1, 0, '2026-11-02 10:00:00', 0),
             ('demo', 'bo@corp.example', 1, 1, '2026-11-02 10:00:00', 0),
             ('demo', 'cy@corp.example', 2, 0, '2026-11-02 10:00:00', 0);",
    )
    .await
    .unwrap();
    let mut config = app.config.clone();
    config.source = SourceConfig {
        url: Some(url.into()),
        members_query: Some(
            "SELECT team AS workspace, NULL AS workspace_name, mail AS email, kind AS role,
                    state AS status, NULL AS invited_at, NULL AS activated_at,
                    changed AS updated_at, gone AS deleted
             FROM people WHERE changed >= ?"
                .into(),
        ),
        role_map: BTreeMap::from([
            ("1".into(), "learner".into()),
            ("2".into(), "trainer".into()),
        ]),
        status_map: BTreeMap::from([
            ("0".into(), "invited".into()),
            ("1".into(), "active".into()),
        ]),
        batch_size: 2,
        ..SourceConfig::default()
    };
    config.validate().unwrap();

    let first = sync_ok(&app, &config).await;
    assert_eq!(
        (
            first.members.read,
            first.members.applied,
            first.members.batches
        ),
        (3, 3, 2)
    );
    assert_eq!(
        app.verdict("bo@corp.example", "demo").await,
        Verdict::AlreadyActive
    );

    conn.execute("UPDATE people SET gone = 1, changed = '2026-11-03 10:00:00' WHERE mail = 'ann@corp.example'")
        .await
        .unwrap();
    let update = sync_ok(&app, &config).await;
    assert_eq!((update.members.read, update.members.applied), (1, 1));
    assert_eq!(
        app.verdict("ann@corp.example", "demo").await,
        Verdict::NotRegistered
    );
}

/// A source slower than its statement timeout is "not answering" (exit 1, checks go on from the
/// last sync), never taken for a bad query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_source_is_not_answering_rather_than_refusing() {
    let Some(product) = Product::postgres().await else {
        return;
    };
    product
        .add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00")
        .await;
    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    let mut config = product.source(&app, 100);
    config.source.statement_timeout_ms = 200;
    config.source.members_query = Some(PG_MEMBERS.replace(
        "WHERE tu.updated_at",
        "WHERE (SELECT true FROM pg_sleep(1)) AND tu.updated_at",
    ));
    let error = sync(&app, &config, SyncOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SourceError::Unavailable {
                query: QueryName::MembersQuery,
                ..
            }
        ),
        "{error}"
    );
    assert!(!error.is_config());
    let state = app
        .engine
        .store()
        .source_state(SourceKind::ProductDb)
        .await
        .unwrap()
        .unwrap();
    assert!(state.last_error.unwrap().contains("not answering"));
}

both_backends! {
    async fn a_live_refresh_sees_the_products_change_before_any_sync_and_a_dead_source_costs_nothing(app) {
        let Some(product) = Product::postgres().await else { return };
        product.add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00").await;
        let config = product.source(&app, 1000);
        sync_ok(&app, &config).await;
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        // Ann activates in the product; no sync runs. A check with live refresh sees it.
        product.set_status(1, 1, "2026-11-03 08:00:00+00").await;
        let source = std::sync::Arc::new(Source::open(&config).unwrap());
        let live = app.engine.clone().with_live_source(source, std::time::Duration::from_secs(3));
        let slug = app.slug("prod-ws");
        let diagnosis = live.check(&app.email("ann@corp.example"), Some(&slug)).await.unwrap().remove(0);
        assert_eq!(diagnosis.verdict, Verdict::AlreadyActive);
        let data = diagnosis.findings.last().unwrap();
        assert!(data.detail.contains("from product-db, synced just now"), "{}", data.detail);
        // The refresh did not pass for a sync: the watermark is where the last sync left it.
        assert_eq!(watermark(&app).await.unwrap().0, at("2026-11-02T10:00:00Z"));

        // A product database that is not there: the check answers from the synced data.
        let mut down = config.clone();
        down.source.url = Some("postgres://postgres@127.0.0.1:9/nowhere".to_owned().into());
        down.source.connect_timeout_ms = 200;
        let dead = std::sync::Arc::new(Source::open(&down).unwrap());
        let fallback = app.engine.clone().with_live_source(dead, std::time::Duration::from_millis(300));
        let started = std::time::Instant::now();
        let diagnosis = fallback.check(&app.email("ann@corp.example"), Some(&slug)).await.unwrap().remove(0);
        assert_eq!(diagnosis.verdict, Verdict::AlreadyActive);
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
    }
}

/// `serve` with a `[source]` syncs on its own, every `interval_seconds`: a member added and then
/// changed in the product shows up in checks with no `invite-bot sync` run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_syncs_the_product_in_the_background() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let Some(product) = Product::postgres().await else {
        return;
    };
    product
        .add_member(1, "ann@corp.example", 0, "2026-11-02 10:00:00+00")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[source]\nurl = \"{}\"\nmembers_query = \"\"\"{}\"\"\"\ninterval_seconds = 1\n\
         [source.role_map]\n\"1\" = \"learner\"\n[source.status_map]\n\"0\" = \"invited\"\n\"1\" = \"active\"\n",
        product.url, PG_MEMBERS
    );
    std::fs::write(dir.path().join("config.toml"), toml).unwrap();
    let url = app.database_url().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", &url, "serve", "--no-discord"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr_lines = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr_lines.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        if line.starts_with("listening on ") {
            break;
        }
    }
    let verdict_within = |verdict: Verdict| {
        let app = &app;
        async move {
            for _ in 0..100 {
                // Before the first sync the workspace itself is unknown.
                if let Ok(found) = app.try_check("ann@corp.example", Some("prod-ws")).await {
                    if found[0].verdict == verdict {
                        return true;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            false
        }
    };
    let first = verdict_within(Verdict::InviteNeverSent).await;
    product.set_status(1, 1, "2026-11-03 08:00:00+00").await;
    let second = verdict_within(Verdict::AlreadyActive).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(first, "the first background sync brought the member");
    assert!(second, "a later background sync brought the change");
    assert!(status.success(), "{status:?}");
}
