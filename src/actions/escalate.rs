//! Escalate to human support: one record holding everything already known, delivered to the chat
//! channel (by the chat layer) and to a webhook (here), never lost when the webhook is down.

use chrono::Utc;
use serde_json::json;

use super::audit::AuditEvent;
use super::gate::Held;
use super::handover::{self, HandoverFailure, WebhookRound};
use super::{new_reference, ActionDone, ActionOutcome, Actions, Actor, Escalation};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome};
use crate::error::{EngineError, UserError};
use crate::store::{EscalationRow, EscalationStart, NewEscalation, WebhookState};

/// Retry a failed webhook delivery this long after a failed round.
const WEBHOOK_RETRY_AFTER_MINUTES: i64 = 5;

impl Actions {
    #[tracing::instrument(
        name = "escalate",
        skip_all,
        fields(request_id = %crate::error::new_reference(), actor = actor.id(), email = %email.masked(), workspace = %workspace)
    )]
    pub async fn escalate(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        note: Option<&str>,
    ) -> Result<ActionOutcome, EngineError> {
        let action = Action::Escalate;
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        let reference = new_reference("ESC");
        let webhook = self.action_settings().webhook.clone();
        let started = self
            .gate(
                actor,
                action,
                email,
                workspace,
                None,
                async |diagnosis: &Diagnosis| {
                    let workspace_id = diagnosis
                        .workspace
                        .as_ref()
                        .map(|w| w.id)
                        .ok_or_else(|| UserError::UnknownWorkspace(workspace.clone()))?;
                    // One line per action already taken, in the words of `actions.j2`: they go to
                    // the support channel and the desk as they are.
                    let actions_taken: Vec<String> = match &diagnosis.member {
                        Some(member) => self
                            .store()
                            .actions_taken(member.id)
                            .await?
                            .into_iter()
                            .map(|(action, actor, at, reference)| {
                                self.prompts().action_text(
                                    "action_taken",
                                    &json!({
                                        "action": action.as_str(),
                                        "actor": actor,
                                        "at": at.to_rfc3339(),
                                        "reference": reference,
                                    }),
                                )
                            })
                            .collect::<Result<_, _>>()?,
                        None => Vec::new(),
                    };
                    let diagnosis_json = serde_json::to_value(diagnosis.to_json())
                        .map_err(|e| EngineError::Internal(Box::new(e)))?;
                    let now = Utc::now();
                    let start = self
                        .store()
                        .begin_escalation(&NewEscalation {
                            reference: &reference,
                            workspace_id,
                            member_id: diagnosis.member.as_ref().map(|m| m.id),
                            email_key: email.key(),
                            diagnosis: &diagnosis_json.to_string(),
                            actions_taken: &serde_json::Value::from(actions_taken.clone())
                                .to_string(),
                            requested_by: actor.id(),
                            requested_by_name: actor.name(),
                            note,
                            now,
                            dedupe_since: now - self.action_settings().escalation_dedupe,
                            webhook_state: if webhook.is_some() {
                                WebhookState::Pending
                            } else {
                                WebhookState::None
                            },
                        })
                        .await?;
                    Ok(match start {
                        EscalationStart::Created(row) => Ok((row, actions_taken, diagnosis_json)),
                        EscalationStart::Existing(existing) => Err(Held::Escalated(existing)),
                    })
                },
            )
            .await?;
        let (row, actions_taken, diagnosis_json) = match started {
            Ok((_, started)) => started,
            Err(refusal) => return Ok(refusal),
        };

        let round = match &webhook {
            Some(_) => Some(self.deliver_escalation(&row).await?),
            None => None,
        };
        self.audit(
            actor,
            AuditEvent {
                action: AuditAction::from(action),
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: AuditOutcome::Done,
                reason: None,
                reference: Some(&reference),
                detail: round.as_ref().map(|r| {
                    if r.delivered {
                        "webhook delivered".to_owned()
                    } else {
                        format!(
                            "webhook undelivered: {}",
                            r.error
                                .as_ref()
                                .map_or_else(|| "unknown".to_owned(), ToString::to_string)
                        )
                    }
                }),
            },
        )
        .await?;
        let summary = self.prompts().action_text(
            "escalation_done",
            &json!({
                "reference": reference,
                "webhook": round.as_ref().map(|r| if r.delivered { "delivered" } else { "pending" }),
                "webhook_error": round.as_ref().and_then(|r| r.error.as_ref()).map(HandoverFailure::facts),
            }),
        )?;
        Ok(ActionOutcome::Done(ActionDone {
            action,
            reference: reference.clone(),
            summary,
            activation_code: None,
            escalation: Some(Escalation {
                reference,
                workspace: workspace.as_str().to_owned(),
                email: email.key().to_owned(),
                diagnosis: diagnosis_json,
                actions_taken,
                requested_by: actor.name().to_owned(),
                note: note.map(str::to_owned),
                created_at: row.created_at,
            }),
        }))
    }

    /// One webhook delivery round for a stored escalation, with its result recorded.
    async fn deliver_escalation(&self, row: &EscalationRow) -> Result<WebhookRound, EngineError> {
        let Some(settings) = self.action_settings().webhook.clone() else {
            return Ok(WebhookRound {
                delivered: false,
                attempts: 0,
                error: Some(HandoverFailure::NotConfigured),
            });
        };
        let body = json!({
            "reference": row.reference,
            "workspace": row.workspace_slug,
            "email": row.email_key,
            "diagnosis": serde_json::from_str::<serde_json::Value>(&row.diagnosis).unwrap_or_default(),
            "actions_taken": serde_json::from_str::<serde_json::Value>(&row.actions_taken).unwrap_or_default(),
            "requested_by": row.requested_by_name,
            "note": row.note,
            "created_at": row.created_at.to_rfc3339(),
        })
        .to_string();
        let round = handover::deliver(self.http(), &settings, &row.reference, &body).await;
        let (state, next) = if round.delivered {
            (WebhookState::Delivered, None)
        } else {
            tracing::warn!(reference = %row.reference, error = ?round.error, "escalation webhook undelivered; will retry");
            (
                WebhookState::Pending,
                Some(Utc::now() + chrono::Duration::minutes(WEBHOOK_RETRY_AFTER_MINUTES)),
            )
        };
        self.store()
            .record_webhook_round(
                row.id,
                state,
                i64::from(round.attempts),
                next,
                round.error.as_ref().map(ToString::to_string).as_deref(),
            )
            .await?;
        Ok(round)
    }

    /// Retries webhook deliveries of escalations that are due. Returns how many were delivered.
    pub async fn deliver_due_escalations(&self) -> Result<usize, EngineError> {
        self.deliver_escalations_due_at(Utc::now()).await
    }

    /// [`Actions::deliver_due_escalations`] as if it were `now`.
    pub async fn deliver_escalations_due_at(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<usize, EngineError> {
        if self.action_settings().webhook.is_none() {
            return Ok(0);
        }
        let mut delivered = 0;
        for row in self.store().due_escalation_webhooks(now, 50).await? {
            if self.deliver_escalation(&row).await?.delivered {
                delivered += 1;
            }
        }
        Ok(delivered)
    }
}
