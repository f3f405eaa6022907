//! Audit rows and button records: written in groups on SQLite, one by one on PostgreSQL. Either
//! way every caller's rows are committed before it returns, and one bad group fails only its caller.

use chrono::Utc;
use invite_bot::diagnosis::Verdict;
use invite_bot::domain::{AuditAction, AuditOutcome, ButtonAction};
use invite_bot::store::{AuditEntry, ButtonRecord, Store};

use crate::helpers::{both_backends, random_suffix};

fn audit_entry(n: usize) -> AuditEntry {
    AuditEntry {
        at: Utc::now(),
        actor_id: format!("actor-{n}"),
        actor_name: "tester".into(),
        action: AuditAction::Check,
        workspace: Some("acme".into()),
        email: Some(format!("user{n}@example.com")),
        outcome: AuditOutcome::Checked(Verdict::InviteDelivered),
        reason: None,
        reference: None,
        detail: None,
    }
}

fn button(reference: &str) -> ButtonRecord {
    ButtonRecord {
        reference: reference.to_owned(),
        action: ButtonAction::Check,
        email: "someone@example.com".into(),
        workspace: None,
        member_id: None,
        offered_to: "actor".into(),
        offered_at: Utc::now(),
        used_at: None,
        used_by: None,
        outcome: None,
        message: None,
    }
}

/// Runs `writes` at once, each in its own task, and returns their results in order.
async fn all_at_once<F>(store: &Store, writes: usize, write: F) -> Vec<Result<(), String>>
where
    F: Fn(Store, usize) -> tokio::task::JoinHandle<Result<(), String>>,
{
    let handles: Vec<_> = (0..writes).map(|n| write(store.clone(), n)).collect();
    let mut results = Vec::with_capacity(writes);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

both_backends! {
    async fn a_burst_of_writers_all_commit(app) {
        let store = app.engine.store().clone();
        let (audit_before, buttons_before) = (app.count("audit_log").await, app.count("chat_buttons").await);
        let suffix = random_suffix();
        let results = all_at_once(&store, 120, |store, n| {
            let suffix = suffix.clone();
            tokio::spawn(async move {
                store.write_audit(&audit_entry(n)).await.map_err(|e| e.to_string())?;
                let buttons = [button(&format!("ib:{suffix}-{n}-a")), button(&format!("ib:{suffix}-{n}-b"))];
                store.insert_buttons(&buttons).await.map_err(|e| e.to_string())
            })
        })
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // Every caller returned, so every row is committed: nothing is left waiting in a queue.
        assert_eq!(app.count("audit_log").await, audit_before + 120);
        assert_eq!(app.count("chat_buttons").await, buttons_before + 240);
        let stored = store.find_button(&format!("ib:{suffix}-77-b")).await.unwrap().unwrap();
        assert_eq!(stored.email, "someone@example.com");
    }

    async fn one_bad_group_fails_only_its_caller(app) {
        let store = app.engine.store().clone();
        let taken = format!("ib:taken-{}", random_suffix());
        store.insert_buttons(&[button(&taken)]).await.unwrap();
        let before = app.count("chat_buttons").await;
        let suffix = random_suffix();
        // Writer 13 reuses a reference: its whole reply (both buttons) is refused, nobody else's.
        let results = all_at_once(&store, 40, |store, n| {
            let (suffix, taken) = (suffix.clone(), taken.clone());
            tokio::spawn(async move {
                let first = if n == 13 { taken } else { format!("ib:{suffix}-{n}") };
                let buttons = [button(&first), button(&format!("ib:{suffix}-{n}-second"))];
                store.insert_buttons(&buttons).await.map_err(|e| e.to_string())
            })
        })
        .await;
        for (n, result) in results.iter().enumerate() {
            assert_eq!(result.is_err(), n == 13, "writer {n}: {result:?}");
        }
        assert_eq!(app.count("chat_buttons").await, before + 39 * 2);
        assert!(store.find_button(&format!("ib:{suffix}-13-second")).await.unwrap().is_none());
    }
}
