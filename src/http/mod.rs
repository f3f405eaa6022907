//! The HTTP edge: health, readiness, Prometheus metrics, the providers' delivery webhooks,
//! activation, the push API and the OpenAPI document of them all.
//!
//! [`router`] builds the whole listener from one shared [`HttpState`]; a new endpoint is a new
//! `.route(...)` line there, a `#[utoipa::path]` on its handler and a line in `openapi::ApiDoc`'s
//! `paths` (the test `openapi` checks that the router and the document name the same routes).

pub mod activate;
mod health;
pub mod openapi;
mod product_contract;
pub mod push;
mod signature_headers;
pub mod webhooks;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::actions::Actions;
use crate::providers::Webhooks;

/// What every handler can reach. Cheap to clone (handles and `Arc`s).
#[derive(Clone, Debug)]
pub struct HttpState {
    pub actions: Actions,
    pub webhooks: Webhooks,
    /// Largest request body accepted; larger ones get 413 before they are read.
    pub max_body_bytes: usize,
    /// The push API; `None` (no `[api] push_secret`) and its routes answer 404.
    pub push: Option<push::PushApi>,
    /// Begun at shutdown: `/readyz` answers 503 from then on.
    pub drain: crate::drain::Drain,
}

impl HttpState {
    pub fn new(actions: Actions, webhooks: Webhooks, max_body_bytes: usize) -> Self {
        Self {
            actions,
            webhooks,
            max_body_bytes,
            push: None,
            drain: crate::drain::Drain::default(),
        }
    }

    /// Readiness follows this drain (`serve` begins it at shutdown).
    pub fn with_drain(mut self, drain: crate::drain::Drain) -> Self {
        self.drain = drain;
        self
    }

    /// With the push API on.
    pub fn with_push(mut self, push: Option<push::PushApi>) -> Self {
        self.push = push;
        self
    }
}

impl axum::extract::FromRef<HttpState> for Actions {
    fn from_ref(state: &HttpState) -> Actions {
        state.actions.clone()
    }
}

pub fn router(state: HttpState) -> Router {
    router_with(state, Router::new())
}

/// The listener's routes plus `extra` (routes with their own state: the Discord interactions
/// endpoint in http mode), all measured alike.
pub fn router_with(state: HttpState, extra: Router) -> Router {
    // Each route reads at most its own limit (413 past it): the probes read no body at all, the
    // webhooks take the configured limit (providers batch events), `/api/activate` and the push
    // API their own.
    let webhook = DefaultBodyLimit::max(state.max_body_bytes);
    let none = DefaultBodyLimit::max(0);
    let push = DefaultBodyLimit::max(push::MAX_BODY_BYTES);
    Router::new()
        .route("/healthz", get(health::healthz).layer(none))
        .route("/readyz", get(health::readyz).layer(none))
        .route("/metrics", get(health::metrics).layer(none))
        .route("/openapi.json", get(openapi::openapi_json).layer(none))
        .route("/api/v1/members", post(push::members).layer(push))
        .route("/api/v1/invitations", post(push::invitations).layer(push))
        .route(
            "/webhooks/postmark",
            post(webhooks::postmark).layer(webhook),
        )
        .route(
            "/webhooks/sendgrid",
            post(webhooks::sendgrid).layer(webhook),
        )
        .route("/webhooks/mailgun", post(webhooks::mailgun).layer(webhook))
        .route("/webhooks/ses", post(webhooks::ses).layer(webhook))
        .merge(crate::http::activate::router(state.clone()))
        .with_state(state)
        .merge(extra)
        .layer(middleware::from_fn(observe_latency))
}

/// Records each request's latency under its route pattern (never the raw path, which is unbounded).
async fn observe_latency(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::observe_request(&route, started.elapsed().as_secs_f64());
    response
}
