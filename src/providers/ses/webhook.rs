//! Amazon SES events through SNS. SNS signs every message with RSA (SignatureVersion 1: SHA1withRSA,
//! 2: SHA256withRSA) over a canonical string of its fields, with the key of the certificate at
//! `SigningCertURL`. Only certificates from hosts matching the configured pattern (by default
//! `sns.<region>.amazonaws.com`, over https) and messages from the configured topic are accepted.
//! Certificates are cached; tests pre-load theirs with [`CertificateCache::preload`].
//!
//! `SubscriptionConfirmation` for the configured topic is confirmed by visiting its SubscribeURL
//! (same host rule). Notifications carry an SES event: Delivery, Bounce (Permanent / Transient),
//! Complaint, DeliveryDelay.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use regex::Regex;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::der::{DecodePem, Encode};

use crate::config::SesConfig;
use crate::domain::invitation::BounceKind;
use crate::mail::CORRELATION_KEY;
use crate::providers::webhook::{
    bare_message_id, detail, invite_ref, recipient, rfc3339, BatchBuilder, EventParts,
    WebhookConfigError, WebhookError,
};
use crate::store::WebhookBatch;

/// Signing certificates by host and path: fetched once, then read from memory. Keyed by what
/// identifies the certificate (never the raw URL, so query strings cannot grow it) and bounded:
/// SNS signs with a handful of certificates, so a full cache means someone is probing.
#[derive(Debug, Default)]
pub struct CertificateCache {
    keys: RwLock<HashMap<String, CachedKey>>,
    /// One fetch per certificate at a time: concurrent messages signed with a new certificate
    /// wait for the first fetch instead of each fetching it.
    fetching: tokio::sync::Mutex<()>,
}

/// Most certificates kept; beyond it the oldest-expiring one makes room.
const MAX_CACHED_CERTIFICATES: usize = 32;

#[derive(Debug, Clone)]
struct CachedKey {
    key: RsaPublicKey,
    not_after: DateTime<Utc>,
}

impl CertificateCache {
    /// Adds a PEM certificate under `url`, as if it had been fetched from there.
    pub fn preload(&self, url: &str, pem: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let key = parse_certificate(pem)?;
        self.insert(cache_key(&parsed), key);
        Ok(())
    }

    /// How many certificates are held.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &str) -> Option<CachedKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn insert(&self, key: String, value: CachedKey) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_CACHED_CERTIFICATES && !keys.contains_key(&key) {
            if let Some(oldest) = keys
                .iter()
                .min_by_key(|(_, cached)| cached.not_after)
                .map(|(k, _)| k.clone())
            {
                keys.remove(&oldest);
            }
        }
        keys.insert(key, value);
    }
}

/// What names a certificate: its host and path (the URL was checked to carry nothing else).
fn cache_key(url: &reqwest::Url) -> String {
    format!("{}{}", url.host_str().unwrap_or(""), url.path())
}

fn parse_certificate(pem: &str) -> Result<CachedKey, String> {
    let certificate = x509_cert::Certificate::from_pem(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("not an RSA public key: {e}"))?;
    let not_after = certificate
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration();
    let not_after = DateTime::from_timestamp(not_after.as_secs() as i64, 0)
        .ok_or("certificate expiry out of range")?;
    Ok(CachedKey { key, not_after })
}

#[derive(Debug)]
pub struct Ses {
    topic_arn: String,
    host_pattern: Regex,
    max_age_seconds: u64,
    confirm_subscriptions: bool,
    pub certificates: CertificateCache,
    client: reqwest::Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnsMessage {
    #[serde(rename = "Type")]
    kind: String,
    message_id: String,
    topic_arn: String,
    subject: Option<String>,
    message: String,
    timestamp: String,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    token: Option<String>,
}

impl SnsMessage {
    /// The string SNS signs: selected fields as `name\nvalue\n`, in a fixed order per type.
    fn canonical(&self) -> Result<String, WebhookError> {
        let mut text = String::new();
        let mut add = |name: &str, value: &str| {
            text.push_str(name);
            text.push('\n');
            text.push_str(value);
            text.push('\n');
        };
        match self.kind.as_str() {
            "Notification" => {
                add("Message", &self.message);
                add("MessageId", &self.message_id);
                if let Some(subject) = &self.subject {
                    add("Subject", subject);
                }
                add("Timestamp", &self.timestamp);
                add("TopicArn", &self.topic_arn);
                add("Type", &self.kind);
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                let missing = |field| WebhookError::malformed(format!("{}: no {field}", self.kind));
                add("Message", &self.message);
                add("MessageId", &self.message_id);
                add(
                    "SubscribeURL",
                    self.subscribe_url
                        .as_deref()
                        .ok_or_else(|| missing("SubscribeURL"))?,
                );
                add("Timestamp", &self.timestamp);
                add(
                    "Token",
                    self.token.as_deref().ok_or_else(|| missing("Token"))?,
                );
                add("TopicArn", &self.topic_arn);
                add("Type", &self.kind);
            }
            other => {
                return Err(WebhookError::malformed(format!(
                    "unknown SNS message type `{other}`"
                )))
            }
        }
        Ok(text)
    }
}

impl Ses {
    pub fn new(config: &SesConfig) -> Result<Self, WebhookConfigError> {
        let host_pattern =
            Regex::new(&format!("^(?:{})$", config.cert_host_pattern)).map_err(|e| {
                WebhookConfigError {
                    key: "providers.ses.cert_host_pattern",
                    message: e.to_string(),
                }
            })?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookConfigError {
                key: "providers.ses",
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Ses {
            topic_arn: config.topic_arn.clone(),
            host_pattern,
            max_age_seconds: config.max_age_seconds,
            confirm_subscriptions: config.confirm_subscriptions,
            certificates: CertificateCache::default(),
            client,
        })
    }

    /// Only https URLs on an allowed host, with no user info, port, query or fragment; plain http
    /// (and a port) only to this machine's loopback, where nothing between us and the server could
    /// change the answer (and where tests run their servers).
    fn check_url(&self, url: &str, what: &str) -> Result<reqwest::Url, WebhookError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| WebhookError::unauthorized(format!("{what} is not a URL")))?;
        let host = parsed.host_str().unwrap_or("");
        let loopback = matches!(host, "127.0.0.1" | "[::1]" | "localhost");
        let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
        let extras = !parsed.username().is_empty()
            || parsed.password().is_some()
            || parsed.fragment().is_some()
            || (parsed.port().is_some() && !loopback);
        if !scheme_ok || extras || !self.host_pattern.is_match(host) {
            return Err(WebhookError::unauthorized(format!(
                "{what} is not on an allowed host"
            )));
        }
        Ok(parsed)
    }

    async fn signing_key(
        &self,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<RsaPublicKey, WebhookError> {
        let parsed = self.check_url(url, "SigningCertURL")?;
        // SNS's certificates are all named like this; anything else on the host is not one.
        let file = parsed.path().rsplit('/').next().unwrap_or("");
        if parsed.query().is_some()
            || !file.starts_with("SimpleNotificationService-")
            || !file.ends_with(".pem")
        {
            return Err(WebhookError::unauthorized(
                "SigningCertURL is not an SNS certificate",
            ));
        }
        let key = cache_key(&parsed);
        let cached = match self.certificates.get(&key) {
            Some(cached) => cached,
            None => {
                let _fetching = self.certificates.fetching.lock().await;
                match self.certificates.get(&key) {
                    Some(cached) => cached,
                    None => {
                        let fetched = self.fetch_certificate(parsed).await?;
                        self.certificates.insert(key, fetched.clone());
                        fetched
                    }
                }
            }
        };
        if cached.not_after < now {
            return Err(WebhookError::unauthorized(
                "the signing certificate has expired",
            ));
        }
        Ok(cached.key)
    }

    async fn fetch_certificate(&self, url: reqwest::Url) -> Result<CachedKey, WebhookError> {
        // A certificate is a few kilobytes; a body much larger is not one.
        const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                WebhookError::Upstream(format!(
                    "cannot fetch the signing certificate: {}",
                    e.without_url()
                ))
            })?;
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            WebhookError::Upstream(format!(
                "cannot read the signing certificate: {}",
                e.without_url()
            ))
        })? {
            pem.extend_from_slice(&chunk);
            if pem.len() > MAX_CERTIFICATE_BYTES {
                return Err(WebhookError::Upstream(
                    "the signing certificate is too large".into(),
                ));
            }
        }
        let pem = String::from_utf8(pem)
            .map_err(|_| WebhookError::unauthorized("the signing certificate is not PEM text"))?;
        parse_certificate(&pem).map_err(WebhookError::Unauthorized)
    }

    /// Authenticates an SNS message and returns the delivery data of its SES event (an empty batch
    /// for subscription messages, which are confirmed here).
    pub async fn batch(
        &self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<WebhookBatch, WebhookError> {
        let message: SnsMessage = serde_json::from_slice(body)
            .map_err(|e| WebhookError::malformed(format!("not an SNS message: {e}")))?;
        // The topic first: a message for someone else's topic never makes us fetch a certificate.
        if message.topic_arn != self.topic_arn {
            return Err(WebhookError::unauthorized("not the configured topic"));
        }
        let canonical = message.canonical()?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(message.signature.trim())
            .map_err(|_| WebhookError::unauthorized("the signature is not base64"))?;
        let key = self.signing_key(&message.signing_cert_url, now).await?;
        let verified = match message.signature_version.as_str() {
            "1" => key.verify(
                Pkcs1v15Sign::new::<Sha1>(),
                &Sha1::digest(canonical.as_bytes()),
                &signature,
            ),
            "2" => key.verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(canonical.as_bytes()),
                &signature,
            ),
            other => {
                return Err(WebhookError::unauthorized(format!(
                    "unsupported SignatureVersion `{other}`"
                )))
            }
        };
        verified.map_err(|_| WebhookError::unauthorized("the signature does not match"))?;
        let sent_at = rfc3339(Some(&message.timestamp), "SNS message")
            .map_err(|_| WebhookError::unauthorized("the signed Timestamp is not a time"))?;
        crate::providers::webhook::check_fresh(sent_at.timestamp(), now, self.max_age_seconds)?;

        match message.kind.as_str() {
            "SubscriptionConfirmation" => {
                if self.confirm_subscriptions {
                    self.confirm(message.subscribe_url.as_deref().unwrap_or(""))
                        .await?;
                }
                Ok(WebhookBatch::default())
            }
            "Notification" => ses_event(&message.message),
            _ => Ok(WebhookBatch::default()),
        }
    }

    async fn confirm(&self, url: &str) -> Result<(), WebhookError> {
        let url = self.check_url(url, "SubscribeURL")?;
        self.client
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| {
                WebhookError::Upstream(format!(
                    "cannot confirm the subscription: {}",
                    e.without_url()
                ))
            })?;
        tracing::info!(topic = %self.topic_arn, "SNS subscription confirmed");
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesEvent {
    event_type: Option<String>,
    notification_type: Option<String>,
    mail: Mail,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Delivery>,
    delivery_delay: Option<DeliveryDelay>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    common_headers: Option<CommonHeaders>,
    /// The X-SES-MESSAGE-TAGS the email was sent with (event publishing only), each a list.
    tags: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommonHeaders {
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: Option<String>,
    diagnostic_code: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    #[serde(default)]
    recipients: Vec<String>,
    timestamp: String,
    smtp_response: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDelay {
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
    timestamp: String,
    delay_type: Option<String>,
}

/// Reads an SNS message and maps its SES event as if its signature had been checked, which
/// [`Ses::batch`] does first: the reading and mapping alone, for the fuzz targets and property tests.
pub fn events(body: &[u8]) -> Result<WebhookBatch, WebhookError> {
    let message: SnsMessage = serde_json::from_slice(body)
        .map_err(|e| WebhookError::malformed(format!("not an SNS message: {e}")))?;
    message.canonical()?;
    match message.kind.as_str() {
        "Notification" => ses_event(&message.message),
        _ => Ok(WebhookBatch::default()),
    }
}

/// Maps one SES event (event publishing `eventType`, or classic `notificationType`): the text of
/// an SNS notification's `Message`.
pub fn ses_event(text: &str) -> Result<WebhookBatch, WebhookError> {
    let event: SesEvent = serde_json::from_str(text).map_err(|e| {
        WebhookError::malformed(format!("the SNS Message is not an SES event: {e}"))
    })?;
    let kind = event
        .event_type
        .as_deref()
        .or(event.notification_type.as_deref())
        .unwrap_or("")
        .to_owned();
    // SES replaces the Message-ID header with its own; our id comes back in the tags, and SES's id
    // is the one its SMTP acceptance named.
    let mut message_ids: Vec<String> = invite_ref(
        event
            .mail
            .tags
            .as_ref()
            .and_then(|t| t.get(CORRELATION_KEY)),
    )
    .into_iter()
    .chain([bare_message_id(&event.mail.message_id)])
    .collect();
    if let Some(id) = event
        .mail
        .common_headers
        .as_ref()
        .and_then(|h| h.message_id.as_deref())
    {
        message_ids.push(bare_message_id(id));
    }
    let what = format!("SES {kind} event");
    let missing = |part: &str| WebhookError::malformed(format!("{what}: no `{part}` object"));
    let parts = |address: Option<&str>, timestamp: &str, diagnostic: Option<&str>| {
        let to = recipient(address, &what)?;
        Ok::<_, WebhookError>(EventParts {
            event_key: format!(
                "ses:{}:{kind}:{}:{timestamp}",
                event.mail.message_id,
                to.key()
            ),
            message_ids: message_ids.clone(),
            recipient: to,
            at: rfc3339(Some(timestamp), &what)?,
            detail: detail(diagnostic),
        })
    };
    let mut batch = BatchBuilder::default();
    match kind.as_str() {
        "Delivery" => {
            let delivery = event.delivery.as_ref().ok_or_else(|| missing("delivery"))?;
            for address in &delivery.recipients {
                batch.delivered(parts(
                    Some(address),
                    &delivery.timestamp,
                    delivery.smtp_response.as_deref(),
                )?);
            }
        }
        "Bounce" => {
            let bounce = event.bounce.as_ref().ok_or_else(|| missing("bounce"))?;
            // Permanent: the address is bad. Transient and Undetermined: SES may try again.
            let kind = if bounce.bounce_type == "Permanent" {
                BounceKind::Hard
            } else {
                BounceKind::Soft
            };
            for r in &bounce.bounced_recipients {
                let diagnostic = r.diagnostic_code.as_deref().or(r.status.as_deref());
                batch.bounced(
                    parts(r.email_address.as_deref(), &bounce.timestamp, diagnostic)?,
                    kind,
                );
            }
        }
        "Complaint" => {
            let complaint = event
                .complaint
                .as_ref()
                .ok_or_else(|| missing("complaint"))?;
            for r in &complaint.complained_recipients {
                batch.complained(parts(
                    r.email_address.as_deref(),
                    &complaint.timestamp,
                    None,
                )?);
            }
        }
        "DeliveryDelay" => {
            let delay = event
                .delivery_delay
                .as_ref()
                .ok_or_else(|| missing("deliveryDelay"))?;
            for r in &delay.delayed_recipients {
                let diagnostic = r
                    .diagnostic_code
                    .as_deref()
                    .or(r.status.as_deref())
                    .or(delay.delay_type.as_deref());
                batch.deferred(parts(
                    r.email_address.as_deref(),
                    &delay.timestamp,
                    diagnostic,
                )?);
            }
        }
        // Send, Reject, Open, Click, Rendering Failure, Subscription: not delivery outcomes here.
        _ => {}
    }
    Ok(batch.finish())
}
