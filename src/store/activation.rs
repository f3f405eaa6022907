//! Activation codes (stored as salted hashes) and the redemption of codes and invitation tokens.

use chrono::{DateTime, Duration, Utc};

use super::locking::BeginLocked;
use super::outbox::{
    prior_action_from, PriorAction, RequestState, INSERT_REQUEST, MEMBER_WINDOW, PRIOR_BY_KEY,
};
use super::{on_backend, Store, StoreResult};
use crate::domain::Action;

/// Marks an invited member active and voids their other codes, inside `$tx`; evaluates to false when
/// the member was not invited (already active or deactivated).
macro_rules! activate_member {
    ($tx:expr, $member_id:expr, $now:expr) => {{
        let activated = sqlx::query(
            "UPDATE members SET status = 'active', activated_at = $2 WHERE id = $1 AND status = 'invited'",
        )
        .bind($member_id)
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            == 1;
        if activated {
            sqlx::query(
                "UPDATE activation_codes SET voided_at = $2 \
                 WHERE member_id = $1 AND used_at IS NULL AND voided_at IS NULL",
            )
            .bind($member_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        activated
    }};
}

pub struct NewActivationCode<'a> {
    pub member_id: i64,
    pub code_hash: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub actor_id: &'a str,
    pub actor_name: &'a str,
    pub reference: &'a str,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub per_member_per_day: u32,
    /// A live code younger than this is not replaced: whoever asks again is told who issued it
    /// and when, instead of getting a code that voids the one just handed out.
    pub reissue_after: Duration,
}

#[derive(Debug)]
pub enum ActivationStart {
    Issued,
    Duplicate(PriorAction),
    /// A live code was issued moments ago (the request that issued it); nothing was changed.
    JustIssued(PriorAction),
    MemberDailyLimit {
        next_allowed: DateTime<Utc>,
    },
}

/// A code that can still be redeemed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveCode {
    pub id: i64,
    pub code_hash: String,
}

/// The latest code request for a member, when a code it issued is still live and was issued at or
/// after `$3` (`$4` is now).
const JUST_ISSUED: &str = concat!(
    prior_action_from!(),
    "WHERE r.member_id = $1 AND r.action = $2 AND r.state = 'done' \
     AND EXISTS (SELECT 1 FROM activation_codes c WHERE c.member_id = $1 AND c.used_at IS NULL \
         AND c.voided_at IS NULL AND c.expires_at > $4 AND c.created_at >= $3) \
     ORDER BY r.created_at DESC LIMIT 1"
);

impl Store {
    /// Stores a new code for the member and voids every older one, in one transaction; unless a
    /// live code was issued within `reissue_after`.
    pub async fn issue_activation_code(
        &self,
        new: &NewActivationCode<'_>,
    ) -> StoreResult<ActivationStart> {
        let _turn = self.write_turn().await;
        let lock_key = format!("member:{}", new.member_id);
        let action = Action::IssueActivationCode;
        let start = on_backend!(self, pool => {
            let mut tx = pool.begin_locked(&lock_key).await?;
            if let Some(key) = new.idempotency_key {
                let prior: Option<PriorAction> =
                    sqlx::query_as(PRIOR_BY_KEY).bind(key).fetch_optional(&mut *tx).await?;
                if let Some(prior) = prior {
                    return Ok(ActivationStart::Duplicate(prior));
                }
            }
            // Under the member's lock, so of two admins pressing at once the second sees the
            // first one's code here, and is told about it rather than handed a code that voids it.
            let just_issued: Option<PriorAction> = sqlx::query_as(JUST_ISSUED)
                .bind(new.member_id)
                .bind(action)
                .bind(new.now - new.reissue_after)
                .bind(new.now)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(prior) = just_issued {
                return Ok(ActivationStart::JustIssued(prior));
            }
            let day: (i64, Option<DateTime<Utc>>) = sqlx::query_as(MEMBER_WINDOW)
                .bind(new.member_id)
                .bind(action)
                .bind(new.now - Duration::days(1))
                .fetch_one(&mut *tx)
                .await?;
            if day.0 >= i64::from(new.per_member_per_day) {
                let oldest = day.1.unwrap_or(new.now);
                return Ok(ActivationStart::MemberDailyLimit { next_allowed: oldest + Duration::days(1) });
            }
            sqlx::query(
                "UPDATE activation_codes SET voided_at = $2 \
                 WHERE member_id = $1 AND used_at IS NULL AND voided_at IS NULL",
            )
            .bind(new.member_id)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO activation_codes (member_id, code_hash, issued_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.member_id)
            .bind(new.code_hash)
            .bind(new.actor_id)
            .bind(new.now)
            .bind(new.expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query_scalar::<_, i64>(INSERT_REQUEST)
                .bind(new.idempotency_key)
                .bind(action)
                .bind(new.member_id)
                .bind(new.actor_id)
                .bind(new.actor_name)
                .bind(RequestState::Done)
                .bind(new.reference)
                .bind(new.now)
                .bind(Some(new.now))
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            ActivationStart::Issued
        });
        Ok(start)
    }

    /// Codes of the member that are neither used, voided nor expired (normally one).
    pub async fn live_activation_codes(
        &self,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<LiveCode>> {
        let codes = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT id, code_hash FROM activation_codes WHERE member_id = $1 \
                 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $2 ORDER BY created_at DESC",
            )
            .bind(member_id)
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        Ok(codes)
    }

    /// Reserves one attempt against every live code of the member that has attempts left, before
    /// any hash is checked, and returns those codes: concurrent guesses cannot together try more
    /// than `max_attempts` times, because each one's attempt is counted before it is made.
    pub async fn reserve_code_attempts(
        &self,
        member_id: i64,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<LiveCode>> {
        let _turn = self.write_turn().await;
        let codes = on_backend!(self, pool => {
            sqlx::query_as(
                "UPDATE activation_codes SET failed_attempts = failed_attempts + 1 \
                 WHERE member_id = $1 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $2 \
                 AND failed_attempts < $3 RETURNING id, code_hash",
            )
            .bind(member_id)
            .bind(now)
            .bind(i64::from(max_attempts))
            .fetch_all(pool)
            .await?
        });
        Ok(codes)
    }

    /// Voids the codes among `ids` whose reserved attempts reached `max_attempts`: called after a
    /// guess matched none of them.
    pub async fn void_exhausted_codes(
        &self,
        ids: &[i64],
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            for id in ids {
                sqlx::query(
                    "UPDATE activation_codes SET voided_at = $3 \
                     WHERE id = $1 AND voided_at IS NULL AND failed_attempts >= $2",
                )
                .bind(id)
                .bind(i64::from(max_attempts))
                .bind(now)
                .execute(pool)
                .await?;
            }
        });
        Ok(())
    }

    /// Counts a wrong attempt against a code and voids it at `max_attempts`.
    pub async fn record_wrong_attempt(
        &self,
        code_id: i64,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE activation_codes SET failed_attempts = failed_attempts + 1, \
                 voided_at = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE voided_at END \
                 WHERE id = $1",
            )
            .bind(code_id)
            .bind(i64::from(max_attempts))
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Uses the code and activates the member, atomically. False when someone else used it first.
    pub async fn redeem_activation_code(
        &self,
        code_id: i64,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let redeemed = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let used = sqlx::query(
                "UPDATE activation_codes SET used_at = $2 \
                 WHERE id = $1 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $2",
            )
            .bind(code_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used != 1 {
                return Ok(false);
            }
            let activated = activate_member!(tx, member_id, now);
            if activated {
                tx.commit().await?;
            }
            activated
        });
        Ok(redeemed)
    }

    /// Uses an invitation token and activates the member, atomically. Any token one of the
    /// invitation's emails carried will do. A link that is used proves its email arrived: an
    /// invitation still queued (its acceptance was never recorded: a crash or a failed commit
    /// right after the mail server took it) is recorded as sent, so the outbox sends it no more.
    pub async fn redeem_invitation_token(
        &self,
        token_hash: &str,
        member_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let redeemed = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let used: Option<i64> = sqlx::query_scalar(
                "UPDATE invitations SET redeemed_at = $3 WHERE member_id = $2 \
                 AND (token_hash = $1 OR id IN (SELECT invitation_id FROM invitation_tokens WHERE token_hash = $1)) \
                 AND redeemed_at IS NULL AND revoked_at IS NULL AND send_state IN ('sent', 'queued') \
                 AND expires_at > $3 RETURNING id",
            )
            .bind(token_hash)
            .bind(member_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(invitation_id) = used else {
                return Ok(false);
            };
            let activated = activate_member!(tx, member_id, now);
            if activated {
                sqlx::query("UPDATE invitations SET send_state = 'sent' WHERE id = $1 AND send_state = 'queued'")
                    .bind(invitation_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE action_requests SET state = 'done', finished_at = $2 WHERE state = 'pending' \
                     AND id IN (SELECT action_request_id FROM outbox WHERE invitation_id = $1)",
                )
                .bind(invitation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE outbox SET state = 'sent', sent_at = COALESCE(sent_at, $2), lease_until = NULL \
                     WHERE invitation_id = $1 AND state IN ('pending', 'sending')",
                )
                .bind(invitation_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            activated
        });
        Ok(redeemed)
    }
}
