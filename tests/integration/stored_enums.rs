//! The enums stored as text (audit rows, button records, action requests) read back as written,
//! under their own names, on both backends.

use chrono::Utc;
use invite_bot::domain::{AuditAction, AuditOutcome, AuditReason, ButtonAction};
use invite_bot::store::{AuditEntry, AuditFilter, ButtonRecord, RequestState, Store};

use crate::helpers::{both_backends, random_suffix};

const ONE_MEMBER: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "never@learners.example"
role = "learner"
status = "invited"
"#;

/// `SELECT <sql>` as text, whichever the backend: what is really in the column.
async fn texts(store: &Store, sql: &str) -> Vec<(String, Option<String>)> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {sql}"));
    match store {
        Store::Sqlite(pool, _) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        Store::Postgres(pool, _) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

both_backends! {
    async fn every_audit_and_button_enum_reads_back_as_written(app) {
        let store = app.engine.store().clone();
        let email = format!("enums-{}@example.com", random_suffix());
        let outcomes: Vec<AuditOutcome> = AuditOutcome::all().collect();
        let rows = outcomes.len().max(AuditReason::ALL.len()).max(AuditAction::ALL.len());
        // Every action, outcome and reason at least once, and one row without a reason.
        let written: Vec<(AuditAction, AuditOutcome, Option<AuditReason>)> = (0..rows)
            .map(|n| {
                let reason = (n + 1 < rows).then(|| AuditReason::ALL[n % AuditReason::ALL.len()]);
                (AuditAction::ALL[n % AuditAction::ALL.len()], outcomes[n % outcomes.len()], reason)
            })
            .collect();
        for (action, outcome, reason) in &written {
            let entry = AuditEntry {
                at: Utc::now(),
                actor_id: "tester".into(),
                actor_name: "tester".into(),
                action: *action,
                workspace: None,
                email: Some(email.clone()),
                outcome: *outcome,
                reason: *reason,
                reference: None,
                detail: None,
            };
            store.write_audit(&entry).await.unwrap();
        }
        let filter = AuditFilter { email_key: Some(email.clone()), limit: 1000, ..Default::default() };
        let read: Vec<_> = store
            .read_audit(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.outcome, e.reason))
            .collect();
        assert_eq!(read, written);
        let stored = texts(&store, &format!(
            "action || ' ' || outcome, reason FROM audit_log WHERE email_key = '{email}' ORDER BY id"
        ))
        .await;
        let names: Vec<(String, Option<String>)> = written
            .iter()
            .map(|(a, o, r)| (format!("{} {}", a.as_str(), o.as_str()), r.map(|r| r.as_str().to_owned())))
            .collect();
        assert_eq!(stored, names, "stored under their own names");

        let suffix = random_suffix();
        for action in ButtonAction::ALL {
            let reference = format!("{suffix}-{}", action.as_str());
            let record = ButtonRecord {
                reference: reference.clone(),
                action,
                email: "someone@example.com".into(),
                workspace: Some("acme".into()),
                member_id: None,
                offered_to: "tester".into(),
                offered_at: Utc::now(),
                used_at: None,
                used_by: None,
                outcome: None,
                message: None,
            };
            store.insert_buttons(&[record]).await.unwrap();
            assert_eq!(store.find_button(&reference).await.unwrap().unwrap().action, action);
            let stored = texts(&store, &format!(
                "action, outcome FROM chat_buttons WHERE reference = '{reference}'"
            ))
            .await;
            assert_eq!(stored, [(action.as_str().to_owned(), None)]);
        }
    }

    async fn an_action_request_reads_back_with_its_state(app) {
        app.seed(ONE_MEMBER).await;
        let (email, acme) = (app.email("never@learners.example"), app.slug("acme"));
        let key = format!("press-{}", random_suffix());
        let outcome = app.actions.resend_invite(&app.operator(), &email, &acme, Some(&key)).await.unwrap();
        assert!(outcome.is_done(), "{outcome:?}");
        let store = app.engine.store();
        let prior = store.prior_action(&key).await.unwrap().unwrap();
        assert_eq!(prior.state, RequestState::Done);
        let stored = texts(store, "action, state FROM action_requests").await;
        assert_eq!(stored, [("resend_invite".to_owned(), Some("done".to_owned()))]);
    }
}
