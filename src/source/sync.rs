//! One sync: the members after the stored watermark, then the invitations after theirs, page by
//! page, each page applied in one transaction of the bot's store together with the watermark that
//! covers it. A failure leaves every committed page in place and the watermark after the last of
//! them, so the next run resumes there. `full` reads everything and then removes from the bot's
//! view the members the product no longer returns.

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use crate::ingest::{parse_invitations, parse_members, IngestError, SourceKind};
use crate::store::{ApplyOptions, Store};

use super::columns::{raw_invitation, raw_member};
use super::pages::Cursor;
use super::{bad_rows, store_refusal, PreparedQuery, QueryName, Source, SourceError};

#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Read everything from the start, then reconcile what the product no longer returns.
    pub full: bool,
    /// Work out what would change and write nothing.
    pub dry_run: bool,
    /// Count the rows to read first (one more query per kind), for the progress's ETA.
    pub count_total: bool,
}

/// Where a sync is, after each page.
#[derive(Debug, Clone, Serialize)]
pub struct SyncProgress {
    pub query: QueryName,
    pub rows: u64,
    /// Rows to read in all, when counted.
    pub total: Option<u64>,
    pub elapsed_seconds: f64,
}

impl SyncProgress {
    pub fn rows_per_second(&self) -> f64 {
        if self.elapsed_seconds > 0.0 {
            self.rows as f64 / self.elapsed_seconds
        } else {
            0.0
        }
    }

    /// Seconds left at the rate so far, when the total is known.
    pub fn eta_seconds(&self) -> Option<f64> {
        let rate = self.rows_per_second();
        let left = self.total?.saturating_sub(self.rows);
        (rate > 0.0).then(|| left as f64 / rate)
    }
}

/// What one query's rows did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KindReport {
    /// Rows read from the product.
    pub read: u64,
    /// Rows written (newer than the bot's copy).
    pub applied: u64,
    /// Rows no newer than the bot's copy.
    pub unchanged: u64,
    /// Dry run only: rows the store would refuse (e.g. an invitation of a member that a real run
    /// would have written first).
    pub refused: u64,
    /// Pages applied, each in its own transaction.
    pub batches: u64,
    /// The watermark after the run (RFC 3339), if any row was ever read.
    pub watermark: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SyncReport {
    pub full: bool,
    pub dry_run: bool,
    pub members: KindReport,
    /// `None`: no `invitations_query`.
    pub invitations: Option<KindReport>,
    /// Members that left the bot's view because the product no longer returns them (`full`).
    pub removed: Option<u64>,
    pub seconds: f64,
}

/// Runs one sync of `source` into `store`. `progress` is called after each page. The outcome is
/// recorded on the source's state (`last_success_at` or `last_error`) unless it is a dry run.
pub async fn sync_once(
    store: &Store,
    source: &Source,
    options: SyncOptions,
    progress: &mut (dyn FnMut(&SyncProgress) + Send),
) -> Result<SyncReport, SourceError> {
    let started = Instant::now();
    let now = Utc::now();
    // A dry run writes nothing, not even the run number: it borrows the next one.
    let run = if options.dry_run {
        store
            .source_state(SourceKind::ProductDb)
            .await?
            .map_or(1, |state| state.run + 1)
    } else {
        store.begin_source_run(SourceKind::ProductDb, now).await?
    };
    let outcome = run_sync(store, source, options, run, progress).await;
    if !options.dry_run {
        let error = outcome.as_ref().err().map(ToString::to_string);
        let recorded = match &error {
            None => Ok(()),
            Some(message) => Err(message.as_str()),
        };
        store
            .finish_source_run(SourceKind::ProductDb, Utc::now(), recorded)
            .await?;
    }
    let (members, invitations, removed) = outcome?;
    Ok(SyncReport {
        full: options.full,
        dry_run: options.dry_run,
        members,
        invitations,
        removed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

type Outcome = (KindReport, Option<KindReport>, Option<u64>);

async fn run_sync(
    store: &Store,
    source: &Source,
    options: SyncOptions,
    run: i64,
    progress: &mut (dyn FnMut(&SyncProgress) + Send),
) -> Result<Outcome, SourceError> {
    source.validate().await?;
    let members = sync_kind(
        store,
        source,
        &source.members,
        SourceKind::ProductDb,
        options,
        run,
        progress,
    )
    .await?;
    let invitations = match &source.invitations {
        Some(query) => Some(
            sync_kind(
                store,
                source,
                query,
                SourceKind::ProductDbInvitations,
                options,
                run,
                progress,
            )
            .await?,
        ),
        None => None,
    };
    let removed = if options.full && !options.dry_run {
        Some(
            store
                .reconcile_removed(SourceKind::ProductDb, run, Utc::now(), false)
                .await?,
        )
    } else {
        // A dry run rolled its pages back, so the store cannot tell which members it would
        // have confirmed.
        None
    };
    Ok((members, invitations, removed))
}

async fn sync_kind(
    store: &Store,
    source: &Source,
    query: &PreparedQuery,
    kind: SourceKind,
    options: SyncOptions,
    run: i64,
    progress: &mut (dyn FnMut(&SyncProgress) + Send),
) -> Result<KindReport, SourceError> {
    let started = Instant::now();
    let stored = store.source_state(kind).await?.and_then(|s| s.watermark());
    let mut cursor = match (&stored, options.full) {
        (Some(mark), false) => Cursor::from_watermark(mark),
        _ => Cursor::start(),
    };
    let total = if options.count_total {
        Some(source.count(query, &cursor).await?)
    } else {
        None
    };
    let mut report = KindReport {
        watermark: stored.map(|mark| mark.at.to_rfc3339()),
        ..KindReport::default()
    };
    loop {
        let offset = report.read;
        let applied = match query.name {
            QueryName::MembersQuery => {
                let (page, errors) = source
                    .read_page(query, &query.page, &cursor, raw_member)
                    .await?;
                if !errors.is_empty() {
                    return Err(bad_rows(query.name, offset, &page.keys, errors));
                }
                let Some(last) = page.keys.last().cloned() else {
                    break;
                };
                let read = page.rows.len() as u64;
                let records = parse_members(page.rows, &source.maps, source.zone)
                    .map_err(|errors| bad_rows(query.name, offset, &page.keys, errors))?;
                let at = records.last().expect("a page with a last key").updated_at;
                let next = Cursor {
                    at,
                    workspace: last.workspace,
                    email: last.email,
                };
                let apply = ApplyOptions {
                    dry_run: options.dry_run,
                    run: Some((run, Some(next.to_watermark()))),
                };
                let outcome = store
                    .apply_members_with(kind, &records, &apply, Utc::now())
                    .await;
                (read, next, outcome, page.keys)
            }
            QueryName::InvitationsQuery => {
                let (page, errors) = source
                    .read_page(query, &query.page, &cursor, raw_invitation)
                    .await?;
                if !errors.is_empty() {
                    return Err(bad_rows(query.name, offset, &page.keys, errors));
                }
                let Some(last) = page.keys.last().cloned() else {
                    break;
                };
                let read = page.rows.len() as u64;
                let records = parse_invitations(page.rows, source.invitation_ttl, source.zone)
                    .map_err(|errors| bad_rows(query.name, offset, &page.keys, errors))?;
                let at = records.last().expect("a page with a last key").updated_at;
                let next = Cursor {
                    at,
                    workspace: last.workspace,
                    email: last.email,
                };
                let apply = ApplyOptions {
                    dry_run: options.dry_run,
                    run: Some((run, Some(next.to_watermark()))),
                };
                let outcome = store
                    .apply_invitations_with(kind, &records, &apply, Utc::now())
                    .await;
                (read, next, outcome, page.keys)
            }
        };
        let (read, next, outcome, keys) = applied;
        match outcome {
            Ok(applied) => {
                report.applied += applied.applied;
                report.unchanged += applied.unchanged;
            }
            Err(IngestError::Rows(refused)) if options.dry_run => {
                report.refused += refused.len() as u64;
            }
            Err(error) => return Err(store_refusal(query.name, offset, &keys, error)),
        }
        report.read += read;
        report.batches += 1;
        report.watermark = Some(next.at.to_rfc3339());
        cursor = next;
        progress(&SyncProgress {
            query: query.name,
            rows: report.read,
            total,
            elapsed_seconds: started.elapsed().as_secs_f64(),
        });
        if read < u64::from(source.batch_size) {
            break;
        }
    }
    tracing::info!(
        query = %query.name,
        read = report.read,
        applied = report.applied,
        batches = report.batches,
        "source rows synced"
    );
    Ok(report)
}
