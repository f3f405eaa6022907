//! The test harness: every test gets its own fresh database on the backend it asks for.
//!
//! SQLite runs everywhere (a file in a temporary directory). PostgreSQL runs when
//! `TEST_DATABASE_URL` points at a server (`.ci/run` sets it): each test creates a uniquely named
//! database there and drops it afterwards. With `INVITE_BOT_REQUIRE_POSTGRES=1` (also set by
//! `.ci/run`) a missing server fails the test instead of skipping it.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use invite_bot::actions::{Actions, Actor, Authorizer};
use invite_bot::app::startup;
use invite_bot::config::{Config, GrantConfig};
use invite_bot::domain::Permission;
use invite_bot_testkit::fake_discord::GUILD_ID;

use crate::smtp::SmtpServer;
use invite_bot::diagnosis::Diagnosis;
use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::invitation::Invitation;
use invite_bot::domain::workspace::WorkspaceSlug;
use invite_bot::engine::Engine;
use invite_bot::error::EngineError;
use invite_bot::fixture::{Fixture, FixtureError, SeedReport};
use invite_bot::store::Store;
pub use invite_bot_testkit::database::{
    fresh_database, postgres_admin_url, random_suffix, Backend, FreshDatabase,
};
pub use invite_bot_testkit::process::{stderr, stdout};

pub struct TestApp {
    /// The actions service, built exactly as `main` builds it.
    pub actions: Actions,
    /// Its engine (the checks), for convenience.
    pub engine: Engine,
    pub config: Config,
    /// The real SMTP server this app's invitations go to.
    pub smtp: SmtpServer,
    _database: FreshDatabase,
}

impl TestApp {
    /// `None` only for PostgreSQL when no server is configured (and none is required).
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        let database = fresh_database(backend).await?;
        let mut config = Config {
            database_url: database.url.clone(),
            ..Config::default()
        };
        configure(&mut config);
        let smtp = SmtpServer::start();
        // Real backoff, shortened so the suite stays quick.
        config.smtp.retry_base_ms = 10;
        config.escalation.webhook_retry_base_ms = 10;
        let actions = build(&config, &smtp.url).await;
        Some(TestApp {
            engine: actions.engine().clone(),
            actions,
            config,
            smtp,
            _database: database,
        })
    }

    /// Another bot with its own connection pool on the same database: a second instance.
    pub async fn second_instance(&self) -> Actions {
        build(&self.config, &self.smtp.url).await
    }

    /// A bot like this one whose mail goes to `smtp_url`.
    pub async fn with_smtp(&self, smtp_url: &str) -> Actions {
        build(&self.config, smtp_url).await
    }

    pub fn operator(&self) -> Actor {
        Authorizer::from_config(&self.config).operator()
    }

    pub fn chat_user(&self, user_id: &str, roles: &[&str]) -> Actor {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        Authorizer::from_config(&self.config).chat_actor(
            user_id,
            &format!("user {user_id}"),
            &roles,
        )
    }

    pub fn email(&self, email: &str) -> EmailAddress {
        EmailAddress::parse(email).unwrap()
    }

    pub fn slug(&self, slug: &str) -> WorkspaceSlug {
        WorkspaceSlug::parse(slug).unwrap()
    }

    /// The verdict of `email` in `workspace` right now.
    pub async fn verdict(&self, email: &str, workspace: &str) -> invite_bot::diagnosis::Verdict {
        self.check(email, workspace).await.verdict
    }

    /// One column of every row of `table`, as text, for asserting what is (not) stored.
    pub async fn dump(&self, table: &str) -> String {
        let sql = sqlx::AssertSqlSafe(format!("SELECT * FROM {table}"));
        let rows = match self.engine.store() {
            Store::Sqlite(pool, _) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(row_text_sqlite)
                .collect::<Vec<_>>(),
            Store::Postgres(pool, _) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .unwrap()
                .iter()
                .map(row_text_pg)
                .collect::<Vec<_>>(),
        };
        rows.join("\n")
    }

    /// The URL of this test's database, for the binary or a second connection.
    pub fn database_url(&self) -> &str {
        &self._database.url
    }

    pub async fn try_seed(&self, toml: &str) -> Result<SeedReport, FixtureError> {
        let fixture = Fixture::parse(toml, "test fixture", Utc::now())?;
        self.engine
            .seed(&fixture)
            .await
            .map_err(|error| match error {
                invite_bot::store::SeedError::Fixture(fixture) => fixture,
                invite_bot::store::SeedError::Store(store) => {
                    panic!("the database failed: {store}")
                }
            })
    }

    pub async fn seed(&self, toml: &str) -> SeedReport {
        self.try_seed(toml)
            .await
            .unwrap_or_else(|e| panic!("seeding failed: {e}"))
    }

    pub async fn try_check(
        &self,
        email: &str,
        workspace: Option<&str>,
    ) -> Result<Vec<Diagnosis>, EngineError> {
        let email = EmailAddress::parse(email).unwrap_or_else(|e| panic!("{email:?}: {e}"));
        let workspace = workspace.map(|w| WorkspaceSlug::parse(w).unwrap());
        self.engine.check(&email, workspace.as_ref()).await
    }

    /// The single diagnosis for `email` in `workspace`.
    pub async fn check(&self, email: &str, workspace: &str) -> Diagnosis {
        let mut diagnoses = self.try_check(email, Some(workspace)).await.unwrap();
        assert_eq!(diagnoses.len(), 1);
        diagnoses.remove(0)
    }

    /// The latest invitation of `email` in `workspace`; panics when it has none.
    pub async fn latest_invitation(&self, email: &str, workspace: &str) -> Invitation {
        let member = self.check(email, workspace).await.member.expect("a member");
        self.engine
            .store()
            .latest_invitation(member.id)
            .await
            .unwrap()
            .expect("an invitation")
    }

    /// Rows in `table`, read straight from the database.
    /// Redeems `secret` (a typed code or a link's token) for `email` in `acme`, as the operator.
    pub async fn redeem(&self, email: &str, secret: &str) -> invite_bot::actions::RedeemOutcome {
        self.actions
            .redeem(
                &self.operator(),
                &self.email(email),
                &self.slug("acme"),
                secret,
            )
            .await
            .unwrap()
    }

    /// The audit rows about `email`, oldest first, as (action, outcome, reason).
    pub async fn audit_rows(&self, email: &str) -> Vec<(String, String, Option<String>)> {
        self.actions
            .read_audit(&invite_bot::store::AuditFilter {
                email_key: Some(email.into()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.action.as_str().to_owned(),
                    e.outcome.as_str().to_owned(),
                    e.reason.map(|r| r.as_str().to_owned()),
                )
            })
            .collect()
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"));
        match self.engine.store() {
            Store::Sqlite(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Store::Postgres(pool, _) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }
}

/// The app as `main` builds it for `seed` (the same `startup` code; a fresh SQLite file is created),
/// with mail going to `smtp_url`.
async fn build(config: &Config, smtp_url: &str) -> Actions {
    let mut config = config.clone();
    config.smtp.url = Some(smtp_url.to_owned().into());
    config.smtp.timeout_seconds = 5;
    startup::build_for_seeding(&config)
        .await
        .unwrap_or_else(|e| panic!("startup failed: {e}"))
}

fn row_text_sqlite(row: &sqlx::sqlite::SqliteRow) -> String {
    use sqlx::{Column, Row};
    row.columns()
        .iter()
        .map(|c| row.try_get::<String, _>(c.ordinal()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("|")
}

fn row_text_pg(row: &sqlx::postgres::PgRow) -> String {
    use sqlx::{Column, Row};
    row.columns()
        .iter()
        .map(|c| row.try_get::<String, _>(c.ordinal()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("|")
}

/// Defines each test twice, once per backend: `mod name { fn sqlite(); fn postgres(); }`.
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident) $(with $configure:expr;)? $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    #[allow(unused_variables)]
                    let configure = |_: &mut invite_bot::config::Config| {};
                    $(let configure = $configure;)?
                    let $app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, configure).await.unwrap();
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    #[allow(unused_variables)]
                    let configure = |_: &mut invite_bot::config::Config| {};
                    $(let configure = $configure;)?
                    let Some($app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, configure).await else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
}
pub(crate) use both_backends;

/// Runs the `invite-bot` binary in `dir` (so no stray config.toml is read), with no inherited
/// configuration, plus `env`.
pub fn run_binary(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    invite_bot_testkit::process::run_binary(
        std::path::Path::new(env!("CARGO_BIN_EXE_invite-bot")),
        dir,
        env,
        args,
    )
}

/// The roles and the escalation channel of the Discord tests (gateway and HTTP mode alike).
pub const SUPPORT_ROLE: &str = "7000";
pub const ADMIN_ROLE: &str = "8000";
pub const ESCALATION_CHANNEL: u64 = 6000;

/// The `[discord]` settings every Discord test shares, and [`discord_grants`].
pub fn configure_discord(config: &mut Config) {
    config.discord.token = Some("test-token".to_owned().into());
    config.discord.guild_ids = vec![GUILD_ID];
    config.discord.escalation_channel_id = Some(ESCALATION_CHANNEL);
    config.discord.support_role_id = Some(SUPPORT_ROLE.parse().unwrap());
    discord_grants(config);
}

/// The Discord tests' grants: support agents check and escalate; admins check, resend and issue
/// codes.
pub fn discord_grants(config: &mut Config) {
    config.permissions.grant = vec![
        GrantConfig {
            roles: vec![SUPPORT_ROLE.into()],
            allow: vec![Permission::Check, Permission::Escalate],
            ..GrantConfig::default()
        },
        GrantConfig {
            roles: vec![ADMIN_ROLE.into()],
            allow: vec![
                Permission::Check,
                Permission::ResendInvite,
                Permission::IssueActivationCode,
            ],
            ..GrantConfig::default()
        },
    ];
}

/// A tracing writer that keeps everything for inspection.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures everything logged on this thread, at TRACE and without colours, until the guard
    /// drops (so a test using it runs on a current-thread runtime).
    pub fn start() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
