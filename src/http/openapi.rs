//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the handlers'
//! `#[utoipa::path]` annotations and the request and answer types' `ToSchema`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use super::{activate, health, push, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "invite-bot",
        description = "The HTTP listener of `invite-bot serve`: probes and metrics, the email providers' \
                       delivery webhooks, activation, and the push API through which a product sends \
                       its members and invitations (signed the Standard Webhooks way)."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
        webhooks::postmark,
        webhooks::sendgrid,
        webhooks::mailgun,
        webhooks::ses,
        activate::activate,
        push::members,
        push::invitations,
    ),
    tags(
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "providers", description = "Email providers' delivery events, each authenticated the provider's way"),
        (name = "activation", description = "Redeeming activation codes and invitation tokens"),
        (name = "push", description = "The product's members and invitations, signed with Standard Webhooks (`[api] push_secret`)"),
    )
)]
pub struct ApiDoc;

/// The document as served, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", body = serde_json::Value, content_type = "application/json"))
)]
pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
