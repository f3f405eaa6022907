//! One sync: the members after the stored watermark, then the invitations after theirs, read in
//! pages and applied in batches, each batch in one transaction of the bot's store together with
//! the watermark that covers it. A failure leaves every committed batch in place and the watermark
//! after the last of them, so the next run resumes there. `full` reads everything and then removes from the bot's
//! view the members the product no longer returns.

use std::collections::HashSet;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use crate::ingest::{parse_invitations, parse_members, IngestError, RowError, SourceKind};
use crate::store::{ApplyOptions, Store};

use super::columns::{raw_invitation, raw_member, RowKey};
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
    let mut seen = (options.full && options.dry_run).then(HashSet::new);
    let members = sync_kind(
        store,
        source,
        &source.members,
        SourceKind::ProductDb,
        options,
        run,
        progress,
        seen.as_mut(),
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
                None,
            )
            .await?,
        ),
        None => None,
    };
    let removed = match (options.full, seen) {
        (false, _) => None,
        // A dry run rolled its batches back, so the store cannot tell which members the run
        // returned: the keys it read can.
        (true, Some(seen)) => Some(
            store
                .live_member_keys(SourceKind::ProductDb)
                .await?
                .into_iter()
                .filter(|key| !seen.contains(key))
                .count() as u64,
        ),
        (true, None) => Some(
            store
                .reconcile_removed(SourceKind::ProductDb, run, Utc::now(), false)
                .await?,
        ),
    };
    Ok((members, invitations, removed))
}

// One pass over one query: the store, the query, where it stands and what it reports to are all
// its own inputs; bundling them would only name the same eight things twice.
#[allow(clippy::too_many_arguments)]
async fn sync_kind(
    store: &Store,
    source: &Source,
    query: &PreparedQuery,
    kind: SourceKind,
    options: SyncOptions,
    run: i64,
    progress: &mut (dyn FnMut(&SyncProgress) + Send),
    mut seen: Option<&mut HashSet<(String, String)>>,
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
    let batch = source.batch_size as usize;
    let page_rows = batch.saturating_mul(super::BATCHES_PER_PAGE as usize);
    // The next page is read from the product while the last batch of this one is applied to the
    // store: its cursor (after this page's last row) is known once the page is parsed. A read that
    // fails is reported after that batch is applied, as it would be if it came after it.
    let mut next_members = None;
    let mut next_invitations = None;
    loop {
        let page_offset = report.read;
        let page_len =
            match query.name {
                QueryName::MembersQuery => {
                    let (page, errors) = match next_members.take() {
                        Some(read) => read?,
                        None => {
                            source
                                .read_page(query, &query.page, &cursor, raw_member)
                                .await?
                        }
                    };
                    let len = page.rows.len();
                    let mut rows = page.rows.into_iter();
                    let mut batches = Vec::new();
                    for (start, keys) in (0..).step_by(batch).zip(page.keys.chunks(batch)) {
                        let chunk: Vec<_> = rows.by_ref().take(keys.len()).collect();
                        let offset = page_offset + start as u64;
                        let parsed = check_converted(query.name, offset, start, keys, &errors)
                            .and_then(|()| {
                                parse_members(chunk, &source.maps, source.zone)
                                    .map_err(|errors| bad_rows(query.name, offset, keys, errors))
                            });
                        let failed = parsed.is_err();
                        batches.push((offset, keys, parsed));
                        if failed {
                            break;
                        }
                    }
                    let next_page = match batches.last() {
                        Some((_, keys, Ok(records))) if len >= page_rows => {
                            Some(next_cursor(keys, records.last().map(|r| r.updated_at)))
                        }
                        _ => None,
                    };
                    let count = batches.len();
                    for (i, (offset, keys, parsed)) in batches.into_iter().enumerate() {
                        let records = parsed?;
                        if let Some(seen) = seen.as_deref_mut() {
                            seen.extend(records.iter().map(|r| {
                                (r.workspace.as_str().to_owned(), r.email.key().to_owned())
                            }));
                        }
                        let next = next_cursor(keys, records.last().map(|r| r.updated_at));
                        let apply = apply_options(options, run, &next);
                        let prefetch_at = next_page.as_ref().filter(|_| i + 1 == count);
                        let prefetch = async {
                            match prefetch_at {
                                Some(at) => {
                                    Some(source.read_page(query, &query.page, at, raw_member).await)
                                }
                                None => None,
                            }
                        };
                        let (outcome, prefetched) = tokio::join!(
                            store.apply_members_with(kind, &records, &apply, Utc::now()),
                            prefetch
                        );
                        settle(&mut report, query.name, offset, keys, outcome, options)?;
                        if prefetched.is_some() {
                            next_members = prefetched;
                        }
                        report.watermark = Some(next.at.to_rfc3339());
                        cursor = next;
                        progress(&report_progress(query.name, &report, total, started));
                    }
                    len
                }
                QueryName::InvitationsQuery => {
                    let (page, errors) = match next_invitations.take() {
                        Some(read) => read?,
                        None => {
                            source
                                .read_page(query, &query.page, &cursor, raw_invitation)
                                .await?
                        }
                    };
                    let len = page.rows.len();
                    let mut rows = page.rows.into_iter();
                    let mut batches = Vec::new();
                    for (start, keys) in (0..).step_by(batch).zip(page.keys.chunks(batch)) {
                        let chunk: Vec<_> = rows.by_ref().take(keys.len()).collect();
                        let offset = page_offset + start as u64;
                        let parsed = check_converted(query.name, offset, start, keys, &errors)
                            .and_then(|()| {
                                parse_invitations(chunk, source.invitation_ttl, source.zone)
                                    .map_err(|errors| bad_rows(query.name, offset, keys, errors))
                            });
                        let failed = parsed.is_err();
                        batches.push((offset, keys, parsed));
                        if failed {
                            break;
                        }
                    }
                    let next_page = match batches.last() {
                        Some((_, keys, Ok(records))) if len >= page_rows => {
                            Some(next_cursor(keys, records.last().map(|r| r.updated_at)))
                        }
                        _ => None,
                    };
                    let count = batches.len();
                    for (i, (offset, keys, parsed)) in batches.into_iter().enumerate() {
                        let records = parsed?;
                        let next = next_cursor(keys, records.last().map(|r| r.updated_at));
                        let apply = apply_options(options, run, &next);
                        let prefetch_at = next_page.as_ref().filter(|_| i + 1 == count);
                        let prefetch = async {
                            match prefetch_at {
                                Some(at) => Some(
                                    source
                                        .read_page(query, &query.page, at, raw_invitation)
                                        .await,
                                ),
                                None => None,
                            }
                        };
                        let (outcome, prefetched) = tokio::join!(
                            store.apply_invitations_with(kind, &records, &apply, Utc::now()),
                            prefetch
                        );
                        settle(&mut report, query.name, offset, keys, outcome, options)?;
                        if prefetched.is_some() {
                            next_invitations = prefetched;
                        }
                        report.watermark = Some(next.at.to_rfc3339());
                        cursor = next;
                        progress(&report_progress(query.name, &report, total, started));
                    }
                    len
                }
            };
        if page_len < page_rows {
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

/// Values of the batch's rows that could not be read at all: the batch is refused, naming them.
fn check_converted(
    query: QueryName,
    offset: u64,
    start: usize,
    keys: &[RowKey],
    errors: &[RowError],
) -> Result<(), SourceError> {
    let in_batch: Vec<RowError> = errors
        .iter()
        .filter(|e| (start..start + keys.len()).contains(&e.index))
        .map(|e| RowError::new(e.index - start, e.field.clone(), e.reason.clone()))
        .collect();
    if in_batch.is_empty() {
        Ok(())
    } else {
        Err(bad_rows(query, offset, keys, in_batch))
    }
}

/// After the batch's last row (a batch is never empty).
fn next_cursor(keys: &[RowKey], last_at: Option<chrono::DateTime<Utc>>) -> Cursor {
    let last = keys.last().cloned().unwrap_or_default();
    Cursor {
        at: last_at.unwrap_or(chrono::DateTime::UNIX_EPOCH),
        workspace: last.workspace,
        email: last.email,
    }
}

fn apply_options(options: SyncOptions, run: i64, next: &Cursor) -> ApplyOptions {
    ApplyOptions {
        dry_run: options.dry_run,
        run: Some((run, Some(next.to_watermark()))),
    }
}

/// Counts what a batch did; a refusal by the store ends the sync (a dry run only counts it).
fn settle(
    report: &mut KindReport,
    query: QueryName,
    offset: u64,
    keys: &[RowKey],
    outcome: Result<crate::ingest::ApplyReport, IngestError>,
    options: SyncOptions,
) -> Result<(), SourceError> {
    match outcome {
        Ok(applied) => {
            report.applied += applied.applied;
            report.unchanged += applied.unchanged;
        }
        Err(IngestError::Rows(refused)) if options.dry_run => {
            report.refused += refused.len() as u64;
        }
        Err(error) => return Err(store_refusal(query, offset, keys, error)),
    }
    report.read += keys.len() as u64;
    report.batches += 1;
    Ok(())
}

fn report_progress(
    query: QueryName,
    report: &KindReport,
    total: Option<u64>,
    started: Instant,
) -> SyncProgress {
    SyncProgress {
        query,
        rows: report.read,
        total,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    }
}
