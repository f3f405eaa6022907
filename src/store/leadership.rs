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

/// This process's claim to serve a SQLite file, held while `serve` runs: an OS lock (`flock`) on
/// `<file>-serve.lock` beside the database. The system releases it when the process ends however
/// it ends (`kill -9` included), so a crashed holder never blocks a later start; nothing is
/// written into the database.
#[derive(Debug)]
pub struct ReplicaClaim {
    _lock: Option<std::fs::File>,
    /// Another process holds the claim: two `serve`s on one SQLite file.
    pub shared: bool,
}

impl Store {
    /// Claims the SQLite file for this `serve`. On PostgreSQL (made for several replicas) and for
    /// an in-memory SQLite database there is nothing to claim.
    pub fn claim_replica(&self) -> ReplicaClaim {
        let unclaimed = ReplicaClaim {
            _lock: None,
            shared: false,
        };
        let Store::Sqlite(_, gate) = self else {
            return unclaimed;
        };
        let Some(file) = &gate.file else {
            return unclaimed;
        };
        let mut path = file.path.clone().into_os_string();
        path.push("-serve.lock");
        let lock = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Ok(lock) => lock,
            Err(error) => {
                tracing::warn!(%error, "cannot open the SQLite serve lock file; not checking for a second serve");
                return unclaimed;
            }
        };
        match lock.try_lock() {
            Ok(()) => ReplicaClaim {
                _lock: Some(lock),
                shared: false,
            },
            Err(std::fs::TryLockError::WouldBlock) => ReplicaClaim {
                _lock: None,
                shared: true,
            },
            Err(std::fs::TryLockError::Error(error)) => {
                tracing::warn!(%error, "cannot lock the SQLite serve lock file; not checking for a second serve");
                unclaimed
            }
        }
    }
}
