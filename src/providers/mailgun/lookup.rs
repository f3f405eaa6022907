//! Mailgun: the sending domain's bounce, complaint and unsubscribe tables
//! (`GET /v3/{domain}/{bounces,complaints,unsubscribes}/{address}`; 404 means not listed).

use secrecy::{ExposeSecret, SecretString};

use crate::app::config::MailgunConfig;
use crate::domain::email::EmailAddress;
use crate::domain::invitation::SuppressionReason;
use crate::providers::lookup::{json_body, path_segment, send, status_error, Lookup, Unanswered};

#[derive(Debug)]
pub struct Mailgun {
    key: SecretString,
    domain: String,
    base: String,
}

const TABLES: [(&str, SuppressionReason); 3] = [
    ("bounces", SuppressionReason::HardBounce),
    ("complaints", SuppressionReason::SpamComplaint),
    ("unsubscribes", SuppressionReason::Unsubscribe),
];

impl Mailgun {
    pub fn new(config: &MailgunConfig) -> Option<Self> {
        Some(Mailgun {
            key: config.api_key.clone()?,
            domain: config.domain.clone()?,
            base: config.api_base.trim_end_matches('/').to_owned(),
        })
    }

    async fn table(
        &self,
        client: &reqwest::Client,
        table: &str,
        email: &EmailAddress,
    ) -> Result<Option<Option<chrono::DateTime<chrono::Utc>>>, Unanswered> {
        let request = client
            .get(format!(
                "{}/v3/{}/{table}/{}",
                self.base,
                self.domain,
                path_segment(email)
            ))
            .basic_auth("api", Some(self.key.expose_secret()));
        let response = send(request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(status_error(&response));
        }
        let body = json_body(response).await?;
        // created_at is RFC 2822 ("Fri, 21 Oct 2011 11:02:55 UTC").
        let since = body["created_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc2822(&t.replace(" UTC", " +0000")).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        Ok(Some(since))
    }

    pub async fn lookup(&self, client: &reqwest::Client, email: &EmailAddress) -> Lookup {
        let (bounces, complaints, unsubscribes) = tokio::join!(
            self.table(client, TABLES[0].0, email),
            self.table(client, TABLES[1].0, email),
            self.table(client, TABLES[2].0, email),
        );
        for (found, (_, reason)) in [bounces?, complaints?, unsubscribes?]
            .into_iter()
            .zip(TABLES)
        {
            if let Some(since) = found {
                return Ok(Some((reason, since)));
            }
        }
        Ok(None)
    }
}
