//! The platform-neutral chat flow: a request from a person becomes engine calls, and the results
//! become a [`ChatReply`] with buttons. Discord and the local console both drive this module, so
//! the rules (who may check, how old a button may be, a button acts once) are written once.

pub mod reply;
pub mod request;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::actions::Actions;
use crate::actions::{ActionDone, ActionOutcome, Actor, Authorizer, RefusalReason};
use crate::app::config::Config;
use crate::diagnosis::Diagnosis;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::engine::Engine;
use crate::error::{EngineError, UserError};
use crate::store::ButtonRecord;
use crate::summary::Summary;

pub use reply::{ButtonAction, Card, ChatButton, ChatReply, EscalationPost, PressOutcome};
pub use request::{addresses_in, ChatRequest};

/// Every button's `custom_id` starts with this; the rest is the record's random reference.
pub const BUTTON_PREFIX: &str = "ib:";

/// At most this many "Check ..." buttons under a support-channel message.
pub const MAX_LISTENER_BUTTONS: usize = 5;

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
}

impl Chat {
    pub fn new(actions: Actions, config: &Config) -> Self {
        Chat {
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
            Err(error) => return ChatReply::notice(UserError::from(error).to_string()),
        };
        let workspace = match workspace.filter(|w| !w.trim().is_empty()) {
            Some(slug) => match WorkspaceSlug::parse(slug) {
                Ok(slug) => Some(slug),
                Err(error) => return ChatReply::notice(UserError::from(error).to_string()),
            },
            None => None,
        };
        match self.check_reply(actor, &email, workspace.as_ref()).await {
            Ok(reply) => reply,
            Err(error) => ChatReply::notice(error.public_message()),
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
            let slug = diagnosis
                .workspace
                .as_ref()
                .map(|w| w.slug.as_str().to_owned());
            // Actions need a workspace to act in; a result that is nowhere offers none.
            if slug.is_some() {
                for action in &diagnosis.actions {
                    let action = ButtonAction::from(*action);
                    let record = new_record(action, diagnosis, diagnosis.email.key(), actor, now);
                    buttons.push(ChatButton {
                        label: action.label().to_owned(),
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
                    label: truncate(&format!("Did you mean {suggestion}?"), 80),
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
        let buttons = addresses
            .iter()
            .zip(&records)
            .map(|(email, record)| ChatButton {
                label: truncate(&format!("Check {}", email.key()), 80),
                action: ButtonAction::Check,
                reference: record.reference.clone(),
                group: 0,
            })
            .collect();
        Some(ChatReply {
            ephemeral: false,
            text:
                "Support can check why an invitation did not arrive; the result is shown only to \
                   the person who presses."
                    .to_owned(),
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
        let refuse = |text: &str| PressOutcome::answer(ChatReply::notice(text));
        let Some(reference) = button_reference(custom_id) else {
            tracing::warn!("press of a button that is not ours");
            return refuse(FORGED);
        };
        let record = match self.engine().store().find_button(reference).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::warn!("press of an unknown button");
                return refuse(FORGED);
            }
            Err(error) => {
                return refuse(&EngineError::from(error).public_message());
            }
        };
        let action = record.action;
        if now - record.offered_at > self.settings.button_max_age {
            tracing::info!(action = action.as_str(), "stale button");
            return refuse(&format!(
                "This button is from a check more than {} minutes old; run the check again so it \
                 works from what is true now.",
                self.settings.button_max_age.num_minutes()
            ));
        }
        match action {
            ButtonAction::Check => {
                let reply = self
                    .invite_check(actor, &record.email, record.workspace.as_deref())
                    .await;
                // A check asked for by a press is always private, whatever the channel.
                PressOutcome::answer(ChatReply {
                    ephemeral: true,
                    ..reply
                })
            }
            _ => self.perform(actor, &record, action, now).await,
        }
    }

    async fn perform(
        &self,
        actor: &Actor,
        record: &ButtonRecord,
        action: ButtonAction,
        now: DateTime<Utc>,
    ) -> PressOutcome {
        let notice = |text: String| PressOutcome::answer(ChatReply::notice(text));
        if record.used_at.is_some() {
            tracing::info!(action = action.as_str(), "replayed button");
            return notice(replayed(record));
        }
        let (Ok(email), Some(Ok(workspace))) = (
            EmailAddress::parse(&record.email),
            record.workspace.as_deref().map(WorkspaceSlug::parse),
        ) else {
            return notice(FORGED.to_owned());
        };
        let store = self.engine().store();
        // Claimed before acting, so two presses at once cannot both act; given back below when
        // nothing was done.
        match store.claim_button(&record.reference, actor.id(), now).await {
            Ok(true) => {}
            Ok(false) => {
                let latest = store.find_button(&record.reference).await.ok().flatten();
                return notice(replayed(latest.as_ref().unwrap_or(record)));
            }
            Err(error) => return notice(EngineError::from(error).public_message()),
        }
        // The button's reference is the idempotency key: the same button can never act twice,
        // even through another bot instance.
        let key = Some(record.reference.as_str());
        let result = match action {
            ButtonAction::ResendInvite => {
                self.actions
                    .resend_invite(actor, &email, &workspace, key)
                    .await
            }
            ButtonAction::IssueActivationCode => {
                self.actions
                    .issue_activation_code(actor, &email, &workspace, key)
                    .await
            }
            ButtonAction::Escalate => self.actions.escalate(actor, &email, &workspace, None).await,
            // Check buttons never get here (they are answered by a check); refuse rather than panic.
            ButtonAction::Check => {
                let _ = store.release_button(&record.reference).await;
                return notice(FORGED.to_owned());
            }
        };
        match result {
            Ok(ActionOutcome::Done(done)) => {
                let finished = format!(
                    "{}: done by {} ({})",
                    action.label(),
                    actor.name(),
                    done.reference
                );
                if let Err(error) = store.finish_button(&record.reference, &finished).await {
                    tracing::warn!(error = %crate::error::error_chain(&error), "outcome not recorded on the button");
                }
                self.done_reply(done, finished)
            }
            Ok(ActionOutcome::Refused(refusal)) => {
                if refusal.reason != RefusalReason::AlreadyDone {
                    let _ = store.release_button(&record.reference).await;
                }
                tracing::info!(
                    action = action.as_str(),
                    reason = refusal.reason.as_str(),
                    "action refused"
                );
                notice(refusal.message)
            }
            Err(error) => {
                let _ = store.release_button(&record.reference).await;
                notice(error.public_message())
            }
        }
    }

    fn done_reply(&self, done: ActionDone, finished: String) -> PressOutcome {
        let mut text = done.summary.clone();
        if let Some(code) = &done.activation_code {
            use secrecy::ExposeSecret;
            text.push_str(&format!(
                "\n\nActivation code: {}  (valid until {} UTC)",
                code.code.expose_secret(),
                code.expires_at.format("%Y-%m-%d %H:%M")
            ));
            // The engine's summary carries the warning; it must never be lost if the words change.
            if !text.contains("activation link") {
                text.push_str(
                    "\nGive it to the person yourself, privately. Do not open the activation link \
                     yourself: that would use it up.",
                );
            }
        }
        let escalation = done.escalation.as_ref().map(|escalation| {
            let diagnosis = serde_json::to_string_pretty(&escalation.diagnosis)
                .unwrap_or_else(|_| escalation.diagnosis.to_string());
            let taken = if escalation.actions_taken.is_empty() {
                "none".to_owned()
            } else {
                escalation.actions_taken.join("; ")
            };
            EscalationPost {
                title: format!(
                    "Escalation {}: {} in {}",
                    escalation.reference, escalation.email, escalation.workspace
                ),
                diagnosis,
                text: format!(
                    "Requested by {} at {} UTC.\nActions already taken: {taken}.{}",
                    escalation.requested_by,
                    escalation.created_at.format("%Y-%m-%d %H:%M"),
                    escalation
                        .note
                        .as_deref()
                        .map(|n| format!("\nNote: {n}"))
                        .unwrap_or_default(),
                ),
            }
        });
        PressOutcome {
            // Always private: it may hold an activation code, and is meant for the presser only.
            reply: ChatReply::notice(text),
            finished: Some(finished),
            escalation,
        }
    }

    /// Workspaces whose slug or name starts with `prefix` and that `actor` may check, as
    /// (label, slug), for autocompletion: nobody learns a workspace's name from it.
    pub async fn workspace_choices(&self, actor: &Actor, prefix: &str) -> Vec<(String, String)> {
        let scope = actor.scope(crate::domain::Permission::Check);
        if !actor.may_anywhere(crate::domain::Permission::Check) {
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

fn replayed(record: &ButtonRecord) -> String {
    match (&record.outcome, record.used_at) {
        (Some(outcome), _) => format!("This was already done; nothing was repeated. {outcome}"),
        (None, Some(_)) => {
            "This button is being handled right now; nothing was repeated.".to_owned()
        }
        (None, None) => "Nothing was repeated; run the check again.".to_owned(),
    }
}

const FORGED: &str =
    "This button is not one the bot offered (or its record is gone); run the check again.";

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
