//! Step 1 of the checklist: is the address a member, and on which tab?

use serde_json::json;

use super::{Check, FindingDraft, Outcome};
use crate::domain::email::EmailAddress;
use crate::domain::member::MemberMatch;
use crate::domain::workspace::Workspace;

/// The member was found: say where an admin sees them.
pub fn found(found: &MemberMatch) -> FindingDraft {
    FindingDraft::new(
        Check::Registration,
        Outcome::Found,
        json!({
            "email": found.member.email,
            "role": found.member.role.as_str(),
            "workspace": found.workspace.name,
            "workspace_slug": found.workspace.slug.as_str(),
        }),
    )
}

/// Nobody has this address where we looked: entered wrongly, or never invited.
pub fn not_found(
    email: &EmailAddress,
    workspace: Option<&Workspace>,
    suggestions: &[String],
) -> FindingDraft {
    FindingDraft::new(
        Check::Registration,
        Outcome::NotFound,
        json!({
            "email": email.key(),
            "workspace": workspace.map(|w| w.name.as_str()),
            "suggestion_count": suggestions.len(),
        }),
    )
}

/// Not in the workspace asked about, but a member of others: often the wrong workspace was picked.
pub fn member_elsewhere(email: &EmailAddress, elsewhere: &[MemberMatch]) -> FindingDraft {
    let workspaces: Vec<&str> = elsewhere
        .iter()
        .map(|m| m.workspace.slug.as_str())
        .collect();
    FindingDraft::new(
        Check::Registration,
        Outcome::MemberElsewhere,
        json!({ "email": email.key(), "workspaces": workspaces }),
    )
}
