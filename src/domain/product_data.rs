//! The product's members and invitations once checked: what sync, import and the push API hand to
//! the store, and what applying them did.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::email::EmailAddress;
use super::member::{MemberStatus, Role};
use super::workspace::WorkspaceSlug;

/// A checked member, in the bot's own words.
#[derive(Debug, Clone)]
pub struct MemberRecord {
    pub workspace: WorkspaceSlug,
    /// `None`: keep the name the bot holds (or use the slug for a new workspace).
    pub workspace_name: Option<String>,
    pub email: EmailAddress,
    pub role: Role,
    pub status: MemberStatus,
    pub invited_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    /// The product's own last change of this row: a row no newer than the bot's copy changes nothing.
    pub updated_at: DateTime<Utc>,
    /// Deleted in the product (soft delete): leaves the bot's view, kept for the audit log.
    pub deleted: bool,
}

/// A checked invitation the product sent.
#[derive(Debug, Clone)]
pub struct InvitationRecord {
    pub workspace: WorkspaceSlug,
    pub email: EmailAddress,
    pub sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Canonical form (no angle brackets), so provider events attach to it.
    pub message_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One bad row: its index in the batch (0-based; an import reports line numbers instead), the
/// field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub index: usize,
    pub field: String,
    pub reason: String,
}

impl RowError {
    pub fn new(index: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            index,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// What applying a batch did: rows written, and rows no newer than what the bot held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub applied: u64,
    pub unchanged: u64,
}

impl ApplyReport {
    pub fn add(&mut self, other: ApplyReport) {
        self.applied += other.applied;
        self.unchanged += other.unchanged;
    }
}
