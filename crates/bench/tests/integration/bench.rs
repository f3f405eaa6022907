//! `invite-bot-bench`: a tiny end-to-end run on each backend, its JSON shape, reuse of an already
//! seeded database, and refusing to touch a database that holds real data. (Correctness only: the
//! bench measures time; these tests never assert on it.)

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use invite_bot_testkit::database::{fresh_database, Backend};
use invite_bot_testkit::process::{stderr, stdout};

use crate::helpers::{run_bench, run_bot};

fn invite_bot(dir: &Path, args: &[&str]) -> Output {
    run_bot(dir, args)
}

fn sorted_keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn bench(dir: &Path, url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--database",
        url,
        "--members",
        "2000",
        "--checks",
        "50",
        "--concurrency",
        "4",
    ];
    args.extend_from_slice(extra);
    run_bench(dir, &args)
}

async fn tiny_run(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    let first = bench(cwd.path(), &database.url, &["--format", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("seeded 2000 members"),
        "{}",
        stderr(&first)
    );

    let report: Value = serde_json::from_str(&stdout(&first)).expect("one JSON object");
    assert_eq!(
        sorted_keys(&report),
        [
            "backend",
            "db_size_mb",
            "members",
            "peak_rss_mb",
            "scenarios",
            "suggestion_hit_rate"
        ]
    );
    let expected_backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(report["backend"], expected_backend);
    assert_eq!(report["members"], 2000);
    let scenarios = report["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "check, registered",
            "check, typo",
            "check, unknown"
        ]
    );
    for scenario in scenarios {
        assert_eq!(
            sorted_keys(scenario),
            [
                "max_ms",
                "name",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "ratio_to_baseline",
                "throughput_per_s"
            ]
        );
        let p50 = scenario["p50_ms"].as_f64().unwrap();
        let p95 = scenario["p95_ms"].as_f64().unwrap();
        let p99 = scenario["p99_ms"].as_f64().unwrap();
        let max = scenario["max_ms"].as_f64().unwrap();
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
            "{scenario}"
        );
        assert!(scenario["throughput_per_s"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(scenarios[0]["ratio_to_baseline"], 1.0);
    // Single typos of real members: the intended member comes first nearly always.
    let hit_rate = report["suggestion_hit_rate"].as_f64().unwrap();
    assert!((0.8..=1.0).contains(&hit_rate), "hit rate {hit_rate}");
    assert!(report["db_size_mb"].as_f64().unwrap() > 0.0);
    assert!(report["peak_rss_mb"].as_f64().unwrap() > 0.0);

    // The database really holds the synthetic workspace, with invitations and delivery outcomes.
    let store = invite_bot::store::Store::connect(&database.url, &Default::default())
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            let n: i64 = match &store {
                invite_bot::store::Store::Sqlite(pool, _) => {
                    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
                }
                invite_bot::store::Store::Postgres(pool, _) => {
                    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
                }
            };
            n
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM members").await, 2000);
    let invitations = count("SELECT COUNT(*) FROM invitations").await;
    assert!(
        (2000..=2400).contains(&invitations),
        "{invitations} invitations"
    );
    let delivered = count("SELECT COUNT(*) FROM delivery_events WHERE event = 'delivered'").await;
    let bounced = count("SELECT COUNT(*) FROM delivery_events WHERE event = 'bounced'").await;
    assert!(
        delivered > invitations * 8 / 10,
        "{delivered} delivered of {invitations}"
    );
    assert!(
        bounced > 0 && bounced < invitations / 10,
        "{bounced} bounced"
    );
    let gmail = count("SELECT COUNT(*) FROM members WHERE domain_key = 'gmail.com'").await;
    assert!((500..900).contains(&gmail), "{gmail} at gmail.com");

    // Same parameters: the database is reused, not rebuilt.
    let second = bench(cwd.path(), &database.url, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("reusing the bench database"),
        "{}",
        stderr(&second)
    );
    assert!(
        !stderr(&second).contains("seeded 2000 members"),
        "{}",
        stderr(&second)
    );
    let text = stdout(&second);
    assert!(text.contains("check, typo"), "{text}");
    assert!(text.contains("suggestion hit rate:"), "{text}");
    assert_eq!(count("SELECT COUNT(*) FROM members").await, 2000);

    // Other parameters: rebuilt from scratch, nothing of the old workspace left.
    let third = run_bench(
        cwd.path(),
        &[
            "--database",
            &database.url,
            "--members",
            "1000",
            "--workspaces",
            "2",
            "--checks",
            "20",
            "--format",
            "json",
        ],
    );
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert!(
        stderr(&third).contains("seeded 1000 members"),
        "{}",
        stderr(&third)
    );
    assert_eq!(count("SELECT COUNT(*) FROM members").await, 1000);
    assert_eq!(count("SELECT COUNT(*) FROM workspaces").await, 2);
    assert_eq!(count("SELECT COUNT(*) FROM bench_meta").await, 1);
    store.close().await;
}

async fn refuses_real_data(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    let fixture = cwd.path().join("real.toml");
    std::fs::write(
        &fixture,
        "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n\n[[member]]\nworkspace = \"acme\"\n\
         email = \"jane@acme.com\"\nrole = \"learner\"\nstatus = \"active\"\n",
    )
    .unwrap();
    let seeded = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            &database.url,
            "seed",
            fixture.to_str().unwrap(),
        ],
    );
    assert!(seeded.status.success(), "{}", stderr(&seeded));

    let output = bench(cwd.path(), &database.url, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("holds workspaces that the bench did not create"),
        "{}",
        stderr(&output)
    );
    // Nothing was lost.
    let check = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            &database.url,
            "check",
            "jane@acme.com",
            "--format",
            "json",
        ],
    );
    assert!(
        stdout(&check).contains("\"already_active\""),
        "{}",
        stdout(&check)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_bench_on_sqlite() {
    tiny_run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_bench_on_postgres() {
    tiny_run(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_refuses_a_database_with_real_data_on_sqlite() {
    refuses_real_data(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_refuses_a_database_with_real_data_on_postgres() {
    refuses_real_data(Backend::Postgres).await;
}

#[test]
fn bad_options_are_refused_before_touching_a_database() {
    let cwd = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", cwd.path().join("b.db").display());
    for (args, reason) in [
        (vec!["--members", "5"], "--members must be at least 10"),
        (
            vec!["--concurrency", "0"],
            "--concurrency must be between 1 and 256",
        ),
        (
            vec!["--checks", "0"],
            "--checks must be between 1 and 1000000",
        ),
        (
            vec!["--members", "100", "--workspaces", "50"],
            "--workspaces must be between 1",
        ),
    ] {
        let mut all = vec!["--database", url.as_str()];
        all.extend(args);
        let output = run_bench(cwd.path(), &all);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(reason), "{}", stderr(&output));
    }
    assert!(!cwd.path().join("b.db").exists());

    let output = run_bench(
        cwd.path(),
        &["--database", "mysql://x/y", "--members", "100"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not understood"),
        "{}",
        stderr(&output)
    );
}
