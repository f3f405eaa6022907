//! Step 2: the member's status badge decides whether there is an invitation problem at all.

use serde_json::json;

use super::{Check, FindingDraft, Outcome, Verdict};
use crate::domain::member::{Member, MemberStatus};

/// Returns the status finding and, for Active and Deactivated, the verdict that ends the checklist.
pub fn assess(member: &Member) -> (FindingDraft, Option<Verdict>) {
    let (outcome, verdict) = match member.status {
        MemberStatus::Active => (Outcome::Active, Some(Verdict::AlreadyActive)),
        MemberStatus::Deactivated => (Outcome::Deactivated, Some(Verdict::Deactivated)),
        MemberStatus::Invited => (Outcome::Invited, None),
    };
    let facts = json!({
        "status": member.status.as_str(),
        "invited_at": member.invited_at.map(|t| t.to_rfc3339()),
        "activated_at": member.activated_at.map(|t| t.to_rfc3339()),
    });
    (FindingDraft::new(Check::Status, outcome, facts), verdict)
}
