//! What every action does first: authorize the actor, look at the current verdict, respect the limits
//! and the idempotency key, and refuse (with an audit row) when any of them says no.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::{ActionOutcome, Actions, Actor, Refusal, RefusalReason};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::EngineError;
use crate::store::{EscalationRow, PriorAction};

/// Why an action stops before it starts. Each becomes a refusal worded in `actions.j2`.
#[derive(Debug)]
pub(crate) enum Held {
    /// The verdict as it stands does not offer the action (or gives it nothing to act on).
    NotOffered,
    /// This exact request (its idempotency key) was already handled.
    Duplicate(PriorAction),
    /// The last one on this member is too recent.
    TooSoon {
        last: PriorAction,
        next_allowed: DateTime<Utc>,
    },
    /// The last resend of this member has not gone out yet (queued after a refusal, or its sender
    /// stopped): no new one joins it, however old its request (see `Held::after_last`).
    Unsent {
        last: PriorAction,
        next_allowed: DateTime<Utc>,
    },
    /// An allowance is used up: `template` names its words, `limit` says how many were allowed.
    Limit {
        template: &'static str,
        limit: u32,
        next_allowed: DateTime<Utc>,
    },
    /// An escalation of the same address in the same workspace is still open.
    Escalated(EscalationRow),
}

/// A time as the templates take it (RFC 3339, UTC, whole seconds).
fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Actions {
    /// The opening every action shares, in this order: the actor's permission; whether this exact
    /// request (its idempotency key) was already handled; whether the verdict as it stands now
    /// offers `action`; then `start`, the action's own first step in the store, which counts the
    /// rate limits and claims the idempotency key under the member's lock. Any refusal on the way
    /// is audited and returned as `Err`; `Ok` carries the diagnosis and what `start` began.
    pub(crate) async fn gate<T>(
        &self,
        actor: &Actor,
        action: Action,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
        start: impl AsyncFnOnce(&Diagnosis) -> Result<Result<T, Held>, EngineError>,
    ) -> Result<Result<(Diagnosis, T), ActionOutcome>, EngineError> {
        let permission = action.permission();
        if !actor.may(permission, workspace) {
            let message = self.prompts().action_text(
                "forbidden",
                &json!({ "permission": permission.as_str(), "workspace": workspace.as_str() }),
            )?;
            return self
                .refuse(
                    actor,
                    action,
                    workspace,
                    email,
                    RefusalReason::Forbidden,
                    message,
                )
                .await
                .map(Err);
        }
        // Before the verdict: a replayed press is told it was done, not that it is no longer offered.
        if let Some(key) = idempotency_key {
            if let Some(prior) = self.store().prior_action(key).await? {
                // A press whose call to the product ended unknown asks again, with the same key.
                if self.action_settings().product.is_some()
                    && self.store().product_call_resumable(key, Utc::now()).await?
                {
                    return self
                        .gate_verdict(actor, action, workspace, email, start)
                        .await;
                }
                let message = self.already_done_words(action, &prior)?;
                return self
                    .refuse(
                        actor,
                        action,
                        workspace,
                        email,
                        RefusalReason::AlreadyDone,
                        message,
                    )
                    .await
                    .map(Err);
            }
        }
        self.gate_verdict(actor, action, workspace, email, start)
            .await
    }

    /// The rest of [`Actions::gate`]: the verdict as it stands now, then `start`.
    async fn gate_verdict<T>(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        start: impl AsyncFnOnce(&Diagnosis) -> Result<Result<T, Held>, EngineError>,
    ) -> Result<Result<(Diagnosis, T), ActionOutcome>, EngineError> {
        let diagnosis = self.engine.check(email, Some(workspace)).await?.remove(0);
        let held = if diagnosis.actions.contains(&action) {
            match start(&diagnosis).await? {
                Ok(started) => return Ok(Ok((diagnosis, started))),
                Err(held) => held,
            }
        } else {
            self.withheld(action, &diagnosis).await?
        };
        self.refuse_held(actor, action, workspace, &diagnosis, held)
            .await
            .map(Err)
    }

    /// Why a verdict does not offer `action` right now. A verdict can offer an action that is held
    /// back for a while (a resend right after an invitation went out); when the last one was the
    /// bot's own, the refusal says who sent it and when the next is allowed.
    async fn withheld(&self, action: Action, diagnosis: &Diagnosis) -> Result<Held, EngineError> {
        let min_interval = match action {
            Action::ResendInvite => self.action_settings().resend_limits.min_interval,
            Action::IssueActivationCode | Action::Escalate => return Ok(Held::NotOffered),
        };
        if !diagnosis.verdict.offered_actions().contains(&action) {
            return Ok(Held::NotOffered);
        }
        let Some(member) = &diagnosis.member else {
            return Ok(Held::NotOffered);
        };
        if let Some(last) = self.store().last_action(member.id, action).await? {
            let next_allowed = last.created_at + min_interval;
            if next_allowed > Utc::now() || last.unsent() {
                return Ok(Held::after_last(last, next_allowed));
            }
        }
        Ok(Held::NotOffered)
    }

    /// Words `held` for the actor, then refuses. `diagnosis` is the verdict as it stood.
    async fn refuse_held(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        diagnosis: &Diagnosis,
        held: Held,
    ) -> Result<ActionOutcome, EngineError> {
        let prompts = self.prompts();
        let (reason, message) = match held {
            Held::NotOffered => {
                let facts = json!({
                    "action": action.as_str(),
                    "verdict": diagnosis.verdict.as_str(),
                    "verdict_title": prompts.verdict_title(diagnosis.verdict, &diagnosis.facts)?,
                    "resend_not_before": diagnosis.facts.get("resend_not_before"),
                });
                (
                    RefusalReason::NotOffered,
                    prompts.action_text("not_offered", &facts)?,
                )
            }
            Held::Duplicate(prior) => (
                RefusalReason::AlreadyDone,
                self.already_done_words(action, &prior)?,
            ),
            Held::TooSoon { last, next_allowed } => {
                let facts = json!({
                    "action": action.as_str(),
                    "sent_at": time(last.sent_at.unwrap_or(last.created_at)),
                    "actor": last.actor_name,
                    "reference": last.reference,
                    "next_at": time(next_allowed),
                });
                (
                    RefusalReason::RateLimited,
                    prompts.action_text("too_soon", &facts)?,
                )
            }
            Held::Unsent { last, next_allowed } => {
                let next_try = last.next_try_at().filter(|at| *at > Utc::now());
                let facts = json!({
                    "requested_at": time(last.created_at),
                    "actor": last.actor_name,
                    "reference": last.reference,
                    "state": last.outbox_state,
                    "attempts": last.attempts,
                    "last_error": last.last_error,
                    "next_try_at": next_try.map(time),
                    // Past when only the queued email holds a new one back.
                    "next_at": Some(next_allowed).filter(|at| *at > Utc::now()).map(time),
                });
                (
                    RefusalReason::RateLimited,
                    prompts.action_text("resend_unsent", &facts)?,
                )
            }
            Held::Limit {
                template,
                limit,
                next_allowed,
            } => {
                let facts = json!({
                    "action": action.as_str(),
                    "limit": limit,
                    "next_at": time(next_allowed),
                });
                (
                    RefusalReason::RateLimited,
                    prompts.action_text(template, &facts)?,
                )
            }
            Held::Escalated(existing) => {
                let facts = json!({
                    "action": action.as_str(),
                    "reference": existing.reference,
                    "at": time(existing.created_at),
                    "actor": existing.requested_by_name,
                });
                (
                    RefusalReason::AlreadyDone,
                    prompts.action_text("escalation_exists", &facts)?,
                )
            }
        };
        self.refuse(actor, action, workspace, &diagnosis.email, reason, message)
            .await
    }

    /// The words for a request that was already handled (same idempotency key).
    fn already_done_words(
        &self,
        action: Action,
        prior: &PriorAction,
    ) -> Result<String, EngineError> {
        let facts = json!({
            "action": action.as_str(),
            "at": time(prior.created_at),
            "actor": prior.actor_name,
            "reference": prior.reference,
            "state": prior.state,
        });
        Ok(self.prompts().action_text("already_done", &facts)?)
    }

    /// Refuses and audits the refusal.
    async fn refuse(
        &self,
        actor: &Actor,
        action: Action,
        workspace: &WorkspaceSlug,
        email: &EmailAddress,
        reason: RefusalReason,
        message: String,
    ) -> Result<ActionOutcome, EngineError> {
        self.audit_refusal(actor, action, workspace, email, reason, &message)
            .await?;
        tracing::info!(
            action = action.as_str(),
            reason = reason.as_str(),
            "action refused"
        );
        Ok(ActionOutcome::Refused(Refusal { reason, message }))
    }
}
