//! `invite-bot import FILE`: an export applied all or nothing, streamed in batches through one
//! transaction, every bad row reported with its line and column.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Utc};
use serde::Serialize;

use super::export_file::{read_members, FileKind, ImportError, ImportSettings};
use super::{parse_member, ApplyReport, IngestError, MemberRecord, SourceKind, ValueMaps};
use crate::store::{ApplyOptions, Store, StoreError};

/// Rows applied per statement batch; the transaction spans them all.
const BATCH_ROWS: usize = 2_000;
/// Bad rows listed in full; the rest are counted.
const MAX_LISTED_ERRORS: usize = 100;
/// How often a long import reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One bad row of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    pub line: usize,
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub applied: u64,
    pub unchanged: u64,
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error("{count} bad row(s); nothing was imported")]
    BadRows {
        /// The first bad rows, in file order.
        listed: Vec<BadLine>,
        count: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an import was asked to do.
pub struct ImportJob<'a> {
    pub path: &'a Path,
    pub kind: FileKind,
    pub settings: ImportSettings,
    pub maps: ValueMaps,
    pub zone: FixedOffset,
    pub dry_run: bool,
}

/// Reads the whole file, applying it as it goes in one transaction that commits only when every
/// row was good (a dry run rolls it back either way). After the first bad row nothing more is
/// applied, but the rest of the file is still read so that every bad row is reported at once.
/// `progress` is told the rows read so far, every couple of seconds.
pub async fn import_members(
    store: &Store,
    job: ImportJob<'_>,
    mut progress: impl FnMut(u64, f64),
) -> Result<ImportReport, ImportFailure> {
    let rows = read_members(job.path, job.kind, &job.settings)?;
    let started = Instant::now();
    let mut last_progress = started;
    let now = Utc::now();
    let mut tx = store.begin_ingest().await?;
    let mut report = ImportReport {
        dry_run: job.dry_run,
        ..ImportReport::default()
    };
    let mut applied = ApplyReport::default();
    let mut batch: Vec<MemberRecord> = Vec::with_capacity(BATCH_ROWS);
    let mut listed = Vec::new();
    let mut count = 0usize;
    for (line, row) in rows {
        report.rows += 1;
        let parsed = row
            .map_err(|bad| {
                vec![BadLine {
                    line,
                    column: bad.column,
                    reason: bad.reason,
                }]
            })
            .and_then(|raw| {
                parse_member(0, raw, &job.maps, job.zone).map_err(|errors| {
                    errors
                        .into_iter()
                        .map(|e| BadLine {
                            line,
                            column: job.settings.column_of(&e.field).to_owned(),
                            reason: e.reason,
                        })
                        .collect()
                })
            });
        match parsed {
            Ok(record) if count == 0 => batch.push(record),
            Ok(_) => {}
            Err(bad) => {
                count += bad.len();
                let room = MAX_LISTED_ERRORS.saturating_sub(listed.len());
                listed.extend(bad.into_iter().take(room));
                batch.clear();
            }
        }
        if batch.len() == BATCH_ROWS {
            applied.add(apply(&mut tx, &batch, now).await?);
            batch.clear();
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            progress(report.rows, started.elapsed().as_secs_f64());
        }
    }
    if count > 0 {
        tx.rollback().await?;
        return Err(ImportFailure::BadRows { listed, count });
    }
    applied.add(apply(&mut tx, &batch, now).await?);
    tx.record_source(SourceKind::Import, &ApplyOptions::default(), applied, now)
        .await?;
    tx.finish(job.dry_run).await?;
    report.applied = applied.applied;
    report.unchanged = applied.unchanged;
    Ok(report)
}

async fn apply(
    tx: &mut crate::store::IngestTx,
    batch: &[MemberRecord],
    now: chrono::DateTime<Utc>,
) -> Result<ApplyReport, ImportFailure> {
    if batch.is_empty() {
        return Ok(ApplyReport::default());
    }
    match tx.apply_members(SourceKind::Import, batch, None, now).await {
        Ok(report) => Ok(report),
        Err(IngestError::Store(error)) => Err(error.into()),
        // Members are never refused by the database (only invitations are).
        Err(IngestError::Rows(rows)) => Err(ImportFailure::BadRows {
            count: rows.len(),
            listed: rows
                .into_iter()
                .map(|r| BadLine {
                    line: 0,
                    column: r.field,
                    reason: r.reason,
                })
                .collect(),
        }),
    }
}
