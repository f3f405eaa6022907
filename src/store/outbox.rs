//! Action requests and the invitation outbox: what makes a resend exactly-once, rate-limited and
//! recoverable after a crash.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::locking::BeginLocked;
use super::webhook_events::ATTACH_EARLY_EVENTS;
use super::{on_backend, Store, StoreResult};
use crate::domain::invitation::canonical_message_id;
use crate::domain::Action;

/// An earlier action on the same member, as the second press is told about it. For a resend, how
/// far its email got (from its outbox row): a request is not a send, and the words must not say
/// "sent" of an email that is still queued.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PriorAction {
    pub reference: String,
    pub actor_name: String,
    pub created_at: DateTime<Utc>,
    pub state: RequestState,
    /// `None` for actions that send no email.
    pub outbox_state: Option<OutboxState>,
    pub attempts: Option<i64>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    /// When the mail server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The mail server's last refusal, for a queued email.
    pub last_error: Option<String>,
}

impl PriorAction {
    /// True while its email waits in the outbox or is being handed over: nothing has gone out yet.
    pub fn unsent(&self) -> bool {
        matches!(
            self.outbox_state,
            Some(OutboxState::Pending | OutboxState::Sending)
        )
    }

    /// When the outbox will next try its email: its backoff when queued, the end of its sender's
    /// lease when being sent (a sender that died is taken over then). `None` unless [`Self::unsent`].
    pub fn next_try_at(&self) -> Option<DateTime<Utc>> {
        match self.outbox_state? {
            OutboxState::Pending => self.next_attempt_at,
            OutboxState::Sending => self.lease_until,
            OutboxState::Sent | OutboxState::Failed => None,
        }
    }
}

/// Where an outbox row stands (`outbox.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its (next) try.
    Pending,
    /// A sender holds it under a lease (`claimed_by`, `lease_until`).
    Sending,
    /// The mail server accepted it (or its link was used, which proves it arrived).
    Sent,
    /// The mail server refused it for good.
    Failed,
}

/// Where an action request stands (`action_requests.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum RequestState {
    /// Committed, its email not yet accepted by the mail server.
    Pending,
    Done,
    /// Given up; it no longer counts against any limit.
    Failed,
}

impl RequestState {
    pub const ALL: [RequestState; 3] = [
        RequestState::Pending,
        RequestState::Done,
        RequestState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Done => "done",
            RequestState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// The limits a resend must respect, counted in the database so they hold across restarts and instances.
#[derive(Debug, Clone, Copy)]
pub struct ResendLimits {
    pub min_interval: Duration,
    pub per_member_per_day: u32,
    pub per_actor_per_hour: u32,
}

pub struct NewResend<'a> {
    pub member_id: i64,
    pub recipient: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub actor_id: &'a str,
    pub actor_name: &'a str,
    pub reference: &'a str,
    pub message_id: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub limits: ResendLimits,
}

#[derive(Debug)]
pub enum ResendStart {
    /// Intent, invitation and outbox row are committed; the email may now be sent.
    Started { outbox_id: i64 },
    /// The same press (idempotency key) was already handled.
    Duplicate(PriorAction),
    /// Another resend of this member is too recent, or its email has not gone out yet (then
    /// `next_allowed` may have passed: a new one waits for that one to be sent or given up).
    TooSoon {
        last: PriorAction,
        next_allowed: DateTime<Utc>,
    },
    /// The member's daily allowance is used up.
    MemberDailyLimit { next_allowed: DateTime<Utc> },
    /// The admin's hourly allowance is used up.
    ActorHourlyLimit { next_allowed: DateTime<Utc> },
}

/// One email waiting in (or claimed from) the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub invitation_id: i64,
    pub action_request_id: i64,
    pub member_id: i64,
    pub recipient: String,
    pub attempts: i64,
    pub reference: String,
    pub actor_id: String,
    pub actor_name: String,
    pub message_id: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub workspace_slug: String,
    pub workspace_name: String,
    pub member_role: String,
    /// The sender holding it (this process, once claimed).
    pub claimed_by: Option<String>,
}

/// The columns of a [`PriorAction`]: the request and, for a resend, its outbox row.
macro_rules! prior_action_from {
    () => {
        "SELECT r.reference, r.actor_name, r.created_at, r.state, o.state AS outbox_state, \
         o.attempts, o.next_attempt_at, o.lease_until, o.sent_at, o.last_error \
         FROM action_requests r LEFT JOIN outbox o ON o.action_request_id = r.id "
    };
}
pub(super) use prior_action_from;

pub(super) const PRIOR_BY_KEY: &str = concat!(prior_action_from!(), "WHERE r.idempotency_key = $1");
const LAST_FOR_MEMBER: &str = concat!(
    prior_action_from!(),
    "WHERE r.member_id = $1 AND r.action = $2 AND r.state <> 'failed' ORDER BY r.created_at DESC LIMIT 1"
);
pub(super) const MEMBER_WINDOW: &str = "SELECT COUNT(*), MIN(created_at) FROM action_requests \
     WHERE member_id = $1 AND action = $2 AND state <> 'failed' AND created_at >= $3";
pub(super) const ACTOR_WINDOW: &str = "SELECT COUNT(*), MIN(created_at) FROM action_requests \
     WHERE actor_id = $1 AND action = $2 AND state <> 'failed' AND created_at >= $3";
pub(super) const INSERT_REQUEST: &str = "INSERT INTO action_requests \
     (idempotency_key, action, member_id, actor_id, actor_name, state, reference, created_at, finished_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
const CLAIMED_ITEM: &str = "SELECT o.id, o.invitation_id, o.action_request_id, i.member_id, o.recipient, \
     o.attempts, r.reference, r.actor_id, r.actor_name, i.message_id, i.expires_at, w.slug AS workspace_slug, \
     w.name AS workspace_name, m.role AS member_role, o.claimed_by \
     FROM outbox o JOIN invitations i ON i.id = o.invitation_id \
     JOIN action_requests r ON r.id = o.action_request_id \
     JOIN members m ON m.id = i.member_id JOIN workspaces w ON w.id = m.workspace_id WHERE o.id = $1";

impl Store {
    /// Records the intent to resend, the new invitation and its outbox row in one transaction, after
    /// checking idempotency and every rate limit under a per-member lock.
    pub async fn begin_resend(&self, new: &NewResend<'_>) -> StoreResult<ResendStart> {
        let _turn = self.write_turn().await;
        let lock_key = format!("member:{}", new.member_id);
        let action = Action::ResendInvite;
        let start = on_backend!(self, pool => {
            let mut tx = pool.begin_locked(&lock_key).await?;
            if let Some(key) = new.idempotency_key {
                let prior: Option<PriorAction> =
                    sqlx::query_as(PRIOR_BY_KEY).bind(key).fetch_optional(&mut *tx).await?;
                if let Some(prior) = prior {
                    return Ok(ResendStart::Duplicate(prior));
                }
            }
            let last: Option<PriorAction> = sqlx::query_as(LAST_FOR_MEMBER)
                .bind(new.member_id)
                .bind(action)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(last) = last {
                let next_allowed = last.created_at + new.limits.min_interval;
                // An email still queued (or being handed over) is never joined by a second one,
                // however old its request: both would go out, and the later of the two to be
                // accepted would void the other's link.
                if next_allowed > new.now || last.unsent() {
                    return Ok(ResendStart::TooSoon { last, next_allowed });
                }
            }
            let day: (i64, Option<DateTime<Utc>>) = sqlx::query_as(MEMBER_WINDOW)
                .bind(new.member_id)
                .bind(action)
                .bind(new.now - Duration::days(1))
                .fetch_one(&mut *tx)
                .await?;
            if day.0 >= i64::from(new.limits.per_member_per_day) {
                let oldest = day.1.unwrap_or(new.now);
                return Ok(ResendStart::MemberDailyLimit { next_allowed: oldest + Duration::days(1) });
            }
            let hour: (i64, Option<DateTime<Utc>>) = sqlx::query_as(ACTOR_WINDOW)
                .bind(new.actor_id)
                .bind(action)
                .bind(new.now - Duration::hours(1))
                .fetch_one(&mut *tx)
                .await?;
            if hour.0 >= i64::from(new.limits.per_actor_per_hour) {
                let oldest = hour.1.unwrap_or(new.now);
                return Ok(ResendStart::ActorHourlyLimit { next_allowed: oldest + Duration::hours(1) });
            }
            let request_id: i64 = sqlx::query_scalar(INSERT_REQUEST)
                .bind(new.idempotency_key)
                .bind(action)
                .bind(new.member_id)
                .bind(new.actor_id)
                .bind(new.actor_name)
                .bind(RequestState::Pending)
                .bind(new.reference)
                .bind(new.now)
                .bind(None::<DateTime<Utc>>)
                .fetch_one(&mut *tx)
                .await?;
            let invitation_id: i64 = sqlx::query_scalar(
                "INSERT INTO invitations (member_id, sent_at, expires_at, message_id, send_state) \
                 VALUES ($1, $2, $3, $4, 'queued') RETURNING id",
            )
            .bind(new.member_id)
            .bind(new.now)
            .bind(new.expires_at)
            .bind(canonical_message_id(new.message_id))
            .fetch_one(&mut *tx)
            .await?;
            let outbox_id: i64 = sqlx::query_scalar(
                "INSERT INTO outbox (action_request_id, invitation_id, recipient, state, attempts, \
                     next_attempt_at, created_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4) RETURNING id",
            )
            .bind(request_id)
            .bind(invitation_id)
            .bind(new.recipient)
            .bind(new.now)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            ResendStart::Started { outbox_id }
        });
        Ok(start)
    }

    /// Claims an outbox row for sending: a pending one, or one whose sender's lease lapsed before
    /// `now` (its process is gone: a live sender renews its lease, see [`Store::renew_lease`]).
    /// The claim names `owner` and holds until `lease_until`. Adds the hash of the token this try's
    /// email will carry to the invitation's tokens, before anything is sent and without retiring
    /// the tokens of earlier tries: if an earlier email was accepted and only its recording was
    /// lost, its link keeps working. `None` when another sender holds the row (or it is done).
    pub async fn claim_outbox(
        &self,
        outbox_id: i64,
        token_hash: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<OutboxItem>> {
        let _turn = self.write_turn().await;
        let item = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            // One statement decides: on PostgreSQL a competing claim waits for this row and then
            // re-reads its state, so two replicas cannot both take it.
            let claimed = sqlx::query(
                "UPDATE outbox SET state = 'sending', claimed_at = $2, claimed_by = $3, lease_until = $4, \
                 attempts = attempts + 1 \
                 WHERE id = $1 AND (state = 'pending' \
                     OR (state = 'sending' AND COALESCE(lease_until, claimed_at) < $2))",
            )
            .bind(outbox_id)
            .bind(now)
            .bind(owner)
            .bind(lease_until)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(None);
            }
            let item: OutboxItem = sqlx::query_as(CLAIMED_ITEM).bind(outbox_id).fetch_one(&mut *tx).await?;
            sqlx::query("UPDATE invitations SET token_hash = $2 WHERE id = $1")
                .bind(item.invitation_id)
                .bind(token_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO invitation_tokens (invitation_id, token_hash, minted_at) VALUES ($1, $2, $3)",
            )
            .bind(item.invitation_id)
            .bind(token_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Some(item)
        });
        Ok(item)
    }

    /// Extends `owner`'s lease on a row it is sending. False when the row is no longer its own
    /// (finished, or taken over after the lease lapsed).
    pub async fn renew_lease(
        &self,
        outbox_id: i64,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let renewed = on_backend!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET lease_until = $3 WHERE id = $1 AND state = 'sending' AND claimed_by = $2",
            )
            .bind(outbox_id)
            .bind(owner)
            .bind(lease_until)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(renewed == 1)
    }

    /// Outbox rows due for a (re)try: pending ones whose backoff is over, and ones whose sender's
    /// lease lapsed before `now`.
    pub async fn due_outbox(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<i64>> {
        let ids = on_backend!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM outbox WHERE (state = 'pending' AND next_attempt_at <= $1) \
                 OR (state = 'sending' AND COALESCE(lease_until, claimed_at) < $1) ORDER BY id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(ids)
    }

    /// The SMTP server accepted the email: the invitation counts as sent, earlier links stop working.
    /// `message_id` is the one the email carried (kept if the invitation already had one), and
    /// `provider_message_id` the id the server's acceptance named; provider events that arrived
    /// before this under either id are attached now.
    pub async fn complete_send(
        &self,
        item: &OutboxItem,
        message_id: &str,
        provider_message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let message_id = canonical_message_id(message_id);
        let provider_message_id = provider_message_id.map(canonical_message_id);
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE invitations SET send_state = 'sent', sent_at = $2, \
                 message_id = COALESCE(message_id, $3), provider_message_id = $4 WHERE id = $1",
            )
                .bind(item.invitation_id)
                .bind(now)
                .bind(&message_id)
                .bind(&provider_message_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(ATTACH_EARLY_EVENTS)
                .bind(item.invitation_id)
                .bind(item.message_id.as_deref().unwrap_or(&message_id))
                .bind(provider_message_id.as_deref().unwrap_or(&message_id))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE invitations SET revoked_at = $3 \
                 WHERE member_id = $1 AND id <> $2 AND revoked_at IS NULL",
            )
            .bind(item.member_id)
            .bind(item.invitation_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE outbox SET state = 'sent', sent_at = $2, last_error = NULL, lease_until = NULL WHERE id = $1",
            )
                .bind(item.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE action_requests SET state = 'done', finished_at = $2 WHERE id = $1")
                .bind(item.action_request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// A temporary failure: back to pending, to be retried at `next_attempt_at`. Only while the row
    /// is still this sender's: one that took it over after a lapsed lease decides for itself.
    pub async fn defer_send(
        &self,
        item: &OutboxItem,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET state = 'pending', last_error = $2, next_attempt_at = $3, claimed_at = NULL, \
                 claimed_by = NULL, lease_until = NULL WHERE id = $1 AND state = 'sending' AND claimed_by = $4",
            )
            .bind(item.id)
            .bind(error)
            .bind(next_attempt_at)
            .bind(&item.claimed_by)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// A permanent failure: nothing was sent, and the attempt does not count against the limits.
    pub async fn fail_send(
        &self,
        item: &OutboxItem,
        error: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE outbox SET state = 'failed', last_error = $2, lease_until = NULL WHERE id = $1")
                .bind(item.id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE invitations SET send_state = 'failed', token_hash = NULL WHERE id = $1")
                .bind(item.invitation_id)
                .execute(&mut *tx)
                .await?;
            // Releasing the key lets the same button, pressed again once the address is fixed, try anew.
            sqlx::query(
                "UPDATE action_requests SET state = 'failed', finished_at = $2, idempotency_key = NULL WHERE id = $1",
            )
                .bind(item.action_request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The action recorded under an idempotency key, if any.
    pub async fn prior_action(&self, idempotency_key: &str) -> StoreResult<Option<PriorAction>> {
        let prior = on_backend!(self, pool => {
            sqlx::query_as(PRIOR_BY_KEY).bind(idempotency_key).fetch_optional(pool).await?
        });
        Ok(prior)
    }

    /// The latest action of a kind on a member that did not fail.
    pub async fn last_action(
        &self,
        member_id: i64,
        action: Action,
    ) -> StoreResult<Option<PriorAction>> {
        let prior = on_backend!(self, pool => {
            sqlx::query_as(LAST_FOR_MEMBER).bind(member_id).bind(action).fetch_optional(pool).await?
        });
        Ok(prior)
    }

    /// Actions already done for a member, oldest first, for escalations.
    pub async fn actions_taken(
        &self,
        member_id: i64,
    ) -> StoreResult<Vec<(Action, String, DateTime<Utc>, String)>> {
        let rows = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT action, actor_name, created_at, reference FROM action_requests \
                 WHERE member_id = $1 AND state = 'done' ORDER BY created_at, id",
            )
            .bind(member_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::RequestState;

    #[test]
    fn every_request_state_round_trips() {
        for state in RequestState::ALL {
            assert_eq!(RequestState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<RequestState>(&json).unwrap(), state);
        }
        assert_eq!(RequestState::parse("sending"), None);
    }
}
