//! SendGrid (Twilio) Event Webhook: an ECDSA P-256 / SHA-256 signature over the timestamp header
//! followed by the raw body, in `X-Twilio-Email-Event-Webhook-Signature` (base64 DER), with the
//! timestamp in `X-Twilio-Email-Event-Webhook-Timestamp`. A request is a JSON array of events.

use axum::http::HeaderMap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

use crate::config::SendgridConfig;
use crate::domain::invitation::{BounceKind, SuppressionReason};
use crate::providers::webhook::{
    bare_message_id, check_fresh, detail, invite_ref, recipient, unix_time, BatchBuilder,
    EventParts, WebhookConfigError, WebhookError,
};
use crate::store::WebhookBatch;

pub const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

#[derive(Debug)]
pub struct Sendgrid {
    key: VerifyingKey,
    max_age_seconds: u64,
}

#[derive(Deserialize)]
struct Event {
    event: String,
    email: Option<String>,
    timestamp: Option<f64>,
    sg_event_id: Option<String>,
    sg_message_id: Option<String>,
    #[serde(rename = "smtp-id")]
    smtp_id: Option<String>,
    reason: Option<String>,
    response: Option<String>,
    #[serde(rename = "type")]
    bounce_type: Option<String>,
    /// The X-SMTPAPI unique_args the email was sent with arrive as top-level fields.
    invite_ref: Option<serde_json::Value>,
}

/// Parses the verification key as SendGrid shows it (base64 DER, no armour) or as PEM.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|e| e.to_string());
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(text.split_whitespace().collect::<String>())
        .map_err(|_| "not base64 (paste the Verification Key as SendGrid shows it)".to_owned())?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| format!("not a P-256 public key: {e}"))
}

impl Sendgrid {
    pub fn new(config: &SendgridConfig) -> Result<Self, WebhookConfigError> {
        let key = parse_public_key(&config.public_key).map_err(|message| WebhookConfigError {
            key: "providers.sendgrid.public_key",
            message,
        })?;
        Ok(Sendgrid {
            key,
            max_age_seconds: config.max_age_seconds,
        })
    }

    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| WebhookError::unauthorized(format!("no {name} header")))
        };
        let signature = header(SIGNATURE_HEADER)?;
        let timestamp = header(TIMESTAMP_HEADER)?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .ok_or_else(|| {
                WebhookError::unauthorized("the signature is not a base64 DER ECDSA signature")
            })?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.key
            .verify(&signed, &signature)
            .map_err(|_| WebhookError::unauthorized("the signature does not match"))?;
        // Checked after the signature, so the timestamp is known to be SendGrid's own.
        let signed_at: i64 = timestamp
            .parse()
            .map_err(|_| WebhookError::unauthorized("the timestamp is not a number"))?;
        check_fresh(signed_at, now, self.max_age_seconds)
    }

    /// Maps an authenticated request's events (see [`events`]).
    pub fn batch(&self, body: &[u8]) -> Result<WebhookBatch, WebhookError> {
        events(body)
    }
}

/// Maps a SendGrid event batch to delivery events; the caller has authenticated the request.
pub fn events(body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    let events: Vec<Event> = serde_json::from_slice(body).map_err(|e| {
        WebhookError::malformed(format!(
            "not a SendGrid event batch (a JSON array of events): {e}"
        ))
    })?;
    let mut batch = BatchBuilder::default();
    for (i, event) in events.iter().enumerate() {
        let what = format!("event #{} ({})", i + 1, event.event);
        let parts = || -> Result<EventParts, WebhookError> {
            let event_id = event
                .sg_event_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| WebhookError::malformed(format!("{what}: no sg_event_id")))?;
            let mut message_ids: Vec<String> =
                invite_ref(event.invite_ref.as_ref()).into_iter().collect();
            // sg_message_id is the X-Message-Id of the send (the id in SendGrid's 250 reply),
            // plus a ".filter..." suffix.
            if let Some(id) = &event.sg_message_id {
                message_ids.push(bare_message_id(id.split(".filter").next().unwrap_or(id)));
            }
            if let Some(id) = &event.smtp_id {
                message_ids.push(bare_message_id(id));
            }
            let timestamp = event
                .timestamp
                .ok_or_else(|| WebhookError::malformed(format!("{what}: no timestamp")))?;
            Ok(EventParts {
                event_key: format!("sendgrid:{event_id}"),
                message_ids,
                recipient: recipient(event.email.as_deref(), &what)?,
                at: unix_time(timestamp, &what)?,
                detail: detail(event.reason.as_deref().or(event.response.as_deref())),
            })
        };
        match event.event.as_str() {
            "delivered" => batch.delivered(parts()?),
            "deferred" => batch.deferred(parts()?),
            "bounce" => {
                // "blocked" is SendGrid's temporary refusal; "bounce" is permanent.
                let kind = match event.bounce_type.as_deref() {
                    Some("blocked") => BounceKind::Soft,
                    _ => BounceKind::Hard,
                };
                batch.bounced(parts()?, kind);
            }
            "dropped" => {
                // SendGrid refused to send at all, usually because the address is suppressed.
                let mut parts = parts()?;
                let reason = event.reason.as_deref().unwrap_or("");
                let suppression = match reason {
                    "Bounced Address" => Some(SuppressionReason::HardBounce),
                    "Spam Reporting Address" => Some(SuppressionReason::SpamComplaint),
                    "Unsubscribed Address" => Some(SuppressionReason::Unsubscribe),
                    _ => None,
                };
                if let Some(reason) = suppression {
                    batch.suppress(&parts.recipient, reason, parts.at);
                }
                parts.detail = detail(Some(&format!("dropped by SendGrid: {reason}")));
                batch.bounced_without_suppression(parts, BounceKind::Hard);
            }
            "spamreport" => batch.complained(parts()?),
            // processed, open, click, unsubscribe groups...: not delivery outcomes.
            _ => {}
        }
    }
    Ok(batch.finish())
}
