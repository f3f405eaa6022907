//! Transactions that serialize competing writers on one key (one member, one escalation target), so
//! a double click, two admins or two bot instances cannot both pass a rate limit or an idempotency check.

use sqlx::postgres::{PgPool, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::Transaction;

pub(crate) trait BeginLocked {
    type Db: sqlx::Database;
    /// Begins a transaction that holds a lock on `key` until it ends.
    async fn begin_locked(&self, key: &str) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginLocked for SqlitePool {
    type Db = Sqlite;
    // SQLite has one writer at a time; taking the write lock up front (instead of at the first write)
    // makes every read in the transaction see the state no one else can change before commit.
    async fn begin_locked(&self, _key: &str) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginLocked for PgPool {
    type Db = Postgres;
    // A transaction-scoped advisory lock: held across instances sharing the database, released at
    // commit or rollback, and it works for keys with no row to lock (an unregistered address).
    async fn begin_locked(&self, key: &str) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
