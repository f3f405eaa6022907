//! Actions: resend (real SMTP), activation codes, escalation (real HTTP), authorization, limits, audit.

use std::sync::Arc;

use invite_bot::actions::{ActionOutcome, RedeemOutcome, RefusalReason};
use invite_bot::config::{Config, GrantConfig};
use invite_bot::diagnosis::Verdict;
use invite_bot::error::{ActionFailure, EngineError};
use secrecy::ExposeSecret;

use crate::helpers::{both_backends, TestApp};
use crate::smtp::{closed_smtp_url, SmtpMode};

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[workspace]]
slug = "beta"
name = "Beta"

[[member]]
workspace = "acme"
email = "never@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "second@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "beta"
email = "beta@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "active@learners.example"
role = "trainer"
status = "active"

[[member]]
workspace = "acme"
email = "gone@learners.example"
role = "learner"
status = "deactivated"

[[member]]
workspace = "acme"
email = "blocked@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "bounced@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "recent@learners.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "bounced@learners.example"
sent_at = "1 day ago"

[[invitation]]
workspace = "acme"
email = "recent@learners.example"
sent_at = "2 minutes ago"

[[delivery_event]]
email = "bounced@learners.example"
event = "bounced"
bounce = "hard"
at = "1 day ago"

[[suppression]]
email = "blocked@learners.example"
reason = "spam_complaint"
at = "1 day ago"
"#;

fn done(outcome: ActionOutcome) -> invite_bot::actions::ActionDone {
    match outcome {
        ActionOutcome::Done(done) => done,
        ActionOutcome::Refused(refusal) => panic!("refused: {refusal:?}"),
    }
}

fn refused(outcome: ActionOutcome) -> invite_bot::actions::Refusal {
    match outcome {
        ActionOutcome::Refused(refusal) => refusal,
        ActionOutcome::Done(done) => panic!("done: {done:?}"),
    }
}

async fn resend(app: &TestApp, email: &str) -> Result<ActionOutcome, EngineError> {
    app.actions
        .resend_invite(&app.operator(), &app.email(email), &app.slug("acme"), None)
        .await
}

async fn issue_code(app: &TestApp, email: &str) -> String {
    let outcome = app
        .actions
        .issue_activation_code(&app.operator(), &app.email(email), &app.slug("acme"), None)
        .await
        .unwrap();
    done(outcome)
        .activation_code
        .unwrap()
        .code
        .expose_secret()
        .to_owned()
}

fn with_admin_grants(config: &mut Config) {
    config.permissions.grant = vec![
        GrantConfig {
            roles: vec!["agents".into()],
            allow: vec![invite_bot::domain::Permission::Check],
            ..Default::default()
        },
        GrantConfig {
            roles: vec!["admins".into()],
            allow: vec![
                invite_bot::domain::Permission::ResendInvite,
                invite_bot::domain::Permission::IssueActivationCode,
            ],
            workspaces: Some(vec![
                invite_bot::domain::WorkspaceSlug::parse("acme").unwrap()
            ]),
            ..Default::default()
        },
    ];
}

both_backends! {
    async fn a_resend_sends_one_email_whose_link_activates(app) {
        app.seed(PEOPLE).await;
        let outcome = done(resend(&app, "never@learners.example").await.unwrap());
        assert!(outcome.reference.starts_with("RSD-"));
        assert!(outcome.summary.contains("the mail server accepted it"), "{}", outcome.summary);

        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.to, ["never@learners.example"]);
        assert_eq!(mail.from, "noreply@example.com");
        assert_eq!(mail.header("Subject").as_deref(), Some("You are invited to Acme Academy"));
        let text = mail.text();
        assert!(text.contains("https://app.example.com/activate?token="), "{text}");
        let token = mail.token();
        assert!(token.len() >= 32, "at least 128 bits: {token}");

        // The check now sees the invitation; the token is stored only as its hash.
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteSent);
        let stored = app.dump("invitations").await;
        assert!(!stored.contains(&token), "the token is stored in clear");

        assert_eq!(app.redeem("never@learners.example", &token).await, RedeemOutcome::Activated);
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::AlreadyActive);
        assert_eq!(app.redeem("never@learners.example", &token).await, RedeemOutcome::Rejected, "single use");
    }

    async fn a_new_invitation_revokes_the_old_link(app) with |c: &mut Config| c.actions.resend_min_interval_minutes = 0; {
        app.seed(PEOPLE).await;
        done(resend(&app, "never@learners.example").await.unwrap());
        // The first invitation is younger than the verdict's wait; pretend it went out long ago.
        sqlx_exec(&app, "UPDATE invitations SET sent_at = '2020-01-01T00:00:00+00:00'").await;
        done(resend(&app, "never@learners.example").await.unwrap());
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 2);
        assert_eq!(app.redeem("never@learners.example", &mails[0].token()).await, RedeemOutcome::Rejected);
        assert_eq!(app.redeem("never@learners.example", &mails[1].token()).await, RedeemOutcome::Activated);
    }

    async fn fifty_presses_of_one_button_send_one_email(app) {
        app.seed(PEOPLE).await;
        let engine = Arc::new(app.actions.clone());
        let actor = app.operator();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (engine, actor) = (engine.clone(), actor.clone());
            let (email, slug) = (app.email("never@learners.example"), app.slug("acme"));
            tasks.push(tokio::spawn(async move {
                engine.resend_invite(&actor, &email, &slug, Some("button-7")).await.unwrap()
            }));
        }
        let mut sent = 0;
        for task in tasks {
            match task.await.unwrap() {
                ActionOutcome::Done(_) => sent += 1,
                ActionOutcome::Refused(refusal) => assert!(
                    matches!(refusal.reason, RefusalReason::AlreadyDone | RefusalReason::RateLimited | RefusalReason::NotOffered),
                    "{refusal:?}"
                ),
            }
        }
        assert_eq!(sent, 1);
        assert_eq!(app.smtp.received().len(), 1);
        // The second press is told what happened.
        let again = refused(app.actions.resend_invite(&app.operator(), &app.email("never@learners.example"), &app.slug("acme"), Some("button-7")).await.unwrap());
        assert_eq!(again.reason, RefusalReason::AlreadyDone);
        assert!(again.message.contains("by local operator"), "{}", again.message);
    }

    async fn two_instances_send_one_email(app) {
        app.seed(PEOPLE).await;
        let other = app.second_instance().await;
        let (a, b) = (app.actions.clone(), other.clone());
        let actor = app.operator();
        let (email, slug) = (app.email("never@learners.example"), app.slug("acme"));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let engine = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (actor, email, slug) = (actor.clone(), email.clone(), slug.clone());
            tasks.push(tokio::spawn(async move { engine.resend_invite(&actor, &email, &slug, None).await.unwrap() }));
        }
        let mut sent = 0;
        for task in tasks {
            if task.await.unwrap().is_done() {
                sent += 1;
            }
        }
        assert_eq!(sent, 1);
        assert_eq!(app.smtp.received().len(), 1);
        let later = refused(resend(&app, "never@learners.example").await.unwrap());
        assert_eq!(later.reason, RefusalReason::RateLimited);
        assert!(later.message.contains("already sent") && later.message.contains("by local operator"), "{}", later.message);
    }

    async fn resends_the_verdict_does_not_offer_are_refused(app) {
        app.seed(PEOPLE).await;
        for email in ["active@learners.example", "gone@learners.example", "blocked@learners.example", "bounced@learners.example", "recent@learners.example", "nobody@learners.example"] {
            let refusal = refused(resend(&app, email).await.unwrap());
            assert_eq!(refusal.reason, RefusalReason::NotOffered, "{email}: {}", refusal.message);
            assert_eq!(app.audit_rows(email).await, [("resend_invite".into(), "refused".into(), Some("not_offered".into()))], "{email}");
        }
        let recent = refused(resend(&app, "recent@learners.example").await.unwrap());
        assert!(recent.message.contains("wait"), "{}", recent.message);
        assert!(app.smtp.received().is_empty());
    }

    async fn authorization_is_checked_on_every_action(app) with with_admin_grants; {
        app.seed(PEOPLE).await;
        let agent = app.chat_user("100", &["agents"]);
        let admin = app.chat_user("200", &["admins", "agents"]);
        let stranger = app.chat_user("300", &[]);
        let (email, acme, beta) = (app.email("never@learners.example"), app.slug("acme"), app.slug("beta"));

        let refusal = refused(app.actions.resend_invite(&agent, &email, &acme, Some("b1")).await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::Forbidden);
        assert!(refusal.message.contains("resend_invite"), "{}", refusal.message);
        let refusal = refused(app.actions.issue_activation_code(&agent, &email, &acme, None).await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::Forbidden);
        let refusal = refused(app.actions.escalate(&stranger, &email, &acme, None).await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::Forbidden);
        // A grant scoped to acme does not reach beta.
        let beta_member = app.email("beta@learners.example");
        let refusal = refused(app.actions.resend_invite(&admin, &beta_member, &beta, None).await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::Forbidden);
        assert!(app.smtp.received().is_empty(), "a refusal sends nothing");

        // The same button pressed by an admin works: who showed the button grants nothing either way.
        done(app.actions.resend_invite(&admin, &email, &acme, Some("b1")).await.unwrap());
        assert_eq!(app.smtp.received().len(), 1);
        // The agent may escalate (anyone who may check).
        done(app.actions.escalate(&agent, &email, &acme, None).await.unwrap());

        let rows = app.audit_rows("never@learners.example").await;
        assert_eq!(rows.iter().filter(|r| r.2.as_deref() == Some("forbidden")).count(), 3, "{rows:?}");

        let error = app.actions.check_as(&stranger, &email, Some(&acme)).await.unwrap_err();
        assert!(error.public_message(app.engine.prompts()).contains("`check` permission"), "{}", error.public_message(app.engine.prompts()));
    }

    async fn resend_limits_hold_per_member_and_per_admin(app) with |c: &mut Config| {
        c.actions.resend_min_interval_minutes = 0;
        c.actions.resends_per_member_per_day = 2;
        c.actions.resends_per_actor_per_hour = 3;
        c.checks.resend_wait_minutes = 0;
    }; {
        app.seed(PEOPLE).await;
        done(resend(&app, "never@learners.example").await.unwrap());
        done(resend(&app, "never@learners.example").await.unwrap());
        let refusal = refused(resend(&app, "never@learners.example").await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::RateLimited);
        assert!(refusal.message.contains("already got 2 invitations") && refusal.message.contains("allowed in"), "{}", refusal.message);
        done(resend(&app, "second@learners.example").await.unwrap());
        let refusal = refused(resend(&app, "second@learners.example").await.unwrap());
        assert!(refusal.message.contains("You have sent 3 invitations in the last hour"), "{}", refusal.message);
        assert_eq!(app.smtp.received().len(), 3);
    }

    async fn one_resend_per_member_per_interval(app) with |c: &mut Config| c.checks.resend_wait_minutes = 0; {
        app.seed(PEOPLE).await;
        done(resend(&app, "never@learners.example").await.unwrap());
        let refusal = refused(resend(&app, "never@learners.example").await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::RateLimited);
        assert!(refusal.message.contains("next resend is allowed in 15 minutes"), "{}", refusal.message);
    }

    async fn actions_are_counted_in_the_metrics(app) {
        use invite_bot::metrics::counter_value;
        app.seed(PEOPLE).await;
        let count = || (
            counter_value("invite_bot_actions_total", &[("kind", "resend_invite"), ("outcome", "done")]),
            counter_value("invite_bot_refusals_total", &[("reason", "not_offered")]),
            counter_value("invite_bot_smtp_sends_total", &[("result", "sent")]),
        );
        let before = count();
        done(resend(&app, "never@learners.example").await.unwrap());
        refused(resend(&app, "active@learners.example").await.unwrap());
        let after = count();
        // Other tests run in the same process: the counters only ever grow by at least ours.
        assert!(after.0 > before.0 && after.1 > before.1 && after.2 > before.2, "{before:?} -> {after:?}");
        assert!(invite_bot::metrics::render().contains("invite_bot_actions_total{kind=\"resend_invite\",outcome=\"done\"}"));
    }

    async fn a_temporary_refusal_is_retried(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_mode(SmtpMode::TemporaryOnce);
        done(resend(&app, "never@learners.example").await.unwrap());
        assert_eq!(app.smtp.received().len(), 1);
        let rows = app.audit_rows("never@learners.example").await;
        assert!(rows.contains(&("resend_invite".into(), "deferred".into(), Some("smtp_temporary".into()))), "{rows:?}");
        assert!(rows.contains(&("resend_invite".into(), "done".into(), None)), "{rows:?}");
    }

    async fn a_server_that_keeps_refusing_leaves_the_email_queued(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_mode(SmtpMode::Temporary);
        let error = resend(&app, "never@learners.example").await.unwrap_err();
        assert!(matches!(error, EngineError::Action(ActionFailure::MailQueued { .. })), "{error:?}");
        assert!(error.public_message(app.engine.prompts()).contains("has not been sent yet"), "{}", error.public_message(app.engine.prompts()));
        // Never shown as sent.
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteNeverSent);
        assert!(app.smtp.received().is_empty());
        // The server recovers; the background retry sends it, once.
        app.smtp.set_mode(SmtpMode::Accept);
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 1);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 0);
        assert_eq!(app.smtp.received().len(), 1);
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteSent);
    }

    async fn a_permanent_refusal_is_reported_and_changes_nothing(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_mode(SmtpMode::Permanent);
        let error = resend(&app, "never@learners.example").await.unwrap_err();
        assert!(matches!(error, EngineError::Action(ActionFailure::MailRejected { .. })), "{error:?}");
        let message = error.public_message(app.engine.prompts());
        assert!(message.contains("550") && message.contains("nothing was sent"), "{message}");
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteNeverSent);
        // A failed attempt does not use up the rate limit.
        app.smtp.set_mode(SmtpMode::Accept);
        done(resend(&app, "never@learners.example").await.unwrap());
        assert_eq!(app.smtp.received().len(), 1);
    }

    async fn a_button_pressed_again_after_a_refused_send_tries_again(app) {
        app.seed(PEOPLE).await;
        let (email, acme) = (app.email("never@learners.example"), app.slug("acme"));
        app.smtp.set_mode(SmtpMode::Permanent);
        let error = app.actions.resend_invite(&app.operator(), &email, &acme, Some("button-9")).await.unwrap_err();
        assert!(matches!(error, EngineError::Action(ActionFailure::MailRejected { .. })));
        // Nothing was sent, so the same button is not "already done".
        app.smtp.set_mode(SmtpMode::Accept);
        done(app.actions.resend_invite(&app.operator(), &email, &acme, Some("button-9")).await.unwrap());
        assert_eq!(app.smtp.received().len(), 1);
    }

    async fn a_mail_server_that_is_down_is_reported(app) {
        app.seed(PEOPLE).await;
        let engine = app.with_smtp(&closed_smtp_url()).await;
        let error = engine
            .resend_invite(&app.operator(), &app.email("never@learners.example"), &app.slug("acme"), None)
            .await
            .unwrap_err();
        assert!(matches!(error, EngineError::Action(ActionFailure::MailQueued { .. })), "{error:?}");
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteNeverSent);
        // Back up: the queued email goes out through a working server, once.
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 1);
        assert_eq!(app.smtp.received().len(), 1);
    }

    async fn a_crash_between_commit_and_send_is_recovered_once(app) {
        app.seed(PEOPLE).await;
        let member = app.check("never@learners.example", "acme").await.member.unwrap();
        // What resend_invite commits before it sends; the "crash" is simply not sending.
        let now = chrono::Utc::now();
        let start = app.engine.store().begin_resend(&invite_bot::store::NewResend {
            member_id: member.id,
            recipient: "never@learners.example",
            idempotency_key: Some("crashed-press"),
            actor_id: "operator",
            actor_name: "local operator",
            reference: "RSD-CRASH1",
            message_id: "<crash@invite-bot>",
            now,
            expires_at: now + chrono::Duration::days(7),
            limits: app.actions.settings().resend_limits,
        }).await.unwrap();
        assert!(matches!(start, invite_bot::store::ResendStart::Started { .. }));
        assert!(app.smtp.received().is_empty());
        // Start-up of a new instance sends what was left, exactly once.
        let restarted = app.second_instance().await;
        assert_eq!(restarted.send_due_invitations().await.unwrap(), 1);
        assert_eq!(restarted.send_due_invitations().await.unwrap(), 0);
        assert_eq!(app.actions.send_due_invitations().await.unwrap(), 0);
        let mails = app.smtp.received();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].header("Message-ID").as_deref(), Some("<crash@invite-bot>"));
        assert_eq!(app.redeem("never@learners.example", &mails[0].token()).await, RedeemOutcome::Activated);
    }

    async fn activation_codes_are_one_time_and_hashed(app) {
        app.seed(PEOPLE).await;
        let outcome = done(app.actions.issue_activation_code(&app.operator(), &app.email("bounced@learners.example"), &app.slug("acme"), None).await.unwrap());
        let code = outcome.activation_code.unwrap();
        let shown = code.code.expose_secret().to_owned();
        assert_eq!(shown.len(), 12);
        assert_eq!(shown.matches('-').count(), 2);
        assert!(!shown.contains(['0', 'O', '1', 'I']));
        assert!(code.expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::hours(23));
        assert!(outcome.summary.contains("Do not open the activation link yourself"), "{}", outcome.summary);
        assert!(!outcome.summary.contains(&shown), "the summary may be shown more widely than the code");
        assert!(!outcome.summary.contains("http"), "no clickable activation link in chat");

        let stored = app.dump("activation_codes").await;
        assert!(!stored.contains(&shown) && !stored.contains(&shown.replace('-', "")), "code stored in clear");
        assert!(stored.contains("$argon2id$"), "salted argon2 hash expected");
        let audit_rows = app.dump("audit_log").await;
        assert!(!audit_rows.contains(&shown.replace('-', "")) && !audit_rows.contains(&shown));

        assert_eq!(app.redeem("bounced@learners.example", &shown.to_lowercase()).await, RedeemOutcome::Activated);
        assert_eq!(app.verdict("bounced@learners.example", "acme").await, Verdict::AlreadyActive);
        assert_eq!(app.redeem("bounced@learners.example", &shown).await, RedeemOutcome::Rejected, "used");
    }

    async fn a_new_code_voids_the_old_one(app) {
        app.seed(PEOPLE).await;
        let first = issue_code(&app, "blocked@learners.example").await;
        // A code this fresh is not replaced (see sends.rs); this one was issued a while ago.
        sqlx_exec(&app, FIRST_CODE_IS_OLD).await;
        let second = issue_code(&app, "blocked@learners.example").await;
        assert_ne!(first, second);
        assert_eq!(app.redeem("blocked@learners.example", &first).await, RedeemOutcome::Rejected);
        assert_eq!(app.redeem("blocked@learners.example", &second).await, RedeemOutcome::Activated);
    }

    async fn five_wrong_attempts_void_a_code_but_not_within_one_hour(app) {
        app.seed(PEOPLE).await;
        let code = issue_code(&app, "blocked@learners.example").await;
        let wrong = if code.starts_with('A') { "BBBB-BBBB-BB" } else { "AAAA-AAAA-AA" };
        for _ in 0..4 {
            assert_eq!(app.redeem("blocked@learners.example", wrong).await, RedeemOutcome::Rejected);
        }
        // The hour's attempts are used up: the next is refused before it is counted...
        assert!(matches!(app.redeem("blocked@learners.example", wrong).await, RedeemOutcome::Throttled { .. }));
        assert_eq!(app.count("activation_codes WHERE voided_at IS NOT NULL").await, 0, "not voided");
        // ...and later (another process: a fresh hour) the fifth wrong guess voids the code.
        let later = app.second_instance().await;
        let attempt = |secret: &str| {
            let (later, secret) = (later.clone(), secret.to_owned());
            let (email, slug, actor) = (app.email("blocked@learners.example"), app.slug("acme"), app.operator());
            async move { later.redeem(&actor, &email, &slug, &secret).await.unwrap() }
        };
        assert_eq!(attempt(wrong).await, RedeemOutcome::Rejected);
        assert_eq!(attempt(&code).await, RedeemOutcome::Rejected, "void after 5 wrong attempts");
        assert_eq!(app.verdict("blocked@learners.example", "acme").await, Verdict::InviteSuppressed);
    }

    async fn concurrent_guesses_never_count_more_than_the_throttle_allows(app) {
        app.seed(PEOPLE).await;
        let code = issue_code(&app, "blocked@learners.example").await;
        let wrong = if code.starts_with('A') { "BBBB-BBBB-BB" } else { "AAAA-AAAA-AA" };
        let mut guesses = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let (actions, actor) = (app.actions.clone(), app.operator());
            let (email, slug) = (app.email("blocked@learners.example"), app.slug("acme"));
            guesses.spawn(async move { actions.redeem(&actor, &email, &slug, wrong).await.unwrap() });
        }
        let (mut rejected, mut throttled) = (0, 0);
        while let Some(outcome) = guesses.join_next().await {
            match outcome.unwrap() {
                RedeemOutcome::Rejected => rejected += 1,
                RedeemOutcome::Throttled { retry_after } => {
                    assert!(retry_after.as_secs() >= 1);
                    throttled += 1;
                }
                RedeemOutcome::Activated => panic!("a wrong code activated"),
            }
        }
        assert_eq!((rejected, throttled), (4, 26));
        // The member's code survived the attack: tomorrow (a fresh process) it still works.
        let later = app.second_instance().await;
        let outcome = later
            .redeem(&app.operator(), &app.email("blocked@learners.example"), &app.slug("acme"), &code)
            .await
            .unwrap();
        assert_eq!(outcome, RedeemOutcome::Activated);
    }

    async fn an_expired_code_is_rejected(app) with |c: &mut Config| c.actions.activation_code_ttl_hours = 0; {
        app.seed(PEOPLE).await;
        let code = issue_code(&app, "blocked@learners.example").await;
        assert_eq!(app.redeem("blocked@learners.example", &code).await, RedeemOutcome::Rejected);
    }

    async fn every_failed_redemption_looks_the_same(app) {
        app.seed(PEOPLE).await;
        let code = issue_code(&app, "blocked@learners.example").await;
        // Unknown address, wrong address, garbage: the same answer, and the code is still good.
        assert_eq!(app.redeem("nobody@learners.example", &code).await, RedeemOutcome::Rejected);
        assert_eq!(app.redeem("never@learners.example", &code).await, RedeemOutcome::Rejected);
        assert_eq!(app.redeem("blocked@learners.example", "not a code").await, RedeemOutcome::Rejected);
        assert_eq!(app.redeem("blocked@learners.example", &code).await, RedeemOutcome::Activated);
        let reasons: Vec<Option<String>> = app.audit_rows("nobody@learners.example").await.into_iter().map(|r| r.2).collect();
        assert_eq!(reasons, [Some("unknown_member".to_owned())], "operators still see why");
    }

    async fn two_simultaneous_redemptions_activate_once(app) {
        app.seed(PEOPLE).await;
        let code = issue_code(&app, "blocked@learners.example").await;
        let other = app.second_instance().await;
        let (email, slug, actor) = (app.email("blocked@learners.example"), app.slug("acme"), app.operator());
        let (a, b) = tokio::join!(
            app.actions.redeem(&actor, &email, &slug, &code),
            other.redeem(&actor, &email, &slug, &code)
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        assert_eq!(outcomes.iter().filter(|o| **o == RedeemOutcome::Activated).count(), 1, "{outcomes:?}");
    }

    async fn activation_codes_are_rate_limited_per_member(app) with |c: &mut Config| c.actions.activation_codes_per_member_per_day = 2; {
        app.seed(PEOPLE).await;
        issue_code(&app, "blocked@learners.example").await;
        sqlx_exec(&app, FIRST_CODE_IS_OLD).await;
        issue_code(&app, "blocked@learners.example").await;
        sqlx_exec(&app, FIRST_CODE_IS_OLD).await;
        let refusal = refused(app.actions.issue_activation_code(&app.operator(), &app.email("blocked@learners.example"), &app.slug("acme"), None).await.unwrap());
        assert_eq!(refusal.reason, RefusalReason::RateLimited);
        assert!(refusal.message.contains("already got 2 activation codes"), "{}", refusal.message);
    }

    async fn codes_are_not_offered_where_the_verdict_has_none(app) {
        app.seed(PEOPLE).await;
        for email in ["active@learners.example", "gone@learners.example", "nobody@learners.example"] {
            let refusal = refused(app.actions.issue_activation_code(&app.operator(), &app.email(email), &app.slug("acme"), None).await.unwrap());
            assert_eq!(refusal.reason, RefusalReason::NotOffered, "{email}");
        }
    }
}

/// Dates every activation code back past the window in which a live code is not replaced.
const FIRST_CODE_IS_OLD: &str =
    "UPDATE activation_codes SET created_at = '2020-01-01T00:00:00+00:00'";

async fn sqlx_exec(app: &TestApp, sql: &'static str) {
    match app.engine.store() {
        invite_bot::store::Store::Sqlite(pool, _) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        invite_bot::store::Store::Postgres(pool, _) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
    }
}
