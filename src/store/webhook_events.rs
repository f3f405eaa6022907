//! Delivery data arriving from providers' webhooks: delivery events and suppressions, written
//! idempotently, one batch per transaction.

use chrono::{DateTime, Duration, Utc};

use super::{on_backend, Store, StoreResult};
use crate::domain::email::EmailAddress;
use crate::domain::invitation::{
    canonical_message_id, BounceKind, DeliveryEventKind, SuppressionReason,
};

/// One delivery event as a provider reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeliveryEvent {
    /// The provider's identity of the event (`postmark:<MessageID>:Bounce:<ID>`): a retry or replay of
    /// the same event has the same key and stores nothing new.
    pub event_key: String,
    /// The ids the message is known by, in canonical form: our own reference when the provider
    /// handed it back (stored with the event), the provider's message id, the Message-ID header.
    /// The event attaches to the invitation whose message id or provider id is any of the first three.
    pub message_ids: Vec<String>,
    pub recipient: EmailAddress,
    pub kind: DeliveryEventKind,
    pub bounce: Option<BounceKind>,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

/// An address the provider will no longer send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    pub recipient: EmailAddress,
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
}

/// A single-use token that came with a signature (Mailgun): seen once, refused afterwards.
#[derive(Debug, Clone)]
pub struct ReplayToken {
    pub provider: &'static str,
    pub token: String,
    /// Tokens older than this can no longer pass the signature's age check and are forgotten.
    pub keep_for: Duration,
}

/// What one webhook request carries, written all or nothing.
#[derive(Debug, Clone, Default)]
pub struct WebhookBatch {
    pub replay_token: Option<ReplayToken>,
    pub events: Vec<NewDeliveryEvent>,
    pub suppressions: Vec<NewSuppression>,
}

/// What a provider's webhook request stored (its 200 answer, described in `/openapi.json`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub struct WebhookBatchReport {
    /// Events stored for the first time.
    pub stored: usize,
    /// Of those, events whose message matched no invitation (kept by recipient and time).
    pub unknown_message: usize,
    /// Events already stored before (provider retries, replays).
    pub duplicates: usize,
    /// Suppressions added (an address already suppressed for the same reason is left as it is).
    pub suppressions_added: usize,
}

/// The outcome of writing a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    Written(WebhookBatchReport),
    /// The batch's single-use token was seen before: nothing was written.
    TokenReused,
}

const TOKEN_SEEN: &str =
    "SELECT COUNT(*) FROM webhook_tokens WHERE provider = $1 AND token = $2 AND seen_at >= $3";
const FORGET_TOKENS: &str = "DELETE FROM webhook_tokens WHERE provider = $1 AND seen_at < $2";
const REMEMBER_TOKEN: &str =
    "INSERT INTO webhook_tokens (provider, token, seen_at) VALUES ($1, $2, $3) \
     ON CONFLICT (provider, token) DO NOTHING";
// The sub-select attaches the event to its invitation when the message is known; otherwise the event
// is still kept, by recipient and time, with no invitation.
const INSERT_EVENT: &str = "INSERT INTO delivery_events \
     (event_key, invitation_id, message_id, recipient_key, recipient_domain, event, bounce_kind, at, detail) \
     VALUES ($1, (SELECT id FROM invitations \
                  WHERE message_id IN ($2, $3, $10) OR provider_message_id IN ($2, $3, $10) \
                  ORDER BY CASE WHEN message_id IN ($2, $3, $10) THEN 0 ELSE 1 END, id DESC LIMIT 1), \
             $2, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (event_key) DO NOTHING \
     RETURNING invitation_id";
const INSERT_SUPPRESSION: &str =
    "INSERT INTO suppressions (email_key, reason, at) VALUES ($1, $2, $3) \
     ON CONFLICT (email_key, reason) DO NOTHING";

/// Attaches the events stored under either id (`$2`, `$3`: the message id, the provider's id) that
/// are not attached yet to invitation `$1`.
pub(super) const ATTACH_EARLY_EVENTS: &str = "UPDATE delivery_events SET invitation_id = $1 \
     WHERE invitation_id IS NULL AND message_id IN ($2, $3)";

impl Store {
    /// Whether `token` was remembered within its `keep_for`. Reads only: a request checks this
    /// before its work and [`Store::remember_replay_token`] after it, so a failure in between
    /// leaves the token free for the sender's retry.
    pub async fn replay_token_seen(
        &self,
        token: &ReplayToken,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let seen: i64 = on_backend!(self, pool => {
            sqlx::query_scalar(TOKEN_SEEN)
                .bind(token.provider)
                .bind(&token.token)
                .bind(now - token.keep_for)
                .fetch_one(pool)
                .await?
        });
        Ok(seen > 0)
    }

    /// Remembers `token` (and forgets the provider's tokens older than `keep_for`) in one
    /// transaction. `false` when it was remembered already: another request with the same token
    /// got there first. Every replica sharing the database sees the same tokens.
    pub async fn remember_replay_token(
        &self,
        token: &ReplayToken,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let remembered = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(FORGET_TOKENS)
                .bind(token.provider)
                .bind(now - token.keep_for)
                .execute(&mut *tx)
                .await?;
            let remembered = sqlx::query(REMEMBER_TOKEN)
                .bind(token.provider)
                .bind(&token.token)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            remembered
        });
        Ok(remembered == 1)
    }

    /// Attaches events that arrived before their invitation was recorded: a provider's webhook can
    /// beat our own write of the message id. Sending ([`Store::complete_send`]) and seeding do this
    /// themselves, in the transaction that records the id.
    pub async fn attach_early_events(
        &self,
        invitation_id: i64,
        message_id: &str,
    ) -> StoreResult<u64> {
        let message_id = canonical_message_id(message_id);
        let _turn = self.write_turn().await;
        let attached = on_backend!(self, pool => {
            sqlx::query(ATTACH_EARLY_EVENTS)
                .bind(invitation_id)
                .bind(&message_id)
                .bind(&message_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(attached)
    }

    /// Writes one webhook request's events and suppressions in one transaction.
    pub async fn record_webhook_batch(
        &self,
        batch: &WebhookBatch,
        now: DateTime<Utc>,
    ) -> StoreResult<BatchOutcome> {
        let _turn = self.write_turn().await;
        let outcome = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(token) = &batch.replay_token {
                sqlx::query(FORGET_TOKENS)
                    .bind(token.provider)
                    .bind(now - token.keep_for)
                    .execute(&mut *tx)
                    .await?;
                let remembered = sqlx::query(REMEMBER_TOKEN)
                    .bind(token.provider)
                    .bind(&token.token)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if remembered == 0 {
                    tx.rollback().await?;
                    return Ok(BatchOutcome::TokenReused);
                }
            }
            let mut report = WebhookBatchReport::default();
            for event in &batch.events {
                // Up to three ids: our reference, the provider's id, the Message-ID header.
                let primary = event.message_ids.first();
                let second = event.message_ids.get(1).or(primary);
                let third = event.message_ids.get(2).or(primary);
                let inserted: Option<(Option<i64>,)> = sqlx::query_as(INSERT_EVENT)
                    .bind(&event.event_key)
                    .bind(primary)
                    .bind(second)
                    .bind(event.recipient.key())
                    .bind(event.recipient.domain())
                    .bind(event.kind.as_str())
                    .bind(event.bounce.map(BounceKind::as_str))
                    .bind(event.at)
                    .bind(&event.detail)
                    .bind(third)
                    .fetch_optional(&mut *tx)
                    .await?;
                match inserted {
                    None => report.duplicates += 1,
                    Some((invitation,)) => {
                        report.stored += 1;
                        if invitation.is_none() {
                            report.unknown_message += 1;
                        }
                    }
                }
            }
            for suppression in &batch.suppressions {
                report.suppressions_added += sqlx::query(INSERT_SUPPRESSION)
                    .bind(suppression.recipient.key())
                    .bind(suppression.reason.as_str())
                    .bind(suppression.at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;
            }
            tx.commit().await?;
            BatchOutcome::Written(report)
        });
        Ok(outcome)
    }
}
