//! `invite-bot-bench --alerts` on a small workspace: it runs on both backends, finds the alerts of
//! each batch and checks the whole list. Correctness only, never timing.

use invite_bot_bench::alerts::{run, AlertBenchError, AlertBenchOptions};
use invite_bot_testkit::database::postgres_admin_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_bench_measures_both_backends() {
    let options = AlertBenchOptions {
        members: 700,
        list: 100,
        events: 200,
        rounds: 2,
        postgres_url: postgres_admin_url(),
    };
    let report = run(options.clone(), &|_| {}).await.unwrap();
    let expected = if options.postgres_url.is_some() { 2 } else { 1 };
    assert_eq!(report.results.len(), expected);
    for result in &report.results {
        // Each batch of 200: 20 hard bounces and 4 complaints (invited members only: 4 in 5).
        assert!(result.alerts_recorded > 20, "{result:?}");
        assert!(result.posts > 0, "{result:?}");
        assert!(
            result.list_ms[0] > 0.0 && result.scan_ms[0] > 0.0,
            "{result:?}"
        );
    }
    assert!(report.to_text().contains("| sqlite | 700 | 100 |"));

    let too_few = AlertBenchOptions {
        members: 10,
        ..AlertBenchOptions::default()
    };
    assert!(matches!(
        run(too_few, &|_| {}).await,
        Err(AlertBenchError::TooFewMembers { .. })
    ));
}
