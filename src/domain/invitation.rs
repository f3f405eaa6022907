//! What happened to invitation emails after they left: invitations, provider delivery events and the
//! suppression list.

use chrono::{DateTime, Utc};

/// One invitation email sent to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: i64,
    pub member_id: i64,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryEventKind {
    Delivered,
    Deferred,
    Bounced,
    SpamComplaint,
}

impl DeliveryEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Deferred => "deferred",
            Self::Bounced => "bounced",
            Self::SpamComplaint => "spam_complaint",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivered" => Some(Self::Delivered),
            "deferred" => Some(Self::Deferred),
            "bounced" => Some(Self::Bounced),
            "spam_complaint" => Some(Self::SpamComplaint),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    /// Permanent: the mailbox or domain does not exist or refuses for good.
    Hard,
    /// Temporary: mailbox full, greylisting; the provider retries.
    Soft,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard" => Some(Self::Hard),
            "soft" => Some(Self::Soft),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryEvent {
    pub kind: DeliveryEventKind,
    pub bounce: Option<BounceKind>,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    HardBounce,
    SpamComplaint,
    Unsubscribe,
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SpamComplaint => "spam_complaint",
            Self::Unsubscribe => "unsubscribe",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard_bounce" => Some(Self::HardBounce),
            "spam_complaint" => Some(Self::SpamComplaint),
            "unsubscribe" => Some(Self::Unsubscribe),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
}

/// Other recipients at one domain whose mail recently failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainTrouble {
    /// Distinct recipients with a bounce, deferral or complaint in the window.
    pub recipients: i64,
    pub bounced: i64,
    pub deferred: i64,
    pub complained: i64,
}
