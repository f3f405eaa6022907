//! Background work done by one process at a time, however many share the database.
//!
//! On PostgreSQL the leader holds a session advisory lock on a connection of its own, taken out of
//! the pool: the lock lives exactly as long as that session, so a leader that dies (even `kill -9`)
//! loses it as soon as the server sees the connection close, and another process takes over at its
//! next try. On SQLite there is one process by nature (one file, one host), so it always leads.

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::{Store, StoreResult};

/// The right to do background work, held until dropped or lost.
pub struct Lead {
    /// `None` on SQLite: nothing to hold.
    session: Option<PgConnection>,
    key: String,
}

impl Lead {
    /// Whether the lead is still held: the session that holds the lock still answers. A lead that
    /// is lost is never regained through this value; try to lead again.
    pub async fn still_held(&mut self) -> bool {
        match &mut self.session {
            None => true,
            Some(session) => session.ping().await.is_ok(),
        }
    }

    /// Gives the lead up at once (dropping it does too, when the connection closes).
    pub async fn release(self) {
        if let Some(mut session) = self.session {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&self.key)
                .execute(&mut session)
                .await;
            let _ = session.close().await;
        }
    }
}

impl std::fmt::Debug for Lead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lead").field("key", &self.key).finish()
    }
}

impl Store {
    /// Takes the lead for the background work named `job` when no other process holds it.
    /// `None`: another process leads; try again later.
    pub async fn try_lead(&self, job: &str) -> StoreResult<Option<Lead>> {
        let key = format!("invite-bot:lead:{job}");
        match self {
            Store::Sqlite(..) => Ok(Some(Lead { session: None, key })),
            Store::Postgres(pool, _) => {
                // Out of the pool for good: a pooled connection would carry the lock back into
                // the pool, to whichever request borrows it next.
                let mut session = pool.acquire().await?.detach();
                let got: bool =
                    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                        .bind(&key)
                        .fetch_one(&mut session)
                        .await?;
                if got {
                    Ok(Some(Lead {
                        session: Some(session),
                        key,
                    }))
                } else {
                    let _ = session.close().await;
                    Ok(None)
                }
            }
        }
    }
}
