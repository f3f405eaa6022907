//! What happened to invitation emails after they left: invitations, provider delivery events and the
//! suppression list.

use chrono::{DateTime, Utc};

/// A message id in the one form the database holds: trimmed, without the angle brackets a header
/// carries (`<id@host>` and `id@host` are the same message). Every id entering the store, from our
/// own sends, fixtures or providers' webhooks, goes through here so look-ups compare like with like.
pub fn canonical_message_id(id: &str) -> String {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .unwrap_or(id)
        .trim()
        .to_owned()
}

/// Longest SES message tag value.
const MAX_TAG_CHARS: usize = 256;

/// A message id as an SES message tag value, which allows only ASCII letters, digits, `_` and `-`:
/// every other byte (and `_` itself) becomes `_XX` in hex, so [`message_id_from_tag`] can undo it.
/// `None` when the result would be longer than SES accepts.
pub fn message_id_as_tag(id: &str) -> Option<String> {
    let mut tag = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            tag.push(byte as char);
        } else {
            tag.push_str(&format!("_{byte:02X}"));
        }
    }
    (tag.len() <= MAX_TAG_CHARS).then_some(tag)
}

/// The message id a tag made by [`message_id_as_tag`] stands for; `None` when it is not one.
pub fn message_id_from_tag(tag: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(tag.len());
    let mut rest = tag.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'_' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes)
        .ok()
        .map(|id| canonical_message_id(&id))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_have_one_canonical_form() {
        assert_eq!(canonical_message_id("<a.b@invite-bot>"), "a.b@invite-bot");
        assert_eq!(canonical_message_id("  <a@b>  "), "a@b");
        assert_eq!(canonical_message_id("a@b"), "a@b");
        assert_eq!(canonical_message_id("< a@b >"), "a@b");
        // Only one surrounding pair: what is inside is the id.
        assert_eq!(canonical_message_id("<<a@b>>"), "<a@b>");
        // A lone bracket is not a pair.
        assert_eq!(canonical_message_id("<a@b"), "<a@b");
        assert_eq!(canonical_message_id("0100018c-ab12"), "0100018c-ab12");
    }

    #[test]
    fn message_ids_survive_ses_tags() {
        let id = "rsd-7k2q.0a1b2c3d4e5f6071@invite-bot";
        let tag = message_id_as_tag(id).unwrap();
        assert!(tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(message_id_from_tag(&tag).as_deref(), Some(id));
        assert_eq!(message_id_from_tag("a_5Fb").as_deref(), Some("a_b"));
        assert_eq!(message_id_from_tag("bad_Z"), None);
        assert_eq!(message_id_from_tag("bad_"), None);
        assert_eq!(message_id_as_tag(&"@".repeat(100)), None);
    }
}
