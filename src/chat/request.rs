//! What a person typed, read into a request: `/invite-check ADDRESS [WORKSPACE]`, `press N`, or a
//! plain message that may name addresses.

use crate::domain::email::EmailAddress;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatRequest {
    /// `/invite-check ADDRESS [WORKSPACE]` (also `workspace:SLUG`).
    InviteCheck {
        email: String,
        workspace: Option<String>,
    },
    /// `press N`: the console's way of pressing the Nth button shown.
    Press(usize),
    /// Anything else: a message in a support channel.
    Message(String),
    /// `/invite-check` without an address, or `press` without a number.
    Usage(Usage),
}

/// Which usage line to show; the words are the `chat.j2` macro it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Check,
    Press,
}

impl Usage {
    /// The `chat.j2` macro with its words.
    pub fn template(self) -> &'static str {
        match self {
            Usage::Check => "check_usage",
            Usage::Press => "press_usage",
        }
    }
}

impl ChatRequest {
    pub fn parse(line: &str) -> Self {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("/invite-check") => {
                let mut email = None;
                let mut workspace = None;
                for word in words {
                    let word = word.trim_start_matches("email:");
                    if let Some(slug) = word.strip_prefix("workspace:") {
                        workspace = Some(slug.to_owned());
                    } else if email.is_none() {
                        email = Some(word.to_owned());
                    } else if workspace.is_none() {
                        workspace = Some(word.to_owned());
                    }
                }
                match email {
                    Some(email) => ChatRequest::InviteCheck { email, workspace },
                    None => ChatRequest::Usage(Usage::Check),
                }
            }
            Some(word) if word.eq_ignore_ascii_case("press") => {
                match words.next().and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) if words.next().is_none() => ChatRequest::Press(n),
                    _ => ChatRequest::Usage(Usage::Press),
                }
            }
            _ => ChatRequest::Message(line.to_owned()),
        }
    }
}

/// The distinct valid addresses a message names, in order, at most `limit`.
pub fn addresses_in(message: &str, limit: usize) -> Vec<EmailAddress> {
    let mut found: Vec<EmailAddress> = Vec::new();
    for word in message.split(|c: char| c.is_whitespace() || c == ',' || c == ';') {
        if !word.contains('@') {
            continue;
        }
        // Quotes and brackets around an address are punctuation, not part of it.
        let word = word.trim_matches(|c: char| "\"'()[]{}!?:".contains(c));
        if let Ok(email) = EmailAddress::parse(word) {
            if !found.iter().any(|e| e.key() == email.key()) {
                found.push(email);
                if found.len() == limit {
                    break;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands() {
        assert_eq!(
            ChatRequest::parse("/invite-check jane@acme.com acme"),
            ChatRequest::InviteCheck {
                email: "jane@acme.com".into(),
                workspace: Some("acme".into())
            }
        );
        assert_eq!(
            ChatRequest::parse("/invite-check workspace:acme email:jane@acme.com"),
            ChatRequest::InviteCheck {
                email: "jane@acme.com".into(),
                workspace: Some("acme".into())
            }
        );
        assert_eq!(
            ChatRequest::parse("/invite-check"),
            ChatRequest::Usage(Usage::Check)
        );
        assert_eq!(ChatRequest::parse("press 2"), ChatRequest::Press(2));
        assert_eq!(
            ChatRequest::parse("press two"),
            ChatRequest::Usage(Usage::Press)
        );
        assert_eq!(
            ChatRequest::parse("hello there"),
            ChatRequest::Message("hello there".into())
        );
    }

    #[test]
    fn finds_addresses_in_prose() {
        let found = addresses_in(
            "my learner jane@acme.com (and \"bob@acme.com\", JANE@acme.com) never got it; @everyone",
            5,
        );
        let keys: Vec<_> = found.iter().map(|e| e.key()).collect();
        assert_eq!(keys, ["jane@acme.com", "bob@acme.com"]);
        let many: String = (0..9).map(|i| format!("u{i}@acme.com ")).collect();
        assert_eq!(addresses_in(&many, 5).len(), 5);
    }
}
