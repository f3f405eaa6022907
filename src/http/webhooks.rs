//! The providers' webhook endpoints: authenticate, map, store, answer.
//!
//! 200 with a small report when the batch is stored (or was stored before); 401 for a bad, missing
//! or stale signature or a reused token; 400 for a body that cannot be read; 404 when the provider
//! is not configured; 413 (from the body limit) for an oversized body. Nothing is stored unless the
//! answer is 200.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::HttpState;
use crate::providers::WebhookError;
use crate::store::{BatchOutcome, WebhookBatch, WebhookBatchReport};

/// Postmark's delivery, bounce and spam-complaint events.
#[utoipa::path(
    post,
    path = "/webhooks/postmark",
    tag = "providers",
    request_body(content = serde_json::Value, description = "The provider's own event format", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before: a retry stores nothing new)", body = WebhookBatchReport),
        (status = 400, description = "The body cannot be read: nothing stored", body = WebhookRefusal),
        (status = 401, description = "Wrong or missing HTTP Basic credentials: nothing stored", body = WebhookRefusal),
        (status = 404, description = "The provider is not configured", body = WebhookRefusal),
        (status = 413, description = "The body is larger than `[http] max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 503, description = "The database is not available: nothing stored, the provider retries", body = WebhookRefusal),
    )
)]
pub async fn postmark(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let batch = match &state.webhooks.postmark {
        Some(postmark) => postmark
            .authenticate(&headers)
            .and_then(|()| postmark.batch(&body)),
        None => Err(WebhookError::NotEnabled("postmark")),
    };
    store("postmark", &state, batch).await
}

/// SendGrid's event webhook (a JSON array of events).
#[utoipa::path(
    post,
    path = "/webhooks/sendgrid",
    tag = "providers",
    request_body(content = serde_json::Value, description = "The provider's own event format", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before: a retry stores nothing new)", body = WebhookBatchReport),
        (status = 400, description = "The body cannot be read: nothing stored", body = WebhookRefusal),
        (status = 401, description = "Bad, missing or stale ECDSA signature: nothing stored", body = WebhookRefusal),
        (status = 404, description = "The provider is not configured", body = WebhookRefusal),
        (status = 413, description = "The body is larger than `[http] max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 503, description = "The database is not available: nothing stored, the provider retries", body = WebhookRefusal),
    )
)]
pub async fn sendgrid(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let batch = match &state.webhooks.sendgrid {
        Some(sendgrid) => sendgrid
            .authenticate(&headers, &body, Utc::now())
            .and_then(|()| sendgrid.batch(&body)),
        None => Err(WebhookError::NotEnabled("sendgrid")),
    };
    store("sendgrid", &state, batch).await
}

/// Mailgun's event webhook.
#[utoipa::path(
    post,
    path = "/webhooks/mailgun",
    tag = "providers",
    request_body(content = serde_json::Value, description = "The provider's own event format", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before: a retry stores nothing new)", body = WebhookBatchReport),
        (status = 400, description = "The body cannot be read: nothing stored", body = WebhookRefusal),
        (status = 401, description = "Bad or stale signature, or a token used before: nothing stored", body = WebhookRefusal),
        (status = 404, description = "The provider is not configured", body = WebhookRefusal),
        (status = 413, description = "The body is larger than `[http] max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 503, description = "The database is not available: nothing stored, the provider retries", body = WebhookRefusal),
    )
)]
pub async fn mailgun(State(state): State<HttpState>, body: Bytes) -> Response {
    let batch = match &state.webhooks.mailgun {
        Some(mailgun) => mailgun.batch(&body, Utc::now()),
        None => Err(WebhookError::NotEnabled("mailgun")),
    };
    store("mailgun", &state, batch).await
}

/// Amazon SES events through an SNS topic (SNS sends `text/plain`).
#[utoipa::path(
    post,
    path = "/webhooks/ses",
    tag = "providers",
    request_body(content = serde_json::Value, description = "The provider's own event format", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or stored before: a retry stores nothing new)", body = WebhookBatchReport),
        (status = 400, description = "The body cannot be read: nothing stored", body = WebhookRefusal),
        (status = 401, description = "Bad signature, untrusted certificate, foreign topic or stale message: nothing stored", body = WebhookRefusal),
        (status = 404, description = "The provider is not configured", body = WebhookRefusal),
        (status = 413, description = "The body is larger than `[http] max_body_bytes`", body = String, content_type = "text/plain"),
        (status = 503, description = "The database is not available: nothing stored, the provider retries", body = WebhookRefusal),
    )
)]
pub async fn ses(State(state): State<HttpState>, body: Bytes) -> Response {
    let batch = match &state.webhooks.ses {
        Some(ses) => ses.batch(&body, Utc::now()).await,
        None => Err(WebhookError::NotEnabled("ses")),
    };
    store("ses", &state, batch).await
}

/// Why a webhook request was refused.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct WebhookRefusal {
    /// The failed check, in a sentence (never a secret or an address).
    pub error: String,
}

fn refuse(provider: &'static str, status: StatusCode, reason: String) -> Response {
    crate::metrics::record_webhook(provider, false);
    // Reasons name the failed check, never a secret or an address.
    tracing::warn!(provider, status = status.as_u16(), reason = %reason, "webhook refused");
    (status, Json(WebhookRefusal { error: reason })).into_response()
}

#[tracing::instrument(name = "webhook", skip_all, fields(provider = provider, request_id = %crate::error::new_reference()))]
async fn store(
    provider: &'static str,
    state: &HttpState,
    batch: Result<WebhookBatch, WebhookError>,
) -> Response {
    let batch = match batch {
        Ok(batch) => batch,
        Err(error) => {
            let status = match &error {
                WebhookError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
                WebhookError::NotEnabled(_) => StatusCode::NOT_FOUND,
                WebhookError::Upstream(_) => StatusCode::BAD_GATEWAY,
            };
            return refuse(provider, status, error.to_string());
        }
    };
    match state
        .actions
        .engine()
        .store()
        .record_webhook_batch(&batch, Utc::now())
        .await
    {
        Ok(BatchOutcome::Written(report)) => {
            crate::metrics::record_webhook(provider, true);
            tracing::info!(
                provider,
                stored = report.stored,
                unknown_message = report.unknown_message,
                duplicates = report.duplicates,
                suppressions_added = report.suppressions_added,
                "webhook stored"
            );
            (StatusCode::OK, Json(report)).into_response()
        }
        Ok(BatchOutcome::TokenReused) => refuse(
            provider,
            StatusCode::UNAUTHORIZED,
            "this signature token was used before (replay)".into(),
        ),
        Err(error) => {
            // 503 makes the provider retry later; nothing was written (one transaction).
            let reference = crate::error::new_reference();
            tracing::error!(provider, reference, error = %crate::error::error_chain(&error), "webhook not stored");
            crate::metrics::record_webhook(provider, false);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(WebhookRefusal {
                    error: format!("not stored, try again later (ref {reference})"),
                }),
            )
                .into_response()
        }
    }
}
