//! Resend and activation codes carried out by the product's API (`[actions] backend = "product"`).
//!
//! Everything around the call stays the bot's, exactly as for the built-in actions: the permission
//! at press time, the verdict, the rate limits and the per-member lock (the shared [`Actions::gate`]),
//! the audit row and the reply. Only the doing moves to the product.
//!
//! Exactly once: the request and its idempotency key are committed before the first try
//! ([`crate::store::Store::begin_product_call`]); every try sends that key, and so does a second
//! press of the same button (or the same press through another replica) when the first one's
//! outcome is unknown. The product does the action once per key. While one caller tries, it holds
//! the call under a lease, so no other asks at the same time.
//!
//! The code or link the product returns is put in a [`secrecy::SecretString`] as it is parsed and
//! handed to the reply: it is never stored, logged or audited.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::{minute, AuditEvent};
use super::gate::Held;
use super::product_api::{
    ActivationAnswer, CallOutcome, ProductActionRequest, ProductApi, RequestedBy, ResendAnswer,
    ACTIVATION_CODES_PATH, RESEND_PATH,
};
use super::{
    new_reference, ActionDone, ActionOutcome, ActionSettings, Actions, Actor, IssuedCode,
    IssuedForm,
};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::{ActionFailure, EngineError};
use crate::store::{
    NewProductCall, ProductCall, ProductCallEnd, ProductCallLimits, ProductCallStart,
};

/// A call this process holds, with the member it is about and who pressed this time (the audit
/// row names them; the product is told who asked first, so every try's body is the same).
struct OpenCall {
    call: ProductCall,
    member_id: i64,
    pressed_by: (String, String),
}

/// What one kind of call makes of the product's answer; everything else about a call is shared
/// ([`Actions::through_product`]).
pub(super) trait ProductAnswer: serde::de::DeserializeOwned {
    const ACTION: Action;
    /// The route under `[actions.product] base_url`.
    const PATH: &'static str;
    fn limits(settings: &ActionSettings) -> ProductCallLimits;
    /// The call's end as recorded.
    fn end(&self) -> ProductCallEnd<'_>;
    /// The audit row's detail (never the code or link itself).
    fn audit_detail(&self) -> String;
    fn log_done(&self, reference: &str, attempts: u32);
    /// The reply's template, its words beside `email` and `reference`, and the code to show.
    fn reply(self) -> (&'static str, serde_json::Value, Option<IssuedCode>);
}

impl ProductAnswer for ResendAnswer {
    const ACTION: Action = Action::ResendInvite;
    const PATH: &'static str = RESEND_PATH;

    fn limits(settings: &ActionSettings) -> ProductCallLimits {
        ProductCallLimits::Resend(settings.resend_limits)
    }

    fn end(&self) -> ProductCallEnd<'_> {
        ProductCallEnd::Sent {
            sent_at: self.sent_at,
            expires_at: self.expires_at,
            message_id: &self.message_id,
        }
    }

    fn audit_detail(&self) -> String {
        format!(
            "sent by the product (message id {}), valid until {} UTC",
            self.message_id,
            minute(self.expires_at)
        )
    }

    fn log_done(&self, reference: &str, attempts: u32) {
        tracing::info!(reference = %reference, attempts, "invitation resent by the product");
    }

    fn reply(self) -> (&'static str, serde_json::Value, Option<IssuedCode>) {
        let words = json!({
            "sent_at": self.sent_at.to_rfc3339(),
            "expires_at": self.expires_at.to_rfc3339(),
        });
        ("product_resend_done", words, None)
    }
}

impl ProductAnswer for ActivationAnswer {
    const ACTION: Action = Action::IssueActivationCode;
    const PATH: &'static str = ACTIVATION_CODES_PATH;

    fn limits(settings: &ActionSettings) -> ProductCallLimits {
        ProductCallLimits::ActivationCode {
            per_member_per_day: settings.activation_codes_per_member_per_day,
            reissue_after: settings.activation_code_reissue_after,
        }
    }

    fn end(&self) -> ProductCallEnd<'_> {
        ProductCallEnd::Issued
    }

    fn audit_detail(&self) -> String {
        let form = if self.is_link() { "link" } else { "code" };
        match self.expires_at() {
            Some(at) => format!(
                "{form} issued by the product, valid until {} UTC",
                minute(at)
            ),
            None => format!("{form} issued by the product"),
        }
    }

    fn log_done(&self, reference: &str, attempts: u32) {
        let link = self.is_link();
        tracing::info!(reference = %reference, attempts, link, "activation code issued by the product");
    }

    fn reply(self) -> (&'static str, serde_json::Value, Option<IssuedCode>) {
        let words = json!({
            "link": self.is_link(),
            "expires_at": self.expires_at().map(|at| at.to_rfc3339()),
        });
        let issued = match self {
            ActivationAnswer::Code { code, expires_at } => IssuedCode {
                code,
                expires_at: Some(expires_at),
                form: IssuedForm::ProductCode,
            },
            ActivationAnswer::Link {
                activation_url,
                expires_at,
            } => IssuedCode {
                code: activation_url,
                expires_at,
                form: IssuedForm::ProductLink,
            },
        };
        ("product_activation_done", words, Some(issued))
    }
}

impl ActivationAnswer {
    fn is_link(&self) -> bool {
        matches!(self, ActivationAnswer::Link { .. })
    }

    fn expires_at(&self) -> Option<DateTime<Utc>> {
        match self {
            ActivationAnswer::Code { expires_at, .. } => Some(*expires_at),
            ActivationAnswer::Link { expires_at, .. } => *expires_at,
        }
    }
}

impl Actions {
    /// [`Actions::resend_invite`] (`A` = [`ResendAnswer`]) or [`Actions::issue_activation_code`]
    /// (`A` = [`ActivationAnswer`]) through the product: the gate and the recorded request, the
    /// tries under one key, then the answer recorded, audited and worded, or the failure recorded
    /// and audited.
    pub(super) async fn through_product<A: ProductAnswer>(
        &self,
        api: &ProductApi,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
    ) -> Result<ActionOutcome, EngineError> {
        let action = A::ACTION;
        let limits = A::limits(self.action_settings());
        let held = match self
            .start_product_call(
                api,
                action,
                limits,
                actor,
                email,
                workspace,
                idempotency_key,
            )
            .await?
        {
            Ok(held) => held,
            Err(refusal) => return Ok(refusal),
        };
        let body = request_body(workspace, email, &held.call);
        let outcome = api
            .call::<A>(self.http(), A::PATH, &held.call.idempotency_key, &body)
            .await;
        let reference = held.call.reference.clone();
        match outcome {
            CallOutcome::Answered { answer, attempts } => {
                self.end_call(&held, attempts, answer.end()).await?;
                self.audit_call(
                    &held,
                    action,
                    workspace,
                    email,
                    AuditOutcome::Done,
                    None,
                    answer.audit_detail(),
                )
                .await?;
                answer.log_done(&reference, attempts);
                let (template, mut words, activation_code) = answer.reply();
                words["email"] = json!(email.key());
                words["reference"] = json!(reference);
                let summary = self.prompts().action_text(template, &words)?;
                Ok(ActionOutcome::Done(ActionDone {
                    action,
                    reference,
                    summary,
                    activation_code,
                    escalation: None,
                }))
            }
            other => Err(self
                .call_failed(&held, action, workspace, email, other)
                .await?),
        }
    }

    /// The gate every action passes, then the request and its call recorded (or an unknown one
    /// taken up again) under the member's lock, before anything is sent.
    #[allow(clippy::too_many_arguments)]
    async fn start_product_call(
        &self,
        api: &ProductApi,
        action: Action,
        limits: ProductCallLimits,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
    ) -> Result<Result<OpenCall, ActionOutcome>, EngineError> {
        let reference = new_reference(match action {
            Action::ResendInvite => "RSD",
            _ => "ACT",
        });
        // Unique on its own (a reference is unique in the database, the suffix across databases),
        // and stored with the request before the first try: every later try sends this one.
        let call_key = format!("{reference}-{}", crate::random::hex(8));
        let lease = chrono::Duration::from_std(api.round_deadline())
            .unwrap_or_else(|_| chrono::Duration::minutes(10));
        let started = self
            .gate(
                actor,
                action,
                email,
                workspace,
                idempotency_key,
                async |diagnosis: &Diagnosis| {
                    let Some(member) = &diagnosis.member else {
                        return Ok(Err(Held::NotOffered));
                    };
                    let now = Utc::now();
                    let start = self
                        .store()
                        .begin_product_call(&NewProductCall {
                            action,
                            member_id: member.id,
                            idempotency_key,
                            call_key: &call_key,
                            actor_id: actor.id(),
                            actor_name: actor.name(),
                            reference: &reference,
                            now,
                            owner: super::resend::instance_id(),
                            lease_until: now + lease,
                            limits,
                        })
                        .await?;
                    let limit_of = |template: &str| match (template, limits) {
                        ("actor_hourly_limit", ProductCallLimits::Resend(l)) => l.per_actor_per_hour,
                        (_, ProductCallLimits::Resend(l)) => l.per_member_per_day,
                        (_, ProductCallLimits::ActivationCode {
                            per_member_per_day, ..
                        }) => per_member_per_day,
                    };
                    Ok(match start {
                        ProductCallStart::Started { call, resumed } => {
                            if resumed {
                                tracing::info!(reference = %call.reference, "asking the product again with the same key");
                            }
                            Ok(OpenCall {
                                call,
                                member_id: member.id,
                                pressed_by: (actor.id().to_owned(), actor.name().to_owned()),
                            })
                        }
                        ProductCallStart::Duplicate(prior)
                        | ProductCallStart::JustIssued(prior) => Err(Held::Duplicate(prior)),
                        ProductCallStart::TooSoon { last, next_allowed } => {
                            Err(Held::TooSoon { last, next_allowed })
                        }
                        ProductCallStart::MemberDailyLimit { next_allowed } => Err(Held::Limit {
                            template: "member_daily_limit",
                            limit: limit_of("member_daily_limit"),
                            next_allowed,
                        }),
                        ProductCallStart::ActorHourlyLimit { next_allowed } => Err(Held::Limit {
                            template: "actor_hourly_limit",
                            limit: limit_of("actor_hourly_limit"),
                            next_allowed,
                        }),
                    })
                },
            )
            .await?;
        Ok(started.map(|(_, held)| held))
    }

    /// Records the end of a call, trying a few times: a busy database often passes in a moment,
    /// and an unrecorded end leaves the call to be asked again once its lease lapses (the product
    /// answers a repeated key with its first answer, so nothing is done twice).
    async fn end_call(
        &self,
        held: &OpenCall,
        attempts: u32,
        end: ProductCallEnd<'_>,
    ) -> Result<(), EngineError> {
        let mut wait = std::time::Duration::from_millis(50);
        let mut tries = 1;
        loop {
            match self
                .store()
                .end_product_call(&held.call, held.member_id, attempts, &end, Utc::now())
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if tries >= 3 => {
                    tracing::error!(reference = %held.call.reference, error = %crate::error::error_chain(&error), "the product's answer was not recorded");
                    return Err(error.into());
                }
                Err(error) => {
                    tracing::warn!(tries, error = %error, "recording the product's answer failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                    tries += 1;
                }
            }
        }
    }

    /// Records and audits a call that did not end in the product's "done", and says so.
    async fn call_failed<T>(
        &self,
        held: &OpenCall,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        outcome: CallOutcome<T>,
    ) -> Result<EngineError, EngineError> {
        let reference = held.call.reference.clone();
        let action_name = action.as_str();
        let failure = match outcome {
            CallOutcome::Answered { .. } => {
                return Err(EngineError::Internal(
                    "an answered call reached the failure path".into(),
                ))
            }
            CallOutcome::Unanswered { last, attempts } => {
                let detail = format!("no answer after {attempts} tries (last: {last})");
                self.end_call(held, attempts, ProductCallEnd::Unknown { error: &detail })
                    .await?;
                self.audit_call(
                    held,
                    action,
                    workspace,
                    email,
                    AuditOutcome::Unknown,
                    Some(AuditReason::ProductUnanswered),
                    format!("{detail}; it may have been done"),
                )
                .await?;
                tracing::warn!(reference = %reference, attempts, failure = %last, "the product did not answer; the outcome is unknown");
                ActionFailure::ProductUnknown {
                    reference,
                    action: action_name,
                    detail: last.to_string(),
                }
            }
            CallOutcome::Refused {
                status,
                message,
                attempts,
            } => {
                let detail = match &message {
                    Some(message) => format!("HTTP {status}: {message}"),
                    None => format!("HTTP {status}"),
                };
                self.end_call(held, attempts, ProductCallEnd::Refused { error: &detail })
                    .await?;
                self.audit_call(
                    held,
                    action,
                    workspace,
                    email,
                    AuditOutcome::Failed,
                    Some(AuditReason::ProductRefused),
                    detail,
                )
                .await?;
                tracing::info!(reference = %reference, status, "the product refused");
                ActionFailure::ProductRefused {
                    reference,
                    action: action_name,
                    status,
                    message,
                }
            }
            CallOutcome::Garbled {
                status,
                problem,
                attempts,
            } => {
                let detail = format!("HTTP {status} with an answer that is {problem}");
                self.end_call(held, attempts, ProductCallEnd::Unknown { error: &detail })
                    .await?;
                self.audit_call(
                    held,
                    action,
                    workspace,
                    email,
                    AuditOutcome::Unknown,
                    Some(AuditReason::ProductGarbled),
                    format!("{detail}; it may have been done"),
                )
                .await?;
                tracing::error!(reference = %reference, status, problem = %problem, "the product's answer is not its contract");
                ActionFailure::ProductGarbled {
                    reference,
                    action: action_name,
                }
            }
        };
        Ok(failure.into())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_call(
        &self,
        held: &OpenCall,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        outcome: AuditOutcome,
        reason: Option<AuditReason>,
        detail: String,
    ) -> Result<(), EngineError> {
        self.audit_as(
            &held.pressed_by.0,
            &held.pressed_by.1,
            AuditEvent {
                action: AuditAction::from(action),
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome,
                reason,
                reference: Some(&held.call.reference),
                detail: Some(detail),
            },
        )
        .await
    }
}

/// The body of every try of `call`: the same each time (the first asker's name included).
fn request_body(workspace: &WorkspaceSlug, email: &EmailAddress, call: &ProductCall) -> String {
    let request = ProductActionRequest {
        workspace: workspace.as_str().to_owned(),
        email: email.key().to_owned(),
        idempotency_key: call.idempotency_key.clone(),
        requested_by: RequestedBy {
            id: call.actor_id.clone(),
            name: call.actor_name.clone(),
        },
    };
    // Strings only: serializing cannot fail.
    serde_json::to_string(&request).unwrap_or_default()
}
