//! Escalations to human support, and the delivery state of their webhook.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::locking::BeginLocked;
use super::{on_backend, Store, StoreResult};

pub struct NewEscalation<'a> {
    pub reference: &'a str,
    pub workspace_id: i64,
    pub member_id: Option<i64>,
    pub email_key: &'a str,
    pub diagnosis: &'a str,
    pub actions_taken: &'a str,
    pub requested_by: &'a str,
    pub requested_by_name: &'a str,
    pub note: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// An escalation of the same address and workspace since then is reused.
    pub dedupe_since: DateTime<Utc>,
    /// `Pending` when a webhook is configured, `None` otherwise.
    pub webhook_state: WebhookState,
}

/// Where an escalation's webhook delivery stands (`escalations.webhook_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum WebhookState {
    /// No webhook is configured: the chat channel is the only hand-over.
    None,
    /// Not delivered yet; retried when due.
    Pending,
    Delivered,
}

impl WebhookState {
    pub const ALL: [WebhookState; 3] = [
        WebhookState::None,
        WebhookState::Pending,
        WebhookState::Delivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::None => "none",
            WebhookState::Pending => "pending",
            WebhookState::Delivered => "delivered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// A stored escalation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EscalationRow {
    pub id: i64,
    pub reference: String,
    pub workspace_slug: String,
    pub email_key: String,
    pub diagnosis: String,
    pub actions_taken: String,
    pub requested_by_name: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub webhook_state: WebhookState,
    pub webhook_attempts: i64,
}

#[derive(Debug)]
pub enum EscalationStart {
    Created(EscalationRow),
    /// An open escalation of the same address in the same workspace already exists.
    Existing(EscalationRow),
}

const SELECT_ESCALATION: &str = "SELECT e.id, e.reference, w.slug AS workspace_slug, e.email_key, e.diagnosis, \
     e.actions_taken, e.requested_by_name, e.note, e.created_at, e.webhook_state, e.webhook_attempts \
     FROM escalations e JOIN workspaces w ON w.id = e.workspace_id";

impl Store {
    pub async fn begin_escalation(&self, new: &NewEscalation<'_>) -> StoreResult<EscalationStart> {
        let _turn = self.write_turn().await;
        let lock_key = format!("escalate:{}:{}", new.workspace_id, new.email_key);
        let start = on_backend!(self, pool => {
            let mut tx = pool.begin_locked(&lock_key).await?;
            let existing: Option<EscalationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_ESCALATION} WHERE e.email_key = $1 AND e.workspace_id = $2 AND e.created_at >= $3 \
                 ORDER BY e.created_at DESC LIMIT 1"
            )))
            .bind(new.email_key)
            .bind(new.workspace_id)
            .bind(new.dedupe_since)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = existing {
                return Ok(EscalationStart::Existing(existing));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO escalations (reference, workspace_id, member_id, email_key, diagnosis, \
                     actions_taken, requested_by, requested_by_name, note, created_at, webhook_state, \
                     webhook_next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10) RETURNING id",
            )
            .bind(new.reference)
            .bind(new.workspace_id)
            .bind(new.member_id)
            .bind(new.email_key)
            .bind(new.diagnosis)
            .bind(new.actions_taken)
            .bind(new.requested_by)
            .bind(new.requested_by_name)
            .bind(new.note)
            .bind(new.now)
            .bind(new.webhook_state)
            .fetch_one(&mut *tx)
            .await?;
            let row: EscalationRow = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_ESCALATION} WHERE e.id = $1")))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            EscalationStart::Created(row)
        });
        Ok(start)
    }

    /// Escalations whose webhook delivery is due.
    pub async fn due_escalation_webhooks(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<EscalationRow>> {
        let rows = on_backend!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT_ESCALATION} WHERE e.webhook_state = 'pending' AND e.webhook_next_attempt_at <= $1 \
                 ORDER BY e.id LIMIT $2"
            )))
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    pub async fn escalation(&self, reference: &str) -> StoreResult<Option<EscalationRow>> {
        let row = on_backend!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_ESCALATION} WHERE e.reference = $1")))
                .bind(reference)
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    }

    /// Records a webhook delivery round: `delivered`, or still `pending` with the next try.
    pub async fn record_webhook_round(
        &self,
        id: i64,
        state: WebhookState,
        attempts: i64,
        next_attempt_at: Option<DateTime<Utc>>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE escalations SET webhook_state = $2, webhook_attempts = webhook_attempts + $3, \
                 webhook_next_attempt_at = $4, webhook_last_error = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(state)
            .bind(attempts)
            .bind(next_attempt_at)
            .bind(error)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WebhookState;

    #[test]
    fn every_webhook_state_round_trips() {
        for state in WebhookState::ALL {
            assert_eq!(WebhookState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<WebhookState>(&json).unwrap(), state);
        }
        assert_eq!(WebhookState::parse("sending"), None);
    }
}
