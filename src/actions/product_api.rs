//! The product's API, as the bot calls it when `[actions] backend = "product"`: the contract (the
//! two routes the product implements, their bodies and answers) and one signed, bounded round of
//! tries.
//!
//! Every try is signed the Standard Webhooks way with `[actions.product] secret` (the same scheme
//! as the escalation webhook, [`super::handover::SigningKey`]): `webhook-id` is the action's
//! idempotency key, the same on every try; `webhook-timestamp` and `webhook-signature` are fresh
//! each time. A timeout, a connection error or a 5xx is tried again with the same key, with
//! backoff, up to `max_attempts`; a 4xx never is (asking again will not change the product's
//! mind). An answer the bot cannot read is not tried again either: the product did answer.
//!
//! What the product returns as a secret (an activation code or link) is held in a
//! [`SecretString`] from the moment it is parsed; neither it nor any body is ever logged, and a
//! parse error is described by its kind and position only (serde's messages can quote values).

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::handover::SigningKey;
use crate::config::ProductActionsConfig;

/// The route that resends an invitation, under `base_url`.
pub const RESEND_PATH: &str = "/invitations/resend";
/// The route that issues an activation code (or link), under `base_url`.
pub const ACTIVATION_CODES_PATH: &str = "/activation-codes";

/// Most of an answer the bot reads; a longer one is not the contract.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most characters of a product's refusal passed on to the person who pressed.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// `[actions.product]`, checked at start-up (`Config::validate`).
#[derive(Clone)]
pub struct ProductApi {
    base_url: String,
    key: SigningKey,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub retry_base: Duration,
}

impl std::fmt::Debug for ProductApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductApi")
            .field("base_url", &crate::urls::redacted_endpoint(&self.base_url))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl ProductApi {
    /// `None` when a URL or the secret is missing or not valid (start-up refused those already
    /// when the backend is `product`).
    pub fn from_config(config: &ProductActionsConfig) -> Option<Self> {
        Some(ProductApi {
            base_url: config.base_url.clone()?.trim_end_matches('/').to_owned(),
            key: SigningKey::from_secret(config.secret.as_ref()?)?,
            timeout: Duration::from_millis(config.timeout_ms),
            max_attempts: config.max_attempts.max(1),
            retry_base: Duration::from_millis(config.retry_base_ms),
        })
    }

    /// The longest one round of tries can take: every try's deadline and every backoff between,
    /// plus a margin. A caller's claim on the call lasts this long.
    pub fn round_deadline(&self) -> Duration {
        let backoffs: Duration = (1..self.max_attempts).map(|n| self.backoff(n)).sum();
        self.timeout * self.max_attempts + backoffs + Duration::from_secs(5)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        // Capped: ten tries must not wait minutes between them.
        (self.retry_base * 2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(Duration::from_secs(5))
    }

    /// POSTs `body` to `path` under the idempotency key `key`, trying as the module says, and
    /// reads a 2xx answer as `T`.
    pub(crate) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        client: &reqwest::Client,
        path: &str,
        key: &str,
        body: &str,
    ) -> CallOutcome<T> {
        let url = format!("{}{path}", self.base_url);
        let mut last = CallFailure::TimedOut;
        for attempt in 1..=self.max_attempts {
            let timestamp = Utc::now().timestamp();
            let signature = self.key.sign(key, timestamp, body);
            let sent = client
                .post(&url)
                .timeout(self.timeout)
                .header("content-type", "application/json")
                .header(standardwebhooks::HEADER_WEBHOOK_ID, key)
                .header(
                    standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                    timestamp.to_string(),
                )
                .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
                .body(body.to_owned())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status();
                    let answer = read_bounded(response).await;
                    match answer {
                        Err(failure) => last = failure,
                        Ok(bytes) if status.is_success() => {
                            return match serde_json::from_slice::<T>(&bytes) {
                                Ok(answer) => CallOutcome::Answered {
                                    answer,
                                    attempts: attempt,
                                },
                                Err(error) => CallOutcome::Garbled {
                                    status: status.as_u16(),
                                    problem: parse_problem(&error),
                                    attempts: attempt,
                                },
                            };
                        }
                        Ok(bytes) if status.is_server_error() => {
                            last = CallFailure::Status(status.as_u16());
                            drop(bytes);
                        }
                        // 4xx, and a redirect (not followed: it would take the signed body
                        // elsewhere): asking again will not change it.
                        Ok(bytes) => {
                            return CallOutcome::Refused {
                                status: status.as_u16(),
                                message: refusal_message(&bytes),
                                attempts: attempt,
                            };
                        }
                    }
                }
                Err(error) if error.is_timeout() => last = CallFailure::TimedOut,
                // reqwest's errors name the URL: taken out here, before the text goes anywhere.
                Err(error) => {
                    last = CallFailure::Unreachable(crate::error::error_chain(&error.without_url()))
                }
            }
            if attempt < self.max_attempts {
                tracing::warn!(attempt, failure = %last, "the product did not answer; trying again with the same key");
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        CallOutcome::Unanswered {
            last,
            attempts: self.max_attempts,
        }
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`] of an answer (its deadline is the try's).
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, CallFailure> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    // Enough to tell it is not the contract; the rest is not read.
                    bytes.extend_from_slice(&chunk[..MAX_ANSWER_BYTES - bytes.len()]);
                    return Ok(bytes);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(error) if error.is_timeout() => return Err(CallFailure::TimedOut),
            Err(error) => {
                return Err(CallFailure::Unreachable(crate::error::error_chain(
                    &error.without_url(),
                )))
            }
        }
    }
}

/// A serde error by kind and position: its message can quote the value it choked on (a code).
fn parse_problem(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "JSON not in the contract's shape",
        serde_json::error::Category::Eof => "JSON cut short",
    };
    format!("{kind} (line {}, column {})", error.line(), error.column())
}

/// The product's own words from a refusal: `message`, `error` or `detail` of a JSON body, or a
/// short plain-text body; one line, no control or direction-changing characters, at most
/// [`MAX_MESSAGE_CHARS`]. The chat edge escapes it like every other text it shows.
fn refusal_message(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(object)) => ["message", "error", "detail", "title"]
            .iter()
            .find_map(|field| {
                object
                    .get(*field)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })?,
        Ok(serde_json::Value::String(text)) => text,
        Ok(_) => return None,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let cleaned = clean_message(&text);
    (!cleaned.is_empty()).then_some(cleaned)
}

/// One line of at most [`MAX_MESSAGE_CHARS`] characters, without control or direction-changing
/// characters.
pub(crate) fn clean_message(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        {
            continue;
        }
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == MAX_MESSAGE_CHARS {
            out.truncate(out.trim_end().len());
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_owned()
}

/// How one round of tries ended.
pub(crate) enum CallOutcome<T> {
    /// A 2xx answer in the contract's shape.
    Answered { answer: T, attempts: u32 },
    /// A 4xx (or a redirect): the product refused; its message, if it gave one, cleaned.
    Refused {
        status: u16,
        message: Option<String>,
        attempts: u32,
    },
    /// No answer to tell by on any try: it may or may not have been done.
    Unanswered { last: CallFailure, attempts: u32 },
    /// A 2xx answer that is not the contract: something happened, the bot cannot tell what.
    Garbled {
        status: u16,
        problem: String,
        attempts: u32,
    },
}

/// Why a try got no answer to tell by. The `Display` text goes to the operator (log, audit row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallFailure {
    #[error("timed out")]
    TimedOut,
    #[error("HTTP {0}")]
    Status(u16),
    /// The HTTP client's error chain, the URL taken out.
    #[error("unreachable: {0}")]
    Unreachable(String),
}

/// Who pressed, as the product is told.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestedBy {
    /// The bot's id of the person who asked: `discord:<user id>`, or `operator` for the CLI.
    #[schema(example = "discord:80351110224678912")]
    pub id: String,
    /// Their display name, for the product's own records.
    #[schema(example = "Ada")]
    pub name: String,
}

/// The body of both routes (`POST {base_url}/invitations/resend`, `POST {base_url}/activation-codes`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductActionRequest {
    /// The workspace's slug, as the bot knows it (the product's own, from its data).
    #[schema(example = "acme")]
    pub workspace: String,
    /// The member's address, normalized (lower case, trimmed).
    #[schema(example = "jane@corp.example")]
    pub email: String,
    /// The same as the `webhook-id` header and the same on every try of this action (retries, a
    /// second press of the same button, another bot replica): do the action once per key, and
    /// answer a repeated key with the first answer.
    #[schema(example = "RSD-7F3K9Q-0d1e2f3a4b5c6d7e")]
    pub idempotency_key: String,
    /// Who pressed the button, already authorized by the bot.
    pub requested_by: RequestedBy,
}

/// The answer to `POST {base_url}/invitations/resend` (2xx).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResendAnswer {
    /// When the product sent the email (RFC 3339).
    pub sent_at: DateTime<Utc>,
    /// When the new invitation's link stops working (RFC 3339).
    pub expires_at: DateTime<Utc>,
    /// The id of the email the product sent, as its email provider will name it in delivery
    /// events (the `Message-ID` without angle brackets, or the provider's own id): the bot stores
    /// it so that bounces and deliveries reported by the provider attach to this invitation.
    #[schema(example = "0100018c-7f3a-4b6e@email.amazonses.com")]
    pub message_id: String,
}

/// The answer to `POST {base_url}/activation-codes` (2xx): a code, or a link where the product
/// only has links. The bot shows it once, only to the admin who asked, and never stores or logs it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ActivationAnswer {
    Code {
        /// The one-time code the person types on the product's activation page.
        #[schema(value_type = String, example = "K7QF-9MZX-2H")]
        code: SecretString,
        /// When the code stops working (RFC 3339).
        expires_at: DateTime<Utc>,
    },
    Link {
        /// A one-time activation link for the person; opening it uses it up, so the admin is
        /// told not to.
        #[schema(value_type = String, example = "https://app.example.com/activate?token=...")]
        activation_url: SecretString,
        /// When the link stops working (RFC 3339), if it does.
        #[serde(default)]
        expires_at: Option<DateTime<Utc>>,
    },
}

impl std::fmt::Debug for ActivationAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActivationAnswer::Code { expires_at, .. } => {
                write!(f, "ActivationAnswer::Code(***, expires {expires_at})")
            }
            ActivationAnswer::Link { expires_at, .. } => {
                write!(f, "ActivationAnswer::Link(***, expires {expires_at:?})")
            }
        }
    }
}

/// A product's refusal (4xx), as the bot reads it: any of `message`, `error`, `detail` or
/// `title`, or a plain-text body, is passed on to the person who pressed (one line, at most 300
/// characters, escaped).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductRefusal {
    #[schema(example = "This invitation was revoked by an owner.")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_clean_line_of_bounded_length() {
        assert_eq!(
            refusal_message(br#"{"message":"  Seat\nlimit\u202e reached  "}"#).as_deref(),
            Some("Seat limit reached")
        );
        assert_eq!(
            refusal_message(br#"{"error":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(
            refusal_message(b"plain words").as_deref(),
            Some("plain words")
        );
        assert_eq!(refusal_message(br#"{"code":42}"#), None);
        assert_eq!(refusal_message(b""), None);
        let long = "x".repeat(1000);
        let cut = clean_message(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn a_parse_problem_never_quotes_the_answer() {
        let error = serde_json::from_str::<ResendAnswer>(r#"{"sent_at":"SECRET-VALUE"}"#)
            .err()
            .unwrap();
        let problem = parse_problem(&error);
        assert!(!problem.contains("SECRET"), "{problem}");
        let error = serde_json::from_str::<ActivationAnswer>(r#"{"code":"K7QF-9MZX-2H"}"#)
            .err()
            .unwrap();
        assert!(!parse_problem(&error).contains("K7QF"));
    }

    #[test]
    fn both_forms_of_activation_answer_are_read_and_neither_is_printed() {
        let code: ActivationAnswer =
            serde_json::from_str(r#"{"code":"K7QF-9MZX-2H","expires_at":"2026-12-01T10:00:00Z"}"#)
                .unwrap();
        assert!(matches!(code, ActivationAnswer::Code { .. }));
        assert!(!format!("{code:?}").contains("K7QF"));
        let link: ActivationAnswer =
            serde_json::from_str(r#"{"activation_url":"https://app.example/a?t=SECRET"}"#).unwrap();
        assert!(matches!(
            link,
            ActivationAnswer::Link {
                expires_at: None,
                ..
            }
        ));
        assert!(!format!("{link:?}").contains("SECRET"));
    }
}
