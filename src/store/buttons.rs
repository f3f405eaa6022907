//! Chat button records: the server-side half of every button the bot offers.

use chrono::{DateTime, SecondsFormat, Utc};

use super::appends::Append;
use super::{on_backend, Store, StoreError, StoreResult};

/// What a button offers, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonRecord {
    pub reference: String,
    /// `check`, `resend_invite`, `issue_activation_code` or `escalate`.
    pub action: String,
    pub email: String,
    pub workspace: Option<String>,
    pub member_id: Option<i64>,
    pub offered_to: String,
    pub offered_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<String>,
    pub outcome: Option<String>,
    pub message: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ButtonRow {
    reference: String,
    action: String,
    email: String,
    workspace: Option<String>,
    member_id: Option<i64>,
    offered_to: String,
    offered_at: String,
    used_at: Option<String>,
    used_by: Option<String>,
    outcome: Option<String>,
    message: Option<String>,
}

pub(super) fn encode_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn decode_time(text: &str, column: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("chat_buttons.{column} = {text:?}")))
}

impl TryFrom<ButtonRow> for ButtonRecord {
    type Error = StoreError;
    fn try_from(row: ButtonRow) -> StoreResult<Self> {
        Ok(ButtonRecord {
            offered_at: decode_time(&row.offered_at, "offered_at")?,
            used_at: row
                .used_at
                .as_deref()
                .map(|t| decode_time(t, "used_at"))
                .transpose()?,
            reference: row.reference,
            action: row.action,
            email: row.email,
            workspace: row.workspace,
            member_id: row.member_id,
            offered_to: row.offered_to,
            used_by: row.used_by,
            outcome: row.outcome,
            message: row.message,
        })
    }
}

const COLUMNS: &str = "reference, action, email, workspace, member_id, offered_to, offered_at, \
                       used_at, used_by, outcome, message";

impl Store {
    /// Stores the records of one reply's buttons, all or none.
    pub async fn insert_buttons(&self, records: &[ButtonRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.append(Append::Buttons(records.to_vec())).await
    }

    pub async fn find_button(&self, reference: &str) -> StoreResult<Option<ButtonRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM chat_buttons WHERE reference = $1"
        ));
        let row: Option<ButtonRow> = on_backend!(self, pool => {
            sqlx::query_as(sql).bind(reference).fetch_optional(pool).await?
        });
        row.map(ButtonRecord::try_from).transpose()
    }

    /// Marks the button used by `used_by`; false when another press got there first. The
    /// conditional update is what makes a replayed press harmless, even when two arrive at once.
    pub async fn claim_button(
        &self,
        reference: &str,
        used_by: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let affected = on_backend!(self, pool => {
            sqlx::query(
                "UPDATE chat_buttons SET used_at = $1, used_by = $2 \
                 WHERE reference = $3 AND used_at IS NULL",
            )
            .bind(encode_time(at))
            .bind(used_by)
            .bind(reference)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(affected == 1)
    }

    /// Gives a claimed button back when its action did not happen (refused, or the database or
    /// mail server failed), so it can be pressed again.
    pub async fn release_button(&self, reference: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE chat_buttons SET used_at = NULL, used_by = NULL WHERE reference = $1 AND outcome IS NULL",
            )
            .bind(reference)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records what the action did; a later press of the same button is answered with it.
    pub async fn finish_button(&self, reference: &str, outcome: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query("UPDATE chat_buttons SET outcome = $1 WHERE reference = $2")
                .bind(outcome)
                .bind(reference)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ties the buttons of one reply to the message they were posted on.
    pub async fn set_button_message(
        &self,
        references: &[String],
        message: &str,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            for reference in references {
                sqlx::query("UPDATE chat_buttons SET message = $1 WHERE reference = $2")
                    .bind(message)
                    .bind(reference)
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }
}
