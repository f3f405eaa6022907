//! `bench --discord` run small: the real `invite-bot serve` child against the fake Discord. Checks
//! correctness only (every interaction answered, every number measured); the timings are the
//! benchmark's business, never asserted here.

use std::path::PathBuf;

use invite_bot::bench_discord::{run, DiscordBenchError, DiscordBenchOptions};

#[tokio::test]
async fn every_interaction_is_answered_and_every_number_is_measured() {
    let report = run(DiscordBenchOptions {
        interactions: 20,
        bot_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_invite-bot"))),
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
        bot_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_invite-bot"))),
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

#[tokio::test]
async fn serve_refuses_a_discord_api_base_that_is_not_local() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[discord]\napi_base_url = \"http://discord.evil.example\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("DISCORD_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("discord.api_base_url"), "{stderr}");
}

#[test]
fn the_command_line_passes_concurrency_to_the_discord_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let output = crate::helpers::run_binary(
        dir.path(),
        &[],
        &[
            "bench",
            "--discord",
            "--interactions",
            "4",
            "--concurrency",
            "2",
            "--format",
            "json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        crate::helpers::stderr(&output)
    );
    let report: serde_json::Value = serde_json::from_str(&crate::helpers::stdout(&output)).unwrap();
    assert_eq!(report["interactions"], 4);
    assert_eq!(report["concurrency"], 2);
    assert_eq!(report["answered"], 4);
}
