//! Workspaces: the customer accounts whose admins invite learners and trainers.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("the workspace name is empty")]
    Empty,
    #[error("the workspace `{0}` is too long (at most 63 characters)")]
    TooLong(String),
    #[error("the workspace `{0}` may only hold lower-case letters, digits and `-`")]
    InvalidCharacter(String),
}

/// The longest slug accepted.
const MAX_SLUG_LEN: usize = 63;

impl SlugError {
    /// The problem as data, for the words of `prompts/errors.j2` (`slug_problem`).
    pub fn facts(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            SlugError::Empty => json!({ "problem": "empty" }),
            SlugError::TooLong(slug) => {
                json!({ "problem": "too_long", "workspace": slug, "limit": MAX_SLUG_LEN })
            }
            SlugError::InvalidCharacter(slug) => {
                json!({ "problem": "invalid_character", "workspace": slug })
            }
        }
    }
}

/// The short, URL-safe name of a workspace, e.g. `acme-academy`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct WorkspaceSlug(String);

impl TryFrom<String> for WorkspaceSlug {
    type Error = SlugError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WorkspaceSlug> for String {
    fn from(slug: WorkspaceSlug) -> String {
        slug.0
    }
}

impl WorkspaceSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let slug = input.trim().to_ascii_lowercase();
        if slug.is_empty() {
            return Err(SlugError::Empty);
        }
        if slug.len() > MAX_SLUG_LEN {
            return Err(SlugError::TooLong(shown(input)));
        }
        let well_formed = slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if !well_formed {
            return Err(SlugError::InvalidCharacter(shown(input)));
        }
        Ok(Self(slug))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What was typed, as it is echoed in a refusal: at most 64 characters, and anything that is not
/// plainly visible (a direction override, a zero-width space) written as its code, `\u{202e}`.
fn shown(input: &str) -> String {
    let input = input.trim();
    let mut shown = String::new();
    for c in input.chars().take(64) {
        if c.is_alphanumeric() || c.is_ascii_punctuation() || c == ' ' {
            shown.push(c);
        } else {
            shown.extend(c.escape_unicode());
        }
    }
    if input.chars().nth(64).is_some() {
        shown.push('…');
    }
    shown
}

impl fmt::Display for WorkspaceSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for WorkspaceSlug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workspace {
    #[serde(skip)]
    pub id: i64,
    pub slug: WorkspaceSlug,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_slugs() {
        assert_eq!(
            WorkspaceSlug::parse(" Acme-Academy ").unwrap().as_str(),
            "acme-academy"
        );
        assert_eq!(WorkspaceSlug::parse(""), Err(SlugError::Empty));
        assert!(matches!(
            WorkspaceSlug::parse("acme academy"),
            Err(SlugError::InvalidCharacter(_))
        ));
        assert!(matches!(
            WorkspaceSlug::parse("-acme"),
            Err(SlugError::InvalidCharacter(_))
        ));
        assert!(matches!(
            WorkspaceSlug::parse(&"a".repeat(64)),
            Err(SlugError::TooLong(_))
        ));
    }

    #[test]
    fn refusals_echo_only_visible_text_and_not_much_of_it() {
        assert_eq!(
            WorkspaceSlug::parse("ac\u{202E}me")
                .unwrap_err()
                .to_string(),
            "the workspace `ac\\u{202e}me` may only hold lower-case letters, digits and `-`"
        );
        let huge = "x".repeat(1 << 20);
        let message = WorkspaceSlug::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
        assert!(
            message.contains(&format!("{}…", "x".repeat(64))),
            "{message}"
        );
    }
}

/// The workspaces an actor may see: all of them, or a named few. A scoped actor learns nothing
/// about the others (no membership, no suggestion, no name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceScope {
    All,
    Only(std::collections::BTreeSet<WorkspaceSlug>),
}

impl WorkspaceScope {
    pub fn contains(&self, slug: &WorkspaceSlug) -> bool {
        match self {
            WorkspaceScope::All => true,
            WorkspaceScope::Only(slugs) => slugs.contains(slug),
        }
    }
}
