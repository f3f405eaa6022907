//! Applies the product's members and invitations ([`crate::ingest`]) and remembers, per way in,
//! how far it got and how fresh the data is (`data_sources`).
//!
//! Every apply is one transaction: a batch lands whole or not at all, and a sync's watermark moves
//! in the same transaction as the rows it covers, so a crash mid-sync resumes where the last
//! committed batch ended. A row no newer than the bot's copy (`source_updated_at`) changes nothing,
//! which makes every way in idempotent and lets a slow, late writer lose to a newer one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::ingest_bulk::WriteMembers;
use super::webhook_events::ATTACH_EARLY_EVENTS;
use super::StoreError;
use super::{on_backend, Store, StoreResult, WriteTurn};
use crate::domain::product_data::{ApplyReport, InvitationRecord, MemberRecord, RowError};
use crate::domain::source::SourceKind;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Rows the database refused to take (an invitation for a member the bot does not hold, a
    /// message id that is another invitation's): nothing of the batch was applied.
    #[error("{} row(s) refused; nothing was applied", .0.len())]
    Rows(Vec<RowError>),
}

impl From<sqlx::Error> for IngestError {
    fn from(error: sqlx::Error) -> Self {
        IngestError::Store(error.into())
    }
}

/// How far a sync has read: the largest `updated_at` applied and the key of the last row at that
/// instant (rows with equal timestamps are ordered by key, so none is skipped at a batch boundary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    pub at: DateTime<Utc>,
    pub key: String,
}

/// Options of one apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Work everything out, then roll back: what `--dry-run` prints.
    pub dry_run: bool,
    /// A sync run: rows it returns are marked with the run (for the reconcile of `sync --full`),
    /// and the watermark advances in the batch's transaction.
    pub run: Option<(i64, Option<Watermark>)>,
}

/// What the bot knows of one way in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceState {
    pub name: String,
    pub watermark_at: Option<DateTime<Utc>>,
    pub watermark_key: Option<String>,
    pub run: i64,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub rows_applied: i64,
    /// Runs that failed, ever.
    pub errors: i64,
}

impl SourceState {
    pub fn watermark(&self) -> Option<Watermark> {
        Some(Watermark {
            at: self.watermark_at?,
            key: self.watermark_key.clone().unwrap_or_default(),
        })
    }
}

const SELECT_SOURCE: &str = "SELECT name, watermark_at, watermark_key, run, last_attempt_at, \
     last_success_at, last_error, rows_applied, errors FROM data_sources";

const SELECT_SOURCE_NAMED: &str = "SELECT name, watermark_at, watermark_key, run, \
     last_attempt_at, last_success_at, last_error, rows_applied, errors FROM data_sources WHERE name = $1";

const UPSERT_WORKSPACE: &str = "INSERT INTO workspaces (slug, name) VALUES ($1, $2) \
     ON CONFLICT (slug) DO UPDATE SET name = COALESCE($3, workspaces.name) RETURNING id";

const UPSERT_INVITATION: &str = "INSERT INTO invitations (member_id, sent_at, expires_at, \
         message_id, source, source_key, source_updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (source_key) DO UPDATE SET expires_at = excluded.expires_at, \
         message_id = COALESCE(excluded.message_id, invitations.message_id), \
         source = excluded.source, source_updated_at = excluded.source_updated_at \
     WHERE invitations.source_updated_at IS NULL \
         OR invitations.source_updated_at < excluded.source_updated_at \
     RETURNING id";

/// Records progress and freshness of a way in, in the transaction of the rows it covers.
const RECORD_SOURCE: &str = "INSERT INTO data_sources (name, watermark_at, watermark_key, \
         last_success_at, rows_applied) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (name) DO UPDATE SET \
         watermark_at = COALESCE(excluded.watermark_at, data_sources.watermark_at), \
         watermark_key = COALESCE(excluded.watermark_key, data_sources.watermark_key), \
         last_success_at = COALESCE(excluded.last_success_at, data_sources.last_success_at), \
         rows_applied = data_sources.rows_applied + excluded.rows_applied";

/// One open transaction of the product's data: a batch of a sync, or a whole import that must land
/// all or nothing however many batches it takes. Dropped without [`IngestTx::commit`], it rolls back.
pub struct IngestTx {
    tx: Tx,
    _turn: WriteTurn,
}

enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Expands `$body` once per backend with `$tx` bound to that backend's open transaction.
macro_rules! on_tx {
    ($ingest:expr, $tx:ident => $body:expr) => {
        match &mut $ingest.tx {
            Tx::Sqlite($tx) => $body,
            Tx::Postgres($tx) => $body,
        }
    };
}

impl Store {
    /// Opens a transaction for the product's rows (on SQLite it holds this process's write turn
    /// until it ends).
    pub async fn begin_ingest(&self) -> StoreResult<IngestTx> {
        let turn = self.write_turn().await;
        let tx = match self {
            Store::Sqlite(pool, _) => Tx::Sqlite(pool.begin().await?),
            Store::Postgres(pool, _) => Tx::Postgres(pool.begin().await?),
        };
        Ok(IngestTx { tx, _turn: turn })
    }

    /// Applies members from `source` in one transaction (see [`IngestTx::apply_members`]).
    pub async fn apply_members(
        &self,
        source: SourceKind,
        rows: &[MemberRecord],
    ) -> Result<ApplyReport, IngestError> {
        self.apply_members_with(source, rows, &ApplyOptions::default(), Utc::now())
            .await
    }

    /// Applies one batch of members in its own transaction, with a sync run's watermark when
    /// `options.run` has one, and rolls it back on a dry run.
    pub async fn apply_members_with(
        &self,
        source: SourceKind,
        rows: &[MemberRecord],
        options: &ApplyOptions,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, IngestError> {
        let mut tx = self.begin_ingest().await?;
        let run = options.run.as_ref().map(|(run, _)| *run);
        let report = tx.apply_members(source, rows, run, now).await?;
        tx.record_source(source, options, report, now).await?;
        tx.finish(options.dry_run).await?;
        Ok(report)
    }

    /// Applies invitations the product sent, in one transaction (see
    /// [`IngestTx::apply_invitations`]).
    pub async fn apply_invitations(
        &self,
        source: SourceKind,
        rows: &[InvitationRecord],
    ) -> Result<ApplyReport, IngestError> {
        self.apply_invitations_with(source, rows, &ApplyOptions::default(), Utc::now())
            .await
    }

    /// Applies one batch of invitations in its own transaction (see [`Store::apply_members_with`]).
    pub async fn apply_invitations_with(
        &self,
        source: SourceKind,
        rows: &[InvitationRecord],
        options: &ApplyOptions,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, IngestError> {
        let mut tx = self.begin_ingest().await?;
        let report = tx.apply_invitations(source, rows).await?;
        tx.record_source(source, options, report, now).await?;
        tx.finish(options.dry_run).await?;
        Ok(report)
    }
}

impl Store {
    /// What the bot knows of one way in (`None`: nothing ever came that way).
    pub async fn source_state(&self, source: SourceKind) -> StoreResult<Option<SourceState>> {
        let state = on_backend!(self, pool => {
            sqlx::query_as(SELECT_SOURCE_NAMED)
                .bind(source.as_str())
                .fetch_optional(pool)
                .await?
        });
        Ok(state)
    }

    /// Every way in that was ever used.
    pub async fn source_states(&self) -> StoreResult<Vec<SourceState>> {
        let states = on_backend!(self, pool => {
            sqlx::query_as(SELECT_SOURCE).fetch_all(pool).await?
        });
        Ok(states)
    }

    /// Starts a sync run: a new run number (rows it returns are marked with it) and the attempt's time.
    pub async fn begin_source_run(
        &self,
        source: SourceKind,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let _turn = self.write_turn().await;
        let run = on_backend!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO data_sources (name, run, last_attempt_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (name) DO UPDATE SET run = data_sources.run + 1, \
                     last_attempt_at = excluded.last_attempt_at \
                 RETURNING run",
            )
            .bind(source.as_str())
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok(run)
    }

    /// Ends a sync run: a success clears the last error, a failure records it (the freshness of
    /// the data stays that of the last success).
    pub async fn finish_source_run(
        &self,
        source: SourceKind,
        now: DateTime<Utc>,
        outcome: Result<(), &str>,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        on_backend!(self, pool => {
            match outcome {
                Ok(()) => sqlx::query(
                    "UPDATE data_sources SET last_success_at = $2, last_error = NULL WHERE name = $1",
                )
                .bind(source.as_str())
                .bind(now)
                .execute(pool)
                .await?,
                Err(error) => sqlx::query(
                    "UPDATE data_sources SET last_error = $2, errors = errors + 1 WHERE name = $1",
                )
                    .bind(source.as_str())
                    .bind(error)
                    .execute(pool)
                    .await?,
            };
        });
        Ok(())
    }

    /// The members `source` wrote that are in the bot's view, as (workspace slug, address key):
    /// what a dry run of a full sync compares with the rows it read, since its batches were
    /// rolled back and never marked.
    pub async fn live_member_keys(&self, source: SourceKind) -> StoreResult<Vec<(String, String)>> {
        let keys = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT w.slug, m.email_key FROM members m JOIN workspaces w ON w.id = m.workspace_id \
                 WHERE m.source = $1 AND m.removed_at IS NULL",
            )
            .bind(source.as_str())
            .fetch_all(pool)
            .await?
        });
        Ok(keys)
    }

    /// After a full run: members written by `source` that the run did not return leave the bot's
    /// view (kept for the audit log). Returns how many left (or would, on a dry run).
    pub async fn reconcile_removed(
        &self,
        source: SourceKind,
        run: i64,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> StoreResult<u64> {
        let _turn = self.write_turn().await;
        let removed = on_backend!(self, pool => {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(
                "UPDATE members SET removed_at = $3 WHERE source = $1 AND removed_at IS NULL \
                 AND (seen_run IS NULL OR seen_run <> $2)",
            )
            .bind(source.as_str())
            .bind(run)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if dry_run {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            removed
        });
        Ok(removed)
    }
}

/// One product invitation across syncs and pushes: its member and when it was sent.
fn invitation_key(workspace_id: i64, email_key: &str, sent_at: DateTime<Utc>) -> String {
    format!("{workspace_id}:{email_key}:{}", sent_at.timestamp_micros())
}

struct Deduplicated<'a> {
    kept: Vec<&'a MemberRecord>,
    repeats: u64,
}

/// The newest row of each member (the last one among equals), in first-seen order.
fn newest_per_member(rows: &[MemberRecord]) -> Deduplicated<'_> {
    let mut position: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<&MemberRecord> = Vec::with_capacity(rows.len());
    for row in rows {
        let key = (row.workspace.as_str(), row.email.key());
        match position.get(&key) {
            Some(&at) => {
                if row.updated_at >= kept[at].updated_at {
                    kept[at] = row;
                }
            }
            None => {
                position.insert(key, kept.len());
                kept.push(row);
            }
        }
    }
    let repeats = (rows.len() - kept.len()) as u64;
    Deduplicated { kept, repeats }
}

impl IngestTx {
    /// Applies members: workspaces are created as needed (named by the row's `workspace_name`,
    /// else the slug), a row newer than the bot's copy replaces it, a deleted one leaves the bot's
    /// view (the row is kept for the audit log). Repeats of one member within the rows count once,
    /// the newest winning. Rows of a sync `run` that change nothing are confirmed as still there.
    pub async fn apply_members(
        &mut self,
        source: SourceKind,
        rows: &[MemberRecord],
        run: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<ApplyReport, IngestError> {
        let rows = newest_per_member(rows);
        let mut report = ApplyReport {
            applied: 0,
            unchanged: rows.repeats,
        };
        on_tx!(self, tx => {
            let mut workspace_ids: HashMap<&str, i64> = HashMap::new();
            for row in &rows.kept {
                let slug = row.workspace.as_str();
                if workspace_ids.contains_key(slug) {
                    continue;
                }
                let id: i64 = sqlx::query_scalar(UPSERT_WORKSPACE)
                    .bind(slug)
                    .bind(row.workspace_name.as_deref().unwrap_or(slug))
                    .bind(row.workspace_name.as_deref())
                    .fetch_one(&mut **tx)
                    .await?;
                workspace_ids.insert(slug, id);
            }
            let batch: Vec<(&MemberRecord, i64)> = rows
                .kept
                .iter()
                .map(|row| (*row, workspace_ids[row.workspace.as_str()]))
                .collect();
            // Row by row on SQLite (in process, no round trips), in one statement on PostgreSQL.
            let written = WriteMembers::write_members(&mut **tx, source, &batch, run, now).await?;
            report.applied += written;
            report.unchanged += batch.len() as u64 - written;
        });
        Ok(report)
    }

    /// Applies invitations. Each names a member the bot already holds (send members first); one
    /// invitation is its workspace, address and `sent_at`, so a later row can add the Message-ID,
    /// which attaches provider events that arrived before it. A Message-ID that is another
    /// invitation's refuses the row. Refused rows are all reported; the caller then drops the
    /// transaction, so nothing of it lands.
    pub async fn apply_invitations(
        &mut self,
        source: SourceKind,
        rows: &[InvitationRecord],
    ) -> Result<ApplyReport, IngestError> {
        let mut report = ApplyReport::default();
        let mut refused = Vec::new();
        on_tx!(self, tx => {
            for (index, row) in rows.iter().enumerate() {
                let member: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT m.id, m.workspace_id FROM members m \
                     JOIN workspaces w ON w.id = m.workspace_id \
                     WHERE w.slug = $1 AND m.email_key = $2",
                )
                .bind(row.workspace.as_str())
                .bind(row.email.key())
                .fetch_optional(&mut **tx)
                .await?;
                let Some((member_id, workspace_id)) = member else {
                    refused.push(RowError::new(index, "email", format!(
                        "is not a member of `{}` in the bot's data: send the member first",
                        row.workspace
                    )));
                    continue;
                };
                let source_key = invitation_key(workspace_id, row.email.key(), row.sent_at);
                if let Some(message_id) = &row.message_id {
                    let holder: Option<Option<String>> =
                        sqlx::query_scalar("SELECT source_key FROM invitations WHERE message_id = $1")
                            .bind(message_id)
                            .fetch_optional(&mut **tx)
                            .await?;
                    if matches!(&holder, Some(key) if key.as_deref() != Some(source_key.as_str())) {
                        refused.push(RowError::new(index, "message_id",
                            "belongs to another invitation the bot holds"));
                        continue;
                    }
                }
                let written: Option<i64> = sqlx::query_scalar(UPSERT_INVITATION)
                    .bind(member_id)
                    .bind(row.sent_at)
                    .bind(row.expires_at)
                    .bind(row.message_id.as_deref())
                    .bind(source.as_str())
                    .bind(&source_key)
                    .bind(row.updated_at)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(invitation_id) = written else {
                    report.unchanged += 1;
                    continue;
                };
                report.applied += 1;
                if let Some(message_id) = &row.message_id {
                    // Provider events can beat the product's own report of its email.
                    sqlx::query(ATTACH_EARLY_EVENTS)
                        .bind(invitation_id)
                        .bind(message_id)
                        .bind(message_id)
                        .execute(&mut **tx)
                        .await?;
                }
            }
        });
        if refused.is_empty() {
            Ok(report)
        } else {
            Err(IngestError::Rows(refused))
        }
    }

    /// Records progress and freshness of `source` in this transaction: a sync run's watermark, or
    /// (for a push or an import, which succeed when they commit) the time of this success.
    pub async fn record_source(
        &mut self,
        source: SourceKind,
        options: &ApplyOptions,
        report: ApplyReport,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let watermark = options.run.as_ref().and_then(|(_, mark)| mark.as_ref());
        on_tx!(self, tx => {
            sqlx::query(RECORD_SOURCE)
                .bind(source.as_str())
                .bind(watermark.map(|mark| mark.at))
                .bind(watermark.map(|mark| mark.key.as_str()))
                .bind(options.run.is_none().then_some(now))
                .bind(report.applied as i64)
                .execute(&mut **tx)
                .await?;
        });
        Ok(())
    }

    /// Commits, or on a dry run rolls back what was worked out.
    pub async fn finish(self, dry_run: bool) -> StoreResult<()> {
        if dry_run {
            self.rollback().await
        } else {
            self.commit().await
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self.tx {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self.tx {
            Tx::Sqlite(tx) => tx.rollback().await?,
            Tx::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}
