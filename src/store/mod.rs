//! The workspace database: one interface, a SQLite and a PostgreSQL implementation.
//!
//! Both backends run the same SQL wherever the dialects agree (sqlx's SQLite driver accepts `$1`
//! placeholders), so each query is written once and compiled once per backend by [`on_backend!`].
//! Where a backend needs its own SQL, the method matches on [`Store`] and says why.

mod activation;
mod alerts;
mod appends;
mod audit;
mod buttons;
mod deliveries;
mod escalations;
mod fixture_load;
mod ingest;
mod ingest_bulk;
mod leadership;
mod locking;
mod members;
mod outbox;
mod product_calls;
mod records;
mod report;
mod webhook_events;
mod workspaces;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::SqlSafeStr;

pub use activation::{ActivationStart, LiveCode, NewActivationCode};
pub use alerts::{
    AlertEnd, AlertScanState, FoundProblem, PendingAlert, ProblemPage, StoredProblem,
};
pub use audit::AuditFilter;
pub use deliveries::{DeliveryRecord, DomainWindow};
pub use escalations::{EscalationRow, EscalationStart, NewEscalation, WebhookState};
pub use fixture_load::SeedError;
pub use ingest::{ApplyOptions, IngestError, IngestTx, SourceState, Watermark};
pub use leadership::{Lead, ReplicaClaim};
pub use outbox::{NewResend, OutboxItem, PriorAction, RequestState, ResendLimits, ResendStart};
pub use product_calls::{
    NewProductCall, ProductCall, ProductCallEnd, ProductCallLimits, ProductCallStart,
    ProductCallState,
};
pub use records::{AuditEntry, ButtonRecord};
pub use report::{
    BulkResendRow, BulkStart, BulkTally, NeedingActionRow, NewBulkResend, ReportCountRow,
};
pub use webhook_events::{
    BatchOutcome, NewDeliveryEvent, NewSuppression, ReplayToken, WebhookBatch, WebhookBatchReport,
};

/// The SQL of every query on a check's path, for `invite-bot-bench`'s query plans (`EXPLAIN`).
pub mod check_queries {
    pub use super::deliveries::DELIVERY_FACTS;
    pub use super::members::{CANDIDATES_NEAR, MEMBERSHIPS, MEMBER_BY_SLUG, MEMBER_IN_WORKSPACE};
}

/// Expands `$body` once per backend with `$pool` bound to that backend's pool, so one query text
/// serves both.
macro_rules! on_backend {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, ..) => $body,
            $crate::store::Store::Postgres($pool, ..) => $body,
        }
    };
}
pub(crate) use on_backend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database URL `{0}` is not understood: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl(String),
    #[error("cannot reach the database: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// No connection within the connect timeout (down, hung, or refusing connections: sqlx keeps
    /// retrying a refused connection until then), or a statement that ran out of time (a hung
    /// server, or a lock someone else holds).
    #[error("{}", not_answering(.0))]
    NotAnswering(#[source] sqlx::Error),
    /// A SQLite file that should exist does not (deleted, or a wrong path): it is never silently
    /// created outside the commands that fill a database.
    #[error("the database file {} does not exist", .0.display())]
    Missing(std::path::PathBuf),
    /// Another file now sits at the path of the one this process opened (restored, or deleted
    /// and created again): the open connections still read and write the old one.
    #[error("the database file {} was replaced while it was open; restart to use the new one", .0.display())]
    Replaced(std::path::PathBuf),
    #[error("the database schema could not be migrated: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[source] sqlx::Error),
    #[error("the database holds a value the bot does not understand: {0}")]
    Corrupt(String),
    #[error("the write was interrupted before it was committed")]
    Interrupted,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_timeout(&error) {
            return StoreError::NotAnswering(error);
        }
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            other => StoreError::Query(other),
        }
    }
}

fn not_answering(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::PoolTimedOut => {
            "cannot reach the database: it is not answering (down, hung or refusing connections)"
                .to_owned()
        }
        other => format!("the database is not answering: {other}"),
    }
}

/// A wait that ran out: for a connection, for a statement (PostgreSQL's `statement_timeout`
/// cancels it with 57014), or for SQLite's write lock (`SQLITE_BUSY` after the busy timeout).
fn is_timeout(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // The primary code, or an extended one whose low byte is it (5 = SQLITE_BUSY).
                code.parse::<i32>().is_ok_and(|c| c & 0xff == 5)
            } else {
                code == "57014"
            }
        }
        _ => false,
    }
}

impl StoreError {
    /// True when the database could not be reached, or did not answer in time (as opposed to a
    /// query going wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::NotAnswering(_)
                | StoreError::Missing(_)
                | StoreError::Replaced(_)
        )
    }

    /// True when the database was there but did not answer in time.
    pub fn is_not_answering(&self) -> bool {
        matches!(self, StoreError::NotAnswering(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection pool to the workspace database. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool, WriteGate),
    Postgres(PgPool, WriteGate),
}

/// Lines up this process's writers: on SQLite every writer, on PostgreSQL only the appends.
///
/// SQLite lets one connection write at a time and makes the others wait in its busy handler, which
/// sleeps 1, 2, 5, 10 ... 100 ms between tries: under a burst of checks (each writes its audit row
/// and its buttons) the sleeps, not the writes, were most of the answer time. Waiting here instead
/// is a FIFO queue that wakes the next writer the moment the last one commits. Other processes on
/// the same file (the CLI beside `serve`) still meet the busy timeout, as before. On both backends
/// the appends (audit rows, button records) wait here to be committed in groups ([`appends`]).
#[derive(Clone, Debug, Default)]
pub struct WriteGate {
    turn: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Rows waiting to be committed together by whoever gets the next turn ([`appends`]).
    appends: std::sync::Arc<appends::AppendQueue>,
    /// The SQLite file behind the pool, to tell when it is deleted or replaced ([`Store::ping`]).
    file: Option<std::sync::Arc<SqliteFile>>,
}

/// A SQLite database file as this process opened it.
#[derive(Debug)]
struct SqliteFile {
    path: std::path::PathBuf,
    /// Device and inode when opened (Unix): a file put back at the same path is another file.
    identity: Option<(u64, u64)>,
}

impl SqliteFile {
    /// The file behind `url`; `None` for an in-memory database.
    fn of(url: &str, filename: &std::path::Path) -> Option<SqliteFile> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        (!memory).then(|| SqliteFile {
            path: filename.to_path_buf(),
            identity: None,
        })
    }

    fn identify(mut self) -> SqliteFile {
        self.identity = file_identity(&self.path);
        self
    }

    fn check(&self) -> StoreResult<()> {
        if !self.path.exists() {
            return Err(StoreError::Missing(self.path.clone()));
        }
        if file_identity(&self.path) != self.identity {
            return Err(StoreError::Replaced(self.path.clone()));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &std::path::Path) -> Option<(u64, u64)> {
    None
}

/// Held for the length of one SQLite write transaction; nothing for PostgreSQL, which has row locks.
pub(crate) struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

/// How to connect; the defaults suit the CLI and the bot alike.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// Open every connection at start and keep them open (PostgreSQL). For the long-running bot:
    /// without it, the first burst of checks also pays for opening the connections (TLS,
    /// authentication, a new server process each). One-shot commands leave it off and open what
    /// they use.
    pub warm: bool,
    /// How long a caller waits for a connection, opening one included. A database that is down
    /// or hung costs every answer this much, and Discord drops an interaction after 3 s: well
    /// under that, so the person hears "not answering" rather than nothing.
    pub connect_timeout: Duration,
    /// The longest one statement may run (PostgreSQL `statement_timeout`, waits for locks
    /// included) or wait for SQLite's write lock (its busy timeout). Migrations are exempt.
    pub statement_timeout: Duration,
    /// Create a SQLite file that does not exist yet. Only for the commands that fill a database
    /// (`migrate`, `seed`, `demo`); anything else meeting a missing file is told so
    /// ([`StoreError::Missing`]) instead of quietly starting from an empty database.
    pub create_if_missing: bool,
}

impl ConnectOptions {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            warm: false,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            create_if_missing: true,
        }
    }
}

/// SQLite runs each connection's queries on its own thread in this process, and each keeps its own
/// page cache: beyond two connections per core, more only add threads fighting for the cores and
/// caches holding the same pages, for no more throughput (README, "Benchmark"). Writers queue on
/// the [`WriteGate`] whatever the pool size.
fn sqlite_pool_size(requested: u32) -> u32 {
    requested.clamp(1, two_per_core())
}

/// Two connections per CPU core of this host (at least 2): the default pool size, and SQLite's cap.
pub fn two_per_core() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    (2 * cores).max(2)
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created only with `create_if_missing`) or
    /// `postgres://...`. Fails within `connect_timeout`, with [`StoreError::Unavailable`] or
    /// [`StoreError::NotAnswering`], when the server cannot be reached or does not answer.
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(crate::urls::redact_url(url)))?
                .create_if_missing(options.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(options.statement_timeout);
            let file = SqliteFile::of(url, connect.get_filename());
            if let Some(file) = &file {
                if !options.create_if_missing && !file.path.exists() {
                    return Err(StoreError::Missing(file.path.clone()));
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(sqlite_pool_size(options.max_connections))
                .acquire_timeout(options.connect_timeout)
                .connect_with(connect)
                .await
                .map_err(StoreError::from)?;
            let gate = WriteGate {
                // Taken once the pool has opened (and maybe created) the file.
                file: file.map(SqliteFile::identify).map(std::sync::Arc::new),
                ..WriteGate::default()
            };
            Ok(Store::Sqlite(pool, gate))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Every query here is an index look-up whose best plan does not depend on the values.
            // Left to choose, PostgreSQL re-plans the compound statements (the delivery facts, the
            // suggestion candidates) at every call, because their generic plans' cost estimates
            // lose to custom plans', and planning one costs more than running it (README, "Benchmark").
            let connect = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(crate::urls::redact_url(url)))?
                .options([
                    ("plan_cache_mode", "force_generic_plan".to_owned()),
                    // Sent with the connection, so it costs no round trip; a lock held by a hung
                    // session or a runaway statement ends here instead of holding the answer.
                    (
                        "statement_timeout",
                        options.statement_timeout.as_millis().max(1).to_string(),
                    ),
                ]);
            let warm = if options.warm {
                options.max_connections
            } else {
                0
            };
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .min_connections(warm)
                .acquire_timeout(options.connect_timeout)
                .connect_with(connect)
                .await
                .map_err(StoreError::from)?;
            Ok(Store::Postgres(pool, WriteGate::default()))
        } else {
            Err(StoreError::UnsupportedUrl(crate::urls::redact_url(url)))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(..) => Backend::Sqlite,
            Store::Postgres(..) => Backend::Postgres,
        }
    }

    /// Applies the embedded migrations. Safe to run again: applied versions are skipped.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite(pool, _) => migrator(Backend::Sqlite).run(pool).await?,
            Store::Postgres(pool, _) => {
                // A migration may rewrite a large table: it is not held to the statement timeout
                // meant for a check's look-ups.
                let mut conn = pool.acquire().await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                let migrated = migrator(Backend::Postgres).run(&mut *conn).await;
                let reset = sqlx::query("RESET statement_timeout")
                    .execute(&mut *conn)
                    .await;
                if reset.is_err() {
                    // Never hand a connection without the limit back to the pool.
                    conn.detach();
                }
                migrated?;
            }
        }
        Ok(())
    }

    /// True when every embedded migration has been applied.
    pub async fn is_migrated(&self) -> StoreResult<bool> {
        let expected = migrator(self.backend()).iter().count() as i64;
        let applied: Result<i64, sqlx::Error> = on_backend!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
        });
        match applied {
            Ok(applied) => Ok(applied >= expected),
            Err(sqlx::Error::Database(_)) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// One round trip, to tell "reachable" from "down"; on SQLite also that the file this store
    /// opened is still the one at its path. A deleted file stays readable through the open
    /// connections, so without this a deleted database would look healthy while every write went
    /// to a file no one can see.
    pub async fn ping(&self) -> StoreResult<()> {
        if let Store::Sqlite(_, gate) = self {
            if let Some(file) = &gate.file {
                file.check()?;
            }
        }
        on_backend!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Waits for this process's turn to write (SQLite only); hold the result until the commit.
    pub(crate) async fn write_turn(&self) -> WriteTurn {
        match self {
            Store::Sqlite(_, gate) => WriteTurn(Some(gate.turn.clone().lock_owned().await)),
            Store::Postgres(..) => WriteTurn(None),
        }
    }

    pub async fn close(&self) {
        self.flush_appends().await;
        on_backend!(self, pool => pool.close().await)
    }
}

/// The migrations, embedded in the binary so a deployment needs no files beside it.
fn migrator(backend: Backend) -> Migrator {
    let sources: &[(i64, &str, &'static str)] = match backend {
        Backend::Sqlite => &[
            (
                1,
                "workspace database",
                include_str!("../../migrations/sqlite/0001_workspace_database.sql"),
            ),
            (
                2,
                "actions",
                include_str!("../../migrations/sqlite/0002_actions.sql"),
            ),
            (
                3,
                "provider webhooks",
                include_str!("../../migrations/sqlite/0003_provider_webhooks.sql"),
            ),
            (
                4,
                "chat buttons",
                include_str!("../../migrations/sqlite/0004_chat_buttons.sql"),
            ),
            (
                5,
                "chat button timestamps",
                include_str!("../../migrations/sqlite/0005_chat_buttons_timestamps.sql"),
            ),
            (
                6,
                "message correlation",
                include_str!("../../migrations/sqlite/0006_message_correlation.sql"),
            ),
            (
                7,
                "send leases",
                include_str!("../../migrations/sqlite/0007_send_leases.sql"),
            ),
            (
                8,
                "product data",
                include_str!("../../migrations/sqlite/0008_product_data.sql"),
            ),
            (
                9,
                "product calls",
                include_str!("../../migrations/sqlite/0009_product_calls.sql"),
            ),
            (
                10,
                "workspace report",
                include_str!("../../migrations/sqlite/0010_workspace_report.sql"),
            ),
            (
                11,
                "alerts",
                include_str!("../../migrations/sqlite/0011_alerts.sql"),
            ),
            (
                12,
                "member latest invitation",
                include_str!("../../migrations/sqlite/0012_member_latest_invitation.sql"),
            ),
        ],
        Backend::Postgres => &[
            (
                1,
                "workspace database",
                include_str!("../../migrations/postgres/0001_workspace_database.sql"),
            ),
            (
                2,
                "actions",
                include_str!("../../migrations/postgres/0002_actions.sql"),
            ),
            (
                3,
                "provider webhooks",
                include_str!("../../migrations/postgres/0003_provider_webhooks.sql"),
            ),
            (
                4,
                "chat buttons",
                include_str!("../../migrations/postgres/0004_chat_buttons.sql"),
            ),
            (
                5,
                "chat button timestamps",
                include_str!("../../migrations/postgres/0005_chat_buttons_timestamps.sql"),
            ),
            (
                6,
                "message correlation",
                include_str!("../../migrations/postgres/0006_message_correlation.sql"),
            ),
            (
                7,
                "send leases",
                include_str!("../../migrations/postgres/0007_send_leases.sql"),
            ),
            (
                8,
                "product data",
                include_str!("../../migrations/postgres/0008_product_data.sql"),
            ),
            (
                9,
                "product calls",
                include_str!("../../migrations/postgres/0009_product_calls.sql"),
            ),
            (
                10,
                "workspace report",
                include_str!("../../migrations/postgres/0010_workspace_report.sql"),
            ),
            (
                11,
                "alerts",
                include_str!("../../migrations/postgres/0011_alerts.sql"),
            ),
            (
                12,
                "member latest invitation",
                include_str!("../../migrations/postgres/0012_member_latest_invitation.sql"),
            ),
        ],
    };
    Migrator::with_migrations(
        sources
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Turns a text column into a domain enum, or reports the row as corrupt.
pub(crate) fn decode_enum<T>(
    value: &str,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> StoreResult<T> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{column} = {value:?}")))
}

/// The exclusive upper bound of a prefix range: every string starting with `prefix` sorts below it
/// byte-wise (SQLite BINARY, PostgreSQL `COLLATE "C"`). Public for the bench's query plans.
pub fn prefix_upper_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod pool_size_tests {
    use super::{sqlite_pool_size, two_per_core};

    #[test]
    fn sqlite_pools_stay_within_two_connections_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert_eq!(two_per_core(), (2 * cores).max(2));
        assert_eq!(sqlite_pool_size(1), 1);
        assert_eq!(sqlite_pool_size(0), 1);
        assert_eq!(sqlite_pool_size(1000), two_per_core());
        assert_eq!(sqlite_pool_size(2), 2);
    }
}
