//! The check as an actor asks for it: authorized and audited.

use super::audit::AuditEvent;
use super::{Actions, Actor, Permission};
use crate::diagnosis::Diagnosis;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::{EngineError, UserError};

impl Actions {
    /// [`Engine::check`](crate::engine::Engine::check) for `actor`: needs the `check` permission in
    /// the workspace asked about; without a workspace, results are limited to the workspaces the
    /// actor may check. One audit row per result.
    pub async fn check_as(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<Diagnosis>, EngineError> {
        let allowed = match workspace {
            Some(slug) => actor.may(Permission::Check, slug),
            None => actor.may_anywhere(Permission::Check),
        };
        if !allowed {
            self.audit(
                actor,
                AuditEvent {
                    action: AuditAction::Check,
                    workspace: workspace.map(|w| w.as_str()),
                    email_key: Some(email.key()),
                    outcome: AuditOutcome::Refused,
                    reason: Some(AuditReason::Forbidden),
                    reference: None,
                    detail: None,
                },
            )
            .await?;
            return Err(UserError::Forbidden {
                permission: Permission::Check.as_str(),
                workspace: workspace.cloned(),
            }
            .into());
        }
        let scope = actor.scope(Permission::Check);
        let diagnoses = self
            .engine
            .check_within(email, workspace, &scope, chrono::Utc::now())
            .await?;
        for diagnosis in &diagnoses {
            self.audit(
                actor,
                AuditEvent {
                    action: AuditAction::Check,
                    workspace: diagnosis.workspace.as_ref().map(|w| w.slug.as_str()),
                    email_key: Some(email.key()),
                    outcome: AuditOutcome::Checked(diagnosis.verdict),
                    reason: None,
                    reference: None,
                    detail: None,
                },
            )
            .await?;
        }
        Ok(diagnoses)
    }
}
