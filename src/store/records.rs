//! The rows that are only ever added (audit entries, button records), and how each is inserted.
//! [`super::appends`] commits them in groups; [`super::audit`] and [`super::buttons`] read them back.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{AuditAction, AuditOutcome, AuditReason, ButtonAction};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_name: String,
    pub action: AuditAction,
    pub workspace: Option<String>,
    pub email: Option<String>,
    pub outcome: AuditOutcome,
    pub reason: Option<AuditReason>,
    pub reference: Option<String>,
    pub detail: Option<String>,
}

/// What a button offers, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ButtonRecord {
    pub reference: String,
    pub action: ButtonAction,
    pub email: String,
    pub workspace: Option<String>,
    pub member_id: Option<i64>,
    pub offered_to: String,
    pub offered_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<String>,
    /// The line shown on the message once the action was done, and to whoever presses again.
    pub outcome: Option<String>,
    pub message: Option<String>,
}

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor_id, actor_name, action, \
     workspace, email_key, outcome, reason, reference, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub(super) const INSERT_BUTTON: &str = "INSERT INTO chat_buttons (reference, action, email, \
     workspace, member_id, offered_to, offered_at, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Rows that are only ever added, each group all or none.
#[derive(Debug)]
pub(crate) enum Append {
    Audit(Box<AuditEntry>),
    /// One reply's buttons.
    Buttons(Vec<ButtonRecord>),
}

/// Binds one append's rows and executes them on `$conn` (a transaction of either backend).
macro_rules! execute_append {
    ($conn:expr, $append:expr) => {
        match $append {
            $crate::store::records::Append::Audit(entry) => {
                sqlx::query($crate::store::records::INSERT_AUDIT)
                    .bind(entry.at)
                    .bind(&entry.actor_id)
                    .bind(&entry.actor_name)
                    .bind(entry.action)
                    .bind(&entry.workspace)
                    .bind(&entry.email)
                    .bind(entry.outcome)
                    .bind(entry.reason)
                    .bind(&entry.reference)
                    .bind(&entry.detail)
                    .execute(&mut *$conn)
                    .await?;
            }
            $crate::store::records::Append::Buttons(records) => {
                for record in records {
                    sqlx::query($crate::store::records::INSERT_BUTTON)
                        .bind(&record.reference)
                        .bind(record.action)
                        .bind(&record.email)
                        .bind(&record.workspace)
                        .bind(record.member_id)
                        .bind(&record.offered_to)
                        .bind(record.offered_at)
                        .bind(&record.message)
                        .execute(&mut *$conn)
                        .await?;
                }
            }
        }
    };
}
pub(super) use execute_append;
