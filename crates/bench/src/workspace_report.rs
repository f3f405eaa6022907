//! `--report`: issue 15's number: the workspace report over the bench's workspace (a million
//! members by default: the same synthetic database as the check scenarios, built once and reused),
//! timed as `/invite-report` and `invite-bot report` run it: the counts per state and the top
//! failing domains (one aggregate statement), and the CSV's list of members needing action.

use std::time::Instant;

use chrono::{Duration, Utc};
use serde::Serialize;

use invite_bot::config::Config;
use invite_bot::report::{summarize, MemberState};
use invite_bot::store::{ConnectOptions, Store};

use super::seed::{self, SeedParameters, Seeding};
use super::{BenchError, BenchOptions};

/// The target of issue 15: the report of a million members within two seconds.
pub const TARGET_MS: f64 = 2_000.0;

/// Timed runs of each query (after one untimed run that warms the caches).
const RUNS: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct ReportBenchReport {
    pub backend: &'static str,
    pub members: u64,
    /// Members the report counted (the first workspace's).
    pub counted: i64,
    pub needing_action: i64,
    /// The counts and the top domains: median and slowest of the timed runs.
    pub report_ms_median: f64,
    pub report_ms_max: f64,
    /// The list behind the CSV (at most `[report] max_csv_rows`).
    pub csv_rows: usize,
    pub csv_ms_median: f64,
    pub csv_ms_max: f64,
    pub target_ms: f64,
    pub pass: bool,
}

impl ReportBenchReport {
    pub fn to_text(&self) -> String {
        format!(
            "workspace report ({backend}, {members} members, {counted} counted, {needing} need action)\n  \
             counts + top domains: median {rm:.0} ms, max {rx:.0} ms (target < {target:.0} ms: {verdict})\n  \
             CSV list ({rows} rows): median {cm:.0} ms, max {cx:.0} ms\n",
            backend = self.backend,
            members = self.members,
            counted = self.counted,
            needing = self.needing_action,
            rm = self.report_ms_median,
            rx = self.report_ms_max,
            target = self.target_ms,
            verdict = if self.pass { "met" } else { "MISSED" },
            rows = self.csv_rows,
            cm = self.csv_ms_median,
            cx = self.csv_ms_max,
        )
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// Seeds (or reuses) the bench database and times the report of its first workspace.
pub async fn run(
    options: &BenchOptions,
    config: &Config,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ReportBenchReport, BenchError> {
    options.validate()?;
    let store = Store::connect(
        &options.database_url,
        &ConnectOptions {
            max_connections: config.database_max_connections,
            // Seeding a million members runs statements of minutes on a busy machine, and the
            // bot's own deadline would cut a slow report short instead of timing it.
            statement_timeout: std::time::Duration::from_secs(1800),
            ..ConnectOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    let parameters = SeedParameters {
        members: options.members,
        workspaces: options.workspaces,
    };
    progress(&format!(
        "bench database: {} ({})",
        invite_bot::urls::redact_url(&options.database_url),
        parameters.marker()
    ));
    match seed::ensure_seeded(&store, parameters, Utc::now()).await? {
        Seeding::Reused => progress("reusing the bench database"),
        Seeding::Seeded { seconds } => progress(&format!(
            "seeded {} members in {seconds:.1} s",
            options.members
        )),
    }
    let slug = invite_bot::domain::workspace::WorkspaceSlug::parse(&seed::workspace_slug(0))
        .map_err(|e| BenchError::Task(e.to_string()))?;
    let workspace = store
        .find_workspace(&slug)
        .await?
        .ok_or_else(|| BenchError::Task("the bench workspace is missing".into()))?;
    let stale = Duration::days(i64::from(config.report.stale_invite_days));
    let limit = i64::from(config.report.max_csv_rows);

    progress(&format!(
        "timing the report, {RUNS} runs after one to warm up"
    ));
    let mut report_ms = Vec::with_capacity(RUNS);
    let mut csv_ms = Vec::with_capacity(RUNS);
    let mut counted = 0;
    let mut needing_action = 0;
    let mut csv_rows = 0;
    for run in 0..=RUNS {
        let now = Utc::now();
        let started = Instant::now();
        let rows = store.report_counts(workspace.id, now, now - stale).await?;
        let (states, _domains) =
            summarize(&rows, config.report.top_domains).map_err(BenchError::Engine)?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        counted = states.iter().map(|s| s.members).sum();
        needing_action = states
            .iter()
            .filter(|s| MemberState::needs_action(s.state))
            .map(|s| s.members)
            .sum();
        let started = Instant::now();
        let list = store
            .members_needing_action(workspace.id, now, now - stale, false, limit)
            .await?;
        let list_elapsed = started.elapsed().as_secs_f64() * 1000.0;
        csv_rows = list.len();
        if run > 0 {
            report_ms.push(elapsed);
            csv_ms.push(list_elapsed);
        }
    }
    store.close().await;
    let report_ms_max = max(&report_ms);
    Ok(ReportBenchReport {
        backend: store.backend().as_str(),
        members: options.members,
        counted,
        needing_action,
        report_ms_median: median(report_ms),
        report_ms_max,
        csv_rows,
        csv_ms_median: median(csv_ms.clone()),
        csv_ms_max: max(&csv_ms),
        target_ms: TARGET_MS,
        pass: report_ms_max < TARGET_MS,
    })
}
