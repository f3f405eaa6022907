//! `POST /api/activate`: redeem an activation code or an invitation token over HTTP.
//!
//! Every failure that could tell an attacker something — unknown workspace, unknown address, wrong,
//! expired or used code — gets the same answer; only a malformed request is told what is malformed.
//! Each answer's `message` is in the words of `prompts/api.j2`.

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::actions::Actions;
use crate::actions::{Actor, RedeemOutcome, Throttle};
use crate::domain::email::{EmailAddress, EmailError};
use crate::domain::workspace::WorkspaceSlug;
use crate::error::EngineError;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    #[schema(example = "ada@school.example")]
    pub email: String,
    /// The workspace's slug.
    #[schema(example = "acme")]
    pub workspace: String,
    /// An activation code (`K7QF-9MZX-2H`) or the token from an invitation link.
    #[schema(example = "K7QF-9MZX-2H")]
    pub code: String,
}

/// Every answer of `/api/activate`, success or not.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivateAnswer {
    pub activated: bool,
    /// Why not (absent when activated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ActivateErrorCode>)]
    pub error: Option<String>,
    /// What to do next, in a sentence for the person.
    pub message: String,
}

/// The kinds of refusal of `/api/activate`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The schema's word list.
pub enum ActivateErrorCode {
    InvalidCode,
    BadRequest,
    TooLarge,
    TooManyAttempts,
    Unavailable,
}

fn answer(status: StatusCode, error: Option<&str>, message: String) -> Response {
    let body = ActivateAnswer {
        activated: error.is_none(),
        error: error.map(str::to_owned),
        message,
    };
    (status, Json(body)).into_response()
}

/// Longest code or token read; a longer one is malformed, not a wrong guess.
pub const MAX_CODE_BYTES: usize = 256;

/// A request whose fields were parsed, once, before anything is looked up.
#[derive(Debug)]
pub struct Redemption {
    pub email: EmailAddress,
    /// `None` when the slug cannot name a workspace: answered as for an unknown one, so a
    /// malformed slug tells a guesser nothing more than an unknown one.
    pub workspace: Option<WorkspaceSlug>,
    pub code: String,
}

/// What is malformed in a request, told to the caller.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("email: {0}")]
    Email(#[from] EmailError),
    #[error("code: expected an activation code or an invitation token")]
    Code,
}

impl RequestError {
    /// The problem as data, for the words of `api.j2` (`bad_request`).
    fn facts(&self) -> serde_json::Value {
        match self {
            RequestError::Email(error) => json!({ "problem": "email", "email": error.facts() }),
            RequestError::Code => json!({ "problem": "code" }),
        }
    }
}

impl ActivateRequest {
    /// Parses the fields; what `/api/activate` does with every body that is JSON of this shape.
    pub fn read(self) -> Result<Redemption, RequestError> {
        let email = EmailAddress::parse(&self.email)?;
        if self.code.trim().is_empty() || self.code.len() > MAX_CODE_BYTES {
            return Err(RequestError::Code);
        }
        Ok(Redemption {
            email,
            workspace: WorkspaceSlug::parse(&self.workspace).ok(),
            code: self.code,
        })
    }
}

/// The largest request body read: three short strings (an address is refused past 1,024 bytes,
/// a code past 256) with room for JSON escapes. Larger bodies get 413 unread.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The route, for any router state that holds an [`Actions`]. The per-client throttle answers
/// before the route's state is reached, so it is given `state` for its words.
pub fn router<S>(state: S) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Actions: FromRef<S>,
{
    let clients = std::sync::Arc::new(Throttle::new(
        PER_CLIENT_PER_MINUTE,
        std::time::Duration::from_secs(60),
        CLIENTS_REMEMBERED,
    ));
    Router::new().route(
        "/api/activate",
        post(activate::<S>)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(
                state,
                move |State(state): State<S>,
                      request: axum::extract::Request,
                      next: axum::middleware::Next| {
                    per_client(clients.clone(), state, request, next)
                },
            )),
    )
}

/// Redeem an activation code or an invitation token: the member becomes active. Every failure that
/// could tell a guesser something gets the same 422.
#[utoipa::path(
    post,
    path = "/api/activate",
    tag = "activation",
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "The account is active", body = ActivateAnswer),
        (status = 400, description = "The request is malformed, and how", body = ActivateAnswer),
        (status = 413, description = "The body is larger than 8 KiB", body = ActivateAnswer),
        (status = 422, description = "Not valid for this address: mistyped, expired, used, or an unknown workspace or address", body = ActivateAnswer),
        (status = 429, description = "Too many attempts", body = ActivateAnswer,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The database is not available", body = ActivateAnswer),
    )
)]
pub async fn activate<S>(
    State(state): State<S>,
    body: Result<Json<ActivateRequest>, axum::extract::rejection::JsonRejection>,
) -> Response
where
    S: Clone + Send + Sync + 'static,
    Actions: FromRef<S>,
{
    let actions = Actions::from_ref(&state);
    let Json(request) = match body {
        Ok(body) => body,
        // Too large is the limit speaking, not a malformed request: 413, as for every route.
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return too_large(&actions);
        }
        Err(rejection) => {
            let facts = json!({ "problem": "body", "detail": rejection.body_text() });
            return bad_request(&actions, facts);
        }
    };
    let Redemption {
        email,
        workspace,
        code,
    } = match request.read() {
        Ok(redemption) => redemption,
        Err(error) => return bad_request(&actions, error.facts()),
    };
    let Some(workspace) = workspace else {
        return rejected(&actions);
    };
    let caller = Actor::without_permissions("api", "activation API");
    match actions.redeem(&caller, &email, &workspace, &code).await {
        Ok(RedeemOutcome::Activated) => answer(
            StatusCode::OK,
            None,
            words(&actions, "activated", json!({})),
        ),
        Ok(RedeemOutcome::Rejected) => rejected(&actions),
        Ok(RedeemOutcome::Throttled { retry_after }) => too_many(&actions, retry_after),
        Err(error) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("unavailable"),
            error.public_message(actions.engine().prompts()),
        ),
    }
}

/// The `message` of an answer, in the words of `api.j2`; when they cannot be rendered, what an
/// internal error tells a person.
fn words(actions: &Actions, name: &str, facts: serde_json::Value) -> String {
    let prompts = actions.engine().prompts();
    prompts
        .api_text(name, &facts)
        .unwrap_or_else(|error| EngineError::from(error).public_message(prompts))
}

fn too_many(actions: &Actions, retry_after: std::time::Duration) -> Response {
    let seconds = retry_after.as_secs().max(1);
    let mut response = answer(
        StatusCode::TOO_MANY_REQUESTS,
        Some("too_many_attempts"),
        words(
            actions,
            "too_many_attempts",
            json!({ "retry_after_seconds": seconds }),
        ),
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
    response
}

/// Attempts per client address per minute, before the request is read: a guesser spreading
/// guesses over many addresses is slowed down as much as one hammering a single address.
const PER_CLIENT_PER_MINUTE: u32 = 30;
/// Distinct client addresses remembered at once (see [`Throttle`]).
const CLIENTS_REMEMBERED: usize = 10_000;

/// Throttles by the connection's peer address, when the server was started with it. `state` is
/// the route's, for the words of the answer.
async fn per_client<S>(
    throttle: std::sync::Arc<Throttle>,
    state: S,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response
where
    Actions: FromRef<S>,
{
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(ip) = peer {
        if let Err(wait) = throttle.attempt(&ip.to_string(), std::time::Instant::now()) {
            return too_many(&Actions::from_ref(&state), wait);
        }
    }
    next.run(request).await
}

fn rejected(actions: &Actions) -> Response {
    answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("invalid_code"),
        words(actions, "invalid_code", json!({})),
    )
}

fn too_large(actions: &Actions) -> Response {
    answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("too_large"),
        words(actions, "too_large", json!({ "max_bytes": MAX_BODY_BYTES })),
    )
}

fn bad_request(actions: &Actions, facts: serde_json::Value) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        Some("bad_request"),
        words(actions, "bad_request", facts),
    )
}
