//! `invite-bot-bench --discord` run small: the bot's real `serve` child against the fake Discord. Checks
//! correctness only (every interaction answered, every number measured); the timings are the
//! benchmark's business, never asserted here.

use invite_bot_bench::discord::{run, DiscordBenchError, DiscordBenchOptions};
use invite_bot_testkit::process::{stderr, stdout};

use crate::helpers::{bench_exe, run_bench};

#[tokio::test]
async fn every_interaction_is_answered_and_every_number_is_measured() {
    let report = run(DiscordBenchOptions {
        interactions: 20,
        bot_exe: Some(bench_exe().to_owned()),
        ..DiscordBenchOptions::default()
    })
    .await
    .expect("the Discord bench runs");
    assert_eq!(report.interactions, 20);
    assert_eq!(report.concurrency, 20);
    assert_eq!(report.answered, 20, "{report:?}");
    assert!(report.idle_rss_mb > 0.0, "{report:?}");
    assert!(report.peak_rss_mb >= report.idle_rss_mb, "{report:?}");
    assert!(report.hwm_rss_mb >= report.peak_rss_mb, "{report:?}");
    for value in [report.p50_ms, report.p95_ms, report.p99_ms, report.max_ms] {
        assert!(value > 0.0, "{report:?}");
    }
    assert!(report.p50_ms <= report.p95_ms && report.p95_ms <= report.p99_ms);
    assert!(report.p99_ms <= report.max_ms);
}

#[tokio::test]
async fn a_limited_concurrency_still_answers_everything() {
    let report = run(DiscordBenchOptions {
        interactions: 6,
        concurrency: 2,
        bot_exe: Some(bench_exe().to_owned()),
        ..DiscordBenchOptions::default()
    })
    .await
    .expect("the Discord bench runs");
    assert_eq!(report.concurrency, 2);
    assert_eq!(report.answered, 6, "{report:?}");
}

#[tokio::test]
async fn zero_interactions_is_refused_before_anything_starts() {
    let error = run(DiscordBenchOptions {
        interactions: 0,
        ..DiscordBenchOptions::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, DiscordBenchError::NoInteractions));
}

#[test]
fn the_command_line_passes_concurrency_to_the_discord_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_bench(
        dir.path(),
        &[
            "--discord",
            "--interactions",
            "4",
            "--concurrency",
            "2",
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["interactions"], 4);
    assert_eq!(report["concurrency"], 2);
    assert_eq!(report["answered"], 4);
}
