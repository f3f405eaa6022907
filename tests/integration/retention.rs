//! Rows anyone can make the bot write (button records, audit rows) are kept only so long.

use chrono::{Duration, Utc};

use crate::helpers::{both_backends, TestApp};

async fn age(app: &TestApp, sql: &str, days: i64) {
    let at = Utc::now() - Duration::days(days);
    match app.engine.store() {
        invite_bot::store::Store::Sqlite(pool, _) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
        invite_bot::store::Store::Postgres(pool, _) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

both_backends! {
    async fn old_buttons_and_audit_rows_are_pruned_and_recent_ones_kept(app) with |c: &mut invite_bot::config::Config| {
        c.retention.button_days = 7;
        c.retention.audit_days = 30;
    }; {
        app.seed(crate::http_app::MEMBERS).await;
        let chat = invite_bot::chat::Chat::new(app.actions.clone(), &app.config);
        let operator = chat.operator();
        for _ in 0..3 {
            chat.invite_check(&operator, "ada@school.example", None).await;
        }
        let (buttons, audit) = (app.count("chat_buttons").await, app.count("audit_log").await);
        assert!(buttons >= 3 && audit >= 3, "{buttons} buttons, {audit} audit rows");
        // Half the rows become old.
        age(&app, "UPDATE chat_buttons SET offered_at = $1 WHERE reference IN (SELECT reference FROM chat_buttons ORDER BY reference LIMIT 2)", 8).await;
        age(&app, "UPDATE audit_log SET at = $1 WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT 2)", 31).await;

        let (pruned_buttons, pruned_audit) = app.actions.prune_old_rows(Utc::now()).await.unwrap();
        assert_eq!((pruned_buttons, pruned_audit), (2, 2));
        assert_eq!(app.count("chat_buttons").await, buttons - 2);
        assert_eq!(app.count("audit_log").await, audit - 2);
        assert_eq!(app.actions.prune_old_rows(Utc::now()).await.unwrap(), (0, 0), "nothing twice");
    }
}
