//! The workspace report: every member of one workspace counted by the verdict a check would give,
//! in one aggregate statement, and the runs of its bulk resend.
//!
//! The verdict is decided here in SQL, step for step as `diagnosis::status` and
//! `diagnosis::delivery` decide it for one member (the report's tests compare the two for a member
//! of every state): active and deactivated members by their status alone, counted from the index
//! of the workspace's members; for an invited member, a suppression of the address, then the
//! latest sent invitation (none: never sent), a hard bounce of it, a spam complaint, its expiry,
//! and the provider's latest word on delivery (delivered; deferred or a soft bounce; none: sent).
//! What the SQL does not see, the check adds: a provider asked live at check time.
//!
//! The latest sent invitation and its outcome are kept on the member row by triggers (migration
//! 0012), so an invited member's verdict is read from one index (`members_report`) with no look-up
//! of its invitations or events; the suppressions are read once, into a hash (PostgreSQL) or a
//! transient index (SQLite), not probed per member in their own table. Nothing goes back and forth
//! per member.

use chrono::{DateTime, Utc};

use super::{on_backend, Store, StoreError, StoreResult};

/// The verdict of each invited member, as a CTE body, with `$1` the workspace id and `$2` now.
/// Every column but the suppression comes from `members_report`, and the conditions match its
/// partial `WHERE` word for word, so both planners pick it.
macro_rules! classified {
    () => {
        "SELECT m.id AS member_id, m.email_key, m.domain_key, m.latest_sent_at AS sent_at, \
           CASE \
             WHEN m.email_key IN (SELECT s.email_key FROM suppressions s) THEN 'invite_suppressed' \
             WHEN m.latest_sent_at IS NULL THEN 'invite_never_sent' \
             WHEN m.latest_outcome = 'bounced' THEN 'invite_bounced' \
             WHEN m.latest_outcome = 'spam' THEN 'invite_marked_spam' \
             WHEN m.latest_expires_at <= $2 THEN 'invite_expired' \
             WHEN m.latest_outcome = 'delivered' THEN 'invite_delivered' \
             WHEN m.latest_outcome = 'deferred' THEN 'invite_deferred' \
             ELSE 'invite_sent' \
           END AS verdict \
         FROM members m \
         WHERE m.workspace_id = $1 AND m.status = 'invited' AND m.removed_at IS NULL"
    };
}

/// The counts: `$1` workspace id, `$2` now, `$3` before this a delivered invitation is stale.
/// One row per (verdict, stale, domain), the domain only for the failures (bounced, suppressed,
/// spam complaint), so the top failing domains come from the same pass. The CTE is materialized so
/// each member's verdict is worked out once, not once per place the statement names it.
macro_rules! counts {
    ($classified:expr) => {
        concat!(
            "WITH c AS MATERIALIZED (",
            $classified,
            ") \
             SELECT CASE m.status WHEN 'active' THEN 'already_active' ELSE 'deactivated' END AS verdict, \
               FALSE AS stale, CAST(NULL AS TEXT) AS domain, COUNT(*) AS members \
             FROM members m \
             WHERE m.workspace_id = $1 AND m.status IN ('active', 'deactivated') AND m.removed_at IS NULL \
             GROUP BY m.status \
             UNION ALL \
             SELECT c.verdict, \
               COALESCE(c.verdict = 'invite_delivered' AND c.sent_at < $3, FALSE) AS stale, \
               CASE WHEN c.verdict IN ('invite_suppressed', 'invite_bounced', 'invite_marked_spam') \
                    THEN c.domain_key END AS domain, \
               COUNT(*) AS members \
             FROM c GROUP BY 1, 2, 3"
        )
    };
}

/// The members that need action, by address: `$1` workspace, `$2` now, `$3` stale before, `$4`
/// only those a resend can help (never sent, expired, stale), `$5` at most this many.
macro_rules! needing_action {
    ($classified:expr) => {
        concat!(
            "WITH c AS MATERIALIZED (",
            $classified,
            ") \
             SELECT c.member_id, c.email_key, c.verdict, c.sent_at, \
               COALESCE(c.verdict = 'invite_delivered' AND c.sent_at < $3, FALSE) AS stale \
             FROM c \
             WHERE (c.verdict IN ('invite_suppressed', 'invite_bounced', 'invite_marked_spam', \
                                  'invite_never_sent', 'invite_expired') \
                    OR (c.verdict = 'invite_delivered' AND c.sent_at < $3)) \
               AND (NOT $4 OR c.verdict IN ('invite_never_sent', 'invite_expired', 'invite_delivered')) \
             ORDER BY c.email_key LIMIT $5"
        )
    };
}

const REPORT_COUNTS: &str = counts!(classified!());
const NEEDING_ACTION: &str = needing_action!(classified!());

/// One group of the report's counts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportCountRow {
    /// A verdict's name (`Verdict::as_str`).
    pub verdict: String,
    /// Delivered, and sent before the stale limit.
    pub stale: bool,
    /// The company domain, for the failures only.
    pub domain: Option<String>,
    pub members: i64,
}

/// One member that needs action.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NeedingActionRow {
    pub member_id: i64,
    pub email_key: String,
    pub verdict: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub stale: bool,
}

/// What came of asking to start a bulk resend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkStart {
    Started,
    /// This offer was started already (a second press, or another replica's).
    AlreadyStarted(Box<BulkResendRow>),
    /// Another run of the same workspace is going.
    Busy,
    /// No such offer.
    Unknown,
}

/// A bulk resend: offered, running, finished or interrupted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BulkResendRow {
    pub reference: String,
    pub workspace: String,
    pub offered_to: String,
    pub offered_at: DateTime<Utc>,
    pub eligible: i64,
    pub state: String,
    pub started_by: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub lease_until: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
    pub summary: Option<String>,
}

/// A new "Resend all eligible" offer.
#[derive(Debug, Clone)]
pub struct NewBulkResend<'a> {
    pub reference: &'a str,
    pub workspace: &'a str,
    pub offered_to: &'a str,
    pub offered_at: DateTime<Utc>,
    pub eligible: i64,
}

/// A run's tallies so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkTally {
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
}

const FIND_BULK_RESEND: &str = "SELECT reference, workspace, offered_to, offered_at, eligible, \
    state, started_by, started_at, lease_until, finished_at, sent, skipped, failed, summary \
    FROM bulk_resends WHERE reference = $1";

/// A read-only transaction in which PostgreSQL does not compile the statement first: over a
/// million members its JIT spent four seconds compiling a plan that runs in under two.
async fn without_jit(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
    Ok(tx)
}

/// A SQLite connection that reads the file through memory mapping: the report reads the indexes
/// of a whole workspace, and through SQLite's small page cache each page was a system call (a
/// million members: 5 s, half of it in the kernel; mapped: 2.4 s on the same loaded machine).
/// The setting stays with the pooled connection, where it only makes reads cheaper.
async fn mapped(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    sqlx::query("PRAGMA mmap_size = 1073741824")
        .execute(&mut *connection)
        .await?;
    Ok(connection)
}

impl Store {
    /// The report's counts for workspace `workspace_id` as of `now` (see [`ReportCountRow`]).
    pub async fn report_counts(
        &self,
        workspace_id: i64,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> StoreResult<Vec<ReportCountRow>> {
        Ok(match self {
            Store::Sqlite(pool, _) => {
                let mut connection = mapped(pool).await?;
                sqlx::query_as(REPORT_COUNTS)
                    .bind(workspace_id)
                    .bind(now)
                    .bind(stale_before)
                    .fetch_all(&mut *connection)
                    .await?
            }
            Store::Postgres(pool, _) => {
                let mut tx = without_jit(pool).await?;
                let rows = sqlx::query_as(REPORT_COUNTS)
                    .bind(workspace_id)
                    .bind(now)
                    .bind(stale_before)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
        })
    }

    /// The members of `workspace_id` that need action, by address, at most `limit`; only those a
    /// resend can help when `resend_only`.
    pub async fn members_needing_action(
        &self,
        workspace_id: i64,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        resend_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<NeedingActionRow>> {
        Ok(match self {
            Store::Sqlite(pool, _) => {
                let mut connection = mapped(pool).await?;
                sqlx::query_as(NEEDING_ACTION)
                    .bind(workspace_id)
                    .bind(now)
                    .bind(stale_before)
                    .bind(resend_only)
                    .bind(limit)
                    .fetch_all(&mut *connection)
                    .await?
            }
            Store::Postgres(pool, _) => {
                let mut tx = without_jit(pool).await?;
                let rows = sqlx::query_as(NEEDING_ACTION)
                    .bind(workspace_id)
                    .bind(now)
                    .bind(stale_before)
                    .bind(resend_only)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
        })
    }

    /// Records a "Resend all eligible" offer.
    pub async fn offer_bulk_resend(&self, new: &NewBulkResend<'_>) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "INSERT INTO bulk_resends (reference, workspace, offered_to, offered_at, eligible, state) \
                 VALUES ($1, $2, $3, $4, $5, 'offered')",
            )
            .bind(new.reference)
            .bind(new.workspace)
            .bind(new.offered_to)
            .bind(new.offered_at)
            .bind(new.eligible)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn find_bulk_resend(&self, reference: &str) -> StoreResult<Option<BulkResendRow>> {
        Ok(on_backend!(self, pool => {
            sqlx::query_as(FIND_BULK_RESEND).bind(reference).fetch_optional(pool).await?
        }))
    }

    /// Moves the offer `reference` to running, once: a run of its workspace whose lease lapsed
    /// before `now` (its process stopped) is marked interrupted first; a run still holding its
    /// lease makes this one [`BulkStart::Busy`].
    pub async fn start_bulk_resend(
        &self,
        reference: &str,
        started_by: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<BulkStart> {
        let Some(offer) = self.find_bulk_resend(reference).await? else {
            return Ok(BulkStart::Unknown);
        };
        let _turn = self.write_turn().await;
        let started = on_backend!(self, pool => {
            sqlx::query(
                "UPDATE bulk_resends SET state = 'interrupted', finished_at = $2 \
                 WHERE workspace = $1 AND state = 'running' AND lease_until < $2",
            )
            .bind(&offer.workspace)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query(
                "UPDATE bulk_resends SET state = 'running', started_by = $2, started_at = $3, \
                   lease_until = $4 \
                 WHERE reference = $1 AND state = 'offered'",
            )
            .bind(reference)
            .bind(started_by)
            .bind(now)
            .bind(lease_until)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        match started {
            Ok(1) => Ok(BulkStart::Started),
            Ok(_) => {
                drop(_turn);
                match self.find_bulk_resend(reference).await? {
                    Some(row) => Ok(BulkStart::AlreadyStarted(Box::new(row))),
                    None => Ok(BulkStart::Unknown),
                }
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(BulkStart::Busy),
            Err(error) => Err(StoreError::from(error)),
        }
    }

    /// A running run's tallies so far, and its lease renewed to `lease_until`.
    pub async fn renew_bulk_resend(
        &self,
        reference: &str,
        tally: BulkTally,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE bulk_resends SET sent = $2, skipped = $3, failed = $4, lease_until = $5 \
                 WHERE reference = $1 AND state = 'running'",
            )
            .bind(reference)
            .bind(tally.sent)
            .bind(tally.skipped)
            .bind(tally.failed)
            .bind(lease_until)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The run ended (all done, or its time was up): its tallies and summary (JSON) kept.
    pub async fn finish_bulk_resend(
        &self,
        reference: &str,
        tally: BulkTally,
        summary: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            sqlx::query(
                "UPDATE bulk_resends SET state = 'finished', sent = $2, skipped = $3, failed = $4, \
                   summary = $5, finished_at = $6, lease_until = NULL \
                 WHERE reference = $1 AND state = 'running'",
            )
            .bind(reference)
            .bind(tally.sent)
            .bind(tally.skipped)
            .bind(tally.failed)
            .bind(summary)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
