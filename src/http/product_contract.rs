//! The product's side of `[actions] backend = "product"`, for the OpenAPI document: the two routes
//! the product implements and the bot calls. They are served by the product, not by this
//! listener, so the document lists them under `webhooks` (OpenAPI's place for requests the API
//! sends and its consumer implements), tagged "product contract". The functions here exist only
//! to carry their `#[utoipa::path]`.

use utoipa::OpenApi;

use super::signature_headers::{HeaderWords, SignatureHeaders};

#[allow(unused_imports)]
use crate::actions::product_api::{
    ActivationAnswer, ProductActionRequest, ProductRefusal, RequestedBy, ResendAnswer,
};

/// The Standard Webhooks headers of every call the bot makes to the product.
type ProductSignatureHeaders = SignatureHeaders<ProductHeaders>;

/// What the headers mean to the product.
struct ProductHeaders;

impl HeaderWords for ProductHeaders {
    const ID: &'static str = "The action's idempotency key, the same as the body's `idempotency_key` and the same \
        on every try of the action: do it once per key, answer a repeated key with the first answer.";
    const TIMESTAMP: &'static str =
        "Unix time in seconds of this try; refuse one far from now (the libraries allow 5 minutes).";
    const SIGNATURE: &'static str = "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">` with the \
        key of `[actions.product] secret` (`whsec_<base64>`): any Standard Webhooks library verifies it.";
}

/// Resend the member's invitation with the product's own token and email template. Implemented by
/// the product at `{base_url}/invitations/resend`; the bot calls it only after its own checks
/// (permission, verdict, rate limits, per-member lock). Retried on a timeout, a connection error or
/// a 5xx with the same `webhook-id`, never after a 4xx.
#[utoipa::path(
    post,
    path = "/invitations/resend",
    tag = "product contract",
    request_body = ProductActionRequest,
    params(ProductSignatureHeaders),
    responses(
        (status = 200, description = "Sent (or sent before under this idempotency key: the same answer)", body = ResendAnswer),
        (status = 409, description = "Refused, e.g. the invitation was revoked: `message` is shown to the admin (escaped, at most 300 characters); nothing is retried", body = ProductRefusal),
        (status = 422, description = "Refused, e.g. no such member: as 409", body = ProductRefusal),
        (status = 500, description = "The product failed: the bot tries again with the same key, then tells the admin the outcome is unknown"),
    )
)]
#[allow(dead_code)]
pub fn resend_invitation() {}

/// Issue a one-time activation code, or a link where the product only has links. Implemented by
/// the product at `{base_url}/activation-codes`. The bot shows the answer once, privately, to the
/// admin who asked, and never stores or logs it. Retried as the resend is.
#[utoipa::path(
    post,
    path = "/activation-codes",
    tag = "product contract",
    request_body = ProductActionRequest,
    params(ProductSignatureHeaders),
    responses(
        (status = 200, description = "`{code, expires_at}` or `{activation_url}` (with `expires_at` if it expires); a repeated idempotency key gets the first answer", body = ActivationAnswer),
        (status = 409, description = "Refused: `message` is shown to the admin (escaped, at most 300 characters)", body = ProductRefusal),
        (status = 422, description = "Refused: as 409", body = ProductRefusal),
        (status = 500, description = "The product failed: retried with the same key, then told as unknown"),
    )
)]
#[allow(dead_code)]
pub fn issue_activation_code() {}

#[derive(OpenApi)]
#[openapi(
    paths(resend_invitation, issue_activation_code),
    components(schemas(
        ProductActionRequest,
        RequestedBy,
        ResendAnswer,
        ActivationAnswer,
        ProductRefusal
    ))
)]
pub struct ProductContract;
