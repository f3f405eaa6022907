//! Step 3, "check the spam folder" made precise: what happened to the latest invitation email.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{Check, FindingDraft, Outcome, Verdict};
use crate::domain::invitation::{
    BounceKind, DeliveryEvent, DeliveryEventKind, Invitation, Suppression,
};

pub struct DeliveryFacts<'a> {
    pub now: DateTime<Utc>,
    pub invitation: Option<&'a Invitation>,
    /// Events of `invitation`, oldest first.
    pub events: &'a [DeliveryEvent],
    pub suppressions: &'a [Suppression],
    pub resend_wait: Duration,
}

#[derive(Debug)]
pub struct DeliveryAssessment {
    pub verdict: Verdict,
    pub findings: Vec<FindingDraft>,
    /// Set when the latest invitation is too recent to resend: when a resend becomes sensible.
    pub resend_not_before: Option<DateTime<Utc>>,
}

pub fn assess(facts: &DeliveryFacts<'_>) -> DeliveryAssessment {
    let now = facts.now;
    let mut findings = Vec::new();
    let suppressed = !facts.suppressions.is_empty();
    if let Some(latest) = facts.suppressions.first() {
        let reasons: Vec<&str> = facts
            .suppressions
            .iter()
            .map(|s| s.reason.as_str())
            .collect();
        findings.push(FindingDraft::new(
            Check::Delivery,
            Outcome::Suppressed,
            json!({ "reasons": reasons, "since": latest.at.to_rfc3339() }),
        ));
    }

    let Some(invitation) = facts.invitation else {
        findings.push(FindingDraft::new(
            Check::Delivery,
            Outcome::NeverSent,
            json!({}),
        ));
        let verdict = if suppressed {
            Verdict::InviteSuppressed
        } else {
            Verdict::InviteNeverSent
        };
        return DeliveryAssessment {
            verdict,
            findings,
            resend_not_before: None,
        };
    };

    findings.push(FindingDraft::new(
        Check::Delivery,
        Outcome::LastSent,
        json!({
            "sent_at": invitation.sent_at.to_rfc3339(),
            "expires_at": invitation.expires_at.to_rfc3339(),
            "expired": invitation.expires_at <= now,
        }),
    ));

    let event_facts =
        |event: &DeliveryEvent| json!({ "at": event.at.to_rfc3339(), "detail": event.detail });
    let hard_bounce = facts
        .events
        .iter()
        .rev()
        .find(|e| e.kind == DeliveryEventKind::Bounced && e.bounce == Some(BounceKind::Hard));
    let complaint = facts
        .events
        .iter()
        .rev()
        .find(|e| e.kind == DeliveryEventKind::SpamComplaint);
    // The provider's latest word on delivery itself; soft bounces are retried like deferrals.
    let last_outcome = facts.events.iter().rev().find(|e| {
        matches!(
            e.kind,
            DeliveryEventKind::Delivered | DeliveryEventKind::Deferred
        ) || (e.kind == DeliveryEventKind::Bounced && e.bounce == Some(BounceKind::Soft))
    });
    let expired = invitation.expires_at <= now;

    if let Some(event) = hard_bounce {
        findings.push(FindingDraft::new(
            Check::Delivery,
            Outcome::HardBounce,
            event_facts(event),
        ));
    }
    if let Some(event) = complaint {
        findings.push(FindingDraft::new(
            Check::Delivery,
            Outcome::SpamComplaint,
            event_facts(event),
        ));
    }
    match last_outcome {
        Some(event) if hard_bounce.is_none() => {
            let outcome = match event.kind {
                DeliveryEventKind::Delivered => Outcome::Delivered,
                DeliveryEventKind::Deferred => Outcome::Deferred,
                _ => Outcome::SoftBounce,
            };
            findings.push(FindingDraft::new(
                Check::Delivery,
                outcome,
                event_facts(event),
            ));
        }
        None if hard_bounce.is_none() && complaint.is_none() => {
            findings.push(FindingDraft::new(
                Check::Delivery,
                Outcome::NoOutcome,
                json!({ "sent_at": invitation.sent_at.to_rfc3339() }),
            ));
        }
        _ => {}
    }
    if expired {
        findings.push(FindingDraft::new(
            Check::Delivery,
            Outcome::Expired,
            json!({ "expires_at": invitation.expires_at.to_rfc3339() }),
        ));
    }

    let verdict = if suppressed {
        Verdict::InviteSuppressed
    } else if hard_bounce.is_some() {
        Verdict::InviteBounced
    } else if complaint.is_some() {
        Verdict::InviteMarkedSpam
    } else if expired {
        Verdict::InviteExpired
    } else {
        match last_outcome.map(|e| e.kind) {
            Some(DeliveryEventKind::Delivered) => Verdict::InviteDelivered,
            Some(_) => Verdict::InviteDeferred,
            None => Verdict::InviteSent,
        }
    };
    let resend_not_before = (verdict == Verdict::InviteSent)
        .then(|| invitation.sent_at + facts.resend_wait)
        .filter(|allowed| *allowed > now);
    if let Some(allowed) = resend_not_before {
        // Recorded on the no-outcome finding's facts so the reply can say how long to wait.
        if let Some(last) = findings
            .iter_mut()
            .find(|f| f.outcome == Outcome::NoOutcome)
        {
            last.facts["resend_not_before"] = json!(allowed.to_rfc3339());
        }
    }
    DeliveryAssessment {
        verdict,
        findings,
        resend_not_before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invitation::SuppressionReason;

    fn at(minutes_ago: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            - Duration::minutes(minutes_ago)
    }

    fn invitation(sent_minutes_ago: i64, expires_in_minutes: i64) -> Invitation {
        Invitation {
            id: 1,
            member_id: 1,
            sent_at: at(sent_minutes_ago),
            expires_at: at(-expires_in_minutes),
            message_id: None,
        }
    }

    fn event(
        kind: DeliveryEventKind,
        bounce: Option<BounceKind>,
        minutes_ago: i64,
    ) -> DeliveryEvent {
        DeliveryEvent {
            kind,
            bounce,
            at: at(minutes_ago),
            detail: None,
        }
    }

    fn verdict(
        inv: Option<&Invitation>,
        events: &[DeliveryEvent],
        suppressions: &[Suppression],
    ) -> DeliveryAssessment {
        assess(&DeliveryFacts {
            now: at(0),
            invitation: inv,
            events,
            suppressions,
            resend_wait: Duration::minutes(15),
        })
    }

    #[test]
    fn precedence_between_delivery_verdicts() {
        use DeliveryEventKind::*;
        let fresh = invitation(60, 60 * 24);
        let old = invitation(60 * 24 * 10, -60);
        let suppression = [Suppression {
            reason: SuppressionReason::HardBounce,
            at: at(5),
        }];
        let hard = event(Bounced, Some(BounceKind::Hard), 50);
        let soft = event(Bounced, Some(BounceKind::Soft), 50);
        let spam = event(SpamComplaint, None, 40);
        let delivered = event(Delivered, None, 55);
        let deferred = event(Deferred, None, 30);

        assert_eq!(verdict(None, &[], &[]).verdict, Verdict::InviteNeverSent);
        assert_eq!(
            verdict(None, &[], &suppression).verdict,
            Verdict::InviteSuppressed
        );
        assert_eq!(
            verdict(Some(&fresh), std::slice::from_ref(&hard), &suppression).verdict,
            Verdict::InviteSuppressed
        );
        assert_eq!(
            verdict(Some(&old), &[hard.clone(), spam.clone()], &[]).verdict,
            Verdict::InviteBounced
        );
        assert_eq!(
            verdict(Some(&old), &[delivered.clone(), spam.clone()], &[]).verdict,
            Verdict::InviteMarkedSpam
        );
        assert_eq!(
            verdict(Some(&old), std::slice::from_ref(&delivered), &[]).verdict,
            Verdict::InviteExpired
        );
        assert_eq!(
            verdict(Some(&fresh), &[delivered.clone(), deferred.clone()], &[]).verdict,
            Verdict::InviteDeferred
        );
        assert_eq!(
            verdict(Some(&fresh), &[soft], &[]).verdict,
            Verdict::InviteDeferred
        );
        assert_eq!(
            verdict(Some(&fresh), &[deferred, delivered], &[]).verdict,
            Verdict::InviteDelivered
        );
        assert_eq!(verdict(Some(&fresh), &[], &[]).verdict, Verdict::InviteSent);
    }

    #[test]
    fn a_fresh_invitation_is_not_resent_yet() {
        let just_sent = invitation(5, 60 * 24);
        let assessment = verdict(Some(&just_sent), &[], &[]);
        assert_eq!(assessment.verdict, Verdict::InviteSent);
        assert_eq!(
            assessment.resend_not_before,
            Some(at(5) + Duration::minutes(15))
        );
        let older = invitation(16, 60 * 24);
        assert_eq!(verdict(Some(&older), &[], &[]).resend_not_before, None);
    }
}
