//! Delivery of escalations to a support desk's HTTP endpoint: JSON, signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with backoff on server errors
//! and timeouts. The id is the escalation's reference, the same on every retry, so the desk can
//! drop a delivery it already has.
//!
//! The URL is a secret (desks put their token in it): it goes only to the HTTP client, never into an
//! error, a log, an audit row or a reply, and the client follows no redirect with it.

use std::time::Duration;

use secrecy::SecretString;

use crate::app::config::EscalationConfig;

#[derive(Clone)]
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

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &crate::urls::redacted_endpoint(&self.url))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base", &self.retry_base)
            .finish_non_exhaustive()
    }
}

/// The client for escalation deliveries: redirects are not followed, so neither the body nor the
/// signature goes anywhere but the configured endpoint.
pub(crate) fn client() -> reqwest::Client {
    // Each request also sets its own, shorter total deadline; these bound one that forgets to.
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the key of the `whsec_` secret, as the
/// `webhook-signature` header carries it; `None` when the secret is not a Standard Webhooks one
/// (the config refuses those at start-up) or the body is not UTF-8 (ours is JSON).
pub fn signature(secret: &SecretString, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = crate::app::config::signing_key(secret).ok()?;
    standardwebhooks::Webhook::from_bytes(key)
        .ok()?
        .sign(id, timestamp, body)
        .ok()
}

/// The result of one delivery round.
#[derive(Debug)]
pub(crate) struct WebhookRound {
    pub delivered: bool,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// POSTs `body` up to `max_attempts` times as message `id` (the escalation's reference); a 4xx
/// answer ends the round at once (retrying the same request will not change the receiver's mind),
/// a 5xx or a timeout is retried with backoff. Each attempt is signed afresh with its own
/// timestamp, under the same id.
pub(crate) async fn deliver(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    id: &str,
    body: &[u8],
) -> WebhookRound {
    if let Some(problem) = crate::urls::https_problem(&settings.url) {
        return WebhookRound {
            delivered: false,
            attempts: 0,
            error: Some(format!("not sent: the webhook URL {problem}")),
        };
    }
    let mut error = None;
    for attempt in 1..=settings.max_attempts {
        let timestamp = chrono::Utc::now().timestamp();
        let Some(signature) = signature(&settings.secret, id, timestamp, body) else {
            return WebhookRound {
                delivered: false,
                attempts: attempt - 1,
                error: Some("not sent: the webhook secret is not a whsec_ secret".into()),
            };
        };
        let response = client
            .post(&settings.url)
            .timeout(settings.timeout)
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
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
            // A redirect is not followed (it would take the body elsewhere) and asking again will
            // not change it, no more than a 4xx.
            Ok(response)
                if response.status().is_client_error() || response.status().is_redirection() =>
            {
                return WebhookRound {
                    delivered: false,
                    attempts: attempt,
                    error: Some(format!("HTTP {}", response.status().as_u16())),
                };
            }
            Ok(response) => error = Some(format!("HTTP {}", response.status().as_u16())),
            Err(e) if e.is_timeout() => error = Some("timed out".into()),
            // reqwest's errors name the URL, token and all: it is taken out here, at the source,
            // before the text reaches the audit row, the escalation row, the log or the reply.
            Err(e) => {
                let e = e.without_url();
                error = Some(format!("unreachable: {}", crate::error::error_chain(&e)));
            }
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
    fn only_https_may_receive_escalations_except_on_this_machine() {
        for good in [
            "https://desk.example/hooks/T0K3N",
            "http://127.0.0.1:8080/escalations",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert_eq!(crate::urls::https_problem(good), None, "{good}");
        }
        for bad in [
            "http://desk.example/hooks",
            "http://127.0.0.1.evil.example/x",
            "http://localhost@evil.example/x",
            "ftp://desk.example/x",
            "desk.example/hooks",
            "",
        ] {
            assert!(crate::urls::https_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn the_url_is_never_shown_whole() {
        let settings = WebhookSettings {
            url: "https://bot:pa55@desk.example/hooks/T0K3N?token=S3CR3T".into(),
            secret: SecretString::from("key"),
            timeout: Duration::from_secs(1),
            max_attempts: 1,
            retry_base: Duration::from_millis(1),
        };
        let debug = format!("{settings:?}");
        for secret in ["pa55", "T0K3N", "S3CR3T", "key"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("https://desk.example/***"), "{debug}");
    }

    #[test]
    fn signature_is_standard_webhooks_v1() {
        // The Standard Webhooks reference vector (the specification's and the crate's own test).
        let secret = SecretString::from("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let sig = signature(
            &secret,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1_649_367_553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=")
        );
        assert_eq!(
            signature(&SecretString::from("not-whsec"), "id", 1, b"{}"),
            None
        );
    }
}
