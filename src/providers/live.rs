//! Live suppression look-ups: asking a provider, at check time, whether it would drop mail to an
//! address right now. Optional per provider (only where an API key is configured), all providers in
//! parallel, each bounded by one short timeout so the reply never waits past the chat's deadline.
//! A provider that does not answer in time, or answers with an error, is reported as such and the
//! check goes on with the stored delivery data.

use super::lookup::{LiveAnswer, Lookup, Unanswered};
use super::{mailgun, postmark, sendgrid, ses};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::config::ProvidersConfig;
use crate::diagnosis::{Check, FindingDraft, Outcome};
use crate::domain::email::EmailAddress;
use crate::domain::invitation::Suppression;

#[derive(Debug)]
enum Provider {
    Postmark(postmark::lookup::Postmark),
    Sendgrid(sendgrid::lookup::Sendgrid),
    Mailgun(mailgun::lookup::Mailgun),
    Ses(ses::lookup::Ses),
}

impl Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Postmark(_) => "Postmark",
            Provider::Sendgrid(_) => "SendGrid",
            Provider::Mailgun(_) => "Mailgun",
            Provider::Ses(_) => "Amazon SES",
        }
    }

    async fn lookup(&self, client: &reqwest::Client, email: &EmailAddress) -> Lookup {
        match self {
            Provider::Postmark(p) => p.lookup(client, email).await,
            Provider::Sendgrid(p) => p.lookup(client, email).await,
            Provider::Mailgun(p) => p.lookup(client, email).await,
            Provider::Ses(p) => p.lookup(client, email, Utc::now()).await,
        }
    }
}

/// The configured look-ups. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveLookups {
    providers: Arc<Vec<Provider>>,
    client: reqwest::Client,
    timeout: Duration,
    recent: Arc<Mutex<Vec<Recent>>>,
}

/// One check of an address in several workspaces asks the providers once, and so does a person
/// pressing a button twice: answers are reused for a few seconds.
const REUSE_FOR: Duration = Duration::from_secs(10);
const REMEMBER_AT_MOST: usize = 256;

#[derive(Debug)]
struct Recent {
    email_key: String,
    at: Instant,
    answers: Vec<LiveAnswer>,
}

impl LiveLookups {
    /// `None` when no provider has an API key configured.
    pub fn from_config(config: &ProvidersConfig) -> Option<Self> {
        let mut providers = Vec::new();
        if let Some(p) = config
            .postmark
            .as_ref()
            .and_then(postmark::lookup::Postmark::new)
        {
            providers.push(Provider::Postmark(p));
        }
        if let Some(p) = config
            .sendgrid
            .as_ref()
            .and_then(sendgrid::lookup::Sendgrid::new)
        {
            providers.push(Provider::Sendgrid(p));
        }
        if let Some(p) = config
            .mailgun
            .as_ref()
            .and_then(mailgun::lookup::Mailgun::new)
        {
            providers.push(Provider::Mailgun(p));
        }
        if let Some(p) = config.ses.as_ref().and_then(ses::lookup::Ses::new) {
            providers.push(Provider::Ses(p));
        }
        if providers.is_empty() {
            return None;
        }
        let timeout = config.lookup_timeout();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        Some(LiveLookups {
            providers: Arc::new(providers),
            client,
            timeout,
            recent: Arc::default(),
        })
    }

    /// Asks every provider at once; returns within the timeout whatever happens.
    #[tracing::instrument(name = "live_lookup", skip_all, fields(email = %email.masked()))]
    pub async fn check(&self, email: &EmailAddress) -> Vec<LiveAnswer> {
        if let Some(answers) = self.reuse(email) {
            return answers;
        }
        let answers = self.ask(email).await;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|r| r.at.elapsed() < REUSE_FOR && r.email_key != email.key());
        if recent.len() >= REMEMBER_AT_MOST {
            recent.remove(0);
        }
        recent.push(Recent {
            email_key: email.key().to_owned(),
            at: Instant::now(),
            answers: answers.clone(),
        });
        answers
    }

    fn reuse(&self, email: &EmailAddress) -> Option<Vec<LiveAnswer>> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent
            .iter()
            .find(|r| r.email_key == email.key() && r.at.elapsed() < REUSE_FOR)
            .map(|r| r.answers.clone())
    }

    async fn ask(&self, email: &EmailAddress) -> Vec<LiveAnswer> {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.providers.len() {
            let (providers, client, email, timeout) = (
                self.providers.clone(),
                self.client.clone(),
                email.clone(),
                self.timeout,
            );
            tasks.spawn(async move {
                let provider = &providers[index];
                let answer = tokio::time::timeout(timeout, provider.lookup(&client, &email)).await;
                (index, answer_of(provider.name(), answer))
            });
        }
        let mut answers = Vec::with_capacity(self.providers.len());
        while let Some(joined) = tasks.join_next().await {
            if let Ok(answer) = joined {
                answers.push(answer);
            }
        }
        // Config order, so the reply reads the same every time.
        answers.sort_by_key(|(index, _)| *index);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }
}

fn answer_of(
    source: &'static str,
    answer: Result<Lookup, tokio::time::error::Elapsed>,
) -> LiveAnswer {
    let (answer, outcome) = match answer {
        Ok(Ok(Some((reason, since)))) => (
            LiveAnswer::Suppressed {
                source,
                reason,
                since,
            },
            "suppressed",
        ),
        Ok(Ok(None)) => (LiveAnswer::Clear { source }, "clear"),
        Ok(Err(why)) => {
            // A reqwest timeout can beat ours by a hair; it is still "did not answer in time".
            let outcome = if why == Unanswered::TimedOut {
                "timeout"
            } else {
                "error"
            };
            (LiveAnswer::NoAnswer { source, why }, outcome)
        }
        Err(_) => (
            LiveAnswer::NoAnswer {
                source,
                why: Unanswered::TimedOut,
            },
            "timeout",
        ),
    };
    crate::app::metrics::record_lookup(source, outcome);
    if let LiveAnswer::NoAnswer { why, .. } = &answer {
        tracing::warn!(provider = source, why = %why, "live suppression look-up failed");
    }
    answer
}

/// Adds what providers said to the stored suppressions (a live "suppressed" counts like a stored
/// one) and returns the findings that say which provider answered what.
pub fn apply(
    answers: &[LiveAnswer],
    suppressions: &mut Vec<Suppression>,
    now: DateTime<Utc>,
) -> Vec<FindingDraft> {
    let mut drafts = Vec::new();
    for answer in answers {
        match answer {
            LiveAnswer::Suppressed {
                source,
                reason,
                since,
            } => {
                if !suppressions.iter().any(|s| s.reason == *reason) {
                    suppressions.insert(
                        0,
                        Suppression {
                            reason: *reason,
                            at: since.unwrap_or(now),
                        },
                    );
                }
                drafts.push(FindingDraft::new(
                    Check::Delivery,
                    Outcome::LiveSuppressed,
                    json!({
                        "source": source,
                        "reason": reason.as_str(),
                        "since": since.map(|t| t.to_rfc3339()),
                    }),
                ));
            }
            LiveAnswer::Clear { source } => drafts.push(FindingDraft::new(
                Check::Delivery,
                Outcome::LiveClear,
                json!({ "source": source }),
            )),
            LiveAnswer::NoAnswer { source, why } => drafts.push(FindingDraft::new(
                Check::Delivery,
                Outcome::LiveUnanswered,
                json!({ "source": source, "why": why.as_str(), "status": why.status() }),
            )),
        }
    }
    drafts
}
