//! What every action does first: authorize the actor, look at the current verdict, and refuse (with
//! an audit row) when either says no.

use serde_json::json;

use super::audit::AuditEvent;
use super::{ActionOutcome, Actions, Actor, Permission, Refusal, RefusalReason};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::EngineError;
use crate::store::PriorAction;

pub(crate) fn permission_for(action: Action) -> Permission {
    match action {
        Action::ResendInvite => Permission::ResendInvite,
        Action::IssueActivationCode => Permission::IssueActivationCode,
        Action::Escalate => Permission::Escalate,
    }
}

/// "Resend invite", as the refusal words name an action.
pub(crate) fn action_words(action: Action) -> &'static str {
    match action {
        Action::ResendInvite => "Resending the invitation",
        Action::IssueActivationCode => "Issuing an activation code",
        Action::Escalate => "Escalating",
    }
}

impl Actions {
    /// Refuses and audits the refusal.
    pub(crate) async fn refuse(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        reason: RefusalReason,
        message: String,
    ) -> Result<ActionOutcome, EngineError> {
        self.audit(
            actor,
            AuditEvent {
                action: action.as_str(),
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: "refused",
                reason: Some(reason.as_str()),
                reference: None,
                detail: Some(message.clone()),
            },
        )
        .await?;
        tracing::info!(
            action = action.as_str(),
            reason = reason.as_str(),
            "action refused"
        );
        Ok(ActionOutcome::Refused(Refusal { reason, message }))
    }

    /// What every action does first: the actor's permission, then whether this exact request (its
    /// idempotency key) was already handled, then the verdict as it stands now. `Err` carries the
    /// refusal to return.
    pub(crate) async fn open_action(
        &self,
        actor: &Actor,
        action: Action,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
    ) -> Result<Result<Diagnosis, ActionOutcome>, EngineError> {
        if let Some(refusal) = self
            .refuse_unless_allowed(actor, action, workspace, email)
            .await?
        {
            return Ok(Err(refusal));
        }
        if let Some(key) = idempotency_key {
            if let Some(prior) = self.store().prior_action(key).await? {
                return self
                    .refuse_duplicate(actor, action, workspace, email, &prior)
                    .await
                    .map(Err);
            }
        }
        Ok(Ok(self.current_diagnosis(email, workspace).await?))
    }

    /// `Some(refusal)` when the actor may not do `action` in `workspace`.
    async fn refuse_unless_allowed(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
    ) -> Result<Option<ActionOutcome>, EngineError> {
        let permission = permission_for(action);
        if actor.may(permission, workspace) {
            return Ok(None);
        }
        let message = self.prompts().action_text(
            "forbidden",
            &json!({ "permission": permission.as_str(), "workspace": workspace.as_str() }),
        )?;
        self.refuse(
            actor,
            action,
            workspace,
            email,
            RefusalReason::Forbidden,
            message,
        )
        .await
        .map(Some)
    }

    /// The verdict as it stands now for `email` in `workspace`.
    async fn current_diagnosis(
        &self,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
    ) -> Result<Diagnosis, EngineError> {
        let mut diagnoses = self.engine.check(email, Some(workspace)).await?;
        Ok(diagnoses.remove(0))
    }

    /// The refusal for a verdict that does not offer `action`.
    pub(crate) async fn refuse_not_offered(
        &self,
        actor: &Actor,
        action: Action,
        diagnosis: &Diagnosis,
        workspace: &WorkspaceSlug,
    ) -> Result<ActionOutcome, EngineError> {
        let title = self
            .prompts()
            .verdict_title(diagnosis.verdict, &diagnosis.facts)?;
        let message = self.prompts().action_text(
            "not_offered",
            &json!({
                "action_words": action_words(action),
                "verdict": diagnosis.verdict.as_str(),
                "verdict_title": title,
                "resend_in": diagnosis.facts.get("resend_in"),
            }),
        )?;
        self.refuse(
            actor,
            action,
            workspace,
            &diagnosis.email,
            RefusalReason::NotOffered,
            message,
        )
        .await
    }

    /// The refusal for a rate limit that holds: `template` names the words in `actions.j2`, `limit`
    /// and `what` say which allowance is used up, `next_allowed` when the next attempt may succeed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn refuse_limit(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        template: &str,
        (limit, what): (u32, &str),
        next_allowed: chrono::DateTime<chrono::Utc>,
    ) -> Result<ActionOutcome, EngineError> {
        let now = chrono::Utc::now();
        let message = self.prompts().action_text(
            template,
            &json!({
                "limit": limit,
                "what": what,
                "next_in": format!("in {}", crate::humanize::wait_words(next_allowed - now)),
                "next_at": super::resend::minute(next_allowed),
            }),
        )?;
        self.refuse(
            actor,
            action,
            workspace,
            email,
            RefusalReason::RateLimited,
            message,
        )
        .await
    }

    /// The refusal for a request that was already handled (same idempotency key).
    pub(crate) async fn refuse_duplicate(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        prior: &PriorAction,
    ) -> Result<ActionOutcome, EngineError> {
        let what = match action {
            Action::ResendInvite => "the invitation was resent",
            Action::IssueActivationCode => {
                "an activation code was issued (shown only to whoever asked for it)"
            }
            Action::Escalate => "this was escalated",
        };
        let message = self.prompts().action_text(
            "already_done",
            &json!({
                "what": what,
                "ago": crate::humanize::ago(chrono::Utc::now(), prior.created_at),
                "actor": prior.actor_name,
                "reference": prior.reference,
                "state": prior.state,
            }),
        )?;
        self.refuse(
            actor,
            action,
            workspace,
            email,
            RefusalReason::AlreadyDone,
            message,
        )
        .await
    }
}
