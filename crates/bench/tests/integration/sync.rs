//! `invite-bot-bench --sync` run tiny: both products are filled, synced whole and then synced again
//! after their changes, each row is reported, and every database the run created is gone after.
//! Correctness only: the timings and the pass/fail verdicts are the benchmark's business.

use std::time::Duration;

use invite_bot_bench::sync::{run, SyncBenchOptions, DEFAULT_MARIADB_URL};
use invite_bot_testkit::database::postgres_admin_url;
use sqlx::{Connection, Row};

use crate::helpers::bench_exe;

/// The MariaDB server when it answers; a failure when `INVITE_BOT_REQUIRE_MARIADB=1`.
async fn mariadb_url() -> Option<String> {
    let url = std::env::var("TEST_MARIADB_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MARIADB_URL.into());
    let connected =
        tokio::time::timeout(Duration::from_secs(5), sqlx::MySqlConnection::connect(&url)).await;
    match connected {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Some(url)
        }
        _ if std::env::var("INVITE_BOT_REQUIRE_MARIADB").as_deref() == Ok("1") => {
            panic!("INVITE_BOT_REQUIRE_MARIADB=1 but MariaDB at {url} is not reachable")
        }
        _ => {
            eprintln!("sync bench: MariaDB not reachable at {url}; PostgreSQL only");
            None
        }
    }
}

async fn bench_databases_on_postgres(url: &str) -> Vec<String> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("invite_bot_bench_%_{}_%", std::process::id()))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

async fn bench_databases_on_mariadb(url: &str) -> Vec<String> {
    let mut conn = sqlx::MySqlConnection::connect(url).await.unwrap();
    sqlx::query("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?")
        .bind(format!("invite_bot_bench_%_{}_%", std::process::id()))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_products_are_synced_whole_then_incrementally_and_dropped() {
    let Some(postgres) = postgres_admin_url() else {
        eprintln!("sync bench: TEST_DATABASE_URL not set; skipped");
        return;
    };
    let mariadb = mariadb_url().await;
    let report = run(
        SyncBenchOptions {
            rows: 2_000,
            postgres_url: postgres.clone(),
            mariadb_url: mariadb.clone(),
            bot_exe: Some(bench_exe().to_owned()),
            timeout: Duration::from_secs(120),
        },
        &|_| {},
    )
    .await
    .expect("the sync bench runs");

    let products = if mariadb.is_some() { 2 } else { 1 };
    assert_eq!(report.rows.len(), 2 * products, "{report:#?}");
    assert_eq!(
        report.changed, 2_000,
        "every member changes when there are fewer than 10,000"
    );
    for pair in report.rows.chunks(2) {
        assert_eq!(pair[0].scenario, "first sync");
        assert_eq!(pair[0].rows, 2_000);
        assert_eq!(pair[1].scenario, "incremental");
        assert_eq!(pair[1].rows, 2_000);
        assert_eq!(pair[0].source, pair[1].source);
        for row in pair {
            assert!(row.seconds > 0.0 && row.rows_per_second > 0.0, "{row:?}");
            assert!(row.peak_rss_mb > 1.0, "{row:?}");
        }
    }
    assert_eq!(report.rows[0].source, "PostgreSQL");
    let text = report.to_text();
    assert!(
        text.contains("peak RSS MB") && text.contains("< 60 s"),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rows"][0]["target_seconds"], 60.0);

    assert_eq!(
        bench_databases_on_postgres(&postgres).await,
        Vec::<String>::new()
    );
    if let Some(mariadb) = mariadb {
        assert_eq!(
            bench_databases_on_mariadb(&mariadb).await,
            Vec::<String>::new()
        );
    }
}
