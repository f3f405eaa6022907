//! Every verdict, its offered actions, and the precedence between verdicts.

use invite_bot::diagnosis::{Action, Check, Diagnosis, Outcome, Verdict};
use invite_bot::domain::member::{MemberStatus, Role};

use crate::helpers::both_backends;

const FIXTURE: &str = include_str!("fixtures/verdicts.toml");

use Action::{Escalate, IssueActivationCode, ResendInvite};

/// The outcome codes of the registration, status and delivery findings. (Every member here shares
/// one company domain, so the domain finding fires too; `domain_finding.rs` covers it.)
fn outcomes(diagnosis: &Diagnosis) -> Vec<&'static str> {
    diagnosis
        .findings
        .iter()
        .filter(|f| f.check != Check::Domain)
        .map(|f| f.outcome.as_str())
        .collect()
}

/// (address, verdict, actions) — the whole verdict table of the issue, plus precedence cases.
const TABLE: &[(&str, Verdict, &[Action])] = &[
    ("nobody@corp.example", Verdict::NotRegistered, &[Escalate]),
    ("active@corp.example", Verdict::AlreadyActive, &[]),
    (
        "active-suppressed@corp.example",
        Verdict::AlreadyActive,
        &[],
    ),
    ("gone@corp.example", Verdict::Deactivated, &[Escalate]),
    (
        "gone-bounced@corp.example",
        Verdict::Deactivated,
        &[Escalate],
    ),
    (
        "suppressed@corp.example",
        Verdict::InviteSuppressed,
        &[IssueActivationCode, Escalate],
    ),
    (
        "suppressed-bounced@corp.example",
        Verdict::InviteSuppressed,
        &[IssueActivationCode, Escalate],
    ),
    (
        "bounced@corp.example",
        Verdict::InviteBounced,
        &[IssueActivationCode, Escalate],
    ),
    (
        "bounced-spam@corp.example",
        Verdict::InviteBounced,
        &[IssueActivationCode, Escalate],
    ),
    (
        "spam@corp.example",
        Verdict::InviteMarkedSpam,
        &[IssueActivationCode, Escalate],
    ),
    (
        "spam-expired@corp.example",
        Verdict::InviteMarkedSpam,
        &[IssueActivationCode, Escalate],
    ),
    (
        "never@corp.example",
        Verdict::InviteNeverSent,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
    (
        "expired@corp.example",
        Verdict::InviteExpired,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
    (
        "expired-deferred@corp.example",
        Verdict::InviteExpired,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
    (
        "deferred@corp.example",
        Verdict::InviteDeferred,
        &[IssueActivationCode, Escalate],
    ),
    (
        "soft@corp.example",
        Verdict::InviteDeferred,
        &[IssueActivationCode, Escalate],
    ),
    (
        "delivered-then-deferred@corp.example",
        Verdict::InviteDeferred,
        &[IssueActivationCode, Escalate],
    ),
    (
        "delivered@corp.example",
        Verdict::InviteDelivered,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
    (
        "resent@corp.example",
        Verdict::InviteDelivered,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
    (
        "sent-recently@corp.example",
        Verdict::InviteSent,
        &[IssueActivationCode, Escalate],
    ),
    (
        "sent-a-while-ago@corp.example",
        Verdict::InviteSent,
        &[ResendInvite, IssueActivationCode, Escalate],
    ),
];

both_backends! {
    async fn every_verdict_and_its_actions(app) {
        app.seed(FIXTURE).await;
        for (email, verdict, actions) in TABLE {
            let diagnosis = app.check(email, "acme").await;
            assert_eq!(diagnosis.verdict, *verdict, "{email}: {:#?}", diagnosis.findings);
            assert_eq!(diagnosis.actions, *actions, "{email}");
            assert_eq!(diagnosis.workspace.as_ref().unwrap().slug.as_str(), "acme");
            assert!(diagnosis.findings.iter().all(|f| !f.detail.is_empty()), "{email}: empty finding");
        }
        // Every verdict of the engine is covered by the table.
        for verdict in Verdict::ALL {
            assert!(TABLE.iter().any(|(_, v, _)| *v == verdict), "{verdict} not covered");
        }
    }

    async fn registered_members_show_tab_and_status(app) {
        app.seed(FIXTURE).await;
        let trainer = app.check("ACTIVE@corp.example", "acme").await;
        let member = trainer.member.as_ref().unwrap();
        assert_eq!(member.role, Role::Trainer);
        assert_eq!(member.status, MemberStatus::Active);
        assert_eq!(outcomes(&trainer), ["found", "active", "data_age"]);
        assert!(trainer.findings[0].detail.contains("Trainers tab"), "{}", trainer.findings[0].detail);

        let learner = app.check("never@corp.example", "acme").await;
        assert!(learner.findings[0].detail.contains("Learners tab"));
        assert_eq!(outcomes(&learner), ["found", "invited", "never_sent", "data_age"]);
    }

    async fn findings_carry_the_evidence(app) {
        app.seed(FIXTURE).await;
        let bounced = app.check("bounced@corp.example", "acme").await;
        assert_eq!(outcomes(&bounced), ["found", "invited", "last_sent", "hard_bounce", "data_age"]);
        assert!(bounced.findings[3].detail.contains("550 5.1.1 User unknown"));

        let suppressed = app.check("suppressed-bounced@corp.example", "acme").await;
        let codes = outcomes(&suppressed);
        for expected in ["suppressed", "hard_bounce", "expired"] {
            assert!(codes.contains(&expected), "{codes:?}");
        }

        let delivered = app.check("delivered@corp.example", "acme").await;
        assert!(outcomes(&delivered).contains(&"delivered"));
        let deferred = app.check("deferred@corp.example", "acme").await;
        assert!(outcomes(&deferred).contains(&"deferred"));
        let soft = app.check("soft@corp.example", "acme").await;
        assert!(outcomes(&soft).contains(&"soft_bounce"));
        let recent = app.check("sent-recently@corp.example", "acme").await;
        let no_outcome = recent.findings.iter().find(|f| f.outcome == Outcome::NoOutcome).unwrap();
        assert!(no_outcome.detail.contains("more before resending"), "{}", no_outcome.detail);
    }

    async fn the_reply_explains_what_delivered_means(app) {
        app.seed(FIXTURE).await;
        let diagnosis = app.check("delivered@corp.example", "acme").await;
        let text = invite_bot::summary::render_text(&diagnosis, app.engine.prompts()).unwrap();
        assert!(text.contains("noreply@example.com"), "{text}");
        assert!(text.contains("does not prove it reached the inbox"), "{text}");
        assert!(text.contains("Gmail"), "{text}");

        let active = app.check("active@corp.example", "acme").await;
        let text = invite_bot::summary::render_text(&active, app.engine.prompts()).unwrap();
        assert!(text.contains("https://app.example.com/login"), "{text}");
    }

    async fn without_a_workspace_every_membership_is_checked(app) {
        app.seed(FIXTURE).await;
        let diagnoses = app.try_check("delivered@corp.example", None).await.unwrap();
        let found: Vec<(&str, Verdict)> = diagnoses
            .iter()
            .map(|d| (d.workspace.as_ref().unwrap().slug.as_str(), d.verdict))
            .collect();
        assert_eq!(found, [("acme", Verdict::InviteDelivered), ("other", Verdict::AlreadyActive)]);

        let nowhere = app.try_check("nobody@corp.example", None).await.unwrap();
        assert_eq!(nowhere.len(), 1);
        assert_eq!(nowhere[0].verdict, Verdict::NotRegistered);
        assert!(nowhere[0].workspace.is_none());
        assert!(nowhere[0].member.is_none());
    }

    async fn not_in_this_workspace_but_in_another(app) {
        app.seed(FIXTURE).await;
        let diagnosis = app.check("delivered@corp.example", "other").await;
        assert_eq!(diagnosis.verdict, Verdict::AlreadyActive);
        let diagnosis = app.check("never@corp.example", "other").await;
        assert_eq!(diagnosis.verdict, Verdict::NotRegistered);
        assert_eq!(outcomes(&diagnosis), ["not_found", "member_elsewhere", "data_age"]);
        assert!(diagnosis.findings[1].detail.contains("acme"));
    }

    async fn resend_wait_comes_from_config(app) with |c: &mut invite_bot::app::config::Config| c.checks.resend_wait_minutes = 60; {
        app.seed(FIXTURE).await;
        let diagnosis = app.check("sent-a-while-ago@corp.example", "acme").await;
        assert_eq!(diagnosis.verdict, Verdict::InviteSent);
        assert_eq!(diagnosis.actions, [IssueActivationCode, Escalate]);
    }
}
