//! The truth about sends and codes (issue 11, items 2, 3 and 17): an email the mail server accepted
//! keeps a working link and is reported as sent even when recording it failed; a send left by a
//! process that died is taken over within seconds, never one a live sender holds; a refusal says
//! "queued" of what was not sent; two admins issuing a code at once never get a dead code.

use chrono::{DateTime, Duration, Utc};
use invite_bot::actions::{ActionOutcome, RedeemOutcome, RefusalReason};
use invite_bot::config::{Config, GrantConfig};
use invite_bot::diagnosis::Verdict;
use invite_bot::error::EngineError;
use invite_bot::store::{NewResend, ResendStart, Store};
use secrecy::ExposeSecret;

use crate::helpers::{both_backends, TestApp};
use crate::smtp::{closed_smtp_url, SmtpMode};

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "never@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "blocked@learners.example"
role = "learner"
status = "invited"

[[suppression]]
email = "blocked@learners.example"
reason = "spam_complaint"
at = "1 day ago"
"#;

const NEVER: &str = "never@learners.example";

async fn resend(app: &TestApp) -> Result<ActionOutcome, EngineError> {
    app.actions
        .resend_invite(&app.operator(), &app.email(NEVER), &app.slug("acme"), None)
        .await
}

fn refusal(outcome: ActionOutcome) -> invite_bot::actions::Refusal {
    match outcome {
        ActionOutcome::Refused(refusal) => refusal,
        ActionOutcome::Done(done) => panic!("done: {done:?}"),
    }
}

/// Runs `sql` on the test's database (each statement on its own: PostgreSQL prepares one at a
/// time), binding `at` when given.
async fn exec(app: &TestApp, sql: &str, at: Option<DateTime<Utc>>) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match app.engine.store() {
        Store::Sqlite(pool, _) => {
            let mut query = sqlx::query(sql);
            if let Some(at) = at {
                query = query.bind(at);
            }
            query.execute(pool).await.unwrap();
        }
        Store::Postgres(pool, _) => {
            let mut query = sqlx::query(sql);
            if let Some(at) = at {
                query = query.bind(at);
            }
            query.execute(pool).await.unwrap();
        }
    }
}

/// Makes the database refuse to record any email as sent, as a commit that fails after the mail
/// server accepted the email would (a real trigger in the real database, not a mock).
async fn refuse_recording_sends(app: &TestApp) {
    match app.engine.store() {
        Store::Sqlite(..) => exec(
            app,
            "CREATE TRIGGER refuse_sent BEFORE UPDATE OF state ON outbox WHEN NEW.state = 'sent' \
                 BEGIN SELECT RAISE(ABORT, 'database is locked'); END",
            None,
        )
        .await,
        Store::Postgres(..) => {
            exec(
                app,
                "CREATE FUNCTION refuse_sent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.state = 'sent' THEN RAISE EXCEPTION 'database is locked'; END IF; RETURN NEW; END $$",
                None,
            )
            .await;
            exec(
                app,
                "CREATE TRIGGER refuse_sent BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_sent()",
                None,
            )
            .await
        }
    }
}

async fn record_sends_again(app: &TestApp) {
    let sql = match app.engine.store() {
        Store::Sqlite(..) => "DROP TRIGGER refuse_sent",
        Store::Postgres(..) => "DROP TRIGGER refuse_sent ON outbox",
    };
    exec(app, sql, None).await;
}

/// What `resend_invite` commits before it sends: a queued invitation and its pending outbox row.
async fn queue_resend(app: &TestApp, reference: &str) {
    let member = app.check(NEVER, "acme").await.member.unwrap();
    let now = Utc::now();
    let start = app
        .engine
        .store()
        .begin_resend(&NewResend {
            member_id: member.id,
            recipient: NEVER,
            idempotency_key: None,
            actor_id: "operator",
            actor_name: "local operator",
            reference,
            message_id: &format!("{}@invite-bot", reference.to_lowercase()),
            now,
            expires_at: now + Duration::days(7),
            limits: app.actions.settings().resend_limits,
        })
        .await
        .unwrap();
    assert!(matches!(start, ResendStart::Started { .. }), "{start:?}");
}

fn with_two_admins(config: &mut Config) {
    config.permissions.grant = vec![GrantConfig {
        roles: vec!["admins".into()],
        allow: vec![
            invite_bot::domain::Permission::Check,
            invite_bot::domain::Permission::IssueActivationCode,
        ],
        ..Default::default()
    }];
}

both_backends! {
    // Item 2: the commit after the send fails. The person hears that the email went out, the audit
    // says so, and the link in that email works: at once, and after the retry sent another.
    async fn an_accepted_email_whose_recording_failed_is_reported_sent_and_its_link_works(app) {
        app.seed(PEOPLE).await;
        refuse_recording_sends(&app).await;
        let error = resend(&app).await.unwrap_err();
        let message = error.public_message(app.engine.prompts());
        assert!(message.contains("was sent") && message.contains("accepted"), "{message}");
        assert!(message.contains("Recording that in the database failed"), "{message}");
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        let rows = app.audit_rows(NEVER).await;
        assert!(rows.contains(&("resend_invite".into(), "done".into(), Some("recording_failed".into()))), "{rows:?}");

        // The database recovers; the retry (once the sender's lease is over) sends it again.
        record_sends_again(&app).await;
        let later = Utc::now() + Duration::minutes(1);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 1);
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 2);
        assert_ne!(mails[0].token(), mails[1].token());
        assert_eq!(app.verdict(NEVER, "acme").await, Verdict::InviteSent);
        // The first email, the one the server accepted first, still has a working link.
        assert_eq!(app.redeem(NEVER, &mails[0].token()).await, RedeemOutcome::Activated);
    }

    async fn the_link_of_an_unrecorded_email_works_at_once_and_stops_the_retry(app) {
        app.seed(PEOPLE).await;
        refuse_recording_sends(&app).await;
        resend(&app).await.unwrap_err();
        record_sends_again(&app).await;
        let token = app.smtp.received()[0].token();
        // The person clicks before the bot could record anything: the link works...
        assert_eq!(app.redeem(NEVER, &token).await, RedeemOutcome::Activated);
        // ...and that proves the email arrived, so nothing is sent again.
        let later = Utc::now() + Duration::hours(2);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 0);
        assert_eq!(app.smtp.received().len(), 1);
    }

    // Item 2: a process died while sending. A fresh one takes the row over within seconds.
    async fn a_send_left_by_a_process_that_died_is_taken_over_within_seconds(app) {
        app.seed(PEOPLE).await;
        queue_resend(&app, "RSD-DIED01").await;
        // A process claimed it 30 seconds ago and is gone.
        exec(&app, "UPDATE outbox SET state = 'sending', attempts = 1, claimed_at = $1", Some(Utc::now() - Duration::seconds(30))).await;
        let restarted = app.second_instance().await;
        assert_eq!(restarted.send_due_invitations().await.unwrap(), 1);
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        assert_eq!(app.redeem(NEVER, &mails[0].token()).await, RedeemOutcome::Activated);
    }

    async fn a_live_senders_row_is_never_taken(app) {
        app.seed(PEOPLE).await;
        queue_resend(&app, "RSD-ALIVE1").await;
        // Another replica holds it, its lease renewed moments ago.
        let now = Utc::now();
        exec(&app, "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'replica-b', claimed_at = $1", Some(now - Duration::minutes(10))).await;
        exec(&app, "UPDATE outbox SET lease_until = $1", Some(now + Duration::seconds(20))).await;
        let other = app.second_instance().await;
        assert_eq!(other.send_due_invitations().await.unwrap(), 0);
        assert_eq!(app.actions.send_invitations_due_at(now + Duration::seconds(10)).await.unwrap(), 0);
        assert!(app.smtp.received().is_empty());
        // Its renewals stop (the replica died): once the lease lapses, the row is taken over.
        assert_eq!(other.send_invitations_due_at(now + Duration::seconds(21)).await.unwrap(), 1);
        assert_eq!(app.smtp.received().len(), 1);
    }

    // Item 3: after a 451 nothing was sent; the refusal of a second resend says queued, not sent.
    async fn a_resend_after_a_temporary_refusal_is_told_queued_not_sent(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_mode(SmtpMode::Temporary);
        resend(&app).await.unwrap_err();
        assert_eq!(app.verdict(NEVER, "acme").await, Verdict::InviteNeverSent);
        let refused = refusal(resend(&app).await.unwrap());
        assert_eq!(refused.reason, RefusalReason::RateLimited);
        let message = refused.message;
        assert!(!message.contains("already sent"), "{message}");
        assert!(message.contains("No invitation has gone out yet") && message.contains("queued"), "{message}");
        assert!(message.contains("451") && message.contains("the next try is in"), "{message}");
        assert!(app.smtp.received().is_empty());

        // Once it went out, the same refusal says sent.
        app.smtp.set_mode(SmtpMode::Accept);
        assert_eq!(app.actions.send_invitations_due_at(Utc::now() + Duration::hours(2)).await.unwrap(), 1);
        let message = refusal(resend(&app).await.unwrap()).message;
        assert!(message.contains("already sent") && message.contains("by local operator"), "{message}");
    }

    async fn a_resend_with_no_mail_server_is_told_queued_not_sent(app) {
        app.seed(PEOPLE).await;
        let down = app.with_smtp(&closed_smtp_url()).await;
        let (actor, email, acme) = (app.operator(), app.email(NEVER), app.slug("acme"));
        down.resend_invite(&actor, &email, &acme, None).await.unwrap_err();
        let message = refusal(down.resend_invite(&actor, &email, &acme, None).await.unwrap()).message;
        assert!(!message.contains("already sent"), "{message}");
        assert!(message.contains("No invitation has gone out yet") && message.contains("queued"), "{message}");
    }

    async fn a_resend_after_a_crash_mid_send_is_told_queued_not_sent(app) {
        app.seed(PEOPLE).await;
        queue_resend(&app, "RSD-CRASH2").await;
        exec(&app, "UPDATE outbox SET state = 'sending', attempts = 1, claimed_at = $1", Some(Utc::now() - Duration::seconds(30))).await;
        let message = refusal(resend(&app).await.unwrap()).message;
        assert!(!message.contains("already sent"), "{message}");
        assert!(message.contains("No invitation has gone out yet") && message.contains("due now"), "{message}");
        assert!(app.smtp.received().is_empty());
    }

    // Issue 11, what was left: the last resend is still queued (a 451, its retry backing off) and
    // its minimum interval is over. A new resend must not send a second email beside it (and the
    // queued one, once it goes out, would void the new one's link): it is told the queued one's
    // truth, and only the queued email goes out.
    async fn a_resend_while_the_last_one_is_queued_never_sends_two_emails(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_mode(SmtpMode::Temporary);
        resend(&app).await.unwrap_err();
        // An hour on: the interval is over, and the queued email's next try is still ahead.
        exec(&app, "UPDATE action_requests SET created_at = $1", Some(Utc::now() - Duration::hours(1))).await;
        exec(&app, "UPDATE outbox SET next_attempt_at = $1", Some(Utc::now() + Duration::minutes(10))).await;
        app.smtp.set_mode(SmtpMode::Accept);
        let refused = refusal(resend(&app).await.unwrap());
        assert_eq!(refused.reason, RefusalReason::RateLimited);
        let message = refused.message;
        assert!(message.contains("No invitation has gone out yet") && message.contains("queued"), "{message}");
        assert!(message.contains("the next try is in"), "{message}");
        assert!(message.contains("once it has gone out or been given up"), "{message}");
        assert!(app.smtp.received().is_empty());

        // The background retry sends the queued one: one email in all, and its link works.
        assert_eq!(app.actions.send_invitations_due_at(Utc::now() + Duration::hours(2)).await.unwrap(), 1);
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        assert_eq!(app.redeem(NEVER, &mails[0].token()).await, RedeemOutcome::Activated);
    }

    // Item 17: two admins press "Issue activation code" at once, on two instances.
    async fn two_admins_issuing_a_code_at_once_never_get_a_dead_code(app) with with_two_admins; {
        app.seed(PEOPLE).await;
        let other = app.second_instance().await;
        let (ada, bob) = (app.chat_user("ada", &["admins"]), app.chat_user("bob", &["admins"]));
        let (email, acme) = (app.email("blocked@learners.example"), app.slug("acme"));
        let (a, b) = tokio::join!(
            app.actions.issue_activation_code(&ada, &email, &acme, None),
            other.issue_activation_code(&bob, &email, &acme, None),
        );
        let mut codes = Vec::new();
        let mut refusals = Vec::new();
        for outcome in [a.unwrap(), b.unwrap()] {
            match outcome {
                ActionOutcome::Done(done) => codes.push((done.summary, done.activation_code.unwrap().code.expose_secret().to_owned())),
                ActionOutcome::Refused(refusal) => refusals.push(refusal),
            }
        }
        assert_eq!(codes.len(), 1, "one code, not two that void each other: {codes:?} {refusals:?}");
        let refused = &refusals[0];
        assert_eq!(refused.reason, RefusalReason::AlreadyDone);
        // Told who issued it and when, and that it is theirs to hand on.
        assert!(refused.message.contains("an activation code was issued"), "{}", refused.message);
        assert!(refused.message.contains("user ada") || refused.message.contains("user bob"), "{}", refused.message);
        // "just now" within the minute (prompts/time.j2), "N minutes ago" after.
        assert!(refused.message.contains("ago") || refused.message.contains("just now"), "{}", refused.message);
        // The code that was handed out is the live one.
        assert_eq!(app.redeem("blocked@learners.example", &codes[0].1).await, RedeemOutcome::Activated);
    }

    async fn a_code_can_be_issued_again_once_the_last_one_is_not_fresh(app) {
        app.seed(PEOPLE).await;
        let (actor, email, acme) = (app.operator(), app.email("blocked@learners.example"), app.slug("acme"));
        assert!(app.actions.issue_activation_code(&actor, &email, &acme, None).await.unwrap().is_done());
        let refused = refusal(app.actions.issue_activation_code(&actor, &email, &acme, None).await.unwrap());
        assert!(refused.message.contains("by local operator"), "{}", refused.message);
        // A minute later it is replaced as before (the person lost it, it did not arrive...).
        exec(&app, "UPDATE activation_codes SET created_at = $1", Some(Utc::now() - Duration::minutes(2))).await;
        assert!(app.actions.issue_activation_code(&actor, &email, &acme, None).await.unwrap().is_done());
    }
}
