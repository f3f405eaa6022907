//! The product's own data coming in: rows read from its database (`sync`), from an export
//! (`import`) or pushed to the API, checked into records in the bot's own words.
//!
//! Every way in produces the same raw rows ([`RawMember`], [`RawInvitation`]: text as the product
//! holds it), and [`parse_members`] / [`parse_invitations`] turn them into typed records or report
//! every bad row with its index and field, so a batch is applied whole or not at all
//! ([`crate::store::Store::apply_members`]).

pub mod export_file;
pub mod import;
mod values;

use chrono::{Duration, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::domain::email::EmailAddress;
use crate::domain::invitation::canonical_message_id;
pub use crate::domain::product_data::{ApplyReport, InvitationRecord, MemberRecord, RowError};
pub use crate::domain::source::SourceKind;
use crate::domain::workspace::WorkspaceSlug;
pub use crate::store::IngestError;

pub use values::{parse_offset, parse_time, ValueMap, ValueMaps};

/// Longest workspace display name and message id taken from the product.
const MAX_NAME_CHARS: usize = 200;
const MAX_MESSAGE_ID_BYTES: usize = 998;

/// A member row as the product holds it: every value text (or absent), so that a wrong one is
/// reported with its row and field instead of as a bare type error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub workspace: String,
    #[serde(default)]
    pub workspace_name: Option<String>,
    pub email: String,
    pub role: String,
    pub status: String,
    #[serde(default)]
    pub invited_at: Option<String>,
    #[serde(default)]
    pub activated_at: Option<String>,
    pub updated_at: String,
    #[serde(default)]
    pub deleted: Option<bool>,
}

/// An invitation email the product sent itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvitation {
    pub workspace: String,
    pub email: String,
    pub sent_at: String,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    pub updated_at: String,
}

/// Checks member rows. `maps` translates the product's role and status values (identity for
/// the push API, which takes the bot's own words); `zone` is the offset of timestamps written
/// without one. Every bad row is reported, not only the first.
pub fn parse_members(
    rows: Vec<RawMember>,
    maps: &ValueMaps,
    zone: FixedOffset,
) -> Result<Vec<MemberRecord>, Vec<RowError>> {
    parse_all(rows, |index, row| parse_member(index, row, maps, zone))
}

/// One member row, or every problem it has.
pub fn parse_member(
    index: usize,
    row: RawMember,
    maps: &ValueMaps,
    zone: FixedOffset,
) -> Result<MemberRecord, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, reason: String| errors.push(RowError::new(index, field, reason));
    let workspace = WorkspaceSlug::parse(&row.workspace)
        .map_err(|e| bad("workspace", e.to_string()))
        .ok();
    let workspace_name = match row.workspace_name.map(|n| n.trim().to_owned()) {
        Some(name) if name.chars().count() > MAX_NAME_CHARS => {
            bad(
                "workspace_name",
                format!("longer than {MAX_NAME_CHARS} characters"),
            );
            None
        }
        Some(name) if name.is_empty() => None,
        other => other,
    };
    let email = EmailAddress::parse(&row.email)
        .map_err(|e| bad("email", e.to_string()))
        .ok();
    let role = maps
        .role(&row.role)
        .map_err(|reason| bad("role", reason))
        .ok();
    let status = maps
        .status(&row.status)
        .map_err(|reason| bad("status", reason))
        .ok();
    let mut time = |field: &str, value: Option<&str>| match value.map(str::trim) {
        None | Some("") => None,
        Some(text) => parse_time(text, zone)
            .map_err(|reason| bad(field, reason))
            .ok(),
    };
    let invited_at = time("invited_at", row.invited_at.as_deref());
    let activated_at = time("activated_at", row.activated_at.as_deref());
    let updated_at = time("updated_at", Some(&row.updated_at));
    if row.updated_at.trim().is_empty() {
        errors.push(RowError::new(
            index,
            "updated_at",
            "is required: it orders the product's changes",
        ));
    }
    match (workspace, email, role, status, updated_at) {
        (Some(workspace), Some(email), Some(role), Some(status), Some(updated_at))
            if errors.is_empty() =>
        {
            Ok(MemberRecord {
                workspace,
                workspace_name,
                email,
                role,
                status,
                invited_at,
                activated_at,
                updated_at,
                deleted: row.deleted.unwrap_or(false),
            })
        }
        _ => Err(errors),
    }
}

/// Checks invitation rows; `ttl` is the lifetime given to one without `expires_at`.
pub fn parse_invitations(
    rows: Vec<RawInvitation>,
    ttl: Duration,
    zone: FixedOffset,
) -> Result<Vec<InvitationRecord>, Vec<RowError>> {
    parse_all(rows, |index, row| parse_invitation(index, row, ttl, zone))
}

/// Every row parsed, or every problem of every row.
fn parse_all<R, T>(
    rows: Vec<R>,
    mut parse: impl FnMut(usize, R) -> Result<T, Vec<RowError>>,
) -> Result<Vec<T>, Vec<RowError>> {
    let mut records = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (index, row) in rows.into_iter().enumerate() {
        match parse(index, row) {
            Ok(record) => records.push(record),
            Err(mut bad) => errors.append(&mut bad),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// One invitation row, or every problem it has.
pub fn parse_invitation(
    index: usize,
    row: RawInvitation,
    ttl: Duration,
    zone: FixedOffset,
) -> Result<InvitationRecord, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, reason: String| errors.push(RowError::new(index, field, reason));
    let workspace = WorkspaceSlug::parse(&row.workspace)
        .map_err(|e| bad("workspace", e.to_string()))
        .ok();
    let email = EmailAddress::parse(&row.email)
        .map_err(|e| bad("email", e.to_string()))
        .ok();
    let mut time = |field: &str, value: Option<&str>| match value.map(str::trim) {
        None | Some("") => None,
        Some(text) => parse_time(text, zone)
            .map_err(|reason| bad(field, reason))
            .ok(),
    };
    let sent_at = time("sent_at", Some(&row.sent_at));
    let expires_at = time("expires_at", row.expires_at.as_deref());
    let updated_at = time("updated_at", Some(&row.updated_at));
    let message_id = match row.message_id.as_deref().map(canonical_message_id) {
        Some(id) if id.is_empty() => None,
        Some(id) if id.len() > MAX_MESSAGE_ID_BYTES || id.chars().any(char::is_control) => {
            errors.push(RowError::new(
                index,
                "message_id",
                "is not a Message-ID (too long, or holds control characters)",
            ));
            None
        }
        other => other,
    };
    for (field, value) in [("sent_at", &row.sent_at), ("updated_at", &row.updated_at)] {
        if value.trim().is_empty() {
            errors.push(RowError::new(index, field, "is required"));
        }
    }
    if let (Some(sent), Some(expires)) = (sent_at, expires_at) {
        if expires <= sent {
            errors.push(RowError::new(index, "expires_at", "is not after sent_at"));
        }
    }
    match (workspace, email, sent_at, updated_at) {
        (Some(workspace), Some(email), Some(sent_at), Some(updated_at)) if errors.is_empty() => {
            Ok(InvitationRecord {
                workspace,
                email,
                sent_at,
                expires_at: expires_at.unwrap_or(sent_at + ttl),
                message_id,
                updated_at,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::member::{MemberStatus, Role};

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn member() -> RawMember {
        RawMember {
            workspace: "acme".into(),
            workspace_name: Some("Acme".into()),
            email: "Ann@Example.com".into(),
            role: "learner".into(),
            status: "invited".into(),
            invited_at: Some("2026-11-01T10:00:00Z".into()),
            activated_at: None,
            updated_at: "2026-11-02 10:00:00".into(),
            deleted: None,
        }
    }

    #[test]
    fn a_good_member_row_becomes_a_record() {
        let records = parse_members(vec![member()], &ValueMaps::identity(), utc()).unwrap();
        let record = &records[0];
        assert_eq!(record.email.key(), "ann@example.com");
        assert_eq!(record.role, Role::Learner);
        assert_eq!(record.status, MemberStatus::Invited);
        assert_eq!(record.updated_at.to_rfc3339(), "2026-11-02T10:00:00+00:00");
        assert!(!record.deleted);
    }

    #[test]
    fn every_bad_field_of_every_row_is_reported() {
        let mut bad = member();
        bad.email = "not-an-address".into();
        bad.role = "admin".into();
        bad.updated_at = "yesterday".into();
        let mut also_bad = member();
        also_bad.workspace = "Not A Slug!".into();
        let errors = parse_members(vec![member(), bad, also_bad], &ValueMaps::identity(), utc())
            .unwrap_err();
        let found: Vec<(usize, &str)> =
            errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(
            found,
            [
                (1, "email"),
                (1, "role"),
                (1, "updated_at"),
                (2, "workspace")
            ]
        );
        assert!(errors[1].reason.contains("admin"), "{:?}", errors[1]);
    }

    #[test]
    fn an_invitation_without_expiry_gets_the_ttl_and_a_canonical_message_id() {
        let row = RawInvitation {
            workspace: "acme".into(),
            email: "ann@example.com".into(),
            sent_at: "2026-11-01T10:00:00Z".into(),
            expires_at: None,
            message_id: Some(" <abc@mail.example> ".into()),
            updated_at: "2026-11-01T10:00:00Z".into(),
        };
        let records = parse_invitations(vec![row.clone()], Duration::hours(168), utc()).unwrap();
        assert_eq!(records[0].message_id.as_deref(), Some("abc@mail.example"));
        assert_eq!(
            records[0].expires_at - records[0].sent_at,
            Duration::hours(168)
        );

        let backwards = RawInvitation {
            expires_at: Some("2026-10-01T00:00:00Z".into()),
            ..row
        };
        let errors = parse_invitations(vec![backwards], Duration::hours(1), utc()).unwrap_err();
        assert_eq!(errors[0].field, "expires_at");
    }

    #[test]
    fn source_names_round_trip() {
        for kind in [
            SourceKind::Fixtures,
            SourceKind::ProductDb,
            SourceKind::ProductDbInvitations,
            SourceKind::Import,
            SourceKind::Push,
        ] {
            assert_eq!(SourceKind::parse(kind.as_str()), Some(kind));
        }
    }
}
