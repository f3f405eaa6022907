//! The small rows every check writes (its audit rows, its reply's button records), committed in
//! groups.
//!
//! Each commit waits for the log to reach the disk (SQLite with `synchronous = FULL`, PostgreSQL with
//! `synchronous_commit = on`). A burst of 200 checks is then 400 commits; on SQLite, which commits one
//! writer at a time, the last check answered only after all of them. So writers leave their rows
//! in a shared queue, and whoever gets the next turn commits everything queued, in one
//! transaction, for all of them. Every caller still returns only once its own rows are durable;
//! the commits are fewer, not weaker. (What it gained under load: README, "Benchmark: Discord".)

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::records::{execute_append, Append};
use super::{on_backend, Store, StoreError, StoreResult};

struct Waiting {
    append: Append,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Appends waiting for the next group commit.
#[derive(Default)]
pub(crate) struct AppendQueue {
    waiting: Mutex<Vec<Waiting>>,
    /// Group transactions committed, so tests can see the grouping.
    #[cfg(test)]
    commits: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AppendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendQueue").finish_non_exhaustive()
    }
}

impl AppendQueue {
    fn push(&self, waiting: Waiting) {
        // A poisoned lock only means another writer panicked mid-push; the Vec is still whole.
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(waiting);
    }

    #[cfg(test)]
    fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn take(&self) -> Vec<Waiting> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Store {
    fn gate(&self) -> &super::WriteGate {
        match self {
            Store::Sqlite(_, gate) | Store::Postgres(_, gate) => gate,
        }
    }

    /// Adds `append`'s rows; returns once they are committed.
    pub(crate) async fn append(&self, append: Append) -> StoreResult<()> {
        let gate = self.gate();
        let (done, mut result) = oneshot::channel();
        gate.appends.push(Waiting { append, done });
        // On SQLite this is also every other writer's turn; on PostgreSQL only appends take it.
        let turn = gate.turn.clone().lock_owned().await;
        // An earlier turn may have committed ours along with its own.
        match result.try_recv() {
            Ok(outcome) => return outcome,
            Err(oneshot::error::TryRecvError::Closed) => return Err(StoreError::Interrupted),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        // The commit runs in its own task, holding the turn: if this caller is dropped mid-commit
        // (a client that hung up), the others' rows are still committed and answered.
        let (store, batch) = (self.clone(), gate.appends.take());
        let _ = tokio::spawn(async move {
            let _turn = turn;
            store.commit_batch(batch).await;
        })
        .await;
        match result.await {
            Ok(outcome) => outcome,
            // Every waiter taken is answered; a panic mid-commit is the only way to drop one.
            Err(_) => Err(StoreError::Interrupted),
        }
    }

    /// Commits every waiting append in one transaction and tells each waiter how its rows fared.
    async fn commit_batch(&self, batch: Vec<Waiting>) {
        if batch.is_empty() {
            return;
        }
        let appends: Vec<&Append> = batch.iter().map(|w| &w.append).collect();
        match self.commit_appends(&appends).await {
            Ok(()) => {
                #[cfg(test)]
                self.gate()
                    .appends
                    .commits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                for waiting in batch {
                    let _ = waiting.done.send(Ok(()));
                }
            }
            Err(error) if batch.len() == 1 => {
                let _ = batch.into_iter().next().map(|w| w.done.send(Err(error)));
            }
            Err(error) => {
                // One bad group must not fail the others: each is retried on its own, so each
                // caller hears about its own rows only.
                tracing::warn!(error = %error, groups = batch.len(), "group commit failed; committing one by one");
                for waiting in batch {
                    let outcome = self.commit_appends(&[&waiting.append]).await;
                    let _ = waiting.done.send(outcome);
                }
            }
        }
    }

    /// Commits `appends` in one transaction.
    async fn commit_appends(&self, appends: &[&Append]) -> StoreResult<()> {
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            for append in appends {
                execute_append!(tx, append);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Commits whatever a cancelled caller left queued (called on close), so no audit row is lost
    /// because the request that wrote it gave up waiting.
    pub(crate) async fn flush_appends(&self) {
        let gate = self.gate();
        let _turn = gate.turn.lock().await;
        self.commit_batch(gate.appends.take()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll};

    use chrono::Utc;

    use super::*;
    use crate::domain::{AuditAction, AuditOutcome, Verdict};
    use crate::store::{AuditEntry, ConnectOptions};

    fn entry(actor: &str) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            actor_id: actor.to_owned(),
            actor_name: actor.to_owned(),
            action: AuditAction::Check,
            workspace: None,
            email: None,
            outcome: AuditOutcome::Checked(Verdict::NotRegistered),
            reason: None,
            reference: None,
            detail: None,
        }
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("appends.db").display());
        let store = Store::connect(&url, &ConnectOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn actors(store: &Store) -> Vec<String> {
        let Store::Sqlite(pool, _) = store else {
            unreachable!()
        };
        sqlx::query_scalar("SELECT actor_id FROM audit_log ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    /// Polls `future` once: far enough to queue its rows and wait for the turn.
    fn poll_once(future: impl Future<Output = StoreResult<()>>) {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(future.as_mut().poll(&mut cx), Poll::Pending));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_still_gets_its_row_committed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let turn = store.write_turn().await;
        poll_once(store.write_audit(&entry("gave-up")));
        drop(turn);
        assert!(actors(&store).await.is_empty());
        store.write_audit(&entry("next")).await.unwrap();
        assert_eq!(actors(&store).await, ["gave-up", "next"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_the_store_commits_what_a_cancelled_caller_left_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let turn = store.write_turn().await;
        poll_once(store.write_audit(&entry("gave-up")));
        drop(turn);
        store.close().await;
        let reopened = sqlite_store(&dir).await;
        assert_eq!(actors(&reopened).await, ["gave-up"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_queued_behind_one_turn_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let turn = store.write_turn().await;
        let writers: Vec<_> = (0..20)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.write_audit(&entry(&format!("w{n}"))).await })
            })
            .collect();
        // Wait until all twenty are queued behind the held turn.
        let Store::Sqlite(_, gate) = &store else {
            unreachable!()
        };
        while gate.appends.waiting.lock().unwrap().len() < 20 {
            tokio::task::yield_now().await;
        }
        drop(turn);
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        // The first writer to get the turn found all twenty queued and committed them at once.
        assert_eq!(actors(&store).await.len(), 20);
        assert_eq!(gate.appends.commits(), 1);
    }
}
