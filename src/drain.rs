//! Graceful drain: once shutdown begins, readiness answers 503 and new interactions are refused,
//! while the ones already taken finish (their follow-ups included) before the process exits.
//!
//! Low in the layers (imports nothing of ours): the HTTP edge reads it for `/readyz`, the Discord
//! endpoint counts its interactions with it, and `serve` begins it and waits on it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Whether the process is draining, and how much work it still has in flight. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// One piece of work in flight; the drain waits for it until it is dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    /// Shutdown has begun: readiness fails and [`Drain::enter`] refuses from now on.
    pub fn begin(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Counts a new piece of work in, or `None` once draining (the caller refuses it).
    pub fn enter(&self) -> Option<InFlight> {
        // Counted before the flag is read: `idle` either sees this work or this sees the flag.
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let held = InFlight(self.inner.clone());
        (!self.is_draining()).then_some(held)
    }

    /// Work in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Completes when nothing is in flight (at once when nothing is). The caller bounds the wait.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_taken_before_the_drain_is_waited_for_and_new_work_refused() {
        let drain = Drain::default();
        let held = drain.enter().expect("taken while not draining");
        drain.begin();
        assert!(drain.is_draining());
        assert!(drain.enter().is_none(), "refused once draining");
        assert_eq!(drain.in_flight(), 1);
        let waiting = tokio::spawn({
            let drain = drain.clone();
            async move { drain.idle().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "still waiting for the work in flight"
        );
        drop(held);
        tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
            .await
            .expect("idle once the work is done")
            .unwrap();
    }
}
