//! The diagnosis: the help article's checklist, run against the workspace database, ending in exactly
//! one verdict with its evidence and the actions that make sense next.

pub mod delivery;
pub mod domain;
pub mod freshness;
pub mod registration;
pub mod status;
pub mod suggestions;

use serde::Serialize;

pub use crate::domain::action::Action;
use crate::domain::email::EmailAddress;
use crate::domain::member::Member;
pub use crate::domain::verdict::{Severity, Verdict};
use crate::domain::workspace::Workspace;

/// Which step of the checklist produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Registration,
    Status,
    Delivery,
    Domain,
    /// Where the member data came from and how old it is.
    Data,
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
    /// Where the member data came from and how old it is.
    DataAge,
    /// The product's database has not been synced for longer than `stale_after_seconds`.
    DataStale,
}

impl Outcome {
    pub const ALL: [Outcome; 23] = [
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
        Outcome::DataAge,
        Outcome::DataStale,
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
            Outcome::DataAge => "data_age",
            Outcome::DataStale => "data_stale",
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
    pub outcome: Outcome,
    pub detail: String,
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

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn every_finding_outcome_serializes_under_its_own_name() {
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }
}
