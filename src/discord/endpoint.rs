//! http mode: `POST /discord/interactions`, the application's "Interactions Endpoint URL".
//!
//! Discord signs each request with the application's Ed25519 key over `X-Signature-Timestamp` +
//! the raw body. The signature is checked before anything is read from the body, and a bad one gets
//! 401 (Discord probes the endpoint with bad signatures and drops it if they are accepted). The
//! interaction then goes through the same [`Handler`] as over the gateway: its first response
//! (a message, a deferral, an acknowledgement, autocomplete choices) becomes this request's
//! response body, and what follows (edits, follow-ups, escalation posts) goes through the REST API.
//! Any replica can take any interaction: buttons, limits and locks live in the database.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ed25519_dalek::{Signature, VerifyingKey};
use secrecy::ExposeSecret;
use serenity::all::{Http, Interaction};

use super::{rest_client, DiscordError, DiscordOptions, Handler, Responder};
use crate::actions::Actions;
use crate::chat::Chat;
use crate::config::Config;
use crate::drain::Drain;

/// Where Discord POSTs interactions.
pub const PATH: &str = "/discord/interactions";
/// Largest interaction body read (Discord's are a few KiB); larger ones get 413 unread.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A signed request older (or further in the future) than this is refused: a captured request
/// cannot be replayed later.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Discord gives up on a first response after 3 s; the flow answers or defers within
/// `[discord] answer_within_ms`, and this bounds the wait for one that never comes.
const FIRST_RESPONSE_WITHIN: Duration = Duration::from_millis(2500);

/// Interactions in flight (this one included) above which a command defers at once instead of
/// waiting `answer_within` for the engine: a few per core keep the CPU busy without queueing.
const BUSY_IN_FLIGHT: usize = 8;

/// The endpoint: the key that signs Discord's requests, the REST client and the shared flow.
#[derive(Clone)]
pub struct InteractionsEndpoint {
    inner: Arc<Endpoint>,
}

struct Endpoint {
    key: VerifyingKey,
    http: Arc<Http>,
    handler: Handler,
    drain: Drain,
}

/// Why a request was refused before it was read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingHeaders,
    MalformedSignature,
    BadSignature,
    StaleTimestamp,
}

impl InteractionsEndpoint {
    /// Builds the endpoint from `[discord]` (http mode: `public_key`, `application_id`, the token
    /// for command registration and channel posts). New interactions are refused once `drain`
    /// begins; those taken are counted in it until their last follow-up is sent.
    pub fn new(
        actions: Actions,
        config: &Config,
        options: DiscordOptions,
        drain: Drain,
    ) -> Result<Self, DiscordError> {
        let token = config
            .discord
            .token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .filter(|t| !t.trim().is_empty())
            .ok_or(DiscordError::MissingToken)?;
        let key = config
            .discord
            .public_key
            .as_deref()
            .ok_or(DiscordError::HttpModeConfig("discord.public_key"))
            .and_then(|key| {
                crate::config::parse_public_key(key)
                    .map_err(|_| DiscordError::HttpModeConfig("discord.public_key"))
            })?;
        let application_id = config
            .discord
            .application_id
            .ok_or(DiscordError::HttpModeConfig("discord.application_id"))?;
        let api_base = config
            .discord
            .api_base_url
            .as_deref()
            .map(|base| base.trim_end_matches('/'));
        if !config.discord.support_channel_ids.is_empty() {
            tracing::warn!("[discord] support_channel_ids is ignored in http mode: messages arrive only over the gateway");
        }
        let http = rest_client(&token, api_base, Some(application_id))?;
        let handler = Handler::new(
            Chat::new(actions, config),
            config.discord.clone(),
            api_base.map(str::to_owned),
            options,
        );
        Ok(InteractionsEndpoint {
            inner: Arc::new(Endpoint {
                key,
                http: Arc::new(http),
                handler,
                drain,
            }),
        })
    }

    /// Registers the slash commands through the REST API (no gateway in http mode), as the
    /// gateway mode does on READY. A failure is logged; the endpoint still answers.
    pub async fn register_commands(&self) {
        self.inner.handler.register(&self.inner.http).await;
    }

    /// The route, to merge into the HTTP listener's router.
    pub fn router(self) -> Router {
        Router::new()
            .route(
                PATH,
                post(interactions).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
            )
            .with_state(self)
    }
}

/// Checks Discord's signature over timestamp + body and the timestamp's age, before anything of
/// the body is read.
pub fn verify(
    key: &VerifyingKey,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return Err(Refusal::MissingHeaders);
    };
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(Refusal::MalformedSignature)?;
    let signature = Signature::from_bytes(&signature);
    let mut signed = Vec::with_capacity(timestamp.len() + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(body);
    key.verify_strict(&signed, &signature)
        .map_err(|_| Refusal::BadSignature)?;
    // Signed, so the timestamp is Discord's: now its age.
    let sent: u64 = timestamp.parse().map_err(|_| Refusal::StaleTimestamp)?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if now.abs_diff(sent) > MAX_CLOCK_SKEW.as_secs() {
        return Err(Refusal::StaleTimestamp);
    }
    Ok(())
}

/// Only the interaction's type, to answer PING without Serenity's full model.
#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: u8,
}

const PING: u8 = 1;

#[tracing::instrument(name = "discord_interaction", skip_all, fields(request_id = %crate::error::new_reference()))]
async fn interactions(
    State(endpoint): State<InteractionsEndpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = endpoint.inner;
    if let Err(refusal) = verify(&endpoint.key, &headers, &body, SystemTime::now()) {
        crate::metrics::record_webhook("discord", false);
        tracing::info!(?refusal, "interaction refused: bad or missing signature");
        return (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response();
    }
    let Ok(Kind { kind }) = serde_json::from_slice::<Kind>(&body) else {
        return (StatusCode::BAD_REQUEST, "not an interaction\n").into_response();
    };
    if kind == PING {
        return Json(serde_json::json!({ "type": 1 })).into_response();
    }
    let Some(in_flight) = endpoint.drain.enter() else {
        // Shutting down: Discord tells the user the interaction failed; the load balancer has
        // already been told (readyz) to send the next one elsewhere.
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    };
    let interaction = match serde_json::from_slice::<Interaction>(&body) {
        Ok(interaction) => interaction,
        Err(error) => {
            tracing::warn!(%error, kind, "an interaction that does not match serenity's model");
            return (StatusCode::BAD_REQUEST, "unreadable interaction\n").into_response();
        }
    };
    crate::metrics::record_webhook("discord", true);
    // In a burst every answer waits for the CPU the others use: the first response ("thinking…")
    // goes out at once, and the card follows through the REST API as the engine gets to it.
    let busy = endpoint.drain.in_flight() > BUSY_IN_FLIGHT;
    let (responder, first) = Responder::body(endpoint.http.clone(), busy);
    let flow = endpoint.clone();
    // Its own task: what follows the first response (edits, follow-ups) outlives this request,
    // and is counted in the drain until it is done.
    tokio::spawn(async move {
        flow.handler.handle(&responder, interaction).await;
        drop(in_flight);
    });
    match tokio::time::timeout(FIRST_RESPONSE_WITHIN, first).await {
        Ok(Ok(response)) => Json(response).into_response(),
        Ok(Err(_)) => {
            tracing::debug!(kind, "interaction not answered (ignored by the flow)");
            (StatusCode::BAD_REQUEST, "interaction not handled\n").into_response()
        }
        Err(_) => {
            tracing::warn!(kind, "no first response in time");
            (StatusCode::SERVICE_UNAVAILABLE, "no response in time\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(key: &SigningKey, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signature-ed25519",
            hex::encode(key.sign(&message).to_bytes()).parse().unwrap(),
        );
        headers.insert("x-signature-timestamp", timestamp.parse().unwrap());
        headers
    }

    #[test]
    fn the_signature_covers_timestamp_and_body_and_the_timestamp_must_be_recent() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ts = "1800000000";
        let body = br#"{"type":1}"#;
        let headers = signed(&key, ts, body);
        assert_eq!(verify(&public, &headers, body, now), Ok(()));
        assert_eq!(
            verify(&public, &headers, br#"{"type":2}"#, now),
            Err(Refusal::BadSignature)
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            verify(&public, &signed(&other, ts, body), body, now),
            Err(Refusal::BadSignature)
        );
        let mut moved = headers.clone();
        moved.insert("x-signature-timestamp", "1800000001".parse().unwrap());
        assert_eq!(
            verify(&public, &moved, body, now),
            Err(Refusal::BadSignature)
        );
        let later = now + MAX_CLOCK_SKEW + Duration::from_secs(1);
        assert_eq!(
            verify(&public, &headers, body, later),
            Err(Refusal::StaleTimestamp)
        );
        let earlier = now - MAX_CLOCK_SKEW - Duration::from_secs(1);
        assert_eq!(
            verify(&public, &headers, body, earlier),
            Err(Refusal::StaleTimestamp)
        );
        assert_eq!(
            verify(&public, &signed(&key, "soon", body), body, now),
            Err(Refusal::StaleTimestamp)
        );
        let mut bare = headers.clone();
        bare.remove("x-signature-ed25519");
        assert_eq!(
            verify(&public, &bare, body, now),
            Err(Refusal::MissingHeaders)
        );
        let mut short = headers.clone();
        short.insert("x-signature-ed25519", "abcd".parse().unwrap());
        assert_eq!(
            verify(&public, &short, body, now),
            Err(Refusal::MalformedSignature)
        );
    }
}
