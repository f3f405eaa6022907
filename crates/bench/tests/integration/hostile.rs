//! `invite-bot-bench --hostile` run tiny: every row of issue 11's numbers is measured and reported.
//! Correctness only (each row present, each request answered, each silent server given up on); the
//! timings and the pass/fail verdicts are the benchmark's business, never asserted here.

use std::time::Duration;

use invite_bot_bench::hostile::{run, HostileBenchError, HostileBenchOptions};
use invite_bot_testkit::process::{stderr, stdout};

use crate::helpers::{bench_exe, run_bench};

fn tiny() -> HostileBenchOptions {
    HostileBenchOptions {
        requests_per_kind: 1,
        concurrent: 4,
        smtp_send_timeout_seconds: 1,
        bot_exe: Some(bench_exe().to_owned()),
        timeout: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn every_number_is_measured_and_every_hostile_request_is_answered() {
    let report = run(tiny()).await.expect("the hostile bench runs");

    // One CPU row per hostile kind, then memory, answers, and the two silent servers.
    assert_eq!(report.rows.len(), report.kinds.len() + 4, "{report:#?}");
    assert!(report.kinds.len() >= 8, "{report:#?}");
    for kind in &report.kinds {
        assert_eq!(kind.requests, 1);
        assert_eq!(kind.answers.values().sum::<usize>(), 1, "{kind:?}");
        assert!(
            !kind.answers.contains_key("timeout") && !kind.answers.contains_key("connect_failed"),
            "{kind:?}"
        );
        assert!(kind.cpu_ms_mean >= 0.0 && kind.cpu_ms_max >= 0.0);
    }
    let status = |name: &str| {
        let kind = report.kinds.iter().find(|k| k.kind == name).unwrap();
        kind.answers.keys().next().unwrap().clone()
    };
    // The answers the bot gives today: what each row measured is the refusal it should be.
    assert_eq!(status("1 MB of \" .\" after an address"), "413");
    assert_eq!(status("right-to-left override in the address"), "400");
    assert_eq!(status("invalid UTF-8"), "400");
    assert_eq!(status("a wrong code for a member"), "422");
    assert_eq!(status("a wrong code for an unknown address"), "422");

    assert_eq!(report.concurrent.requests, 4);
    assert_eq!(report.concurrent.answers.values().sum::<usize>(), 4);
    assert!(report.concurrent.peak_rss_mb >= report.concurrent.idle_rss_mb);
    assert!(report.concurrent.idle_rss_mb > 0.0);
    let answers_row = &report.rows[report.kinds.len() + 1];
    assert_eq!(answers_row.measured, 4.0, "{answers_row:?}");

    // Both commands got as far as the silence and gave up on it by themselves (the watchdog
    // did not kill them), saying something.
    for deadline in [&report.silent_database, &report.silent_smtp] {
        assert!(deadline.reached_silence, "{deadline:?}");
        assert!(deadline.exit_code.is_some(), "killed: {deadline:?}");
        assert!(!deadline.message.is_empty(), "{deadline:?}");
    }
    // A database that never answers is an error, not a verdict.
    assert_ne!(report.silent_database.exit_code, Some(0));
    assert_eq!(report.silent_smtp.limit_s, 1.0 + 3.0);

    let text = report.to_text();
    for row in &report.rows {
        assert!(text.contains(&row.metric), "{text}");
    }
}

#[tokio::test]
async fn nothing_to_send_is_refused_before_anything_starts() {
    let error = run(HostileBenchOptions {
        concurrent: 0,
        ..tiny()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, HostileBenchError::NothingToSend));
}

#[test]
fn the_command_line_prints_the_table_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_bench(
        dir.path(),
        &[
            "--hostile",
            "--requests-per-kind",
            "1",
            "--concurrent",
            "2",
            "--smtp-send-timeout",
            "1",
            "--format",
            "json",
        ],
    );
    // Exit 0 when every target is met, 1 when one is missed: either way the JSON is printed.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr(&output)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert!(rows.len() >= 12, "{report}");
    for row in rows {
        for field in ["metric", "measured", "target", "pass"] {
            assert!(!row[field].is_null(), "{row}");
        }
    }
    assert_eq!(report["concurrent"]["requests"], 2);
}
