//! Chat replies shaped as Discord messages: embeds, button rows, empty allowed mentions, and all
//! text escaped so nothing a person typed (or a mail server answered) can ping, link or restyle.

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
const MAX_FIELDS: usize = 25;
const MAX_FOOTER: usize = 2048;
/// Every title, description, field and footer of a message's embeds together; past it Discord
/// refuses the whole message.
const MAX_EMBEDS_TOTAL: usize = 6000;

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

/// Markdown, mention and link syntax made inert. A zero-width space after `@` stops `@everyone`
/// and `@here` from rendering as mentions even where allowed mentions would not apply; one inside
/// `://` stops Discord from turning a URL into a link (a bounce diagnostic from the recipient's
/// server is anyone's text: "550 ... https://evil.example/reset" must not be clickable). Direction
/// overrides would make text read as something else, so they show as `�`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous = None;
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
            '/' if previous == Some(':') => {
                out.push('\u{200B}');
                out.push('/');
            }
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => out.push('\u{FFFD}'),
            _ => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// Escapes, then cuts to `max` characters without leaving a dangling backslash.
fn escaped(text: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let mut text = truncate(&escape(text), max);
    if text.ends_with("\\…") {
        text.truncate(text.len() - "\\…".len());
        text.push('…');
    }
    text
}

/// The escalation's words escaped, then the diagnosis in a code block, where nothing renders.
pub fn escalation_description(post: &EscalationPost) -> String {
    // Half the room at most, so the diagnosis always shows and the sum stays within the limit.
    let text = escaped(&post.text, MAX_DESCRIPTION / 2);
    // A backtick could close the block early; the JSON needs none.
    let diagnosis = post.diagnosis.replace('`', "'");
    let room = MAX_DESCRIPTION.saturating_sub(text.chars().count() + 16);
    format!("{text}\n```json\n{}\n```", truncate(&diagnosis, room))
}

pub fn content(reply: &ChatReply) -> String {
    escaped(&reply.text, MAX_CONTENT)
}

pub fn embeds(reply: &ChatReply) -> Vec<CreateEmbed> {
    let cards = &reply.cards[..reply.cards.len().min(MAX_EMBEDS)];
    let mut left = MAX_EMBEDS_TOTAL;
    cards
        .iter()
        .enumerate()
        .map(|(index, card)| {
            // Each card gets an even share of what is left (at least 600 characters for ten), so
            // one long card cannot crowd out the rest; what a card does not use passes on.
            let share = left / (cards.len() - index);
            let mut room = share;
            let title = fit(&mut room, MAX_TITLE, |max| escaped(&card.title, max));
            let footer = match &card.workspace {
                Some(workspace) => format!("{} · {}", card.email, workspace),
                None => card.email.clone(),
            };
            // Footers are not markdown; only length matters.
            let footer = fit(&mut room, MAX_FOOTER, |max| cut(&footer, max));
            let description = fit(&mut room, MAX_DESCRIPTION, |max| {
                escaped(&card.description, max)
            });
            let mut embed = CreateEmbed::new()
                .title(title)
                .colour(colour(card.severity))
                .footer(CreateEmbedFooter::new(footer));
            if !description.is_empty() {
                embed = embed.description(description);
            }
            for (name, value) in card.fields.iter().take(MAX_FIELDS) {
                let name = escaped(name, MAX_FIELD_NAME.min(room));
                let value = escaped(
                    value,
                    MAX_FIELD_VALUE.min(room.saturating_sub(name.chars().count())),
                );
                // Discord refuses an empty field name or value: no room is no field.
                if name.is_empty() || value.is_empty() {
                    break;
                }
                room -= name.chars().count() + value.chars().count();
                embed = embed.field(name, value, false);
            }
            left -= share - room;
            embed
        })
        .collect()
}

/// The text `make` gives for at most `max` characters and the room left, counted against the room.
fn fit(room: &mut usize, max: usize, make: impl FnOnce(usize) -> String) -> String {
    let text = make(max.min(*room));
    *room -= text.chars().count();
    text
}

/// [`truncate`], but nothing at all when there is no room (not even the `…`).
fn cut(text: &str, max: usize) -> String {
    if max == 0 {
        String::new()
    } else {
        truncate(text, max)
    }
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
    use crate::chat::Card;

    #[test]
    fn escaping_defuses_mentions_and_markdown() {
        let text = escape("@everyone <@&123> **bold** [x](http://evil)");
        assert!(!text.contains("@everyone"));
        assert!(!text.contains("<@&") && text.contains("\\<@"), "{text}");
        assert!(!text.contains("**"));
        assert!(!text.contains("]("));
    }

    /// The text of every string an embed carries, by key, from what is sent to Discord.
    fn embed_texts(embed: &CreateEmbed) -> serde_json::Value {
        serde_json::to_value(embed).unwrap()
    }

    fn card(title: &str, description: &str, fields: Vec<(String, String)>) -> Card {
        Card {
            title: title.to_owned(),
            verdict: None,
            severity: Some(Severity::Bad),
            workspace: Some("Acme (acme)".into()),
            email: "jane@acme.com".into(),
            description: description.to_owned(),
            fields,
        }
    }

    #[test]
    fn remote_text_never_becomes_a_link() {
        let diagnostic = "550 5.7.1 <jane@acme.com> blocked: see https://evil.example/reset or \
                          HTTP://evil.example, [reset](https://evil.example) `code` @here";
        let text = escape(diagnostic);
        assert!(!text.contains("://"), "{text}");
        assert!(
            text.contains("https:\u{200B}//evil.example/reset"),
            "{text}"
        );
        assert!(!text.contains("]("), "{text}");
        assert!(!text.contains("@here"), "{text}");
        assert!(text.contains("\\`code\\`"), "{text}");
        // Direction overrides cannot reorder what follows them.
        let reversed = escape("ok \u{202E}moc.live\u{202C} \u{2067}x\u{2069}");
        assert!(!reversed.contains('\u{202E}') && !reversed.contains('\u{2067}'));

        let reply = ChatReply {
            ephemeral: false,
            text: diagnostic.into(),
            cards: vec![card(
                diagnostic,
                diagnostic,
                vec![("Last bounce".into(), diagnostic.into())],
            )],
            buttons: Vec::new(),
        };
        assert!(!content(&reply).contains("://"));
        let json = embed_texts(&embeds(&reply)[0]).to_string();
        assert!(!json.contains("://"), "{json}");
    }

    #[test]
    fn a_message_stays_within_discords_embed_limits() {
        let long = |n: usize| "Ab_".repeat(n);
        let fields: Vec<(String, String)> = (0..40).map(|_| (long(200), long(900))).collect();
        let reply = ChatReply {
            ephemeral: false,
            text: String::new(),
            cards: (0..12)
                .map(|_| card(&long(200), &long(3000), fields.clone()))
                .collect(),
            buttons: Vec::new(),
        };
        let sent: Vec<serde_json::Value> = embeds(&reply).iter().map(embed_texts).collect();
        assert_eq!(sent.len(), MAX_EMBEDS);
        let length = |value: &serde_json::Value| value.as_str().map_or(0, |s| s.chars().count());
        let mut total = 0;
        for embed in &sent {
            let title = length(&embed["title"]);
            let description = length(&embed["description"]);
            let footer = length(&embed["footer"]["text"]);
            assert!((1..=MAX_TITLE).contains(&title), "{embed}");
            assert!(description <= MAX_DESCRIPTION);
            assert!(footer <= MAX_FOOTER);
            total += title + description + footer;
            let fields = embed["fields"].as_array().cloned().unwrap_or_default();
            assert!(fields.len() <= MAX_FIELDS);
            for field in &fields {
                let (name, value) = (length(&field["name"]), length(&field["value"]));
                assert!((1..=MAX_FIELD_NAME).contains(&name), "{field}");
                assert!((1..=MAX_FIELD_VALUE).contains(&value), "{field}");
                total += name + value;
            }
        }
        assert!(total <= MAX_EMBEDS_TOTAL, "{total} characters");
        // Every card still shows what it is about.
        assert!(sent.iter().all(|e| length(&e["footer"]["text"]) > 0));

        // A single card may use what the others would have had.
        let one = ChatReply {
            cards: vec![card(&long(20), &long(3000), fields)],
            ..reply
        };
        let embed = embed_texts(&embeds(&one)[0]);
        // (One less when the cut would have left half an escape.)
        assert!(
            length(&embed["description"]) >= MAX_DESCRIPTION - 1,
            "{embed}"
        );
        assert!(embed["fields"].as_array().unwrap().len() > 1);
    }

    #[test]
    fn cutting_never_leaves_a_dangling_escape() {
        let text = escaped(&"_".repeat(300), 11);
        assert!(text.chars().count() <= 11);
        assert!(!text.ends_with("\\…"));
    }
}
