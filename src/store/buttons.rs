//! Chat button records: the server-side half of every button the bot offers.

use chrono::{DateTime, Utc};

use super::records::{Append, ButtonRecord};
use super::{on_backend, Store, StoreResult};

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
        let row: Option<ButtonRecord> = on_backend!(self, pool => {
            sqlx::query_as(sql).bind(reference).fetch_optional(pool).await?
        });
        Ok(row)
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
            .bind(at)
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

    /// Deletes button records offered before `before`; returns how many.
    pub async fn prune_buttons(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let deleted = on_backend!(self, pool => {
            sqlx::query("DELETE FROM chat_buttons WHERE offered_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}
