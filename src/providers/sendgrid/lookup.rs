//! SendGrid: the bounce, spam report and invalid address lists
//! (`GET /v3/suppression/{bounces,spam_reports,invalid_emails}/{email}`), asked together.

use secrecy::{ExposeSecret, SecretString};

use crate::app::config::SendgridConfig;
use crate::domain::email::EmailAddress;
use crate::domain::invitation::SuppressionReason;
use crate::providers::lookup::{json_body, path_segment, send, status_error, Lookup, Unanswered};

#[derive(Debug)]
pub struct Sendgrid {
    key: SecretString,
    base: String,
}

const LISTS: [(&str, SuppressionReason); 3] = [
    ("bounces", SuppressionReason::HardBounce),
    ("spam_reports", SuppressionReason::SpamComplaint),
    ("invalid_emails", SuppressionReason::HardBounce),
];

impl Sendgrid {
    pub fn new(config: &SendgridConfig) -> Option<Self> {
        Some(Sendgrid {
            key: config.api_key.clone()?,
            base: config.api_base.trim_end_matches('/').to_owned(),
        })
    }

    async fn list(
        &self,
        client: &reqwest::Client,
        list: &str,
        email: &EmailAddress,
    ) -> Result<Option<i64>, Unanswered> {
        let request = client
            .get(format!(
                "{}/v3/suppression/{list}/{}",
                self.base,
                path_segment(email)
            ))
            .bearer_auth(self.key.expose_secret());
        let response = send(request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(&response));
        }
        // An array of entries; empty when the address is not on the list.
        let body = json_body(response).await?;
        let entries = body.as_array().ok_or(Unanswered::NotAList)?;
        Ok(entries.first().map(|e| e["created"].as_i64().unwrap_or(0)))
    }

    pub async fn lookup(&self, client: &reqwest::Client, email: &EmailAddress) -> Lookup {
        let (bounces, spam, invalid) = tokio::join!(
            self.list(client, LISTS[0].0, email),
            self.list(client, LISTS[1].0, email),
            self.list(client, LISTS[2].0, email),
        );
        for (found, (_, reason)) in [bounces?, spam?, invalid?].into_iter().zip(LISTS) {
            if let Some(created) = found {
                let since = chrono::DateTime::from_timestamp(created, 0).filter(|_| created > 0);
                return Ok(Some((reason, since)));
            }
        }
        Ok(None)
    }
}
