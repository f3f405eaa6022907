//! Provider webhooks: each provider's way of proving a request is genuine, and the mapping of its
//! events to the engine's delivery events and suppressions.
//!
//! A provider module turns (headers, raw body) into a [`WebhookBatch`] or refuses it: a bad, missing or
//! stale signature is [`WebhookError::Unauthorized`] (401, nothing stored), a body that cannot be
//! read is [`WebhookError::Malformed`] (400 with the reason). Authentication always happens on the
//! raw bytes, before the body is parsed. Event types that say nothing about delivery (opens, clicks)
//! are accepted and ignored, so the provider does not retry them.

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::invitation::{
    canonical_message_id, message_id_from_tag, BounceKind, DeliveryEventKind, SuppressionReason,
};
use crate::store::{NewDeliveryEvent, NewSuppression, WebhookBatch};

pub use super::ses::webhook::CertificateCache;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: the request does not prove it comes from the provider.
    #[error("{0}")]
    Unauthorized(String),
    /// 400: the request is authentic (or unauthenticated-by-design) but cannot be read.
    #[error("{0}")]
    Malformed(String),
    /// 404: no config section for this provider.
    #[error("{0} webhooks are not enabled")]
    NotEnabled(&'static str),
    /// 502: a step that needs the provider (fetching a certificate, confirming a subscription) failed.
    #[error("{0}")]
    Upstream(String),
}

impl WebhookError {
    pub(crate) fn unauthorized(reason: impl Into<String>) -> Self {
        WebhookError::Unauthorized(reason.into())
    }

    pub(crate) fn malformed(reason: impl Into<String>) -> Self {
        WebhookError::Malformed(reason.into())
    }
}

/// A provider's configuration could not be turned into a verifier.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct WebhookConfigError {
    pub key: &'static str,
    pub message: String,
}

/// Compares secrets without leaking through timing how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    // Hashing first makes the comparison length-independent too.
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Longest diagnostic text kept per event: enough for an SMTP reply, bounded for the database.
pub const MAX_DETAIL_CHARS: usize = 500;

/// Longest message id kept: the longest line RFC 5322 allows, so no real header holds a longer
/// one. A longer id cannot match anything sent, and would overflow PostgreSQL's index entries.
pub const MAX_MESSAGE_ID_BYTES: usize = 998;

/// Longest event key stored as it is; a longer one (a provider's fields are unbounded text) is
/// stored as its provider and a SHA-256 of the whole, which still tells repeats apart and fits a
/// PostgreSQL unique index (about 2,700 bytes per entry at most).
pub const MAX_EVENT_KEY_BYTES: usize = 512;

pub(crate) fn detail(text: Option<&str>) -> Option<String> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_DETAIL_CHARS).collect())
}

pub(crate) fn recipient(value: Option<&str>, what: &str) -> Result<EmailAddress, WebhookError> {
    let value = value.ok_or_else(|| WebhookError::malformed(format!("{what}: no recipient")))?;
    EmailAddress::parse(value).map_err(|e| {
        WebhookError::malformed(format!(
            "{what}: the recipient is not an email address ({e})"
        ))
    })
}

pub(crate) fn rfc3339(value: Option<&str>, what: &str) -> Result<DateTime<Utc>, WebhookError> {
    let value = value.ok_or_else(|| WebhookError::malformed(format!("{what}: no time")))?;
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| WebhookError::malformed(format!("{what}: `{value}` is not an RFC 3339 time")))
}

pub(crate) fn unix_time(seconds: f64, what: &str) -> Result<DateTime<Utc>, WebhookError> {
    if !seconds.is_finite() {
        return Err(WebhookError::malformed(format!("{what}: bad timestamp")));
    }
    DateTime::from_timestamp_millis((seconds * 1000.0) as i64)
        .ok_or_else(|| WebhookError::malformed(format!("{what}: timestamp out of range")))
}

/// Refuses a signed timestamp further than `max_age_seconds` from now, either way.
pub(crate) fn check_fresh(
    signed_at: i64,
    now: DateTime<Utc>,
    max_age_seconds: u64,
) -> Result<(), WebhookError> {
    let age = now.timestamp().saturating_sub(signed_at).unsigned_abs();
    if age > max_age_seconds {
        return Err(WebhookError::unauthorized(format!(
            "the signed timestamp is {age} seconds away from now (at most {max_age_seconds} allowed)"
        )));
    }
    Ok(())
}

/// A message id as a header carries it (`<id@host>`) or bare: stored bare.
pub(crate) fn bare_message_id(id: &str) -> String {
    canonical_message_id(id)
}

/// Our own message id as a provider hands it back (metadata, custom args, variables): the id the
/// invitation was stored under, so it goes first in an event's `message_ids`.
pub(crate) fn invite_ref(value: Option<&serde_json::Value>) -> Option<String> {
    let id = match value? {
        serde_json::Value::String(id) => canonical_message_id(id),
        // SES tags are lists of values.
        serde_json::Value::Array(values) => values
            .iter()
            .find_map(|v| v.as_str())
            .and_then(message_id_from_tag)?,
        _ => return None,
    };
    (!id.is_empty()).then_some(id)
}

/// Builds a batch while mapping a provider's events.
#[derive(Default)]
pub(crate) struct BatchBuilder {
    batch: WebhookBatch,
}

pub(crate) struct EventParts {
    pub event_key: String,
    pub message_ids: Vec<String>,
    pub recipient: EmailAddress,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

impl BatchBuilder {
    pub fn delivered(&mut self, parts: EventParts) {
        self.push(parts, DeliveryEventKind::Delivered, None);
    }

    pub fn deferred(&mut self, parts: EventParts) {
        self.push(parts, DeliveryEventKind::Deferred, None);
    }

    /// A hard bounce also puts the address on the suppression list, as the provider itself does.
    pub fn bounced(&mut self, parts: EventParts, kind: BounceKind) {
        if kind == BounceKind::Hard {
            self.suppress(&parts.recipient, SuppressionReason::HardBounce, parts.at);
        }
        self.push(parts, DeliveryEventKind::Bounced, Some(kind));
    }

    /// A message the provider refused to send; whether the address is suppressed is decided apart.
    pub fn bounced_without_suppression(&mut self, parts: EventParts, kind: BounceKind) {
        self.push(parts, DeliveryEventKind::Bounced, Some(kind));
    }

    /// A complaint also suppresses the address: providers stop sending to people who complained.
    pub fn complained(&mut self, parts: EventParts) {
        self.suppress(&parts.recipient, SuppressionReason::SpamComplaint, parts.at);
        self.push(parts, DeliveryEventKind::SpamComplaint, None);
    }

    pub fn suppress(
        &mut self,
        recipient: &EmailAddress,
        reason: SuppressionReason,
        at: DateTime<Utc>,
    ) {
        self.batch.suppressions.push(NewSuppression {
            recipient: recipient.clone(),
            reason,
            at,
        });
    }

    fn push(&mut self, parts: EventParts, kind: DeliveryEventKind, bounce: Option<BounceKind>) {
        let mut message_ids = parts.message_ids;
        message_ids.retain(|id| !id.is_empty() && id.len() <= MAX_MESSAGE_ID_BYTES);
        message_ids.dedup();
        self.batch.events.push(NewDeliveryEvent {
            event_key: bounded_event_key(parts.event_key),
            message_ids,
            recipient: parts.recipient,
            kind,
            bounce,
            at: parts.at,
            detail: parts.detail,
        });
    }

    pub fn finish(self) -> WebhookBatch {
        self.batch
    }
}

/// The event key itself when short enough, else `provider:sha256:<hex>` of the whole key, so the
/// same long event still lands once.
fn bounded_event_key(key: String) -> String {
    use sha2::{Digest, Sha256};
    if key.len() <= MAX_EVENT_KEY_BYTES {
        return key;
    }
    let provider = key.split(':').next().unwrap_or("").chars().take(16);
    format!(
        "{}:sha256:{}",
        provider.collect::<String>(),
        hex::encode(Sha256::digest(key.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn freshness_is_checked_both_ways() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(check_fresh(1_800_000_000 - 299, now, 300).is_ok());
        assert!(check_fresh(1_800_000_000 - 301, now, 300).is_err());
        assert!(check_fresh(1_800_000_000 + 301, now, 300).is_err());
        assert!(check_fresh(i64::MIN, now, 300).is_err());
    }

    /// The commented-out provider sections of `config.toml.example`, uncommented, are valid config.
    #[test]
    fn the_documented_provider_sections_parse() {
        let example = include_str!("../../config.toml.example");
        let key_or_section = regex::Regex::new(r"^(\[providers\.[a-z]+\]|[a-z_]+ = .+)$").unwrap();
        // Only the provider sections: other commented examples (permission grants) are not meant
        // to be uncommented all at once.
        let mut in_provider = false;
        let uncommented: String = example
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    in_provider = false;
                }
                match line.strip_prefix("# ") {
                    Some(rest) if rest.starts_with("[providers.") => {
                        in_provider = true;
                        rest
                    }
                    Some(rest) if in_provider && key_or_section.is_match(rest) => rest,
                    _ => line,
                }
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(uncommented.contains("\n[providers.ses]\n"));
        let config =
            crate::config::Config::from_toml(&uncommented, std::path::Path::new("example"))
                .unwrap();
        let providers = &config.providers;
        assert!(providers.postmark.is_some() && providers.sendgrid.is_some());
        assert!(providers.mailgun.is_some() && providers.ses.is_some());
        assert_eq!(providers.lookup_timeout().as_millis(), 1500);
    }

    #[test]
    fn details_are_trimmed_and_bounded() {
        assert_eq!(detail(Some("  ")), None);
        assert_eq!(
            detail(Some(&"x".repeat(2000))).unwrap().len(),
            MAX_DETAIL_CHARS
        );
        assert_eq!(bare_message_id("<a@b>"), "a@b");
    }

    fn parts(event_key: String, message_ids: Vec<String>) -> EventParts {
        EventParts {
            event_key,
            message_ids,
            recipient: EmailAddress::parse("jane@acme.com").unwrap(),
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            detail: None,
        }
    }

    /// Found by the fuzzer's bound check: a provider's id fields went into the event key and the
    /// message ids whole, so one event with a 100 kB MessageID made a 100 kB index entry (which
    /// PostgreSQL refuses past about 2,700 bytes, so the provider would retry it forever).
    #[test]
    fn event_keys_and_message_ids_are_bounded() {
        let long = "m".repeat(100_000);
        let mut batch = BatchBuilder::default();
        batch.delivered(parts(
            format!("postmark:{long}:Delivery"),
            vec![long.clone(), "a@b".into()],
        ));
        batch.delivered(parts(format!("postmark:{long}:Delivery"), vec![]));
        batch.delivered(parts(format!("postmark:{long}:Other"), vec![]));
        batch.delivered(parts("postmark:short".into(), vec!["a@b".into()]));
        let events = batch.finish().events;
        assert!(events
            .iter()
            .all(|e| e.event_key.len() <= MAX_EVENT_KEY_BYTES));
        assert!(events[0].event_key.starts_with("postmark:sha256:"));
        assert_eq!(events[0].message_ids, vec!["a@b".to_owned()]);
        // The same long key maps to the same bounded key, and a different one to another.
        assert_eq!(events[0].event_key, events[1].event_key);
        assert_ne!(events[0].event_key, events[2].event_key);
        assert_eq!(events[3].event_key, "postmark:short");
    }
}
