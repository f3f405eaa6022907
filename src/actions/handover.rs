//! Delivery of escalations to a support desk's HTTP endpoint: JSON, signed with HMAC-SHA256, retried
//! with backoff on server errors and timeouts.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::app::config::EscalationConfig;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: SecretString,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

impl WebhookSettings {
    pub fn from_config(config: &EscalationConfig) -> Option<Self> {
        Some(WebhookSettings {
            url: config.webhook_url.clone()?,
            secret: config.webhook_secret.clone()?,
            timeout: Duration::from_secs(config.webhook_timeout_seconds),
            max_attempts: config.webhook_max_attempts,
            retry_base: Duration::from_millis(config.webhook_retry_base_ms),
        })
    }
}

/// `sha256=<hex>` of `timestamp.body`, as the `X-Invite-Bot-Signature` header carries it. The
/// timestamp inside the signed text lets the receiver reject replays of old deliveries.
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The result of one delivery round.
#[derive(Debug)]
pub(crate) struct WebhookRound {
    pub delivered: bool,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// POSTs `body` up to `max_attempts` times; a 4xx answer ends the round at once (retrying the same
/// request will not change the receiver's mind), a 5xx or a timeout is retried with backoff.
pub(crate) async fn deliver(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    body: &[u8],
) -> WebhookRound {
    let mut error = None;
    for attempt in 1..=settings.max_attempts {
        let timestamp = chrono::Utc::now().timestamp();
        let response = client
            .post(&settings.url)
            .timeout(settings.timeout)
            .header("content-type", "application/json")
            .header("x-invite-bot-timestamp", timestamp.to_string())
            .header(
                "x-invite-bot-signature",
                signature(&settings.secret, timestamp, body),
            )
            .body(body.to_vec())
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => {
                return WebhookRound {
                    delivered: true,
                    attempts: attempt,
                    error: None,
                };
            }
            Ok(response) if response.status().is_client_error() => {
                return WebhookRound {
                    delivered: false,
                    attempts: attempt,
                    error: Some(format!("HTTP {}", response.status().as_u16())),
                };
            }
            Ok(response) => error = Some(format!("HTTP {}", response.status().as_u16())),
            Err(e) if e.is_timeout() => error = Some("timed out".into()),
            Err(e) => error = Some(format!("unreachable: {}", crate::error::error_chain(&e))),
        }
        if attempt < settings.max_attempts {
            tokio::time::sleep(settings.retry_base * 2u32.saturating_pow(attempt - 1)).await;
        }
    }
    WebhookRound {
        delivered: false,
        attempts: settings.max_attempts,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        let secret = SecretString::from("key");
        let sig = signature(&secret, 1_700_000_000, b"{}");
        // Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(
            sig,
            signature(&SecretString::from("other"), 1_700_000_000, b"{}")
        );
    }
}
