//! The diagnosis: the help article's checklist, run against the workspace database, ending in exactly
//! one verdict with its evidence and the actions that make sense next.

pub mod delivery;
pub mod domain;
pub mod registration;
pub mod status;
pub mod suggestions;

use serde::Serialize;

pub use crate::domain::action::Action;
use crate::domain::email::EmailAddress;
use crate::domain::member::Member;
use crate::domain::workspace::Workspace;

/// The one conclusion of a check. Variants are listed in precedence order: the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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

/// Which step of the checklist produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Registration,
    Status,
    Delivery,
    Domain,
}

/// What one check established. `outcome` is a stable short code; the words for `detail` come from
/// `prompts/findings.j2`, rendered from `facts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Found,
    NotFound,
    MemberElsewhere,
    Active,
    Deactivated,
    Invited,
    Suppressed,
    NeverSent,
    LastSent,
    HardBounce,
    SpamComplaint,
    Expired,
    Deferred,
    SoftBounce,
    Delivered,
    NoOutcome,
    AddressTypo,
    DomainBlocking,
    /// A provider, asked at check time, has the address on its suppression list.
    LiveSuppressed,
    /// A provider, asked at check time, does not have the address on its suppression list.
    LiveClear,
    /// A provider did not answer in time (or answered an error); stored data was used.
    LiveUnanswered,
}

impl Outcome {
    pub const ALL: [Outcome; 21] = [
        Outcome::Found,
        Outcome::NotFound,
        Outcome::MemberElsewhere,
        Outcome::Active,
        Outcome::Deactivated,
        Outcome::Invited,
        Outcome::Suppressed,
        Outcome::NeverSent,
        Outcome::LastSent,
        Outcome::HardBounce,
        Outcome::SpamComplaint,
        Outcome::Expired,
        Outcome::Deferred,
        Outcome::SoftBounce,
        Outcome::Delivered,
        Outcome::NoOutcome,
        Outcome::AddressTypo,
        Outcome::DomainBlocking,
        Outcome::LiveSuppressed,
        Outcome::LiveClear,
        Outcome::LiveUnanswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::NotFound => "not_found",
            Outcome::MemberElsewhere => "member_elsewhere",
            Outcome::Active => "active",
            Outcome::Deactivated => "deactivated",
            Outcome::Invited => "invited",
            Outcome::Suppressed => "suppressed",
            Outcome::NeverSent => "never_sent",
            Outcome::LastSent => "last_sent",
            Outcome::HardBounce => "hard_bounce",
            Outcome::SpamComplaint => "spam_complaint",
            Outcome::Expired => "expired",
            Outcome::Deferred => "deferred",
            Outcome::SoftBounce => "soft_bounce",
            Outcome::Delivered => "delivered",
            Outcome::NoOutcome => "no_outcome",
            Outcome::AddressTypo => "address_typo",
            Outcome::DomainBlocking => "domain_blocking",
            Outcome::LiveSuppressed => "live_suppressed",
            Outcome::LiveClear => "live_clear",
            Outcome::LiveUnanswered => "live_unanswered",
        }
    }
}

/// A finding before its words are rendered: the check, the outcome, and the facts behind it.
#[derive(Debug, Clone)]
pub struct FindingDraft {
    pub check: Check,
    pub outcome: Outcome,
    pub facts: serde_json::Value,
}

impl FindingDraft {
    pub fn new(check: Check, outcome: Outcome, facts: serde_json::Value) -> Self {
        Self {
            check,
            outcome,
            facts,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: Check,
    #[serde(serialize_with = "serialize_outcome")]
    pub outcome: Outcome,
    pub detail: String,
}

fn serialize_outcome<S: serde::Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(outcome.as_str())
}

/// The full result of checking one address in one workspace (or in none, when it is nowhere).
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub email: EmailAddress,
    pub workspace: Option<Workspace>,
    pub member: Option<Member>,
    pub verdict: Verdict,
    pub suggestions: Vec<String>,
    pub findings: Vec<Finding>,
    pub actions: Vec<Action>,
    /// Facts the reply templates use beyond the findings (login URL, sender, wait times...).
    pub facts: serde_json::Value,
}

/// The JSON shape of `invite-bot check --format json`.
#[derive(Debug, Serialize)]
pub struct DiagnosisJson<'a> {
    pub email: &'a str,
    pub workspace: Option<&'a str>,
    pub verdict: Verdict,
    pub member: Option<&'a Member>,
    pub suggestions: &'a [String],
    pub findings: &'a [Finding],
    pub actions: &'a [Action],
}

impl Diagnosis {
    pub fn to_json(&self) -> DiagnosisJson<'_> {
        DiagnosisJson {
            email: self.email.key(),
            workspace: self.workspace.as_ref().map(|w| w.slug.as_str()),
            verdict: self.verdict,
            member: self.member.as_ref(),
            suggestions: &self.suggestions,
            findings: &self.findings,
            actions: &self.actions,
        }
    }
}
