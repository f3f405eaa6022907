//! Every configured provider's webhook verifier, built once at start-up.

use std::sync::Arc;

use super::webhook::WebhookConfigError;
use super::{mailgun, postmark, sendgrid, ses};
use crate::config::ProvidersConfig;

/// The verifiers of every configured provider; `None` where a provider is not configured.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub postmark: Option<Arc<postmark::webhook::Postmark>>,
    pub sendgrid: Option<Arc<sendgrid::webhook::Sendgrid>>,
    pub mailgun: Option<Arc<mailgun::webhook::Mailgun>>,
    pub ses: Option<Arc<ses::webhook::Ses>>,
}

impl Webhooks {
    /// Checks every configured provider's keys and patterns once, at start-up.
    pub fn from_config(config: &ProvidersConfig) -> Result<Self, WebhookConfigError> {
        Ok(Webhooks {
            postmark: config
                .postmark
                .as_ref()
                .map(|c| Arc::new(postmark::webhook::Postmark::new(c))),
            sendgrid: config
                .sendgrid
                .as_ref()
                .map(sendgrid::webhook::Sendgrid::new)
                .transpose()?
                .map(Arc::new),
            mailgun: config
                .mailgun
                .as_ref()
                .map(|c| Arc::new(mailgun::webhook::Mailgun::new(c))),
            ses: config
                .ses
                .as_ref()
                .map(ses::webhook::Ses::new)
                .transpose()?
                .map(Arc::new),
        })
    }
}
