//! The product's database, opened read-only where the driver allows, with its own small pool and
//! deadlines: the bot reads it, never writes it, and never lets it hold a check or a sync forever.

use std::str::FromStr;
use std::time::Duration;

use chrono::FixedOffset;
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Executor;

use crate::config::{SourceConfig, SourceDialect};
use crate::urls::redact_url;

use super::SourceError;

/// Connections the bot opens to the product's database: one for a sync, one for a live refresh.
const POOL_SIZE: u32 = 2;

/// The pool of one kind of database.
#[derive(Debug, Clone)]
pub(super) enum ProductPool {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// An open (lazily connected) product database.
#[derive(Debug, Clone)]
pub(super) struct ProductDb {
    pub pool: ProductPool,
    pub dialect: SourceDialect,
    /// The URL without its password, for messages.
    pub shown_url: String,
    /// The client's own deadline for one query: the server's statement timeout, plus a little,
    /// for a server that stopped answering altogether.
    pub deadline: Duration,
}

impl ProductDb {
    /// Builds the pool without connecting: a source that is down is reported by the first query
    /// (naming it), never by start-up of a bot that can answer from its last sync.
    pub fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let url = config.url.as_ref().ok_or(SourceError::NotConfigured)?;
        let url = url.expose_secret();
        let shown_url = redact_url(url);
        let dialect = SourceDialect::of_url(url).ok_or_else(|| SourceError::Open {
            url: shown_url.clone(),
            message: "the URL must start with postgres://, mysql://, mariadb:// or sqlite://"
                .into(),
        })?;
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let statement_timeout = Duration::from_millis(config.statement_timeout_ms);
        let zone = config.zone();
        let bad_url = |e: sqlx::Error| SourceError::Open {
            url: shown_url.clone(),
            message: e.to_string(),
        };
        let pool = match dialect {
            SourceDialect::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .application_name("invite-bot sync")
                    .options([
                        ("default_transaction_read_only", "on".to_owned()),
                        (
                            "statement_timeout",
                            statement_timeout.as_millis().to_string(),
                        ),
                        ("TimeZone", posix_zone(zone)),
                    ]);
                ProductPool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(POOL_SIZE)
                        .min_connections(0)
                        .acquire_timeout(connect_timeout)
                        .connect_lazy_with(options),
                )
            }
            SourceDialect::MySql => {
                // `mariadb://` is MySQL's protocol; sqlx reads the rest of the URL alike.
                let options = MySqlConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    // Naive timestamps (DATETIME, and TIMESTAMP as this session shows it) are in
                    // the configured zone, so both read alike.
                    .timezone(Some(mysql_zone(zone)));
                let seconds = statement_timeout.as_secs_f64();
                let millis = statement_timeout.as_millis();
                ProductPool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(POOL_SIZE)
                        .min_connections(0)
                        .acquire_timeout(connect_timeout)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                                // MariaDB calls the statement deadline max_statement_time
                                // (seconds), MySQL max_execution_time (milliseconds).
                                let mariadb = format!("SET SESSION max_statement_time = {seconds}");
                                if conn.execute(sqlx::AssertSqlSafe(mariadb)).await.is_err() {
                                    let mysql =
                                        format!("SET SESSION max_execution_time = {millis}");
                                    conn.execute(sqlx::AssertSqlSafe(mysql)).await?;
                                }
                                Ok(())
                            })
                        })
                        .connect_lazy_with(options),
                )
            }
            SourceDialect::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(bad_url)?
                    .read_only(true)
                    .busy_timeout(statement_timeout);
                ProductPool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(POOL_SIZE)
                        .min_connections(0)
                        .acquire_timeout(connect_timeout)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(ProductDb {
            pool,
            dialect,
            shown_url,
            deadline: statement_timeout + connect_timeout,
        })
    }

    pub async fn close(&self) {
        match &self.pool {
            ProductPool::Postgres(pool) => pool.close().await,
            ProductPool::MySql(pool) => pool.close().await,
            ProductPool::Sqlite(pool) => pool.close().await,
        }
    }
}

/// PostgreSQL reads a bare `+02:00` as POSIX, west of Greenwich; `<+0200>-02:00` is two hours east.
fn posix_zone(zone: FixedOffset) -> String {
    let seconds = zone.local_minus_utc();
    if seconds == 0 {
        return "UTC".into();
    }
    let (sign, posix_sign) = if seconds > 0 { ('+', '-') } else { ('-', '+') };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    format!("<{sign}{hours:02}{minutes:02}>{posix_sign}{hours:02}:{minutes:02}")
}

/// MySQL's `time_zone` takes `+02:00`.
fn mysql_zone(zone: FixedOffset) -> String {
    let seconds = zone.local_minus_utc();
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    format!("{sign}{hours:02}:{minutes:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_written_the_way_each_server_reads_them() {
        let east = FixedOffset::east_opt(2 * 3600).unwrap();
        let west = FixedOffset::west_opt(5 * 3600 + 1800).unwrap();
        assert_eq!(posix_zone(east), "<+0200>-02:00");
        assert_eq!(posix_zone(west), "<-0530>+05:30");
        assert_eq!(posix_zone(FixedOffset::east_opt(0).unwrap()), "UTC");
        assert_eq!(mysql_zone(east), "+02:00");
        assert_eq!(mysql_zone(west), "-05:30");
    }
}
