//! The audit log's vocabulary: what was asked, how it ended, and why. Stored as text, one name per
//! value, the same names in the JSON of `invite-bot audit`.

use serde::{Deserialize, Serialize};

use super::action::Action;
use super::verdict::Verdict;

/// What an audit row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AuditAction {
    Check,
    ResendInvite,
    IssueActivationCode,
    Escalate,
    /// An activation code or invitation token handed in (`/activate`, `invite-bot redeem`).
    Redeem,
}

impl AuditAction {
    pub const ALL: [AuditAction; 5] = [
        AuditAction::Check,
        AuditAction::ResendInvite,
        AuditAction::IssueActivationCode,
        AuditAction::Escalate,
        AuditAction::Redeem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Check => "check",
            AuditAction::ResendInvite => "resend_invite",
            AuditAction::IssueActivationCode => "issue_activation_code",
            AuditAction::Escalate => "escalate",
            AuditAction::Redeem => "redeem",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl From<Action> for AuditAction {
    fn from(action: Action) -> Self {
        match action {
            Action::ResendInvite => AuditAction::ResendInvite,
            Action::IssueActivationCode => AuditAction::IssueActivationCode,
            Action::Escalate => AuditAction::Escalate,
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How it ended. A check ends in its verdict, stored under the verdict's own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// The action happened (for a resend: the mail server accepted the email).
    Done,
    /// Not allowed, not offered, too soon or already done; the reason says which.
    Refused,
    /// The mail server answered "try later"; the outbox will.
    Deferred,
    /// The mail server refused the email for good.
    Failed,
    /// A redemption activated the member.
    Activated,
    /// A redemption did not; the reason (never shown to the person) says why.
    Rejected,
    /// Asked of the product, which gave no answer to tell by (timeouts, connection errors, 5xx on
    /// every try; or an answer that could not be read): it may or may not have been done. Pressing
    /// again sends the same idempotency key, so the product does it at most once.
    Unknown,
    /// A check, and the verdict it reached.
    Checked(Verdict),
}

impl AuditOutcome {
    const PLAIN: [AuditOutcome; 7] = [
        AuditOutcome::Done,
        AuditOutcome::Refused,
        AuditOutcome::Deferred,
        AuditOutcome::Failed,
        AuditOutcome::Activated,
        AuditOutcome::Rejected,
        AuditOutcome::Unknown,
    ];

    /// Every outcome: the plain ones, then one per verdict.
    pub fn all() -> impl Iterator<Item = AuditOutcome> {
        Self::PLAIN
            .into_iter()
            .chain(Verdict::ALL.into_iter().map(AuditOutcome::Checked))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Done => "done",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Deferred => "deferred",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Activated => "activated",
            AuditOutcome::Rejected => "rejected",
            AuditOutcome::Unknown => "unknown",
            AuditOutcome::Checked(verdict) => verdict.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::PLAIN
            .into_iter()
            .find(|o| o.as_str() == s)
            .or_else(|| Verdict::parse(s).map(AuditOutcome::Checked))
    }
}

impl std::fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

// A verdict inside an outcome rules out the derives (they name unit variants only); these say the
// same thing by hand: the text of `as_str`, read back by `parse`.
impl Serialize for AuditOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AuditOutcome::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown audit outcome {text:?}")))
    }
}

impl<DB: sqlx::Database> sqlx::Type<DB> for AuditOutcome
where
    str: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for AuditOutcome
where
    &'q str: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut DB::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for AuditOutcome
where
    &'r str: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
        AuditOutcome::parse(text).ok_or_else(|| format!("unknown audit outcome {text:?}").into())
    }
}

/// Why it ended so: a refusal's reason, a failed delivery's, or what a redemption came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum AuditReason {
    /// Refused: the actor lacks the permission (in that workspace).
    Forbidden,
    /// Refused: the verdict does not offer the action.
    NotOffered,
    /// Refused: a rate limit holds.
    RateLimited,
    /// Refused: the same request was already handled.
    AlreadyDone,
    /// Deferred: the mail server answered with a temporary (4xx) failure.
    SmtpTemporary,
    /// Failed: the mail server answered with a permanent (5xx) failure.
    SmtpPermanent,
    /// Deferred: the mail server went silent past the whole-send deadline; the outbox retries.
    SmtpTimeout,
    /// Refused: too many redemptions for this workspace and address this hour.
    AddressThrottled,
    /// Refused: every hashing slot stayed busy past the wait.
    Busy,
    /// Activated by an activation code.
    Code,
    /// Activated by an invitation token.
    InvitationToken,
    /// Rejected: the code matched one already redeemed a moment ago.
    CodeAlreadyUsed,
    /// Rejected: the member has no code that is neither used, voided nor expired.
    NoLiveCode,
    /// Rejected: the code matched none of the member's live codes.
    WrongCode,
    /// Rejected: no invitation of the member holds that token (or it expired, or was used).
    BadToken,
    /// Rejected: no such member in that workspace.
    UnknownMember,
    /// Done, but only half recorded: the mail server accepted the email and the database did not
    /// take the record of it.
    RecordingFailed,
    /// Unknown: the product did not answer on any try (timed out, unreachable, or 5xx).
    ProductUnanswered,
    /// Failed: the product refused (a 4xx answer); its message is the row's detail.
    ProductRefused,
    /// Unknown: the product answered with something that is not its contract (garbage JSON).
    ProductGarbled,
}

impl AuditReason {
    pub const ALL: [AuditReason; 20] = [
        AuditReason::Forbidden,
        AuditReason::NotOffered,
        AuditReason::RateLimited,
        AuditReason::AlreadyDone,
        AuditReason::SmtpTemporary,
        AuditReason::SmtpPermanent,
        AuditReason::SmtpTimeout,
        AuditReason::AddressThrottled,
        AuditReason::Busy,
        AuditReason::Code,
        AuditReason::InvitationToken,
        AuditReason::CodeAlreadyUsed,
        AuditReason::NoLiveCode,
        AuditReason::WrongCode,
        AuditReason::BadToken,
        AuditReason::UnknownMember,
        AuditReason::RecordingFailed,
        AuditReason::ProductUnanswered,
        AuditReason::ProductRefused,
        AuditReason::ProductGarbled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditReason::Forbidden => "forbidden",
            AuditReason::NotOffered => "not_offered",
            AuditReason::RateLimited => "rate_limited",
            AuditReason::AlreadyDone => "already_done",
            AuditReason::SmtpTemporary => "smtp_temporary",
            AuditReason::SmtpPermanent => "smtp_permanent",
            AuditReason::SmtpTimeout => "smtp_timeout",
            AuditReason::AddressThrottled => "address_throttled",
            AuditReason::Busy => "busy",
            AuditReason::Code => "code",
            AuditReason::InvitationToken => "invitation_token",
            AuditReason::CodeAlreadyUsed => "code_already_used",
            AuditReason::NoLiveCode => "no_live_code",
            AuditReason::WrongCode => "wrong_code",
            AuditReason::BadToken => "bad_token",
            AuditReason::UnknownMember => "unknown_member",
            AuditReason::RecordingFailed => "recording_failed",
            AuditReason::ProductUnanswered => "product_unanswered",
            AuditReason::ProductRefused => "product_refused",
            AuditReason::ProductGarbled => "product_garbled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for AuditReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse(as_str(x)) == x`, and serde writes and reads the same name.
    fn round_trips<T>(value: T, name: &str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
    {
        assert_eq!(parse(name), Some(value));
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
    }

    #[test]
    fn every_audit_action_round_trips() {
        for action in AuditAction::ALL {
            round_trips(action, action.as_str(), AuditAction::parse);
        }
        for action in Action::ALL {
            assert_eq!(AuditAction::from(action).as_str(), action.as_str());
        }
        assert_eq!(AuditAction::parse("resend"), None);
    }

    #[test]
    fn every_audit_outcome_round_trips_and_no_two_share_a_name() {
        let all: Vec<AuditOutcome> = AuditOutcome::all().collect();
        assert_eq!(all.len(), 7 + Verdict::ALL.len());
        for outcome in &all {
            round_trips(*outcome, outcome.as_str(), AuditOutcome::parse);
        }
        let mut names: Vec<&str> = all.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            all.len(),
            "an outcome and a verdict share a name"
        );
        assert_eq!(
            AuditOutcome::parse("invite_sent"),
            Some(AuditOutcome::Checked(Verdict::InviteSent))
        );
        assert_eq!(AuditOutcome::parse("sent"), None);
        assert!(serde_json::from_str::<AuditOutcome>("\"sent\"").is_err());
    }

    #[test]
    fn every_audit_reason_round_trips() {
        for reason in AuditReason::ALL {
            round_trips(reason, reason.as_str(), AuditReason::parse);
        }
        assert_eq!(AuditReason::parse("smtp"), None);
    }
}
