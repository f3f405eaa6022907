//! `/healthz` (the process answers), `/readyz` (the database file is still there, answers and is
//! migrated), `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::HttpState;
use chrono::Utc;

use crate::metrics::SourceFigures;
use crate::store::{SourceState, StoreError};

/// A probe that hangs is as bad as one that fails: the database gets this long to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = String, content_type = "text/plain", example = "ok\n"))
)]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: not shutting down, the database answers within 2 s, is migrated and (SQLite) is still
/// the file the bot opened.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain", example = "ready\n"),
        (status = 503, description = "Not ready, and why", body = String, content_type = "text/plain", example = "not ready: the database is not answering\n"),
    )
)]
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, String) {
    // A load balancer stops sending work here while what is in flight finishes.
    if state.drain.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into(),
        );
    }
    let store = state.actions.engine().store();
    let probe = async {
        store.ping().await?;
        if !store.is_migrated().await? {
            return Ok(None);
        }
        store.source_states().await.map(Some)
    };
    match tokio::time::timeout(READY_TIMEOUT, probe).await {
        // A failing sync does not make the bot unready: checks answer from the last good one.
        Ok(Ok(Some(sources))) => (StatusCode::OK, format!("ready\n{}", source_lines(&sources))),
        Ok(Ok(None)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database migrations are not applied\n".into(),
        ),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness probe: database unavailable");
            // The path stays in the log: this answer goes to whoever can reach the listener.
            let why = match error {
                StoreError::Missing(_) => "the database file is missing",
                StoreError::Replaced(_) => "the database file was replaced while open",
                StoreError::NotAnswering(_) => "the database is not answering",
                _ => "the database is not reachable",
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database did not answer in time\n".into(),
        ),
    }
}

/// One line per way the product's data comes in: how long ago it last succeeded, and whether
/// the last sync failed (its message stays in the log: this answer goes to whoever can reach the
/// listener).
fn source_lines(sources: &[SourceState]) -> String {
    let now = Utc::now();
    let mut lines = String::new();
    for source in sources {
        let age = match source.last_success_at {
            Some(at) => format!("last success {} s ago", (now - at).num_seconds().max(0)),
            None => "never succeeded".to_owned(),
        };
        let failing = if source.last_error.is_some() {
            "; the last sync failed"
        } else {
            ""
        };
        lines.push_str(&format!("source {}: {age}{failing}\n", source.name));
    }
    lines
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "The counters and histograms", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut text = crate::metrics::render();
    let store = state.actions.engine().store();
    // The sources' numbers live in the database; a scrape never waits long for them.
    match tokio::time::timeout(READY_TIMEOUT, store.source_states()).await {
        Ok(Ok(states)) => {
            let now = Utc::now();
            let figures: Vec<_> = states
                .iter()
                .map(|state| SourceFigures {
                    name: &state.name,
                    rows_applied: state.rows_applied,
                    errors: state.errors,
                    age_seconds: state
                        .last_success_at
                        .map(|at| (now - at).num_milliseconds() as f64 / 1000.0),
                })
                .collect();
            text.push_str(&crate::metrics::render_sources(&figures));
        }
        Ok(Err(error)) => tracing::warn!(error = %error, "metrics: source states unavailable"),
        Err(_) => tracing::warn!("metrics: source states timed out"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
