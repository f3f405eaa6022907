//! The listener's own endpoints: liveness, readiness (database up and migrated), metrics, limits.

use chrono::{Duration, Utc};
use invite_bot::app::metrics::counter_value;
use invite_bot::domain::SourceKind;
use invite_bot::store::{ConnectOptions, Store};

use crate::helpers::{both_backends, fresh_database, Backend};
use crate::http_app::{HttpApp, MEMBERS};

both_backends! {
    async fn health_and_readiness(app) {
        let http = HttpApp::start(app, |_| {}).await;
        let health = http.get("/healthz").await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
        let ready = http.get("/readyz").await;
        // No product data has come in any way yet: nothing to report about it.
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

        // The database goes away: the process is still alive, but not ready.
        http.app.engine.store().close().await;
        assert_eq!(http.get("/healthz").await.status, 200);
        let ready = http.get("/readyz").await;
        assert_eq!(ready.status, 503, "{}", ready.body);
        assert!(ready.body.contains("not reachable"), "{}", ready.body);
        assert_eq!(http.get("/no-such-page").await.status, 404);
        http.stop().await;
    }

    async fn metrics_count_checks_and_requests(app) {
        app.seed(MEMBERS).await;
        let before = counter_value("invite_bot_checks_total", &[("verdict", "invite_sent")]);
        app.check("ada@school.example", "acme").await;
        assert!(counter_value("invite_bot_checks_total", &[("verdict", "invite_sent")]) > before);

        let http = HttpApp::start(app, |_| {}).await;
        http.get("/healthz").await;
        let metrics = http.get("/metrics").await;
        assert_eq!(metrics.status, 200);
        for family in [
            "# TYPE invite_bot_checks_total counter",
            "# TYPE invite_bot_actions_total counter",
            "# TYPE invite_bot_refusals_total counter",
            "# TYPE invite_bot_webhook_events_total counter",
            "# TYPE invite_bot_smtp_sends_total counter",
            "# TYPE invite_bot_http_request_duration_seconds histogram",
        ] {
            assert!(metrics.body.contains(family), "{family} missing:\n{}", metrics.body);
        }
        assert!(metrics.body.contains("invite_bot_checks_total{verdict=\"invite_sent\"}"), "{}", metrics.body);
        assert!(
            metrics.body.contains("invite_bot_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"}"),
            "{}",
            metrics.body
        );
        http.stop().await;
    }

    async fn readiness_and_metrics_report_the_sources_of_member_data(app) {
        let store = app.engine.store().clone();
        let http = HttpApp::start(app, |_| {}).await;
        let run = store.begin_source_run(SourceKind::ProductDb, Utc::now() - Duration::seconds(90)).await.unwrap();
        assert_eq!(run, 1);
        store.finish_source_run(SourceKind::ProductDb, Utc::now() - Duration::seconds(90), Ok(())).await.unwrap();
        let ready = http.get("/readyz").await;
        assert_eq!(ready.status, 200);
        assert!(ready.body.starts_with("ready\nsource product-db: last success 9"), "{}", ready.body);

        // A failing sync is reported, names no detail, and leaves the bot ready.
        store.finish_source_run(SourceKind::ProductDb, Utc::now(), Err("password authentication failed for db.internal")).await.unwrap();
        let ready = http.get("/readyz").await;
        assert_eq!(ready.status, 200);
        assert!(ready.body.contains("; the last sync failed"), "{}", ready.body);
        assert!(!ready.body.contains("db.internal"), "{}", ready.body);

        let metrics = http.get("/metrics").await;
        assert!(metrics.body.contains("invite_bot_source_sync_errors_total{source=\"product-db\"} 1"), "{}", metrics.body);
        assert!(metrics.body.contains("invite_bot_source_age_seconds{source=\"product-db\"} 9"), "{}", metrics.body);
        assert!(metrics.body.contains("# TYPE invite_bot_source_rows_applied_total counter"), "{}", metrics.body);
        http.stop().await;
    }

    async fn oversized_bodies_are_refused_unread(app) {
        let http = HttpApp::start(app, |c| {
            c.http.max_body_bytes = 4096;
            c.providers.mailgun = Some(toml::from_str("signing_key = \"k\"").unwrap());
        }).await;
        let reply = http.post("/webhooks/mailgun", &[], vec![b' '; 5000]).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!(http.stored().await, (0, 0));
        http.stop().await;
    }

    async fn unconfigured_providers_are_not_found(app) {
        let http = HttpApp::start(app, |_| {}).await;
        for provider in ["postmark", "sendgrid", "mailgun", "ses"] {
            let reply = http.post(&format!("/webhooks/{provider}"), &[], "{}").await;
            assert_eq!(reply.status, 404, "{provider}: {}", reply.body);
            assert!(reply.body.contains("not enabled"), "{}", reply.body);
        }
        http.stop().await;
    }
}

async fn not_ready_without_migrations(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    // A helper app provides the engine shape; its store is swapped for an unmigrated database.
    let store = Store::connect(&database.url, &ConnectOptions::default())
        .await
        .unwrap();
    let engine = invite_bot::engine::Engine::new(
        store,
        std::sync::Arc::new(invite_bot::prompts::Prompts::builtin().unwrap()),
        invite_bot::engine::CheckSettings::from(&invite_bot::app::config::Config::default()),
    );
    let actions = invite_bot::actions::Actions::new(
        engine,
        invite_bot::actions::ActionSettings::from(&invite_bot::app::config::Config::default()),
        invite_bot::mail::Mailer::Disabled,
    );
    let state = invite_bot::http::HttpState::new(actions, Default::default(), 1 << 20);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = invite_bot::app::serve::start_http("127.0.0.1:0", state, async {
        let _ = stopped.await;
    })
    .await
    .unwrap();
    let response = reqwest::get(format!("http://{}/readyz", handle.local_addr))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.text().await.unwrap().contains("migrations"));
    stop.send(()).unwrap();
    handle.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_without_migrations_sqlite() {
    not_ready_without_migrations(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_without_migrations_postgres() {
    not_ready_without_migrations(Backend::Postgres).await;
}
