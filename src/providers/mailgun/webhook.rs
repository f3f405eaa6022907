//! Mailgun webhooks: the JSON body carries `signature: {timestamp, token, signature}` where
//! `signature` is the hex HMAC-SHA256 of timestamp + token made with the webhook signing key.
//! A token is accepted once (the store remembers it) and a timestamp older than five minutes is
//! refused, so a captured request cannot be replayed. Events: delivered, failed (severity
//! permanent / temporary), complained. One event per request.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::config::MailgunConfig;
use crate::domain::invitation::BounceKind;
use crate::mail::CORRELATION_KEY;
use crate::providers::webhook::{
    bare_message_id, check_fresh, detail, invite_ref, recipient, unix_time, BatchBuilder,
    EventParts, WebhookError,
};
use crate::store::{ReplayToken, WebhookBatch};

#[derive(Debug)]
pub struct Mailgun {
    signing_key: SecretString,
    max_age_seconds: u64,
}

#[derive(Deserialize)]
struct Payload {
    signature: Signature,
    #[serde(rename = "event-data")]
    event_data: Option<EventData>,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct EventData {
    event: String,
    id: Option<String>,
    timestamp: Option<f64>,
    recipient: Option<String>,
    severity: Option<String>,
    reason: Option<String>,
    message: Option<Message>,
    #[serde(rename = "delivery-status")]
    delivery_status: Option<DeliveryStatus>,
    /// The X-Mailgun-Variables the email was sent with.
    #[serde(rename = "user-variables")]
    user_variables: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Message {
    headers: Option<Headers>,
}

#[derive(Deserialize)]
struct Headers {
    #[serde(rename = "message-id")]
    message_id: Option<String>,
}

#[derive(Deserialize)]
struct DeliveryStatus {
    message: Option<String>,
    description: Option<String>,
}

impl Mailgun {
    pub fn new(config: &MailgunConfig) -> Self {
        Mailgun {
            signing_key: config.signing_key.clone(),
            max_age_seconds: config.max_age_seconds,
        }
    }

    /// Authenticates the request (signature and age) and maps its event. The returned batch carries
    /// the token, which the store accepts only once.
    pub fn batch(&self, body: &[u8], now: DateTime<Utc>) -> Result<WebhookBatch, WebhookError> {
        let payload = read_payload(body)?;
        self.verify(&payload.signature, now)?;
        let mut batch = map_event(payload.event_data)?;
        batch.replay_token = Some(ReplayToken {
            provider: "mailgun",
            token: payload.signature.token,
            // Twice the allowed age: a token older than that fails the age check anyway.
            keep_for: Duration::seconds(2 * self.max_age_seconds as i64),
        });
        Ok(batch)
    }

    fn verify(&self, signature: &Signature, now: DateTime<Utc>) -> Result<(), WebhookError> {
        let expected = hex::decode(signature.signature.trim())
            .map_err(|_| WebhookError::unauthorized("the signature is not hex"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_key.expose_secret().as_bytes())
            .map_err(|_| WebhookError::unauthorized("unusable signing key"))?;
        mac.update(signature.timestamp.as_bytes());
        mac.update(signature.token.as_bytes());
        // verify_slice compares in constant time.
        mac.verify_slice(&expected)
            .map_err(|_| WebhookError::unauthorized("the signature does not match"))?;
        let signed_at: i64 = signature
            .timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::unauthorized("the timestamp is not a number"))?;
        check_fresh(signed_at, now, self.max_age_seconds)
    }
}

fn read_payload(body: &[u8]) -> Result<Payload, WebhookError> {
    // The signature lives inside the body, so the body must be read first; a body without a
    // readable signature block is unauthenticated, not merely malformed.
    serde_json::from_slice(body).map_err(|e| {
        if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
            WebhookError::unauthorized(format!("no readable signature block: {e}"))
        } else {
            WebhookError::malformed(format!("not JSON: {e}"))
        }
    })
}

/// Maps a request's event as if its signature had been checked, which [`Mailgun::batch`] does
/// first: the mapping alone, for the fuzz targets and property tests.
pub fn events(body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    map_event(read_payload(body)?.event_data)
}

fn map_event(event_data: Option<EventData>) -> Result<WebhookBatch, WebhookError> {
    let mut batch = BatchBuilder::default();
    let event = event_data.ok_or_else(|| WebhookError::malformed("no event-data"))?;
    let what = format!("Mailgun {} event", event.event);
    let parts = || -> Result<EventParts, WebhookError> {
        let id = event
            .id
            .as_deref()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| WebhookError::malformed(format!("{what}: no id")))?;
        let message_id = event
            .message
            .as_ref()
            .and_then(|m| m.headers.as_ref())
            .and_then(|h| h.message_id.as_deref())
            .map(bare_message_id);
        let status = event.delivery_status.as_ref();
        let timestamp = event
            .timestamp
            .ok_or_else(|| WebhookError::malformed(format!("{what}: no timestamp")))?;
        Ok(EventParts {
            event_key: format!("mailgun:{id}"),
            message_ids: invite_ref(
                event
                    .user_variables
                    .as_ref()
                    .and_then(|v| v.get(CORRELATION_KEY)),
            )
            .into_iter()
            .chain(message_id)
            .collect(),
            recipient: recipient(event.recipient.as_deref(), &what)?,
            at: unix_time(timestamp, &what)?,
            detail: detail(
                status
                    .and_then(|s| s.message.as_deref().filter(|m| !m.is_empty()))
                    .or(status.and_then(|s| s.description.as_deref()))
                    .or(event.reason.as_deref()),
            ),
        })
    };
    match event.event.as_str() {
        "delivered" => batch.delivered(parts()?),
        "failed" => match event.severity.as_deref() {
            Some("permanent") => batch.bounced(parts()?, BounceKind::Hard),
            Some("temporary") => batch.bounced(parts()?, BounceKind::Soft),
            other => {
                return Err(WebhookError::malformed(format!(
                    "{what}: severity must be permanent or temporary, got {other:?}"
                )))
            }
        },
        "complained" => batch.complained(parts()?),
        // accepted, opened, clicked, unsubscribed: not delivery outcomes.
        _ => {}
    }
    Ok(batch.finish())
}
