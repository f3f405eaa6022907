//! Postmark: the outbound stream's suppression list
//! (`GET /message-streams/outbound/suppressions/dump?EmailAddress=...`).

use secrecy::{ExposeSecret, SecretString};

use crate::app::config::PostmarkConfig;
use crate::domain::email::EmailAddress;
use crate::domain::invitation::SuppressionReason;
use crate::providers::lookup::{json_body, send, status_error, Lookup, Unanswered};

#[derive(Debug)]
pub struct Postmark {
    token: SecretString,
    base: String,
}

impl Postmark {
    pub fn new(config: &PostmarkConfig) -> Option<Self> {
        Some(Postmark {
            token: config.api_token.clone()?,
            base: config.api_base.trim_end_matches('/').to_owned(),
        })
    }

    pub async fn lookup(&self, client: &reqwest::Client, email: &EmailAddress) -> Lookup {
        let request = client
            .get(format!(
                "{}/message-streams/outbound/suppressions/dump",
                self.base
            ))
            .query(&[("EmailAddress", email.key())])
            .header("Accept", "application/json")
            .header("X-Postmark-Server-Token", self.token.expose_secret());
        let response = send(request).await?;
        if !response.status().is_success() {
            return Err(status_error(&response));
        }
        let body = json_body(response).await?;
        let entries = body["Suppressions"]
            .as_array()
            .ok_or(Unanswered::NoSuppressionsList)?;
        let Some(entry) = entries.iter().find(|e| {
            e["EmailAddress"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(email.key()))
        }) else {
            return Ok(None);
        };
        let reason = match entry["SuppressionReason"].as_str() {
            Some("HardBounce") => SuppressionReason::HardBounce,
            Some("SpamComplaint") => SuppressionReason::SpamComplaint,
            _ => SuppressionReason::Manual,
        };
        let since = entry["CreatedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        Ok(Some((reason, since)))
    }
}
