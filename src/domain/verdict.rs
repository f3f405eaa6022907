//! The one conclusion of a check, and how its reply is coloured.

use serde::{Deserialize, Serialize};

use super::action::Action;

/// The one conclusion of a check. Variants are listed in precedence order: the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    NotRegistered,
    AlreadyActive,
    Deactivated,
    InviteSuppressed,
    InviteBounced,
    InviteMarkedSpam,
    InviteNeverSent,
    InviteExpired,
    InviteDeferred,
    InviteDelivered,
    InviteSent,
}

impl Verdict {
    pub const ALL: [Verdict; 11] = [
        Verdict::NotRegistered,
        Verdict::AlreadyActive,
        Verdict::Deactivated,
        Verdict::InviteSuppressed,
        Verdict::InviteBounced,
        Verdict::InviteMarkedSpam,
        Verdict::InviteNeverSent,
        Verdict::InviteExpired,
        Verdict::InviteDeferred,
        Verdict::InviteDelivered,
        Verdict::InviteSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotRegistered => "not_registered",
            Verdict::AlreadyActive => "already_active",
            Verdict::Deactivated => "deactivated",
            Verdict::InviteSuppressed => "invite_suppressed",
            Verdict::InviteBounced => "invite_bounced",
            Verdict::InviteMarkedSpam => "invite_marked_spam",
            Verdict::InviteNeverSent => "invite_never_sent",
            Verdict::InviteExpired => "invite_expired",
            Verdict::InviteDeferred => "invite_deferred",
            Verdict::InviteDelivered => "invite_delivered",
            Verdict::InviteSent => "invite_sent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// How the reply is coloured: the product's own badge colours.
    pub fn severity(self) -> Severity {
        match self {
            Verdict::AlreadyActive => Severity::Good,
            Verdict::Deactivated => Severity::Neutral,
            Verdict::NotRegistered
            | Verdict::InviteSuppressed
            | Verdict::InviteBounced
            | Verdict::InviteMarkedSpam => Severity::Bad,
            Verdict::InviteNeverSent
            | Verdict::InviteExpired
            | Verdict::InviteDeferred
            | Verdict::InviteDelivered
            | Verdict::InviteSent => Severity::Pending,
        }
    }

    /// The actions this verdict offers before any time-based restriction.
    pub fn offered_actions(self) -> &'static [Action] {
        use Action::*;
        match self {
            Verdict::NotRegistered | Verdict::Deactivated => &[Escalate],
            Verdict::AlreadyActive => &[],
            Verdict::InviteSuppressed
            | Verdict::InviteBounced
            | Verdict::InviteMarkedSpam
            | Verdict::InviteDeferred => &[IssueActivationCode, Escalate],
            Verdict::InviteNeverSent
            | Verdict::InviteExpired
            | Verdict::InviteDelivered
            | Verdict::InviteSent => &[ResendInvite, IssueActivationCode, Escalate],
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Green for active, yellow for invited, red for the failures, grey for deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Good,
    Pending,
    Bad,
    Neutral,
}

#[cfg(test)]
mod tests {
    use super::Verdict;

    #[test]
    fn every_verdict_parses_from_its_own_name_and_serde_agrees() {
        for verdict in Verdict::ALL {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
            let json = serde_json::to_string(&verdict).unwrap();
            assert_eq!(json, format!("\"{}\"", verdict.as_str()));
            assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), verdict);
        }
        assert_eq!(Verdict::parse("invite-sent"), None);
    }
}
