//! Delivery of escalations to a support desk's HTTP endpoint: JSON, signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with backoff on server errors
//! and timeouts. The id is the escalation's reference, the same on every retry, so the desk can
//! drop a delivery it already has.
//!
//! The URL is a secret (desks put their token in it): it goes only to the HTTP client, never into an
//! error, a log, an audit row or a reply, and the client follows no redirect with it.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use crate::config::EscalationConfig;
use crate::urls::UrlProblem;

#[derive(Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub key: SigningKey,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

impl WebhookSettings {
    pub fn from_config(config: &EscalationConfig) -> Option<Self> {
        Some(WebhookSettings {
            url: config.webhook_url.clone()?,
            // `Config::validate` refused a secret that is not `whsec_` + base64 at start-up.
            key: SigningKey::from_secret(config.webhook_secret.as_ref()?)?,
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

/// The key of `[escalation] webhook_secret` (`whsec_` + base64), decoded once; never printed.
#[derive(Clone)]
pub struct SigningKey(std::sync::Arc<standardwebhooks::Webhook>);

impl SigningKey {
    /// `None` for a secret that is not a Standard Webhooks one.
    pub fn from_secret(secret: &SecretString) -> Option<Self> {
        let key = crate::config::signing_key(secret).ok()?;
        let webhook = standardwebhooks::Webhook::from_bytes(key).ok()?;
        Some(SigningKey(std::sync::Arc::new(webhook)))
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, as the `webhook-signature` header
    /// carries it.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        // The crate refuses only a body that is not UTF-8, which a `str` cannot be.
        self.0
            .sign(id, timestamp, body.as_bytes())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// The result of one delivery round.
#[derive(Debug)]
pub(crate) struct WebhookRound {
    pub delivered: bool,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: Option<HandoverFailure>,
}

/// Why a delivery to the support desk failed. The `Display` text goes to the operator (the log, the
/// audit row, the escalation record); the person who escalated is told in the words of
/// `actions.j2`, from [`HandoverFailure::facts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandoverFailure {
    #[error("no webhook configured")]
    NotConfigured,
    #[error("not sent: the webhook URL {0}")]
    UrlRefused(UrlProblem),
    #[error("HTTP {0}")]
    Status(u16),
    #[error("timed out")]
    TimedOut,
    /// The HTTP client's error chain, the URL taken out.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

impl HandoverFailure {
    /// What the words need: `failure` names it; `status` (an HTTP status), `url_problem` or
    /// `detail` (the HTTP client's own message) go with some.
    pub fn facts(&self) -> serde_json::Value {
        let (failure, status, url_problem, detail) = match self {
            HandoverFailure::NotConfigured => ("not_configured", None, None, None),
            HandoverFailure::UrlRefused(problem) => {
                ("url_refused", None, Some(problem.as_str()), None)
            }
            HandoverFailure::Status(status) => ("http_status", Some(*status), None, None),
            HandoverFailure::TimedOut => ("timed_out", None, None, None),
            HandoverFailure::Unreachable(detail) => {
                ("unreachable", None, None, Some(detail.as_str()))
            }
        };
        json!({ "failure": failure, "status": status, "url_problem": url_problem, "detail": detail })
    }
}

/// POSTs `body` up to `max_attempts` times as message `id` (the escalation's reference); a 4xx
/// answer ends the round at once (retrying the same request will not change the receiver's mind),
/// a 5xx or a timeout is retried with backoff. Each attempt is signed afresh with its own
/// timestamp, under the same id.
pub(crate) async fn deliver(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    id: &str,
    body: &str,
) -> WebhookRound {
    if let Some(problem) = crate::urls::https_problem(&settings.url) {
        return WebhookRound {
            delivered: false,
            attempts: 0,
            error: Some(HandoverFailure::UrlRefused(problem)),
        };
    }
    let mut error = None;
    for attempt in 1..=settings.max_attempts {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = settings.key.sign(id, timestamp, body);
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
            .body(body.to_owned())
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
                    error: Some(HandoverFailure::Status(response.status().as_u16())),
                };
            }
            Ok(response) => error = Some(HandoverFailure::Status(response.status().as_u16())),
            Err(e) if e.is_timeout() => error = Some(HandoverFailure::TimedOut),
            // reqwest's errors name the URL, token and all: it is taken out here, at the source,
            // before the text reaches the audit row, the escalation row, the log or the reply.
            Err(e) => {
                let e = e.without_url();
                error = Some(HandoverFailure::Unreachable(crate::error::error_chain(&e)));
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
            key: SigningKey::from_secret(&SecretString::from(
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ))
            .unwrap(),
            timeout: Duration::from_secs(1),
            max_attempts: 1,
            retry_base: Duration::from_millis(1),
        };
        let debug = format!("{settings:?}");
        for secret in ["pa55", "T0K3N", "S3CR3T", "C2FVsBQ"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("https://desk.example/***"), "{debug}");
    }

    /// The words moved to `actions.j2` without changing: the person who escalated is told, word
    /// for word, what the operator's log and the escalation record say.
    #[test]
    fn the_built_in_words_of_every_failure_are_its_text() {
        let prompts = crate::prompts::Prompts::builtin().unwrap();
        for failure in [
            HandoverFailure::NotConfigured,
            HandoverFailure::UrlRefused(UrlProblem::NotAUrl),
            HandoverFailure::UrlRefused(UrlProblem::NoHost),
            HandoverFailure::UrlRefused(UrlProblem::NotHttps),
            HandoverFailure::Status(503),
            HandoverFailure::TimedOut,
            HandoverFailure::Unreachable("error sending request: connection refused".into()),
        ] {
            let summary = prompts
                .action_text(
                    "escalation_done",
                    &json!({ "reference": "ESC-1", "webhook": "pending", "webhook_error": failure.facts() }),
                )
                .unwrap();
            assert!(
                summary.contains(&format!("did not answer ({failure});")),
                "{summary}"
            );
        }
    }

    #[test]
    fn signature_is_standard_webhooks_v1() {
        // The Standard Webhooks reference vector (the specification's and the crate's own test).
        let key = SigningKey::from_secret(&SecretString::from(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ))
        .unwrap();
        assert_eq!(
            key.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                r#"{"email":"test@example.com","username":"test_user"}"#,
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        assert!(SigningKey::from_secret(&SecretString::from("not-whsec")).is_none());
    }
}
