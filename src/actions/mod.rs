//! The actions a verdict offers — resend the invitation, issue an activation code, escalate to human
//! support — plus redemption and the audit log. Each action authorizes itself when it runs, is safe to
//! press twice, respects limits counted in the database, and leaves one audit row.

mod activation;
mod audit;
mod authz;
mod check;
mod delegated;
mod escalate;
mod gate;
mod handover;
pub mod product_api;
mod resend;
mod throttle;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use activation::{ActivationCode, RedeemOutcome};
pub use audit::AuditRecord;
pub use authz::{Actor, Authorizer, Permission};
pub use handover::WebhookSettings;
pub use product_api::ProductApi;
pub use throttle::Throttle;

use std::sync::Arc;

use crate::config::Config;
use crate::diagnosis::Action;
use crate::domain::AuditReason;
use crate::engine::Engine;
use crate::mail::Mailer;
use crate::prompts::Prompts;
use crate::store::{ResendLimits, Store};

/// The actions a verdict offers, as one service over the engine (which decides what is offered)
/// and the store (limits, locks, idempotency keys, audit). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Actions {
    engine: Engine,
    settings: Arc<ActionSettings>,
    mailer: Mailer,
    http: reqwest::Client,
    redeem_guard: Arc<activation::RedeemGuard>,
}

impl Actions {
    pub fn new(engine: Engine, settings: ActionSettings, mailer: Mailer) -> Self {
        Actions {
            engine,
            mailer,
            http: handover::client(),
            redeem_guard: Arc::new(activation::RedeemGuard::new(
                settings.redeem_attempts_per_hour,
            )),
            settings: Arc::new(settings),
        }
    }

    /// Deletes button records and audit rows past their retention; returns (buttons, audit rows).
    pub async fn prune_old_rows(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), crate::error::EngineError> {
        let buttons = self
            .store()
            .prune_buttons(now - self.settings.button_retention)
            .await?;
        let audit = self
            .store()
            .prune_audit(now - self.settings.audit_retention)
            .await?;
        Ok((buttons, audit))
    }

    /// The checks these actions are offered by.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn settings(&self) -> &ActionSettings {
        &self.settings
    }

    fn action_settings(&self) -> &ActionSettings {
        &self.settings
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }

    fn prompts(&self) -> &Prompts {
        self.engine.prompts()
    }

    fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// What came of an action.
// One per action, returned once and never kept in a collection: boxing `Done` to shrink the other
// variant would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ActionOutcome {
    Done(ActionDone),
    Refused(Refusal),
}

impl ActionOutcome {
    pub fn is_done(&self) -> bool {
        matches!(self, ActionOutcome::Done(_))
    }
}

#[derive(Debug)]
pub struct ActionDone {
    pub action: Action,
    /// Ties the reply, the audit row and the log lines together (`RSD-...`, `ACT-...`, `ESC-...`).
    pub reference: String,
    /// One or two sentences for the person who acted.
    pub summary: String,
    /// Only for `issue_activation_code`: show it to the admin who asked, and to nobody else.
    pub activation_code: Option<IssuedCode>,
    /// Only for `escalate`: what the chat layer posts to the support channel.
    pub escalation: Option<Escalation>,
}

/// A freshly issued activation code. The plain code exists only here, never in storage or logs.
pub struct IssuedCode {
    /// The code, or for [`IssuedForm::ProductLink`] the link.
    pub code: SecretString,
    /// `None` only for a product's link that does not say when it expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub form: IssuedForm,
}

/// Who issued the code and in what form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuedForm {
    /// The bot's own code, redeemed at `/api/activate`.
    Code,
    /// A code from the product's API.
    ProductCode,
    /// A one-time link from the product's API (a product that only has links).
    ProductLink,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IssuedCode({:?}, ***, expires {:?})",
            self.form, self.expires_at
        )
    }
}

/// The hand-over to human support, with everything already known.
#[derive(Debug, Clone, Serialize)]
pub struct Escalation {
    pub reference: String,
    pub workspace: String,
    pub email: String,
    /// The check's JSON (verdict, member, suggestions, findings, actions).
    pub diagnosis: serde_json::Value,
    /// "resend_invite by Ada at 2026-11-26 10:00 UTC (RSD-...)", oldest first.
    pub actions_taken: Vec<String>,
    pub requested_by: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The actor lacks the permission (in that workspace).
    Forbidden,
    /// The verdict does not offer this action (active member, suppressed address, too recent...).
    NotOffered,
    /// A rate limit holds; the message says when the next attempt is allowed.
    RateLimited,
    /// The same request (a double click, a replayed button) was already handled.
    AlreadyDone,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::Forbidden,
        RefusalReason::NotOffered,
        RefusalReason::RateLimited,
        RefusalReason::AlreadyDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Forbidden => "forbidden",
            RefusalReason::NotOffered => "not_offered",
            RefusalReason::RateLimited => "rate_limited",
            RefusalReason::AlreadyDone => "already_done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl From<RefusalReason> for AuditReason {
    fn from(reason: RefusalReason) -> Self {
        match reason {
            RefusalReason::Forbidden => AuditReason::Forbidden,
            RefusalReason::NotOffered => AuditReason::NotOffered,
            RefusalReason::RateLimited => AuditReason::RateLimited,
            RefusalReason::AlreadyDone => AuditReason::AlreadyDone,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

/// Limits and lifetimes of the actions, from config.
#[derive(Debug, Clone)]
pub struct ActionSettings {
    pub activation_url: String,
    pub resend_limits: ResendLimits,
    pub activation_code_ttl: chrono::Duration,
    pub activation_codes_per_member_per_day: u32,
    pub activation_code_max_attempts: u32,
    /// Redemptions tried per workspace and address per hour, right or wrong.
    pub redeem_attempts_per_hour: u32,
    /// Button records and audit rows older than these are deleted in the background.
    pub button_retention: chrono::Duration,
    pub audit_retention: chrono::Duration,
    pub escalation_dedupe: chrono::Duration,
    pub smtp_max_attempts: u32,
    /// First backoff between SMTP attempts; doubles each time.
    pub smtp_retry_base: std::time::Duration,
    /// How long a sender's claim on an outbox row holds unless renewed. The sender renews it
    /// while it sends; a row whose lease lapsed was left by a process that is gone and is taken
    /// over by the next retry round.
    pub outbox_lease: chrono::Duration,
    /// How often a sender renews its lease while it sends (well under `outbox_lease`).
    pub outbox_lease_renewal: std::time::Duration,
    /// A live activation code younger than this is not replaced: a second request is told who
    /// issued it and when (two admins pressing at once would otherwise void each other's code).
    pub activation_code_reissue_after: chrono::Duration,
    pub webhook: Option<WebhookSettings>,
    /// The product's API when `[actions] backend = "product"`: resends and activation codes are
    /// asked of it instead of done by the bot. `None` for the built-in backend.
    pub product: Option<product_api::ProductApi>,
}

impl From<&Config> for ActionSettings {
    fn from(config: &Config) -> Self {
        let actions = &config.actions;
        Self {
            activation_url: actions.activation_url.clone(),
            resend_limits: ResendLimits {
                min_interval: chrono::Duration::minutes(i64::from(
                    actions.resend_min_interval_minutes,
                )),
                per_member_per_day: actions.resends_per_member_per_day,
                per_actor_per_hour: actions.resends_per_actor_per_hour,
            },
            activation_code_ttl: chrono::Duration::hours(i64::from(
                actions.activation_code_ttl_hours,
            )),
            activation_codes_per_member_per_day: actions.activation_codes_per_member_per_day,
            activation_code_max_attempts: actions.activation_code_max_attempts,
            redeem_attempts_per_hour: actions.redeem_attempts_per_hour,
            button_retention: chrono::Duration::days(i64::from(config.retention.button_days)),
            audit_retention: chrono::Duration::days(i64::from(config.retention.audit_days)),
            escalation_dedupe: chrono::Duration::minutes(i64::from(
                actions.escalation_dedupe_minutes,
            )),
            smtp_max_attempts: config.smtp.max_attempts,
            smtp_retry_base: std::time::Duration::from_millis(config.smtp.retry_base_ms),
            outbox_lease: chrono::Duration::milliseconds(
                i64::try_from(config.smtp.send_lease_ms).unwrap_or(i64::MAX),
            ),
            outbox_lease_renewal: std::time::Duration::from_millis(config.smtp.send_lease_renew_ms),
            activation_code_reissue_after: chrono::Duration::seconds(i64::from(
                actions.activation_code_reissue_seconds,
            )),
            webhook: WebhookSettings::from_config(&config.escalation),
            product: (config.actions.backend == crate::config::ActionsBackend::Product)
                .then(|| product_api::ProductApi::from_config(&config.actions.product))
                .flatten(),
        }
    }
}

/// A short reference with a prefix naming the action, e.g. `ESC-7F3K9Q`.
pub(crate) fn new_reference(prefix: &str) -> String {
    format!("{prefix}-{}", crate::random::symbols(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_round_trips_and_is_audited_under_its_own_name() {
        for reason in RefusalReason::ALL {
            assert_eq!(RefusalReason::parse(reason.as_str()), Some(reason));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            assert_eq!(
                serde_json::from_str::<RefusalReason>(&json).unwrap(),
                reason
            );
            assert_eq!(AuditReason::from(reason).as_str(), reason.as_str());
        }
        assert_eq!(RefusalReason::parse("smtp_temporary"), None);
    }
}
