//! Postmark: no signature exists; the webhook URL carries HTTP Basic credentials
//! (`https://user:password@bot.example.com/webhooks/postmark`) that only Postmark knows.
//! One record per request: Delivery, Bounce (Type HardBounce, SoftBounce, Transient, ...),
//! SpamComplaint.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::PostmarkConfig;
use crate::domain::invitation::BounceKind;
use crate::mail::CORRELATION_KEY;
use crate::providers::webhook::{
    bare_message_id, constant_time_eq, detail, invite_ref, recipient, rfc3339, BatchBuilder,
    EventParts, WebhookError,
};
use crate::store::WebhookBatch;

#[derive(Debug)]
pub struct Postmark {
    username: String,
    password: SecretString,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: String,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    #[serde(rename = "ID")]
    id: Option<serde_json::Value>,
    #[serde(rename = "Type")]
    bounce_type: Option<String>,
    recipient: Option<String>,
    email: Option<String>,
    delivered_at: Option<String>,
    bounced_at: Option<String>,
    details: Option<String>,
    description: Option<String>,
    /// The X-PM-Metadata-* headers the email was sent with.
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Bounce types that mean the address cannot receive mail; the others are temporary or not a
/// delivery failure at all (auto-responders, subscription changes).
fn bounce_kind(bounce_type: &str) -> Option<BounceKind> {
    match bounce_type {
        "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" => Some(BounceKind::Hard),
        // Blocked: the receiving ISP refused this message (content, reputation), not the address.
        "SoftBounce" | "Transient" | "DnsError" | "SpamNotification" | "Blocked"
        | "Undeliverable" | "Unknown" => Some(BounceKind::Soft),
        _ => None,
    }
}

impl Postmark {
    pub fn new(config: &PostmarkConfig) -> Self {
        Postmark {
            username: config.webhook_username.clone(),
            password: config.webhook_password.clone(),
        }
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<(), WebhookError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| WebhookError::unauthorized("no credentials (HTTP Basic expected)"))?;
        let encoded = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic "))
            .ok_or_else(|| WebhookError::unauthorized("HTTP Basic credentials expected"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| WebhookError::unauthorized("the credentials are not valid base64"))?;
        let expected = format!("{}:{}", self.username, self.password.expose_secret());
        if !constant_time_eq(&decoded, expected.as_bytes()) {
            return Err(WebhookError::unauthorized("wrong credentials"));
        }
        Ok(())
    }

    /// Maps an authenticated request's record (see [`events`]).
    pub fn batch(&self, body: &[u8]) -> Result<WebhookBatch, WebhookError> {
        events(body)
    }
}

/// Maps one Postmark record to delivery events; the caller has authenticated the request.
pub fn events(body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    let record: Record = serde_json::from_slice(body)
        .map_err(|e| WebhookError::malformed(format!("not a Postmark webhook record: {e}")))?;
    let mut batch = BatchBuilder::default();
    let what = format!("Postmark {} record", record.record_type);
    let message_id = || {
        record
            .message_id
            .as_deref()
            .map(bare_message_id)
            .ok_or_else(|| WebhookError::malformed(format!("{what}: no MessageID")))
    };
    let our_ref = invite_ref(
        record
            .metadata
            .as_ref()
            .and_then(|m| m.get(CORRELATION_KEY)),
    );
    let ids = |message_id: &str| {
        our_ref
            .iter()
            .cloned()
            .chain([message_id.to_owned()])
            .collect()
    };
    match record.record_type.as_str() {
        "Delivery" => {
            let message_id = message_id()?;
            let to = recipient(record.recipient.as_deref(), &what)?;
            batch.delivered(EventParts {
                // A delivery has no event id of its own; one per message and recipient.
                event_key: format!("postmark:{message_id}:Delivery:{}", to.key()),
                message_ids: ids(&message_id),
                at: rfc3339(record.delivered_at.as_deref(), &what)?,
                recipient: to,
                detail: detail(record.details.as_deref()),
            });
        }
        "Bounce" | "SpamComplaint" => {
            let message_id = message_id()?;
            let id = match &record.id {
                Some(serde_json::Value::Number(n)) => n.to_string(),
                Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
                _ => return Err(WebhookError::malformed(format!("{what}: no ID"))),
            };
            let to = recipient(record.email.as_deref(), &what)?;
            let parts = EventParts {
                event_key: format!("postmark:{message_id}:{}:{id}", record.record_type),
                message_ids: ids(&message_id),
                at: rfc3339(record.bounced_at.as_deref(), &what)?,
                recipient: to,
                detail: detail(record.details.as_deref().or(record.description.as_deref())),
            };
            let bounce_type = record.bounce_type.as_deref().unwrap_or("");
            if record.record_type == "SpamComplaint" || bounce_type == "SpamComplaint" {
                batch.complained(parts);
            } else if let Some(kind) = bounce_kind(bounce_type) {
                batch.bounced(parts, kind);
            }
        }
        // Opens, clicks, subscription changes: not delivery outcomes.
        _ => {}
    }
    Ok(batch.finish())
}
