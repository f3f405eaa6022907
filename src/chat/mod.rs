//! The platform-neutral chat flow: a request from a person becomes engine calls, and the results
//! become a [`ChatReply`] with buttons. Discord and the local console both drive this module, so
//! the rules (who may check, how old a button may be, a button acts once) are written once.

pub mod alert_card;
pub mod list_check;
pub mod reply;
pub mod report;
pub mod request;

use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::json;

use crate::actions::Actions;
use crate::actions::{ActionDone, ActionOutcome, Actor, Authorizer, RefusalReason};
use crate::config::Config;
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::Permission;
use crate::engine::Engine;
use crate::error::{EngineError, UserError};
use crate::store::ButtonRecord;
use crate::summary::Summary;

pub use reply::{ButtonAction, Card, ChatButton, ChatReply, EscalationPost, PressOutcome};
pub use request::{addresses_in, ChatRequest, Usage};

/// Every button's `custom_id` starts with this; the rest is the record's random reference.
pub const BUTTON_PREFIX: &str = "ib:";

/// At most this many "Check ..." buttons under a support-channel message.
pub const MAX_LISTENER_BUTTONS: usize = 5;

/// Discord refuses a button whose label is longer; the console shows the same labels.
pub const MAX_LABEL: usize = 80;

/// Who is talking to the bot, as the chat platform reports it. Turned into an [`Actor`] (with its
/// permissions from config) on every request and every press, never remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatUser {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub ephemeral_replies: bool,
    pub button_max_age: Duration,
}

impl ChatSettings {
    pub fn from_config(config: &Config) -> Self {
        ChatSettings {
            ephemeral_replies: config.discord.ephemeral_replies,
            button_max_age: Duration::minutes(i64::from(config.discord.button_max_age_minutes)),
        }
    }
}

/// The chat flow. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Chat {
    actions: Actions,
    settings: Arc<ChatSettings>,
    authorizer: Arc<Authorizer>,
    /// `/invite-report` and its bulk resend (chat/report.rs).
    reports: crate::report::Reports,
}

impl Chat {
    pub fn new(actions: Actions, config: &Config) -> Self {
        Chat {
            reports: crate::report::Reports::new(actions.clone(), config),
            actions,
            settings: Arc::new(ChatSettings::from_config(config)),
            authorizer: Arc::new(Authorizer::from_config(config)),
        }
    }

    pub fn engine(&self) -> &Engine {
        self.actions.engine()
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// The actor for a chat user: permissions from the `[permissions]` grants of their id and roles.
    pub fn actor(&self, user: &ChatUser) -> Actor {
        self.authorizer
            .chat_actor(&user.id, &user.name, &user.roles)
    }

    /// The person at the terminal (the local chat without `--user`).
    pub fn operator(&self) -> Actor {
        self.authorizer.operator()
    }

    /// `/invite-check`: the diagnosis, one card per workspace, with suggestion and action buttons.
    #[tracing::instrument(name = "invite_check", skip_all, fields(actor = %actor.id()))]
    pub async fn invite_check(
        &self,
        actor: &Actor,
        email: &str,
        workspace: Option<&str>,
    ) -> ChatReply {
        let email = match EmailAddress::parse(email) {
            Ok(email) => email,
            Err(error) => {
                return ChatReply::notice(
                    UserError::from(error).public_message(self.engine().prompts()),
                )
            }
        };
        let workspace = match workspace.filter(|w| !w.trim().is_empty()) {
            Some(slug) => match WorkspaceSlug::parse(slug) {
                Ok(slug) => Some(slug),
                Err(error) => {
                    return ChatReply::notice(
                        UserError::from(error).public_message(self.engine().prompts()),
                    )
                }
            },
            None => None,
        };
        match self.check_reply(actor, &email, workspace.as_ref()).await {
            Ok(reply) => reply,
            Err(error) => ChatReply::notice(error.public_message(self.engine().prompts())),
        }
    }

    async fn check_reply(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<ChatReply, EngineError> {
        // Authorized (and audited) by the engine: a refusal comes back as a user error.
        let diagnoses = self.actions.check_as(actor, email, workspace).await?;
        let now = Utc::now();
        let mut cards = Vec::with_capacity(diagnoses.len());
        let mut buttons = Vec::new();
        let mut records = Vec::new();
        for (index, diagnosis) in diagnoses.iter().enumerate() {
            cards.push(self.card(diagnosis)?);
            // Actions need a workspace to act in; a result that is nowhere offers none. Each
            // person sees only the actions they may take there (a press authorizes again).
            if let Some(workspace) = &diagnosis.workspace {
                for action in &diagnosis.actions {
                    if !actor.may(action.permission(), &workspace.slug) {
                        continue;
                    }
                    let action = ButtonAction::from(*action);
                    let record = new_record(action, diagnosis, diagnosis.email.key(), actor, now);
                    buttons.push(ChatButton {
                        label: self.label("action_button", json!({ "action": action.as_str() }))?,
                        action,
                        reference: record.reference.clone(),
                        group: index * 2,
                    });
                    records.push(record);
                }
            }
            for suggestion in &diagnosis.suggestions {
                let record = new_record(ButtonAction::Check, diagnosis, suggestion, actor, now);
                buttons.push(ChatButton {
                    label: self.label("suggestion_button", json!({ "email": suggestion }))?,
                    action: ButtonAction::Check,
                    reference: record.reference.clone(),
                    group: index * 2 + 1,
                });
                records.push(record);
            }
        }
        self.engine().store().insert_buttons(&records).await?;
        Ok(ChatReply {
            ephemeral: self.settings.ephemeral_replies,
            text: String::new(),
            cards,
            buttons,
        })
    }

    /// Words of `chat.j2`.
    fn words(&self, name: &str, facts: serde_json::Value) -> Result<String, EngineError> {
        Ok(self.engine().prompts().chat_text(name, &facts)?)
    }

    /// Words of `chat.j2` for an edge (the console, Discord); when they cannot be rendered, what
    /// the error tells a person instead.
    pub fn say(&self, name: &str, facts: serde_json::Value) -> String {
        self.words(name, facts)
            .unwrap_or_else(|error| error.public_message(self.engine().prompts()))
    }

    /// A button label, held to Discord's limit whatever the template made of it.
    fn label(&self, name: &str, facts: serde_json::Value) -> Result<String, EngineError> {
        Ok(truncate(&self.words(name, facts)?, MAX_LABEL))
    }

    /// A private answer in the words of `chat.j2`; when even those cannot be rendered, the error's.
    fn notice(&self, name: &str, facts: serde_json::Value) -> PressOutcome {
        let text = self
            .words(name, facts)
            .unwrap_or_else(|error| error.public_message(self.engine().prompts()));
        PressOutcome::answer(ChatReply::notice(text))
    }

    fn card(&self, diagnosis: &Diagnosis) -> Result<Card, EngineError> {
        let reply = Summary::for_diagnosis(diagnosis, self.engine().prompts())?;
        Ok(Card {
            title: reply.title,
            verdict: Some(reply.verdict),
            severity: Some(reply.severity),
            workspace: diagnosis
                .workspace
                .as_ref()
                .map(|w| format!("{} ({})", w.name, w.slug)),
            email: diagnosis.email.key().to_owned(),
            description: reply.next_steps.trim().to_owned(),
            fields: reply
                .fields
                .into_iter()
                .map(|f| (f.name.to_owned(), f.value))
                .collect(),
        })
    }

    /// A message in a support channel: "Check ..." buttons for the addresses it names, and no
    /// diagnosis: nobody gets a public verdict about someone who did not ask.
    #[tracing::instrument(name = "support_message", skip_all, fields(actor = %actor.id()))]
    pub async fn on_message(&self, actor: &Actor, text: &str) -> Option<ChatReply> {
        let addresses = addresses_in(text, MAX_LISTENER_BUTTONS);
        if addresses.is_empty() {
            return None;
        }
        let labels: Result<Vec<String>, EngineError> = addresses
            .iter()
            .map(|email| self.label("check_button", json!({ "email": email.key() })))
            .collect();
        let (labels, text) = match labels.and_then(|l| Ok((l, self.words("listener", json!({}))?)))
        {
            Ok(words) => words,
            Err(error) => {
                tracing::warn!(error = %crate::error::error_chain(&error), "no check buttons offered");
                return None;
            }
        };
        let now = Utc::now();
        let records: Vec<ButtonRecord> = addresses
            .iter()
            .map(|email| ButtonRecord {
                reference: new_reference(),
                action: ButtonAction::Check,
                email: email.key().to_owned(),
                workspace: None,
                member_id: None,
                offered_to: actor.id().to_owned(),
                offered_at: now,
                used_at: None,
                used_by: None,
                outcome: None,
                message: None,
            })
            .collect();
        if let Err(error) = self.engine().store().insert_buttons(&records).await {
            // A missing button is better than an error message in a public channel.
            tracing::warn!(error = %crate::error::error_chain(&error), "no check buttons offered");
            return None;
        }
        let buttons = labels
            .into_iter()
            .zip(&records)
            .map(|(label, record)| ChatButton {
                label,
                action: ButtonAction::Check,
                reference: record.reference.clone(),
                group: 0,
            })
            .collect();
        Some(ChatReply {
            ephemeral: false,
            text,
            cards: Vec::new(),
            buttons,
        })
    }

    /// A button press, identified only by its `custom_id`. Nothing in it is trusted: it names a
    /// record, and the record says what the button does.
    /// `actor` is whoever pressed, never whoever ran the check: every press is authorized anew.
    #[tracing::instrument(name = "press", skip_all, fields(actor = %actor.id()))]
    pub async fn press(&self, actor: &Actor, custom_id: &str) -> PressOutcome {
        self.press_at(actor, custom_id, Utc::now()).await
    }

    pub async fn press_at(
        &self,
        actor: &Actor,
        custom_id: &str,
        now: DateTime<Utc>,
    ) -> PressOutcome {
        let Some(reference) = button_reference(custom_id) else {
            tracing::warn!("press of a button that is not ours");
            return self.notice("forged", json!({}));
        };
        let record = match self.engine().store().find_button(reference).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::warn!("press of an unknown button");
                return self.notice("forged", json!({}));
            }
            Err(error) => {
                let text = EngineError::from(error).public_message(self.engine().prompts());
                return PressOutcome::answer(ChatReply::notice(text));
            }
        };
        let action = record.action;
        if now - record.offered_at > self.settings.button_max_age {
            tracing::info!(action = action.as_str(), "stale button");
            let minutes = self.settings.button_max_age.num_minutes();
            return self.notice("stale", json!({ "max_age_minutes": minutes }));
        }
        match action_of(action) {
            None => {
                let reply = self
                    .invite_check(actor, &record.email, record.workspace.as_deref())
                    .await;
                // A check asked for by a press is always private, whatever the channel.
                PressOutcome::answer(ChatReply {
                    ephemeral: true,
                    ..reply
                })
            }
            Some(taken) => self.perform(actor, &record, taken, now).await,
        }
    }

    async fn perform(
        &self,
        actor: &Actor,
        record: &ButtonRecord,
        action: Action,
        now: DateTime<Utc>,
    ) -> PressOutcome {
        let (Ok(email), Some(Ok(workspace))) = (
            EmailAddress::parse(&record.email),
            record.workspace.as_deref().map(WorkspaceSlug::parse),
        ) else {
            return self.notice("forged", json!({}));
        };
        if record.used_at.is_some() {
            return self
                .replayed(actor, action, &email, &workspace, record)
                .await;
        }
        let store = self.engine().store();
        // Claimed before acting, so two presses at once cannot both act. From here every path
        // ends the claim: finished with what came of it, or given back when nothing was done.
        match store.claim_button(&record.reference, actor.id(), now).await {
            Ok(true) => {}
            Ok(false) => {
                let latest = store.find_button(&record.reference).await.ok().flatten();
                let latest = latest.as_ref().unwrap_or(record);
                return self
                    .replayed(actor, action, &email, &workspace, latest)
                    .await;
            }
            Err(error) => {
                return PressOutcome::answer(ChatReply::notice(
                    EngineError::from(error).public_message(self.engine().prompts()),
                ))
            }
        }
        // The button's reference is the idempotency key: the same button can never act twice,
        // even through another bot instance.
        let key = Some(record.reference.as_str());
        let result = match action {
            Action::ResendInvite => {
                self.actions
                    .resend_invite(actor, &email, &workspace, key)
                    .await
            }
            Action::IssueActivationCode => {
                self.actions
                    .issue_activation_code(actor, &email, &workspace, key)
                    .await
            }
            Action::Escalate => self.actions.escalate(actor, &email, &workspace, None).await,
        };
        match result {
            Ok(ActionOutcome::Done(done)) => {
                // Done is done: even when its words cannot be rendered the button is finished
                // (with what the presser is told), never given back.
                let outcome =
                    self.done_reply(actor, action, &email, done)
                        .unwrap_or_else(|error| {
                            PressOutcome::answer(ChatReply::notice(
                                error.public_message(self.engine().prompts()),
                            ))
                        });
                let finished = outcome.finished.as_deref().unwrap_or(&outcome.reply.text);
                if let Err(error) = store.finish_button(&record.reference, finished).await {
                    tracing::warn!(error = %crate::error::error_chain(&error), "outcome not recorded on the button");
                }
                outcome
            }
            Ok(ActionOutcome::Refused(refusal)) => {
                // Already done (by another instance, or before this record was claimed): the
                // button is finished with that answer, so a later press is told it, not that
                // it is "being handled". Any other refusal leaves the button to press again.
                let ended = if refusal.reason == RefusalReason::AlreadyDone {
                    store
                        .finish_button(&record.reference, &refusal.message)
                        .await
                } else {
                    store.release_button(&record.reference).await
                };
                if let Err(error) = ended {
                    tracing::warn!(error = %crate::error::error_chain(&error), "button claim not ended");
                }
                tracing::info!(
                    action = action.as_str(),
                    reason = refusal.reason.as_str(),
                    "action refused"
                );
                PressOutcome::answer(ChatReply::notice(refusal.message))
            }
            Err(error) => {
                if let Err(error) = store.release_button(&record.reference).await {
                    tracing::warn!(error = %crate::error::error_chain(&error), "button claim not ended");
                }
                PressOutcome::answer(ChatReply::notice(
                    error.public_message(self.engine().prompts()),
                ))
            }
        }
    }

    /// A press of a button that was used already (or is being used right now). Nothing is done
    /// again; the presser is authorized before being told anything about it (what was done, by
    /// whom), and the press is audited like any refused action.
    async fn replayed(
        &self,
        actor: &Actor,
        action: Action,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        record: &ButtonRecord,
    ) -> PressOutcome {
        let permission = action.permission();
        let (reason, words) = if actor.may(permission, workspace) {
            let facts = json!({
                "outcome": record.outcome,
                "in_progress": record.used_at.is_some() && record.outcome.is_none(),
            });
            (RefusalReason::AlreadyDone, self.words("replayed", facts))
        } else {
            let facts =
                json!({ "permission": permission.as_str(), "workspace": workspace.as_str() });
            let words = self.engine().prompts().action_text("forbidden", &facts);
            (RefusalReason::Forbidden, words.map_err(EngineError::from))
        };
        tracing::info!(
            action = action.as_str(),
            reason = reason.as_str(),
            "replayed button"
        );
        let text = match words {
            Ok(text) => text,
            Err(error) => {
                return PressOutcome::answer(ChatReply::notice(
                    error.public_message(self.engine().prompts()),
                ))
            }
        };
        // As with every action: an answer whose audit row cannot be written is not given.
        match self
            .actions
            .audit_refusal(actor, action, workspace, email, reason, &text)
            .await
        {
            Ok(()) => PressOutcome::answer(ChatReply::notice(text)),
            Err(error) => PressOutcome::answer(ChatReply::notice(
                error.public_message(self.engine().prompts()),
            )),
        }
    }

    /// The presser's private answer, the line for the original message and any hand-over post,
    /// all in the words of `chat.j2`.
    fn done_reply(
        &self,
        actor: &Actor,
        action: Action,
        email: &EmailAddress,
        done: ActionDone,
    ) -> Result<PressOutcome, EngineError> {
        let finished = self.words(
            "finished",
            json!({
                "action": ButtonAction::from(action).as_str(),
                "actor": actor.name(),
                "reference": done.reference,
            }),
        )?;
        let text = match &done.activation_code {
            // The code reply always carries the warning not to open the link: the template
            // writes it, whatever the action's own summary says.
            Some(code) => {
                use secrecy::ExposeSecret;
                let template = match code.form {
                    crate::actions::IssuedForm::Code => "activation_code",
                    _ => "product_activation_code",
                };
                let link = code.form == crate::actions::IssuedForm::ProductLink;
                self.words(
                    template,
                    json!({
                        "email": email.key(),
                        "reference": done.reference,
                        "code": (!link).then(|| code.code.expose_secret()),
                        "link": link.then(|| code.code.expose_secret()),
                        "expires_at": code.expires_at.map(rfc3339),
                    }),
                )?
            }
            None => done.summary.clone(),
        };
        let escalation = match &done.escalation {
            Some(escalation) => {
                let diagnosis = serde_json::to_string_pretty(&escalation.diagnosis)
                    .unwrap_or_else(|_| escalation.diagnosis.to_string());
                let facts = json!({
                    "reference": escalation.reference,
                    "email": escalation.email,
                    "workspace": escalation.workspace,
                    "requested_by": escalation.requested_by,
                    "created_at": rfc3339(escalation.created_at),
                    "actions_taken": escalation.actions_taken,
                    "note": escalation.note,
                });
                Some(EscalationPost {
                    title: self.words("escalation_title", facts.clone())?,
                    diagnosis,
                    text: self.words("escalation_text", facts)?,
                })
            }
            None => None,
        };
        Ok(PressOutcome {
            // Always private: it may hold an activation code, and is meant for the presser only.
            reply: ChatReply::notice(text),
            finished: Some(finished),
            escalation,
        })
    }

    /// Workspaces whose slug or name starts with `prefix` and that `actor` may check, as
    /// (label, slug), for autocompletion: nobody learns a workspace's name from it.
    pub async fn workspace_choices(&self, actor: &Actor, prefix: &str) -> Vec<(String, String)> {
        let scope = actor.scope(Permission::Check);
        if !actor.may_anywhere(Permission::Check) {
            return Vec::new();
        }
        match self
            .engine()
            .store()
            .list_workspaces(prefix.trim(), 25)
            .await
        {
            Ok(workspaces) => workspaces
                .into_iter()
                .filter(|w| scope.contains(&w.slug))
                .map(|w| {
                    (
                        truncate(&format!("{} ({})", w.name, w.slug), 100),
                        w.slug.as_str().to_owned(),
                    )
                })
                .collect(),
            Err(error) => {
                tracing::warn!(error = %crate::error::error_chain(&error), "no autocompletion");
                Vec::new()
            }
        }
    }
}

/// The action a button takes; `None` for a check, which is answered by a check.
fn action_of(button: ButtonAction) -> Option<Action> {
    match button {
        ButtonAction::Check => None,
        ButtonAction::ResendInvite => Some(Action::ResendInvite),
        ButtonAction::IssueActivationCode => Some(Action::IssueActivationCode),
        ButtonAction::Escalate => Some(Action::Escalate),
    }
}

/// A time as the templates receive it.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn new_record(
    action: ButtonAction,
    diagnosis: &Diagnosis,
    email: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> ButtonRecord {
    ButtonRecord {
        reference: new_reference(),
        action,
        email: email.to_owned(),
        workspace: diagnosis
            .workspace
            .as_ref()
            .map(|w| w.slug.as_str().to_owned()),
        member_id: if action == ButtonAction::Check {
            None
        } else {
            diagnosis.member.as_ref().map(|m| m.id)
        },
        offered_to: actor.id().to_owned(),
        offered_at: now,
        used_at: None,
        used_by: None,
        outcome: None,
        message: None,
    }
}

/// 24 random symbols (120 bits): unguessable, and with the prefix far below Discord's
/// 100-character limit for a `custom_id`.
pub fn new_reference() -> String {
    crate::random::symbols(24)
}

/// The reference in a button's custom id, when the button is one the bot could have minted.
pub fn button_reference(custom_id: &str) -> Option<&str> {
    custom_id
        .strip_prefix(BUTTON_PREFIX)
        .filter(|r| is_reference(r))
}

/// Any letter or digit, not only [`crate::random::SYMBOLS`]: buttons offered before references
/// were drawn from those keep working.
fn is_reference(text: &str) -> bool {
    text.len() == 24 && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_opaque_and_short() {
        let reference = new_reference();
        assert!(is_reference(&reference));
        assert!(BUTTON_PREFIX.len() + reference.len() <= 100);
        assert_ne!(reference, new_reference());
        assert!(!is_reference("resend_invite:jane@acme.com"));
    }

    #[test]
    fn truncation_keeps_limits() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 4).chars().count(), 4);
    }
}
