//! Writing and reading the audit log from the engine.

use chrono::Utc;

use super::{Actions, Actor, RefusalReason};
use crate::diagnosis::Action;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::EngineError;
use crate::store::{AuditEntry, AuditFilter};

/// One audit row as the engine writes it.
pub type AuditRecord = AuditEntry;

/// What to write; the actor and time are filled in.
pub(crate) struct AuditEvent<'a> {
    pub action: AuditAction,
    pub workspace: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub outcome: AuditOutcome,
    pub reason: Option<AuditReason>,
    pub reference: Option<&'a str>,
    /// A short note for operators. Never a code, a token or a link holding one.
    pub detail: Option<String>,
}

impl Actions {
    /// Writes one audit row. An action whose audit row cannot be written reports the failure: an
    /// unaccountable action is worse than a failed one.
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        event: AuditEvent<'_>,
    ) -> Result<(), EngineError> {
        self.audit_as(actor.id(), actor.name(), event).await
    }

    /// Like [`Actions::audit`], for work done later on someone's behalf (the outbox worker).
    pub(crate) async fn audit_as(
        &self,
        actor_id: &str,
        actor_name: &str,
        event: AuditEvent<'_>,
    ) -> Result<(), EngineError> {
        let entry = AuditEntry {
            at: Utc::now(),
            actor_id: actor_id.to_owned(),
            actor_name: actor_name.to_owned(),
            action: event.action,
            workspace: event.workspace.map(str::to_owned),
            email: event.email_key.map(str::to_owned),
            outcome: event.outcome,
            reason: event.reason,
            reference: event.reference.map(str::to_owned),
            detail: event.detail,
        };
        // Every action outcome passes through here, so this is where the metrics count them too
        // (checks are counted by the engine itself, by verdict).
        if event.action != AuditAction::Check {
            crate::app::metrics::record_action(event.action.as_str(), event.outcome.as_str());
            if let Some(reason) = event
                .reason
                .filter(|_| event.outcome == AuditOutcome::Refused)
            {
                crate::app::metrics::record_refusal(reason.as_str());
            }
        }
        self.store().write_audit(&entry).await.map_err(|error| {
            tracing::error!(action = event.action.as_str(), outcome = event.outcome.as_str(), error = %error, "audit row not written");
            EngineError::from(error)
        })
    }

    /// Audits a refusal decided at an edge rather than by the action itself (a button pressed
    /// again after it acted), so every press leaves its row like any other refused action.
    pub async fn audit_refusal(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        reason: RefusalReason,
        message: &str,
    ) -> Result<(), EngineError> {
        self.audit(
            actor,
            AuditEvent {
                action: AuditAction::from(action),
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: AuditOutcome::Refused,
                reason: Some(AuditReason::from(reason)),
                reference: None,
                detail: Some(message.to_owned()),
            },
        )
        .await
    }

    /// The audit log, oldest first, filtered.
    pub async fn read_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, EngineError> {
        Ok(self.store().read_audit(filter).await?)
    }
}

/// A time to the minute, as audit rows show it.
pub(crate) fn minute(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}
