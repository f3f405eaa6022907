//! The workspace database: one interface, a SQLite and a PostgreSQL implementation.
//!
//! Both backends run the same SQL wherever the dialects agree (sqlx's SQLite driver accepts `$1`
//! placeholders), so each query is written once and compiled once per backend by [`on_backend!`].
//! Where a backend needs its own SQL, the method matches on [`Store`] and says why.

mod activation;
mod appends;
mod audit;
mod buttons;
mod deliveries;
mod escalations;
mod fixture_load;
mod locking;
mod members;
mod outbox;
mod plans;
mod records;
mod webhook_events;
mod workspaces;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::SqlSafeStr;

pub use activation::{ActivationStart, LiveCode, NewActivationCode};
pub use audit::AuditFilter;
pub use deliveries::{DeliveryRecord, DomainWindow};
pub use escalations::{EscalationRow, EscalationStart, NewEscalation};

pub use outbox::{NewResend, OutboxItem, PriorAction, ResendLimits, ResendStart};
pub use plans::HotQuery;
pub use records::{AuditEntry, ButtonRecord};
pub use webhook_events::{
    BatchOutcome, NewDeliveryEvent, NewSuppression, ReplayToken, WebhookBatch, WebhookBatchReport,
};

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
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            other => StoreError::Query(other),
        }
    }
}

impl StoreError {
    /// True when the database could not be reached at all (as opposed to a query going wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
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
}

/// Held for the length of one SQLite write transaction; nothing for PostgreSQL, which has row locks.
pub(crate) struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

/// How to connect; the defaults suit the CLI and the bot alike.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// Open every connection at start and keep them open (PostgreSQL). For the long-running bot:
    /// without it, the first burst of checks also pays for opening the connections (TLS,
    /// authentication, a new server process each), which at 200 interactions at once was a third of
    /// the slowest answer's time. One-shot commands leave it off and open what they use.
    pub warm: bool,
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            warm: false,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// SQLite runs each connection's queries on its own thread in this process, and each keeps its own
/// page cache: beyond two connections per core, more only add threads fighting for the cores and
/// caches holding the same pages. Measured at 1M members, 16 checks at once on 2 cores: 16
/// connections gave typo checks a p99 of 20-30 ms and a 92 MB peak RSS; 4 gave 12 ms and 41 MB, at
/// the same throughput. (Writers queue on the [`WriteGate`] whatever the pool size.)
fn sqlite_pool_size(requested: u32) -> u32 {
    requested.clamp(1, two_per_core())
}

/// Two connections per CPU core of this host (at least 2): the default pool size, and SQLite's cap.
pub fn two_per_core() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    (2 * cores).max(2)
}

impl Store {
    /// Connects to `sqlite://PATH` (the file is created on first use) or `postgres://...`.
    /// Fails at once, with [`StoreError::Unavailable`], when the server cannot be reached.
    pub async fn connect(url: &str, options: &ConnectOptions) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(crate::urls::redact_url(url)))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(sqlite_pool_size(options.max_connections))
                .acquire_timeout(options.connect_timeout)
                .connect_with(connect)
                .await
                .map_err(StoreError::Unavailable)?;
            Ok(Store::Sqlite(pool, WriteGate::default()))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Every query here is an index look-up whose best plan does not depend on the values.
            // Left to choose, PostgreSQL re-plans the compound statements (the delivery facts, the
            // suggestion candidates) at every call, because their generic plans' cost estimates
            // lose to custom plans'; planning one took 0.3-1.5 ms against ~0.1 ms to run it. With
            // generic plans, at 1M members and 16 at once: 8,657 -> 11,837 registered checks/s.
            let connect = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::UnsupportedUrl(crate::urls::redact_url(url)))?
                .options([("plan_cache_mode", "force_generic_plan")]);
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
                .map_err(StoreError::Unavailable)?;
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
            Store::Postgres(pool, _) => migrator(Backend::Postgres).run(pool).await?,
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

    /// One round trip, to tell "reachable" from "down".
    pub async fn ping(&self) -> StoreResult<()> {
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
/// byte-wise (SQLite BINARY, PostgreSQL `COLLATE "C"`).
pub(crate) fn prefix_upper_bound(prefix: &str) -> String {
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
