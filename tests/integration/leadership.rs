//! Background work is led by one process at a time on a shared PostgreSQL database, and taken
//! over when the leader goes; on SQLite the one process always leads.

use std::time::Duration;

use invite_bot::store::Store;

use crate::helpers::both_backends;

/// Tries to lead until it works or `within` passes.
async fn lead_within(store: &Store, within: Duration) -> Option<invite_bot::store::Lead> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(lead) = store.try_lead("background").await.unwrap() {
            return Some(lead);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn one_process_leads_and_another_takes_over_when_it_goes(app) {
        let first = app.engine.store().clone();
        let second_actions = app.second_instance().await;
        let second = second_actions.engine().store();
        let mut lead = first.try_lead("background").await.unwrap().expect("the first process leads");
        assert!(lead.still_held().await);
        let postgres = matches!(first, Store::Postgres(..));
        if postgres {
            assert!(second.try_lead("background").await.unwrap().is_none(), "one leader at a time");
            // Other work is not this lead's.
            assert!(second.try_lead("other-job").await.unwrap().is_some());
        }

        // Given up: the other process takes over at its next try.
        lead.release().await;
        let second_lead = lead_within(second, Duration::from_secs(5)).await.expect("taken over");
        if postgres {
            assert!(first.try_lead("background").await.unwrap().is_none());
        }

        // A leader that vanishes without a word (its session dropped, as when its process is
        // killed) loses the lead as soon as the server sees the session end.
        drop(second_lead);
        let taken = lead_within(&first, Duration::from_secs(10)).await;
        assert!(taken.is_some(), "a dead leader's lead is taken over");
    }
}
