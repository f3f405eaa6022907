//! `POST /api/v1/members` and `POST /api/v1/invitations`: the product pushes its own rows, signed the
//! Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! The order of the work: the signature (401), the body (400, every bad row named), the replay check
//! (401), the rows applied, the id remembered, 200. The id is remembered only after the rows are
//! applied, so a request that fails half-way (503) can be retried with the same id; applying is
//! idempotent, so two copies of one request racing each other change nothing twice.
//!
//! Each step answers a refusal as the finished `Response` it is: built once per refused request and
//! returned straight out of the handler, so its size on the error path costs nothing that matters.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::signature_headers::{self, HeaderWords};
use super::HttpState;
use crate::ingest::{
    self, ApplyReport, IngestError, RawInvitation, RawMember, RowError, SourceKind, ValueMaps,
};
use crate::store::ReplayToken;

/// Most rows in one request.
pub const MAX_ROWS: usize = 1_000;
/// The largest request body read: 1,000 rows of up to about 2 KiB each (an address is refused past
/// 1,024 bytes). Larger bodies get 413 unread.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Longest `webhook-id` accepted; it is stored for [`ID_KEPT_MINUTES`].
pub use super::signature_headers::MAX_ID_BYTES;
/// A signature is accepted up to 5 minutes either side of now (the `standardwebhooks` crate's
/// window too), so an id can come back for 10 minutes after it was first seen.
const MAX_SIGNATURE_AGE_SECONDS: i128 = 5 * 60;
const ID_KEPT_MINUTES: i64 = 10;
const STALE: &str =
    "webhook-timestamp is more than 5 minutes old: sign each request when it is sent.";
const EARLY: &str = "webhook-timestamp is more than 5 minutes ahead: check the sender's clock.";
/// The `webhook_tokens` rows of this API, beside the providers' (Mailgun's).
const REPLAY_PROVIDER: &str = "push";

/// The push API's settings: the signing key and what the rows need from the config.
#[derive(Clone)]
pub struct PushApi {
    verifier: Arc<standardwebhooks::Webhook>,
    invitation_ttl: chrono::Duration,
}

impl std::fmt::Debug for PushApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushApi")
            .field("invitation_ttl", &self.invitation_ttl)
            .finish_non_exhaustive()
    }
}

impl PushApi {
    /// `None` when `[api] push_secret` is not set: the routes then answer 404.
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let secret = config.api.push_secret.as_ref()?;
        // `Config::validate` refused a secret that does not decode; one that got here decodes.
        let key = crate::config::signing_key(secret).ok()?;
        let verifier = standardwebhooks::Webhook::from_bytes(key).ok()?;
        Some(PushApi {
            verifier: Arc::new(verifier),
            invitation_ttl: chrono::Duration::hours(i64::from(config.product.invitation_ttl_hours)),
        })
    }
}

/// A batch of members: added, changed, or (`deleted`) removed from the bot's view.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersBatch {
    #[schema(max_items = 1000)]
    pub members: Vec<PushedMember>,
}

/// A batch of invitation emails the product sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationsBatch {
    #[schema(max_items = 1000)]
    pub invitations: Vec<PushedInvitation>,
}

/// One member as the product holds it. Role and status are in the bot's own words; timestamps are
/// RFC 3339 with an offset.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushedMember {
    /// The workspace's slug; a workspace the bot does not know yet is created.
    #[schema(
        example = "acme",
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub workspace: String,
    /// The workspace's display name; empty or absent keeps the name the bot holds.
    #[schema(example = "Acme Academy", max_length = 200)]
    pub workspace_name: Option<String>,
    /// The member's email address.
    #[schema(example = "ada@school.example", min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(value_type = RoleWord)]
    pub role: String,
    #[schema(value_type = StatusWord)]
    pub status: String,
    #[schema(format = DateTime)]
    pub invited_at: Option<String>,
    #[schema(format = DateTime)]
    pub activated_at: Option<String>,
    /// When the product last changed this member; a row no newer than the bot's changes nothing.
    #[schema(format = DateTime, example = "2026-11-30T14:05:00Z")]
    pub updated_at: String,
    /// True when the product removed the member (a soft delete).
    pub deleted: Option<bool>,
}

/// One invitation email, so delivery events from the providers attach to it by its Message-ID.
/// Timestamps are RFC 3339 with an offset.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushedInvitation {
    #[schema(
        example = "acme",
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub workspace: String,
    /// The address of a member the bot holds (push the member first).
    #[schema(example = "ada@school.example", min_length = 3, max_length = 254)]
    pub email: String,
    #[schema(format = DateTime, example = "2026-11-30T14:00:00Z")]
    pub sent_at: String,
    /// Default: `sent_at` plus `[product] invitation_ttl_hours`.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The email's Message-ID header, with or without `<>`; empty or absent when unknown.
    #[schema(example = "<0f1e2d@mail.acme.example>", max_length = 998)]
    pub message_id: Option<String>,
    #[schema(format = DateTime, example = "2026-11-30T14:00:00Z")]
    pub updated_at: String,
}

/// A member's role, in the bot's words.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The schema's word list; the rows are read by `ingest::parse_members`.
pub enum RoleWord {
    Learner,
    Trainer,
}

/// A member's status, in the bot's words.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StatusWord {
    Invited,
    Active,
    Deactivated,
}

/// What a batch changed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct PushReport {
    /// Rows that added or changed something.
    pub applied: u64,
    /// Rows no newer than what the bot already held.
    pub unchanged: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PushError {
    #[schema(value_type = PushErrorCode)]
    pub error: String,
    /// What is wrong, in a sentence.
    pub message: String,
    /// Each bad row (400 `bad_rows` only); nothing of the batch was applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<BadRow>,
}

/// The kinds of refusal.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PushErrorCode {
    NotEnabled,
    Unauthorized,
    BadRequest,
    BadRows,
    TooLarge,
    Unavailable,
}

/// A row refused, by its place in the batch (from 0).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BadRow {
    pub index: usize,
    /// The field at fault (empty when the row as a whole is).
    pub field: String,
    pub reason: String,
}

impl From<RowError> for BadRow {
    fn from(error: RowError) -> Self {
        BadRow {
            index: error.index,
            field: error.field,
            reason: error.reason,
        }
    }
}

impl From<ApplyReport> for PushReport {
    fn from(report: ApplyReport) -> Self {
        PushReport {
            applied: report.applied,
            unchanged: report.unchanged,
        }
    }
}

/// Add or update members. Signed with Standard Webhooks: `webhook-signature: v1,<base64
/// HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` with the key of `[api] push_secret`.
#[utoipa::path(
    post,
    path = "/api/v1/members",
    tag = "push",
    request_body = MembersBatch,
    params(SignatureHeaders),
    responses(
        (status = 200, description = "The batch was applied (all of it)", body = PushReport),
        (status = 400, description = "The body or a row is bad: nothing was applied", body = PushError),
        (status = 401, description = "Missing, wrong or stale signature, or a webhook-id seen before", body = PushError),
        (status = 404, description = "The push API is off: `[api] push_secret` is not set", body = PushError),
        (status = 413, description = "The body is larger than 2 MiB", body = PushError),
        (status = 503, description = "The database is not available: nothing was applied, retry with the same webhook-id", body = PushError),
    )
)]
pub async fn members(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    push(&state, &headers, body, Kind::Members).await
}

/// Register invitation emails the product sent itself, so delivery events attach to them. Signed
/// as `/api/v1/members` is.
#[utoipa::path(
    post,
    path = "/api/v1/invitations",
    tag = "push",
    request_body = InvitationsBatch,
    params(SignatureHeaders),
    responses(
        (status = 200, description = "The batch was applied (all of it)", body = PushReport),
        (status = 400, description = "The body or a row is bad (an invitation for a member the bot does not hold included): nothing was applied", body = PushError),
        (status = 401, description = "Missing, wrong or stale signature, or a webhook-id seen before", body = PushError),
        (status = 404, description = "The push API is off: `[api] push_secret` is not set", body = PushError),
        (status = 413, description = "The body is larger than 2 MiB", body = PushError),
        (status = 503, description = "The database is not available: nothing was applied, retry with the same webhook-id", body = PushError),
    )
)]
pub async fn invitations(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    push(&state, &headers, body, Kind::Invitations).await
}

/// The Standard Webhooks headers of the push API, for the document.
pub type SignatureHeaders = signature_headers::SignatureHeaders<PushHeaders>;

/// What the headers mean to the push API.
pub struct PushHeaders;

impl HeaderWords for PushHeaders {
    const ID: &'static str =
        "The message's unique id; a retry carries the same one. Seen once, refused afterwards.";
    const TIMESTAMP: &'static str = "Unix time in seconds; refused more than 5 minutes from now.";
    const SIGNATURE: &'static str =
        "`v1,<base64 signature>`, several separated by spaces during a secret's rotation.";
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Members,
    Invitations,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Members => "members",
            Kind::Invitations => "invitations",
        }
    }
}

#[tracing::instrument(name = "push", skip_all, fields(kind = kind.as_str(), request_id = %crate::error::new_reference()))]
async fn push(
    state: &HttpState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Response {
    let Some(api) = &state.push else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "The push API is off: set [api] push_secret (or INVITE_BOT_PUSH_SECRET) to a whsec_ secret.".into(),
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("The request is larger than {MAX_BODY_BYTES} bytes: send at most {MAX_ROWS} rows at a time."),
            )
        }
        Err(rejection) => {
            return refuse(StatusCode::BAD_REQUEST, "bad_request", rejection.body_text())
        }
    };
    let id = match authenticate(api, headers, &body) {
        Ok(id) => id,
        Err(refusal) => return refusal,
    };
    let rows = match kind {
        Kind::Members => read_members(&body),
        Kind::Invitations => read_invitations(&body, api.invitation_ttl),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(refusal) => return refusal,
    };
    let store = state.actions.engine().store();
    let token = ReplayToken {
        provider: REPLAY_PROVIDER,
        token: id,
        keep_for: chrono::Duration::minutes(ID_KEPT_MINUTES),
    };
    match store.replay_token_seen(&token, Utc::now()).await {
        Ok(false) => {}
        Ok(true) => return replayed(),
        Err(error) => return unavailable(&error),
    }
    let applied = match &rows {
        Rows::Members(rows) => store.apply_members(SourceKind::Push, rows).await,
        Rows::Invitations(rows) => store.apply_invitations(SourceKind::Push, rows).await,
    };
    let report = match applied {
        Ok(report) => PushReport::from(report),
        Err(IngestError::Rows(errors)) => {
            return bad_rows(errors.into_iter().map(BadRow::from).collect())
        }
        Err(IngestError::Store(error)) => return unavailable(&error),
    };
    match store.remember_replay_token(&token, Utc::now()).await {
        Ok(true) => {}
        // Another copy of this request got there first: its answer is the one that counts.
        Ok(false) => return replayed(),
        // Applied but not remembered: a retry applies nothing new, and remembers it then.
        Err(error) => return unavailable(&error),
    }
    crate::metrics::record_webhook(REPLAY_PROVIDER, true);
    tracing::info!(
        applied = report.applied,
        unchanged = report.unchanged,
        "push applied"
    );
    (StatusCode::OK, Json(report)).into_response()
}

/// Checks the signature and the timestamp; returns the `webhook-id`.
fn authenticate(api: &PushApi, headers: &HeaderMap, body: &[u8]) -> Result<String, Response> {
    use standardwebhooks::WebhookError as Signature;
    let unauthorized = |reason: String| refuse(StatusCode::UNAUTHORIZED, "unauthorized", reason);
    // The window is checked here first, with arithmetic that cannot overflow: the crate subtracts
    // the timestamp from now unchecked, which panics on one near i64::MIN (found by schemathesis).
    if let Some(age) = headers
        .get(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<i64>().ok())
        .map(|timestamp| i128::from(Utc::now().timestamp()) - i128::from(timestamp))
    {
        if age > MAX_SIGNATURE_AGE_SECONDS {
            return Err(unauthorized(STALE.into()));
        }
        if age < -MAX_SIGNATURE_AGE_SECONDS {
            return Err(unauthorized(EARLY.into()));
        }
    }
    if let Err(error) = api.verifier.verify(body, headers) {
        return Err(match error {
            Signature::MissingHeader(name) => unauthorized(format!("The webhook-{name} header is missing.")),
            Signature::InvalidHeader(name) => unauthorized(format!("The webhook-{name} header is not readable text.")),
            Signature::InvalidTimestamp => unauthorized("webhook-timestamp must be a Unix time in seconds.".into()),
            Signature::TimestampTooOldError => unauthorized(STALE.into()),
            Signature::FutureTimestampError => unauthorized(EARLY.into()),
            Signature::InvalidPayload => refuse(StatusCode::BAD_REQUEST, "bad_request", "The body is not UTF-8 JSON.".into()),
            Signature::InvalidSignature | Signature::InvalidSecret(_) => unauthorized("webhook-signature does not match: a different secret, or the body was changed after signing.".into()),
        });
    }
    // Verified, so the header is there and is text.
    let id = headers
        .get(standardwebhooks::HEADER_WEBHOOK_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(unauthorized(format!(
            "webhook-id must be 1 to {MAX_ID_BYTES} characters."
        )));
    }
    Ok(id.to_owned())
}

/// The rows of a batch, parsed.
enum Rows {
    Members(Vec<ingest::MemberRecord>),
    Invitations(Vec<ingest::InvitationRecord>),
}

fn read_members(body: &[u8]) -> Result<Rows, Response> {
    let (rows, positions, mut errors) =
        rows_of::<PushedMember>(batch_rows(body, "members")?, MEMBER_FIELDS);
    let raw = rows
        .into_iter()
        .map(|row| RawMember {
            workspace: row.workspace,
            workspace_name: row.workspace_name,
            email: row.email,
            role: row.role,
            status: row.status,
            invited_at: row.invited_at,
            activated_at: row.activated_at,
            updated_at: row.updated_at,
            deleted: row.deleted,
        })
        .collect();
    match ingest::parse_members(raw, &ValueMaps::identity(), utc()) {
        Ok(records) if errors.is_empty() => Ok(Rows::Members(records)),
        Ok(_) => Err(bad_rows(errors)),
        Err(bad) => {
            errors.extend(renumber(bad, &positions));
            Err(bad_rows(errors))
        }
    }
}

fn read_invitations(body: &[u8], ttl: chrono::Duration) -> Result<Rows, Response> {
    let (rows, positions, mut errors) =
        rows_of::<PushedInvitation>(batch_rows(body, "invitations")?, INVITATION_FIELDS);
    let raw = rows
        .into_iter()
        .map(|row| RawInvitation {
            workspace: row.workspace,
            email: row.email,
            sent_at: row.sent_at,
            expires_at: row.expires_at,
            message_id: row.message_id,
            updated_at: row.updated_at,
        })
        .collect();
    match ingest::parse_invitations(raw, ttl, utc()) {
        Ok(records) if errors.is_empty() => Ok(Rows::Invitations(records)),
        Ok(_) => Err(bad_rows(errors)),
        Err(bad) => {
            errors.extend(renumber(bad, &positions));
            Err(bad_rows(errors))
        }
    }
}

/// Timestamps pushed without an offset are UTC.
fn utc() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(0).expect("UTC is an offset")
}

/// The rows of `{"<key>": [...]}`, at most [`MAX_ROWS`]; each is read on its own afterwards.
fn batch_rows(body: &[u8], key: &str) -> Result<Vec<serde_json::Value>, Response> {
    let bad = |message: String| refuse(StatusCode::BAD_REQUEST, "bad_request", message);
    let shape = format!("send {{\"{key}\": [row, ...]}}");
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| bad(format!("The body is not JSON ({error}): {shape}.")))?;
    let serde_json::Value::Object(mut batch) = value else {
        return Err(bad(format!("The body is not a JSON object: {shape}.")));
    };
    if let Some(other) = batch.keys().find(|name| *name != key) {
        return Err(bad(format!(
            "`{other}` is not a field of this batch: {shape}."
        )));
    }
    let Some(serde_json::Value::Array(rows)) = batch.remove(key) else {
        return Err(bad(format!("`{key}` must be a list of rows: {shape}.")));
    };
    if rows.len() > MAX_ROWS {
        return Err(bad(format!(
            "The batch has {} rows: send at most {MAX_ROWS} at a time.",
            rows.len()
        )));
    }
    Ok(rows)
}

/// What a field must hold: the document's schema of a row, checked before the rows are parsed so
/// that the API is exactly as strict as it says (sync and import take looser forms: untrimmed
/// words, timestamps without an offset) and the field a row gets wrong is named.
#[derive(Clone, Copy)]
enum Shape {
    /// A slug as the bot writes it (lowercase letters, digits, `-`).
    Slug,
    /// At most [`MAX_EMAIL_CHARS`] characters, no surrounding spaces; parsed as an address later.
    Email,
    Role,
    Status,
    /// RFC 3339 with an offset (`2026-11-30T14:05:00Z`).
    Time,
    OptionalTime,
    OptionalText,
    OptionalBool,
}

/// An address is at most 254 characters (RFC 5321).
const MAX_EMAIL_CHARS: usize = 254;

const MEMBER_FIELDS: &[(&str, Shape)] = &[
    ("workspace", Shape::Slug),
    ("workspace_name", Shape::OptionalText),
    ("email", Shape::Email),
    ("role", Shape::Role),
    ("status", Shape::Status),
    ("invited_at", Shape::OptionalTime),
    ("activated_at", Shape::OptionalTime),
    ("updated_at", Shape::Time),
    ("deleted", Shape::OptionalBool),
];

const INVITATION_FIELDS: &[(&str, Shape)] = &[
    ("workspace", Shape::Slug),
    ("email", Shape::Email),
    ("sent_at", Shape::Time),
    ("expires_at", Shape::OptionalTime),
    ("message_id", Shape::OptionalText),
    ("updated_at", Shape::Time),
];

impl Shape {
    /// What is wrong with `value` (`Null` when the field is absent), if anything.
    fn problem(self, value: &serde_json::Value) -> Option<&'static str> {
        use serde_json::Value;
        let optional = matches!(
            self,
            Shape::OptionalTime | Shape::OptionalText | Shape::OptionalBool
        );
        let text = match value {
            Value::Null if optional => return None,
            Value::Null => return Some("is required"),
            Value::Bool(_) if matches!(self, Shape::OptionalBool) => return None,
            _ if matches!(self, Shape::OptionalBool) => return Some("must be true, false or null"),
            Value::String(text) => text.as_str(),
            _ if optional => return Some("must be a string or null"),
            _ => return Some("must be a string"),
        };
        match self {
            Shape::Slug => (crate::domain::workspace::WorkspaceSlug::parse(text)
                .map_or(true, |slug| slug.as_str() != text))
            .then_some("must be a workspace slug: lowercase letters, digits and -"),
            Shape::Email => (text.trim() != text || text.chars().count() > MAX_EMAIL_CHARS)
                .then_some(
                    "must be an email address of at most 254 characters, without spaces around it",
                ),
            Shape::Role => crate::domain::member::Role::parse(text)
                .is_none()
                .then_some("must be learner or trainer"),
            Shape::Status => crate::domain::member::MemberStatus::parse(text)
                .is_none()
                .then_some("must be invited, active or deactivated"),
            Shape::Time | Shape::OptionalTime => (!is_rfc3339(text)).then_some(
                "must be an RFC 3339 timestamp with an offset, e.g. 2026-11-30T14:05:00Z",
            ),
            Shape::OptionalText | Shape::OptionalBool => None,
        }
    }
}

/// `2026-11-30T14:05:00Z`, `2026-11-30t14:05:00.5+02:00`: RFC 3339's date-time, as JSON Schema's
/// `date-time` format means it (chrono also takes a space for the `T`, which that does not).
fn is_rfc3339(text: &str) -> bool {
    matches!(text.as_bytes().get(10), Some(b'T' | b't'))
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// Reads each row on its own, so every bad one is named: the rows read, where each stood in the
/// batch, and the errors of the others.
fn rows_of<T: serde::de::DeserializeOwned>(
    values: Vec<serde_json::Value>,
    fields: &[(&str, Shape)],
) -> (Vec<T>, Vec<usize>, Vec<BadRow>) {
    let mut rows = Vec::with_capacity(values.len());
    let mut positions = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        let (field, reason) = match shape_problem(&value, fields) {
            Some(problem) => problem,
            None => match serde_json::from_value::<T>(value) {
                Ok(row) => {
                    rows.push(row);
                    positions.push(index);
                    continue;
                }
                Err(error) => (String::new(), error.to_string()),
            },
        };
        errors.push(BadRow {
            index,
            field,
            reason,
        });
    }
    (rows, positions, errors)
}

/// The first field of `row` that is missing, unknown or of the wrong JSON type.
fn shape_problem(row: &serde_json::Value, fields: &[(&str, Shape)]) -> Option<(String, String)> {
    let Some(object) = row.as_object() else {
        return Some((String::new(), "a row must be a JSON object".into()));
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !fields.iter().any(|(name, _)| name == key))
    {
        return Some((unknown.clone(), "is not a field of this row".into()));
    }
    for (name, shape) in fields {
        let value = object.get(*name).unwrap_or(&serde_json::Value::Null);
        if let Some(problem) = shape.problem(value) {
            return Some(((*name).to_owned(), problem.to_owned()));
        }
    }
    None
}

/// `errors` index the rows that reached the parser; the caller counts from the batch's first row.
fn renumber(errors: Vec<RowError>, positions: &[usize]) -> impl Iterator<Item = BadRow> + '_ {
    errors.into_iter().map(move |error| BadRow {
        index: positions.get(error.index).copied().unwrap_or(error.index),
        field: error.field,
        reason: error.reason,
    })
}

fn bad_rows(mut rows: Vec<BadRow>) -> Response {
    rows.sort_by_key(|row| row.index);
    let message = format!(
        "{} of the rows cannot be applied, so none were: fix them and send the batch again.",
        rows.len()
    );
    crate::metrics::record_webhook(REPLAY_PROVIDER, false);
    tracing::warn!(bad_rows = rows.len(), "push refused");
    let body = PushError {
        error: "bad_rows".into(),
        message,
        rows,
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn replayed() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "This webhook-id was used before (a replay): each request needs a new id, a retry the same one only after a failure.".into(),
    )
}

fn unavailable(error: &crate::store::StoreError) -> Response {
    let reference = crate::error::new_reference();
    tracing::error!(reference, error = %crate::error::error_chain(error), "push not applied");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("Nothing was applied: the database is not available. Retry with the same webhook-id (ref {reference})."),
    )
}

fn refuse(status: StatusCode, error: &str, message: String) -> Response {
    if status != StatusCode::SERVICE_UNAVAILABLE {
        // Reasons name the failed check, never a secret or an address.
        tracing::warn!(status = status.as_u16(), reason = %message, "push refused");
    }
    crate::metrics::record_webhook(REPLAY_PROVIDER, false);
    let body = PushError {
        error: error.to_owned(),
        message,
        rows: Vec::new(),
    };
    (status, Json(body)).into_response()
}
