//! STAND-IN for `crate::ingest` and `Store::apply_*` while they are written on main: the agreed
//! interface with just enough behaviour to compile the push API against it. Deleted when the
//! "Ingest:" commit is merged.

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Fixtures,
    ProductDb,
    Import,
    Push,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawMember {
    pub workspace: String,
    pub workspace_name: Option<String>,
    pub email: String,
    pub role: String,
    pub status: String,
    pub invited_at: Option<String>,
    pub activated_at: Option<String>,
    pub updated_at: String,
    pub deleted: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawInvitation {
    pub workspace: String,
    pub email: String,
    pub sent_at: String,
    pub expires_at: Option<String>,
    pub message_id: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    pub index: usize,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ApplyReport {
    pub applied: u64,
    pub unchanged: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{} bad rows", .0.len())]
    Rows(Vec<RowError>),
}

pub struct ValueMaps;

impl ValueMaps {
    pub fn identity() -> Self {
        ValueMaps
    }
}

#[derive(Debug)]
pub struct MemberRecord(RawMember);

#[derive(Debug)]
pub struct InvitationRecord(RawInvitation);

pub fn parse_members(
    rows: Vec<RawMember>,
    _maps: &ValueMaps,
) -> Result<Vec<MemberRecord>, Vec<RowError>> {
    let bad: Vec<RowError> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| !row.email.contains('@'))
        .map(|(index, _)| RowError {
            index,
            field: "email".into(),
            reason: "not an email address".into(),
        })
        .collect();
    if bad.is_empty() {
        Ok(rows.into_iter().map(MemberRecord).collect())
    } else {
        Err(bad)
    }
}

pub fn parse_invitations(
    rows: Vec<RawInvitation>,
    _ttl: chrono::Duration,
) -> Result<Vec<InvitationRecord>, Vec<RowError>> {
    Ok(rows.into_iter().map(InvitationRecord).collect())
}

impl Store {
    pub async fn apply_members(
        &self,
        _source: SourceKind,
        rows: &[MemberRecord],
    ) -> Result<ApplyReport, IngestError> {
        Ok(ApplyReport {
            applied: rows.len() as u64,
            unchanged: 0,
        })
    }

    pub async fn apply_invitations(
        &self,
        _source: SourceKind,
        rows: &[InvitationRecord],
    ) -> Result<ApplyReport, IngestError> {
        Ok(ApplyReport {
            applied: rows.len() as u64,
            unchanged: 0,
        })
    }
}
