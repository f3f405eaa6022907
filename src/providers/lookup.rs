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
        why: String,
    },
}

/// One provider's answer before the timeout is applied: `Ok(None)` means not suppressed.
pub(crate) type Lookup = Result<Option<(SuppressionReason, Option<DateTime<Utc>>)>, String>;

/// The reply of a look-up request, or why there is none.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    request.send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "could not connect".to_owned()
        } else {
            "request failed".to_owned()
        }
    })
}

pub(crate) fn status_error(response: &reqwest::Response) -> String {
    format!("answered HTTP {}", response.status().as_u16())
}

pub(crate) async fn json_body(response: reqwest::Response) -> Result<serde_json::Value, String> {
    response
        .json()
        .await
        .map_err(|_| "sent a reply that is not the expected JSON".to_owned())
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
