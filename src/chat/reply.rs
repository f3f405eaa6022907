//! The chat reply model: what the bot says, before Discord or the console shapes it.

use serde::Serialize;

use crate::diagnosis::{Severity, Verdict};

pub use crate::domain::action::ButtonAction;

/// A button: its words, what it does, and the opaque reference of its server-side record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatButton {
    pub label: String,
    pub action: ButtonAction,
    pub reference: String,
    /// Buttons of one group sit on one row (one card's actions, one card's suggestions).
    pub group: usize,
}

/// One workspace's result: a Discord embed, a block of text in the console.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub title: String,
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
    /// "Workspace name (slug)", when the result belongs to one.
    pub workspace: Option<String>,
    pub email: String,
    pub description: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatReply {
    /// Seen only by the person who asked.
    pub ephemeral: bool,
    /// A short line of text (the whole reply when there are no cards).
    pub text: String,
    pub cards: Vec<Card>,
    pub buttons: Vec<ChatButton>,
}

impl ChatReply {
    /// A private answer in words only: refusals, errors, usage.
    pub fn notice(text: impl Into<String>) -> Self {
        ChatReply {
            ephemeral: true,
            text: text.into(),
            cards: Vec::new(),
            buttons: Vec::new(),
        }
    }

    /// The verdict of the first card, if any.
    pub fn verdict(&self) -> Option<Verdict> {
        self.cards.iter().find_map(|c| c.verdict)
    }

    /// The whole reply as plain text, the way the console prints it (buttons excluded);
    /// `next_steps` is the label before each card's next steps, in the words of `chat.j2`.
    pub fn plain_text(&self, next_steps: &str) -> String {
        let mut blocks = Vec::new();
        if !self.text.is_empty() {
            blocks.push(self.text.clone());
        }
        for card in &self.cards {
            let mut block = card.title.clone();
            if let Some(workspace) = &card.workspace {
                block.push_str(" — ");
                block.push_str(workspace);
            }
            block.push_str(&format!("\n  {}", card.email));
            for (name, value) in &card.fields {
                block.push_str(&format!("\n  - {name}: {value}"));
            }
            if !card.description.is_empty() {
                block.push_str(&format!("\n  {next_steps} {}", card.description));
            }
            blocks.push(block);
        }
        blocks.join("\n\n")
    }
}

/// The result of pressing a button.
#[derive(Debug, Clone)]
pub struct PressOutcome {
    /// The answer to the person who pressed.
    pub reply: ChatReply,
    /// Set when an action was performed: the line to show on the original message, whose buttons
    /// are then disabled.
    pub finished: Option<String>,
    /// A hand-over for human support, to be posted to the escalation channel.
    pub escalation: Option<EscalationPost>,
}

impl PressOutcome {
    pub fn answer(reply: ChatReply) -> Self {
        PressOutcome {
            reply,
            finished: None,
            escalation: None,
        }
    }
}

/// What the escalation channel is told.
#[derive(Debug, Clone, Serialize)]
pub struct EscalationPost {
    pub title: String,
    /// Who asked, when, and what was already tried.
    pub text: String,
    /// The check's full diagnosis, as pretty JSON.
    pub diagnosis: String,
}
