//! Chat replies shaped as Discord messages: embeds, button rows, empty allowed mentions, and all
//! text escaped so nothing a person typed can ping, link or restyle.

use serenity::all::{
    ButtonStyle, Colour, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed,
    CreateEmbedFooter,
};

use crate::chat::{truncate, ButtonAction, ChatButton, ChatReply, EscalationPost, BUTTON_PREFIX};
use crate::diagnosis::Severity;

/// Discord's limits: embeds per message, rows per message, buttons per row, text lengths.
const MAX_EMBEDS: usize = 10;
const MAX_ROWS: usize = 5;
const MAX_BUTTONS_PER_ROW: usize = 5;
const MAX_CONTENT: usize = 2000;
const MAX_TITLE: usize = 256;
const MAX_FIELD_NAME: usize = 256;
const MAX_FIELD_VALUE: usize = 1024;
const MAX_DESCRIPTION: usize = 4096;

/// No pings at all: not users, roles, `@everyone`, nor the replied-to author.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new().replied_user(false)
}

/// The product's badge colours: green active, yellow invited, red failed, grey deactivated.
pub fn colour(severity: Option<Severity>) -> Colour {
    match severity {
        Some(Severity::Good) => Colour::new(0x2E_A0_43),
        Some(Severity::Pending) => Colour::new(0xF1_C4_0F),
        Some(Severity::Bad) => Colour::new(0xD9_3F_0B),
        Some(Severity::Neutral) | None => Colour::new(0x95_A5_A6),
    }
}

/// Markdown and mention syntax made inert. A zero-width space after `@` stops `@everyone` and
/// `@here` from rendering as mentions even where allowed mentions would not apply.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '@' => {
                out.push('@');
                out.push('\u{200B}');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes, then cuts to `max` characters without leaving a dangling backslash.
fn escaped(text: &str, max: usize) -> String {
    let mut text = truncate(&escape(text), max);
    if text.ends_with("\\…") {
        text.truncate(text.len() - "\\…".len());
        text.push('…');
    }
    text
}

/// The escalation's words escaped, then the diagnosis in a code block, where nothing renders.
pub fn escalation_description(post: &EscalationPost) -> String {
    let text = escape(&post.text);
    // A backtick could close the block early; the JSON needs none.
    let diagnosis = post.diagnosis.replace('`', "'");
    let room = MAX_DESCRIPTION.saturating_sub(text.chars().count() + 16);
    format!("{text}\n```json\n{}\n```", truncate(&diagnosis, room))
}

pub fn content(reply: &ChatReply) -> String {
    escaped(&reply.text, MAX_CONTENT)
}

pub fn embeds(reply: &ChatReply) -> Vec<CreateEmbed> {
    reply
        .cards
        .iter()
        .take(MAX_EMBEDS)
        .map(|card| {
            let mut embed = CreateEmbed::new()
                .title(escaped(&card.title, MAX_TITLE))
                .colour(colour(card.severity))
                .description(escaped(&card.description, MAX_DESCRIPTION));
            for (name, value) in &card.fields {
                embed = embed.field(
                    escaped(name, MAX_FIELD_NAME),
                    escaped(value, MAX_FIELD_VALUE),
                    false,
                );
            }
            let footer = match &card.workspace {
                Some(workspace) => format!("{} · {}", card.email, workspace),
                None => card.email.clone(),
            };
            // Footers are not markdown; only length matters.
            embed.footer(CreateEmbedFooter::new(truncate(&footer, 2048)))
        })
        .collect()
}

/// One row per button group (a card's actions, a card's suggestions), at most five of each.
pub fn components(buttons: &[ChatButton], disabled: bool) -> Vec<CreateActionRow> {
    let mut rows: Vec<(usize, Vec<CreateButton>)> = Vec::new();
    for button in buttons {
        let create = CreateButton::new(format!("{BUTTON_PREFIX}{}", button.reference))
            .label(truncate(&button.label, 80))
            .style(style(button.action))
            .disabled(disabled);
        match rows.iter_mut().find(|(group, _)| *group == button.group) {
            Some((_, row)) if row.len() < MAX_BUTTONS_PER_ROW => row.push(create),
            Some(_) => {}
            None => rows.push((button.group, vec![create])),
        }
    }
    rows.into_iter()
        .take(MAX_ROWS)
        .map(|(_, buttons)| CreateActionRow::Buttons(buttons))
        .collect()
}

fn style(action: ButtonAction) -> ButtonStyle {
    match action {
        ButtonAction::Check => ButtonStyle::Secondary,
        ButtonAction::ResendInvite | ButtonAction::IssueActivationCode => ButtonStyle::Primary,
        ButtonAction::Escalate => ButtonStyle::Danger,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_defuses_mentions_and_markdown() {
        let text = escape("@everyone <@&123> **bold** [x](http://evil)");
        assert!(!text.contains("@everyone"));
        assert!(!text.contains("<@&") && text.contains("\\<@"), "{text}");
        assert!(!text.contains("**"));
        assert!(!text.contains("]("));
    }

    #[test]
    fn cutting_never_leaves_a_dangling_escape() {
        let text = escaped(&"_".repeat(300), 11);
        assert!(text.chars().count() <= 11);
        assert!(!text.ends_with("\\…"));
    }
}
