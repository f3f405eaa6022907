//! Actions carried out by the product's API (`[actions] backend = "product"`): the request, its
//! idempotency key and how the call stands, so that a retry, a second press of the same button or
//! another replica asks the product with the same key, and only one caller asks at a time.
//!
//! The rate limits and the per-member lock are the same as the built-in actions': an action
//! request counts the same whoever carries it out. Nothing the product returns as a secret (an
//! activation code or link) is ever written here.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::locking::BeginLocked;
use super::outbox::{
    prior_action_from, PriorAction, RequestState, ResendLimits, ACTOR_WINDOW, INSERT_REQUEST,
    MEMBER_WINDOW, PRIOR_BY_KEY,
};
use super::webhook_events::ATTACH_EARLY_EVENTS;
use super::{on_backend, Store, StoreResult};
use crate::domain::invitation::canonical_message_id;
use crate::domain::Action;

/// Where a call to the product stands (`product_calls.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ProductCallState {
    /// A caller holds it under a lease (`claimed_by`, `lease_until`) and is trying.
    Calling,
    /// The product answered that it was done.
    Done,
    /// No answer to tell by on any try: it may have been done. The next press of the same button
    /// asks again with the same key.
    Unknown,
    /// The product refused (a 4xx answer).
    Failed,
}

impl ProductCallState {
    pub const ALL: [ProductCallState; 4] = [
        ProductCallState::Calling,
        ProductCallState::Done,
        ProductCallState::Unknown,
        ProductCallState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProductCallState::Calling => "calling",
            ProductCallState::Done => "done",
            ProductCallState::Unknown => "unknown",
            ProductCallState::Failed => "failed",
        }
    }
}

/// The limits an action request through the product must respect: the same as the built-in one's.
#[derive(Debug, Clone, Copy)]
pub enum ProductCallLimits {
    Resend(ResendLimits),
    ActivationCode {
        per_member_per_day: u32,
        /// A code issued less than this long ago is not replaced (two admins pressing at once).
        reissue_after: Duration,
    },
}

pub struct NewProductCall<'a> {
    pub action: Action,
    pub member_id: i64,
    /// The press's key (a button's reference), if any: the same press finds its call again.
    pub idempotency_key: Option<&'a str>,
    /// The key sent to the product with every try (`webhook-id`, `idempotency_key`), used only
    /// when a new call is started.
    pub call_key: &'a str,
    pub actor_id: &'a str,
    pub actor_name: &'a str,
    pub reference: &'a str,
    pub now: DateTime<Utc>,
    /// Who tries (this process) and until when its claim holds.
    pub owner: &'a str,
    pub lease_until: DateTime<Utc>,
    pub limits: ProductCallLimits,
}

/// A call to the product this process now holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductCall {
    pub id: i64,
    pub action_request_id: i64,
    /// Sent with every try; the same for the life of the request.
    pub idempotency_key: String,
    /// The request's reference (`RSD-...`, `ACT-...`), the first press's when taken up again.
    pub reference: String,
    /// Who asked first: the body of every try is the same.
    pub actor_id: String,
    pub actor_name: String,
    pub attempts: i64,
    pub claimed_by: Option<String>,
}

#[derive(Debug)]
pub enum ProductCallStart {
    /// Held by this process: a new request, or one whose outcome was unknown taken up again
    /// (`resumed`), with the key it was first asked with.
    Started {
        call: ProductCall,
        resumed: bool,
    },
    /// The same press was already handled, or is being handled right now by another caller.
    Duplicate(PriorAction),
    /// The last resend of this member is too recent.
    TooSoon {
        last: PriorAction,
        next_allowed: DateTime<Utc>,
    },
    /// A code was issued moments ago (by whom and when is told; this request changed nothing).
    JustIssued(PriorAction),
    MemberDailyLimit {
        next_allowed: DateTime<Utc>,
    },
    ActorHourlyLimit {
        next_allowed: DateTime<Utc>,
    },
}

/// What the product's answer came to, as recorded.
pub enum ProductCallEnd<'a> {
    /// The product sent the invitation: it is recorded as sent under the product's message id,
    /// so the email provider's events about it attach to it.
    Sent {
        sent_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        message_id: &'a str,
    },
    /// The product issued the code (or link); nothing of it is kept.
    Issued,
    /// No answer to tell by: the request keeps counting against the limits, and the same button
    /// may ask again with the same key.
    Unknown { error: &'a str },
    /// The product refused: the request no longer counts, and its key is given back so the same
    /// button can try anew.
    Refused { error: &'a str },
}

const CALL: &str = "SELECT p.id, p.action_request_id, p.idempotency_key, r.reference, r.actor_id, \
     r.actor_name, p.attempts, p.claimed_by FROM product_calls p \
     JOIN action_requests r ON r.id = p.action_request_id WHERE p.id = $1";

/// The call behind a press's key, and whether it may be taken up (`$2` = now).
const CALL_BY_PRESS: &str = "SELECT p.id, p.state, p.lease_until FROM product_calls p \
     JOIN action_requests r ON r.id = p.action_request_id WHERE r.idempotency_key = $1";

const LAST_FOR_MEMBER: &str = concat!(
    prior_action_from!(),
    "WHERE r.member_id = $1 AND r.action = $2 AND r.state <> 'failed' ORDER BY r.created_at DESC LIMIT 1"
);

const JUST_DONE: &str = concat!(
    prior_action_from!(),
    "WHERE r.member_id = $1 AND r.action = $2 AND r.state = 'done' AND r.created_at >= $3 \
     ORDER BY r.created_at DESC LIMIT 1"
);

/// A call that is not being tried right now and whose outcome is unknown may be asked again.
fn resumable(
    state: ProductCallState,
    lease_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match state {
        ProductCallState::Unknown => true,
        // Its caller is gone (a crash mid-call): its lease lapsed unrenewed.
        ProductCallState::Calling => lease_until.is_none_or(|until| until < now),
        ProductCallState::Done | ProductCallState::Failed => false,
    }
}

impl Store {
    /// Whether the press `idempotency_key` started a call to the product whose outcome is unknown
    /// (and nobody is trying it now): pressing again takes it up instead of being told "done".
    pub async fn product_call_resumable(
        &self,
        idempotency_key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let row: Option<(i64, ProductCallState, Option<DateTime<Utc>>)> = on_backend!(self, pool => {
            sqlx::query_as(CALL_BY_PRESS).bind(idempotency_key).fetch_optional(pool).await?
        });
        Ok(row.is_some_and(|(_, state, lease)| resumable(state, lease, now)))
    }

    /// Under the member's lock: takes up the press's earlier call whose outcome is unknown, or
    /// checks the limits and records a new request with its call to the product (key included),
    /// held by `owner`, all before anything is sent.
    pub async fn begin_product_call(
        &self,
        new: &NewProductCall<'_>,
    ) -> StoreResult<ProductCallStart> {
        let _turn = self.write_turn().await;
        let lock_key = format!("member:{}", new.member_id);
        let start = on_backend!(self, pool => {
            let mut tx = pool.begin_locked(&lock_key).await?;
            if let Some(key) = new.idempotency_key {
                let earlier: Option<(i64, ProductCallState, Option<DateTime<Utc>>)> =
                    sqlx::query_as(CALL_BY_PRESS).bind(key).fetch_optional(&mut *tx).await?;
                match earlier {
                    Some((id, state, lease)) if resumable(state, lease, new.now) => {
                        sqlx::query(
                            "UPDATE product_calls SET state = 'calling', claimed_by = $2, lease_until = $3 \
                             WHERE id = $1",
                        )
                        .bind(id)
                        .bind(new.owner)
                        .bind(new.lease_until)
                        .execute(&mut *tx)
                        .await?;
                        let call: ProductCall = sqlx::query_as(CALL).bind(id).fetch_one(&mut *tx).await?;
                        tx.commit().await?;
                        return Ok(ProductCallStart::Started { call, resumed: true });
                    }
                    _ => {}
                }
                let prior: Option<PriorAction> =
                    sqlx::query_as(PRIOR_BY_KEY).bind(key).fetch_optional(&mut *tx).await?;
                if let Some(prior) = prior {
                    return Ok(ProductCallStart::Duplicate(prior));
                }
            }
            let day_limit = match new.limits {
                ProductCallLimits::Resend(limits) => {
                    let last: Option<PriorAction> = sqlx::query_as(LAST_FOR_MEMBER)
                        .bind(new.member_id)
                        .bind(new.action)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(last) = last {
                        let next_allowed = last.created_at + limits.min_interval;
                        if next_allowed > new.now {
                            return Ok(ProductCallStart::TooSoon { last, next_allowed });
                        }
                    }
                    let hour: (i64, Option<DateTime<Utc>>) = sqlx::query_as(ACTOR_WINDOW)
                        .bind(new.actor_id)
                        .bind(new.action)
                        .bind(new.now - Duration::hours(1))
                        .fetch_one(&mut *tx)
                        .await?;
                    if hour.0 >= i64::from(limits.per_actor_per_hour) {
                        let oldest = hour.1.unwrap_or(new.now);
                        return Ok(ProductCallStart::ActorHourlyLimit { next_allowed: oldest + Duration::hours(1) });
                    }
                    limits.per_member_per_day
                }
                ProductCallLimits::ActivationCode { per_member_per_day, reissue_after } => {
                    let just: Option<PriorAction> = sqlx::query_as(JUST_DONE)
                        .bind(new.member_id)
                        .bind(new.action)
                        .bind(new.now - reissue_after)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(prior) = just {
                        return Ok(ProductCallStart::JustIssued(prior));
                    }
                    per_member_per_day
                }
            };
            let day: (i64, Option<DateTime<Utc>>) = sqlx::query_as(MEMBER_WINDOW)
                .bind(new.member_id)
                .bind(new.action)
                .bind(new.now - Duration::days(1))
                .fetch_one(&mut *tx)
                .await?;
            if day.0 >= i64::from(day_limit) {
                let oldest = day.1.unwrap_or(new.now);
                return Ok(ProductCallStart::MemberDailyLimit { next_allowed: oldest + Duration::days(1) });
            }
            let request_id: i64 = sqlx::query_scalar(INSERT_REQUEST)
                .bind(new.idempotency_key)
                .bind(new.action)
                .bind(new.member_id)
                .bind(new.actor_id)
                .bind(new.actor_name)
                .bind(RequestState::Pending)
                .bind(new.reference)
                .bind(new.now)
                .bind(None::<DateTime<Utc>>)
                .fetch_one(&mut *tx)
                .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO product_calls (action_request_id, idempotency_key, action, state, attempts, \
                     claimed_by, lease_until, created_at) VALUES ($1, $2, $3, 'calling', 0, $4, $5, $6) RETURNING id",
            )
            .bind(request_id)
            .bind(new.call_key)
            .bind(new.action)
            .bind(new.owner)
            .bind(new.lease_until)
            .bind(new.now)
            .fetch_one(&mut *tx)
            .await?;
            let call: ProductCall = sqlx::query_as(CALL).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            ProductCallStart::Started { call, resumed: false }
        });
        Ok(start)
    }

    /// Records what `attempts` more tries of `call` came to, and lets go of it.
    pub async fn end_product_call(
        &self,
        call: &ProductCall,
        member_id: i64,
        attempts: u32,
        end: &ProductCallEnd<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (state, request_state, error) = match end {
            ProductCallEnd::Sent { .. } | ProductCallEnd::Issued => {
                (ProductCallState::Done, RequestState::Done, None)
            }
            ProductCallEnd::Unknown { error } => (
                ProductCallState::Unknown,
                RequestState::Pending,
                Some(*error),
            ),
            ProductCallEnd::Refused { error } => {
                (ProductCallState::Failed, RequestState::Failed, Some(*error))
            }
        };
        let finished = (request_state != RequestState::Pending).then_some(now);
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE product_calls SET state = $2, attempts = attempts + $3, last_error = $4, \
                 claimed_by = NULL, lease_until = NULL, finished_at = $5 WHERE id = $1",
            )
            .bind(call.id)
            .bind(state)
            .bind(i64::from(attempts))
            .bind(error)
            .bind(finished)
            .execute(&mut *tx)
            .await?;
            if request_state == RequestState::Failed {
                // Giving the key back lets the same button, pressed again, try anew.
                sqlx::query(
                    "UPDATE action_requests SET state = 'failed', finished_at = $2, idempotency_key = NULL WHERE id = $1",
                )
                .bind(call.action_request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            } else if request_state == RequestState::Done {
                sqlx::query("UPDATE action_requests SET state = 'done', finished_at = $2 WHERE id = $1")
                    .bind(call.action_request_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let ProductCallEnd::Sent { sent_at, expires_at, message_id } = end {
                let message_id = canonical_message_id(message_id);
                let existing: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM invitations WHERE message_id = $1")
                        .bind(&message_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let invitation_id = match existing {
                    Some(id) => id,
                    None => {
                        sqlx::query_scalar(
                            "INSERT INTO invitations (member_id, sent_at, expires_at, message_id, send_state) \
                             VALUES ($1, $2, $3, $4, 'sent') RETURNING id",
                        )
                        .bind(member_id)
                        .bind(*sent_at)
                        .bind(*expires_at)
                        .bind(&message_id)
                        .fetch_one(&mut *tx)
                        .await?
                    }
                };
                sqlx::query(ATTACH_EARLY_EVENTS)
                    .bind(invitation_id)
                    .bind(&message_id)
                    .bind(&message_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unknown_or_abandoned_call_is_asked_again() {
        let now = Utc::now();
        assert!(resumable(ProductCallState::Unknown, None, now));
        assert!(resumable(
            ProductCallState::Calling,
            Some(now - Duration::seconds(1)),
            now
        ));
        assert!(!resumable(
            ProductCallState::Calling,
            Some(now + Duration::seconds(1)),
            now
        ));
        assert!(!resumable(ProductCallState::Done, None, now));
        assert!(!resumable(ProductCallState::Failed, None, now));
        for state in ProductCallState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }
}
