//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the handlers'
//! `#[utoipa::path]` annotations and the request and answer types' `ToSchema`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use super::{activate, health, product_contract, push, webhooks};

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
        (name = "product contract", description = "Implemented by the product, called by the bot when `[actions] backend = \"product\"`: \
            `POST {base_url}/invitations/resend` and `POST {base_url}/activation-codes` under `[actions.product] base_url`, \
            signed with Standard Webhooks (`[actions.product] secret`). Listed under `webhooks`: this listener does not serve them."),
    )
)]
pub struct ApiDoc;

/// The document as served, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = ApiDoc::openapi();
        // The product's routes are requests this bot sends, not routes it serves: `webhooks`.
        let contract = product_contract::ProductContract::openapi();
        if let (Some(components), Some(theirs)) = (&mut document.components, contract.components) {
            components.schemas.extend(theirs.schemas);
        }
        document.webhooks = Some(contract.paths);
        document
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
