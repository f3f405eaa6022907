//! What every provider's suppression look-up shares: the shape of an answer and the HTTP plumbing.
//! Each provider's own look-up is `<name>/lookup.rs`; [`super::live`] asks them all at check time.

use chrono::{DateTime, Utc};

use crate::domain::email::EmailAddress;
use crate::domain::invitation::SuppressionReason;

/// What one provider said about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveAnswer {
    Suppressed {
        source: &'static str,
        reason: SuppressionReason,
        since: Option<DateTime<Utc>>,
    },
    Clear {
        source: &'static str,
    },
    /// No usable answer: `why` says what happened (timed out, HTTP 503, unreadable reply).
    NoAnswer {
        source: &'static str,
        why: Unanswered,
    },
}

/// Why a provider gave no usable answer. Data for the finding (`findings.j2` says it in words);
/// the `Display` text is for the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unanswered {
    #[error("timed out")]
    TimedOut,
    #[error("could not connect")]
    CouldNotConnect,
    #[error("request failed")]
    RequestFailed,
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("sent a reply that is not the expected JSON")]
    NotJson,
    #[error("sent a reply that is not a list")]
    NotAList,
    #[error("sent a reply without a Suppressions list")]
    NoSuppressionsList,
    #[error("sent a reply without a suppression reason")]
    NoSuppressionReason,
    #[error("has an unusable api_base")]
    UnusableApiBase,
}

impl Unanswered {
    /// The name the finding's facts carry (`why`).
    pub fn as_str(self) -> &'static str {
        match self {
            Unanswered::TimedOut => "timed_out",
            Unanswered::CouldNotConnect => "could_not_connect",
            Unanswered::RequestFailed => "request_failed",
            Unanswered::Status(_) => "http_status",
            Unanswered::NotJson => "not_json",
            Unanswered::NotAList => "not_a_list",
            Unanswered::NoSuppressionsList => "no_suppressions_list",
            Unanswered::NoSuppressionReason => "no_suppression_reason",
            Unanswered::UnusableApiBase => "unusable_api_base",
        }
    }

    /// The HTTP status the provider answered with, for [`Unanswered::Status`].
    pub fn status(self) -> Option<u16> {
        match self {
            Unanswered::Status(status) => Some(status),
            _ => None,
        }
    }
}

/// One provider's answer before the timeout is applied: `Ok(None)` means not suppressed.
pub(crate) type Lookup = Result<Option<(SuppressionReason, Option<DateTime<Utc>>)>, Unanswered>;

/// The reply of a look-up request, or why there is none.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Unanswered> {
    request.send().await.map_err(|e| {
        if e.is_timeout() {
            Unanswered::TimedOut
        } else if e.is_connect() {
            Unanswered::CouldNotConnect
        } else {
            Unanswered::RequestFailed
        }
    })
}

pub(crate) fn status_error(response: &reqwest::Response) -> Unanswered {
    Unanswered::Status(response.status().as_u16())
}

pub(crate) async fn json_body(
    response: reqwest::Response,
) -> Result<serde_json::Value, Unanswered> {
    response.json().await.map_err(|_| Unanswered::NotJson)
}

/// The address as it goes into a URL path segment.
pub(crate) fn path_segment(email: &EmailAddress) -> String {
    let mut out = String::new();
    for byte in email.key().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
