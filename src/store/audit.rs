//! The audit log: one row per check, action, refusal and redemption. Never a code or a token.

use chrono::{DateTime, Utc};

use super::records::{Append, AuditEntry};
use super::{on_backend, Store, StoreResult};

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub email_key: Option<String>,
    pub workspace: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: i64,
}

impl Store {
    /// Adds one audit row; returns once it is committed (in a group: [`super::appends`]).
    pub async fn write_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.append(Append::Audit(Box::new(entry.clone()))).await
    }

    /// Audit rows matching every given filter, oldest first.
    pub async fn read_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let since = filter.since.unwrap_or(DateTime::UNIX_EPOCH);
        let rows = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT at, actor_id, actor_name, action, workspace, email_key AS email, outcome, reason, \
                     reference, detail FROM audit_log \
                 WHERE ($1 IS NULL OR email_key = $1) AND ($2 IS NULL OR workspace = $2) AND at >= $3 \
                 ORDER BY at, id LIMIT $4",
            )
            .bind(&filter.email_key)
            .bind(&filter.workspace)
            .bind(since)
            .bind(filter.limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Deletes audit rows written before `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let deleted = on_backend!(self, pool => {
            sqlx::query("DELETE FROM audit_log WHERE at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}
