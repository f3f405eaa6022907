//! Alerts: the problems found by the scan (one row per member, invitation and problem, so nothing
//! is alerted twice), where the scan stopped, and the state of each alert's post.

use chrono::{DateTime, Utc};

use super::{decode_enum, on_backend, Store, StoreResult};
use crate::domain::alert::AlertProblem;

/// The scan's single row in `alert_scans`.
const SCAN: &str = "alerts";

/// Where the scan stopped.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertScanState {
    /// The last delivery event looked at.
    pub event_id: i64,
    /// Events up to this one existed when alerts were first enabled: history, never alerted.
    pub event_floor: i64,
    pub suppression_id: i64,
    pub suppression_floor: i64,
    /// Invitations that expired before this were looked at.
    pub expired_until: DateTime<Utc>,
    /// Deferrals that happened before this were looked at (it trails the scan by
    /// `deferred_alert_hours`).
    pub deferred_until: DateTime<Utc>,
}

/// A problem found by the scan, not yet known to be new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundProblem {
    pub member_id: i64,
    /// 0 when the member has no sent invitation.
    pub invitation_id: i64,
    pub problem: AlertProblem,
    pub workspace_id: i64,
    /// The member's address domain, for grouping a burst.
    pub domain: String,
}

#[derive(sqlx::FromRow)]
struct ProblemRow {
    position: i64,
    member_id: i64,
    invitation_id: i64,
    problem: String,
    workspace_id: i64,
    domain: String,
    at: Option<DateTime<Utc>>,
}

/// One page of a scan: the problems, and how far it got (the last event or suppression id, or
/// the last time, of the rows returned).
#[derive(Debug, Clone, Default)]
pub struct ProblemPage {
    pub problems: Vec<FoundProblem>,
    pub last_position: Option<i64>,
    pub last_at: Option<DateTime<Utc>>,
    /// The page was full: there may be more.
    pub full: bool,
}

/// An alert waiting to be posted.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingAlert {
    pub id: i64,
    pub member_id: i64,
    pub invitation_id: i64,
    #[sqlx(try_from = "String")]
    pub problem: StoredProblem,
    pub workspace_id: i64,
    pub workspace: String,
    /// The member's address key.
    pub email: String,
    pub domain: String,
    pub detected_at: DateTime<Utc>,
    pub attempts: i32,
}

/// [`AlertProblem`] as a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredProblem(pub AlertProblem);

impl TryFrom<String> for StoredProblem {
    type Error = super::StoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        decode_enum(&value, "alerts.problem", AlertProblem::parse).map(StoredProblem)
    }
}

/// How an alert's post ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEnd {
    /// Posted (alone, in a domain's group or in a digest).
    Posted,
    /// When its post was due, the member's check no longer showed a problem.
    Resolved,
}

impl AlertEnd {
    fn as_str(self) -> &'static str {
        match self {
            AlertEnd::Posted => "posted",
            AlertEnd::Resolved => "resolved",
        }
    }
}

/// Problem events: hard bounces and complaints of invited members, by event id.
const PROBLEM_EVENTS: &str = "SELECT e.id AS position, m.id AS member_id, i.id AS invitation_id, \
       CASE WHEN e.event = 'spam_complaint' THEN 'spam_complaint' ELSE 'hard_bounce' END AS problem, \
       m.workspace_id, m.domain_key AS domain, e.at \
     FROM delivery_events e \
     JOIN invitations i ON i.id = e.invitation_id \
     JOIN members m ON m.id = i.member_id \
     WHERE e.id > $1 AND e.id <= $2 \
       AND (e.event = 'spam_complaint' OR (e.event = 'bounced' AND e.bounce_kind = 'hard')) \
       AND m.status = 'invited' \
     ORDER BY e.id LIMIT $3";

/// The latest sent invitation of the member `m`, or 0.
const LATEST_OF_MEMBER: &str = "COALESCE((SELECT li.id FROM invitations li \
       WHERE li.member_id = m.id AND li.send_state = 'sent' \
       ORDER BY li.sent_at DESC, li.id DESC LIMIT 1), 0)";

/// `i` is its member's latest sent invitation.
const IS_LATEST: &str = "NOT EXISTS (SELECT 1 FROM invitations later \
       WHERE later.member_id = i.member_id AND later.send_state = 'sent' \
         AND (later.sent_at > i.sent_at OR (later.sent_at = i.sent_at AND later.id > i.id)))";

/// A deferral or a soft bounce (the provider is still retrying).
const DEFERRAL: &str = "(e.event = 'deferred' OR (e.event = 'bounced' AND e.bounce_kind = 'soft'))";

impl Store {
    /// Where the scan stopped; `None` before the first scan.
    pub async fn alert_scan_state(&self) -> StoreResult<Option<AlertScanState>> {
        let row: Option<AlertScanState> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT event_id, event_floor, suppression_id, suppression_floor, expired_until, \
                 deferred_until FROM alert_scans WHERE name = $1",
            )
            .bind(SCAN)
            .fetch_optional(pool)
            .await?
        });
        Ok(row)
    }

    /// The first scan: everything already in the database is history. Returns the state, which
    /// another process may have started first.
    pub async fn start_alert_scans(
        &self,
        now: DateTime<Utc>,
        deferred_until: DateTime<Utc>,
    ) -> StoreResult<AlertScanState> {
        {
            let _turn = self.write_turn().await;
            on_backend!(self, pool => {
                sqlx::query(
                    "INSERT INTO alert_scans (name, event_id, event_floor, suppression_id, \
                       suppression_floor, expired_until, deferred_until) \
                     SELECT $1, e.top, e.top, s.top, s.top, $2, $3 \
                     FROM (SELECT COALESCE(MAX(id), 0) AS top FROM delivery_events) e, \
                          (SELECT COALESCE(MAX(id), 0) AS top FROM suppressions) s \
                     WHERE true ON CONFLICT (name) DO NOTHING",
                )
                .bind(SCAN)
                .bind(now)
                .bind(deferred_until)
                .execute(pool)
                .await?;
            });
        }
        match self.alert_scan_state().await? {
            Some(state) => Ok(state),
            None => Err(super::StoreError::Corrupt(
                "alert_scans has no row after it was written".into(),
            )),
        }
    }

    /// The newest delivery event and suppression ids: the upper end of this scan, so rows that
    /// arrive while it runs wait for the next one.
    pub async fn alert_scan_tops(&self) -> StoreResult<(i64, i64)> {
        let tops: (i64, i64) = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM delivery_events), \
                        (SELECT COALESCE(MAX(id), 0) FROM suppressions)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(tops)
    }

    /// Hard bounces and complaints with an event id in `(after, upto]`, at most `limit`.
    pub async fn problem_events(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        self.problem_page(PROBLEM_EVENTS.to_owned(), after, upto, limit)
            .await
    }

    /// Suppressions of invited members with an id in `(after, upto]`, at most `limit`.
    pub async fn problem_suppressions(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        let sql = format!(
            "SELECT s.id AS position, m.id AS member_id, {LATEST_OF_MEMBER} AS invitation_id, \
               s.reason AS problem, m.workspace_id, m.domain_key AS domain, s.at \
             FROM suppressions s JOIN members m ON m.email_key = s.email_key \
             WHERE s.id > $1 AND s.id <= $2 AND m.status = 'invited' \
             ORDER BY s.id LIMIT $3"
        );
        self.problem_page(sql, after, upto, limit).await
    }

    /// Latest invitations of invited members that expired in `[from, to)`, at most `limit`,
    /// earliest first.
    pub async fn problem_expiries(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        let sql = format!(
            "SELECT i.id AS position, m.id AS member_id, i.id AS invitation_id, \
               'expired' AS problem, m.workspace_id, m.domain_key AS domain, i.expires_at AS at \
             FROM invitations i JOIN members m ON m.id = i.member_id \
             WHERE i.expires_at >= $1 AND i.expires_at < $2 AND i.send_state = 'sent' \
               AND i.revoked_at IS NULL AND m.status = 'invited' AND {IS_LATEST} \
             ORDER BY i.expires_at, i.id LIMIT $3"
        );
        self.time_page(sql, from, to, limit).await
    }

    /// Deferrals in `[from, to)` of members' latest invitations that nothing but more deferrals
    /// followed, at most `limit`, earliest first.
    pub async fn problem_deferrals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        let sql = format!(
            "SELECT e.id AS position, m.id AS member_id, i.id AS invitation_id, \
               'deferred' AS problem, m.workspace_id, m.domain_key AS domain, e.at \
             FROM delivery_events e \
             JOIN invitations i ON i.id = e.invitation_id \
             JOIN members m ON m.id = i.member_id \
             WHERE {DEFERRAL} AND e.at >= $1 AND e.at < $2 \
               AND i.send_state = 'sent' AND m.status = 'invited' AND {IS_LATEST} \
               AND NOT EXISTS (SELECT 1 FROM delivery_events l WHERE l.invitation_id = i.id \
                 AND l.at > e.at AND l.event <> 'deferred' \
                 AND NOT (l.event = 'bounced' AND l.bounce_kind = 'soft')) \
             ORDER BY e.at, e.id LIMIT $3"
        );
        self.time_page(sql, from, to, limit).await
    }

    async fn problem_page(
        &self,
        sql: String,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        let sql = sqlx::AssertSqlSafe(sql);
        let rows: Vec<ProblemRow> = on_backend!(self, pool => {
            sqlx::query_as(sql)
                .bind(after)
                .bind(upto)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        page(rows, limit)
    }

    async fn time_page(
        &self,
        sql: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<ProblemPage> {
        let sql = sqlx::AssertSqlSafe(sql);
        let rows: Vec<ProblemRow> = on_backend!(self, pool => {
            sqlx::query_as(sql)
                .bind(from)
                .bind(to)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        page(rows, limit)
    }

    /// Records the problems found (those already recorded change nothing) and where the scan
    /// stopped, in one transaction; returns how many were new.
    pub async fn record_alerts(
        &self,
        problems: &[FoundProblem],
        detected_at: DateTime<Utc>,
        state: &AlertScanState,
    ) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let recorded = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut recorded = 0;
            for found in problems {
                recorded += sqlx::query(
                    "INSERT INTO alerts (member_id, invitation_id, problem, workspace_id, domain, \
                       detected_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (member_id, invitation_id, problem) DO NOTHING",
                )
                .bind(found.member_id)
                .bind(found.invitation_id)
                .bind(found.problem.as_str())
                .bind(found.workspace_id)
                .bind(&found.domain)
                .bind(detected_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            // Two scanners at once both move forward; neither moves the other back.
            sqlx::query(
                "UPDATE alert_scans SET \
                   event_id = CASE WHEN event_id > $2 THEN event_id ELSE $2 END, \
                   suppression_id = CASE WHEN suppression_id > $3 THEN suppression_id ELSE $3 END, \
                   expired_until = CASE WHEN expired_until > $4 THEN expired_until ELSE $4 END, \
                   deferred_until = CASE WHEN deferred_until > $5 THEN deferred_until ELSE $5 END \
                 WHERE name = $1",
            )
            .bind(SCAN)
            .bind(state.event_id)
            .bind(state.suppression_id)
            .bind(state.expired_until)
            .bind(state.deferred_until)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            recorded
        });
        Ok(recorded)
    }

    /// Alerts due to be posted now (not claimed by a live poster, not waiting for a retry), oldest
    /// first, at most `limit`.
    pub async fn due_alerts(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PendingAlert>> {
        let rows: Vec<PendingAlert> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT a.id, a.member_id, a.invitation_id, a.problem, a.workspace_id, \
                   w.slug AS workspace, m.email_key AS email, a.domain, a.detected_at, a.attempts \
                 FROM alerts a JOIN members m ON m.id = a.member_id \
                 JOIN workspaces w ON w.id = a.workspace_id \
                 WHERE a.state = 'pending' \
                   AND (a.next_attempt_at IS NULL OR a.next_attempt_at <= $1) \
                   AND (a.claimed_until IS NULL OR a.claimed_until < $1) \
                 ORDER BY a.id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// How many alerts of one domain in one workspace were found since `since`, posted or not.
    pub async fn domain_alert_count(
        &self,
        workspace_id: i64,
        domain: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let count: i64 = on_backend!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM alerts \
                 WHERE workspace_id = $1 AND domain = $2 AND detected_at >= $3",
            )
            .bind(workspace_id)
            .bind(domain)
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        Ok(count)
    }

    /// Claims the alerts for one post until `lease_until`, counting an attempt; returns the ids
    /// this process got (another poster may hold some).
    pub async fn claim_alerts(
        &self,
        ids: &[i64],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let _turn = self.write_turn().await;
        let mut claimed = Vec::with_capacity(ids.len());
        on_backend!(self, pool => {
            for id in ids {
                let affected = sqlx::query(
                    "UPDATE alerts SET claimed_until = $1, attempts = attempts + 1 \
                     WHERE id = $2 AND state = 'pending' \
                       AND (claimed_until IS NULL OR claimed_until < $3)",
                )
                .bind(lease_until)
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
                if affected == 1 {
                    claimed.push(*id);
                }
            }
        });
        Ok(claimed)
    }

    /// Ends claimed alerts: posted (with the message they went out in) or resolved.
    pub async fn end_alerts(
        &self,
        ids: &[i64],
        end: AlertEnd,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE alerts SET state = $1, message = $2, posted_at = $3, \
                       claimed_until = NULL WHERE id = $4",
                )
                .bind(end.as_str())
                .bind(message)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Gives claimed alerts back after a failed post: retried from `retry_at`, or `failed` once
    /// `max_attempts` are used up. Returns how many failed for good.
    pub async fn release_alerts(
        &self,
        ids: &[i64],
        retry_at: DateTime<Utc>,
        max_attempts: i32,
    ) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let failed = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut failed = 0;
            for id in ids {
                failed += sqlx::query(
                    "UPDATE alerts SET claimed_until = NULL, next_attempt_at = $1, \
                       state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'pending' END \
                     WHERE id = $3 AND state = 'pending' RETURNING state",
                )
                .bind(retry_at)
                .bind(max_attempts)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| {
                    use sqlx::Row;
                    u64::from(row.try_get::<String, _>(0).is_ok_and(|s| s == "failed"))
                })
                .unwrap_or(0);
            }
            tx.commit().await?;
            failed
        });
        Ok(failed)
    }
}

fn page(rows: Vec<ProblemRow>, limit: i64) -> StoreResult<ProblemPage> {
    let full = rows.len() as i64 >= limit;
    let last_position = rows.last().map(|r| r.position);
    let last_at = rows.last().and_then(|r| r.at);
    let problems = rows
        .into_iter()
        .map(|row| {
            let problem = match row.problem.as_str() {
                // A suppression's reason names its cause.
                "hard_bounce" | "spam_complaint" | "unsubscribe" | "manual" => {
                    AlertProblem::of_suppression(&row.problem)
                }
                other => decode_enum(other, "alert problem", AlertProblem::parse)?,
            };
            Ok(FoundProblem {
                member_id: row.member_id,
                invitation_id: row.invitation_id,
                problem,
                workspace_id: row.workspace_id,
                domain: row.domain,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ProblemPage {
        problems,
        last_position,
        last_at,
        full,
    })
}
