//! `invite-bot sync [--full] [--dry-run]`: read the product's database once into the bot's store.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::app::startup;
use crate::config::Config;
use crate::source::{sync_once, Source, SourceError, SyncOptions, SyncProgress};

use super::output::{print_facts, words};
use super::{Failure, Format};

/// A run shorter than this prints no progress; a longer one prints a line about this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub(super) async fn sync(
    config: &Config,
    full: bool,
    dry_run: bool,
    format: Format,
) -> Result<(), Failure> {
    let source = Source::open(config).map_err(source_failure)?;
    // Like `seed`: syncing fills a database, so a SQLite file that does not exist yet is created.
    let actions = startup::build_for_seeding(config).await?;
    let engine = actions.engine();
    let prompts = engine.prompts();
    let mut last_line = Instant::now();
    let mut progress = |step: &SyncProgress| {
        if last_line.elapsed() < PROGRESS_EVERY {
            return;
        }
        last_line = Instant::now();
        let facts = json!({
            "query": step.query,
            "rows": step.rows,
            "total": step.total,
            "rows_per_second": step.rows_per_second(),
            "eta_seconds": step.eta_seconds(),
        });
        if let Ok(line) = words(prompts, "sync_progress", &facts) {
            eprintln!("{line}");
        }
    };
    let options = SyncOptions {
        full,
        dry_run,
        // The COUNT(*) behind the ETA costs the product one more scan of every row to read: only
        // for a person watching the progress line.
        count_total: std::io::stderr().is_terminal(),
    };
    let report = sync_once(engine.store(), &source, options, &mut progress).await;
    source.close().await;
    engine.store().close().await;
    let report = report.map_err(source_failure)?;
    let facts = serde_json::to_value(&report)
        .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
    print_facts(prompts, format, "synced", &facts)
}

/// The operator's config or SQL (exit 2), or a server that is down (exit 1).
fn source_failure(error: SourceError) -> Failure {
    let message = format!("sync: {error}");
    if error.is_config() {
        Failure::bad_input(message)
    } else {
        Failure::operational(message)
    }
}
