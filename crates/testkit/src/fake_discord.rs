//! A small fake Discord on 127.0.0.1 that the real serenity client connects to: a local stand-in
//! for the integration tests and `invite-bot-bench --discord`, never for production. Not a stable API.
//!
//! REST (axum): answers what the bot calls and records every request, so tests assert on what the
//! client sent. Gateway (tokio-tungstenite): HELLO on connect, READY on IDENTIFY, heartbeat ACKs,
//! and dispatches pushed by the test with a rising sequence number. Facts serenity 0.12.5 needs:
//! the gateway URL comes from `GET /api/v10/gateway` and must not carry a query string (serenity
//! appends `?v=10`); an event missing a field serenity's model requires is dropped with only a
//! tracing warning, so the payload builders here fill every required field.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Json;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub const APPLICATION_ID: &str = "2000";
pub const BOT_USER_ID: &str = "1000";
pub const GUILD_ID: u64 = 4000;
pub const CHANNEL_ID: u64 = 5000;

/// One request the client made.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub body: Value,
    /// When the request arrived at the fake (before it was answered).
    pub at: Instant,
    /// The files of a multipart request (its `payload_json` part is `body`).
    pub files: Vec<RecordedFile>,
}

/// One file a request carried (`files[n]` of a multipart body).
#[derive(Debug, Clone)]
pub struct RecordedFile {
    /// The form field, e.g. `files[0]`.
    pub field: String,
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// The parts of a `multipart/form-data` body: (field name, filename, content).
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let end = find(rest, &delimiter).unwrap_or(rest.len());
        let part = &rest[..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&part[..split]).to_string();
            let content = part[split + 4..].to_vec();
            let attribute = |key: &str| {
                headers
                    .lines()
                    .flat_map(|line| line.split(';'))
                    .find_map(|p| {
                        p.trim()
                            .strip_prefix(&format!("{key}="))
                            .map(|v| v.trim_matches('"').to_owned())
                    })
            };
            parts.push((
                attribute("name").unwrap_or_default(),
                attribute("filename"),
                content,
            ));
        }
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    changed: Notify,
    gateway: Mutex<Option<mpsc::UnboundedSender<String>>>,
    ready: Notify,
    identified: Mutex<bool>,
    seq: AtomicU64,
    ids: AtomicU64,
    /// Path substrings that are answered 429 this many more times.
    rate_limited: Mutex<HashMap<String, u32>>,
    ws_url: Mutex<String>,
    /// Channels refuse threads (403), like a channel where the bot may not create them.
    refuse_threads: std::sync::atomic::AtomicBool,
    /// Path substrings whose requests are answered only after this long (a slow Discord).
    delayed: Mutex<Vec<(String, Duration)>>,
    /// Files served at `/attachments/{name}`, as users' uploads are by Discord's CDN.
    attachments: Mutex<HashMap<String, Vec<u8>>>,
}

/// A person in the fake guild.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
}

impl FakeUser {
    pub fn new(id: &str, name: &str, roles: &[&str]) -> Self {
        FakeUser {
            id: id.into(),
            name: name.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn user_json(&self) -> Value {
        json!({"id": self.id, "username": self.name, "discriminator": "0", "global_name": self.name, "avatar": null})
    }

    fn member_json(&self) -> Value {
        json!({
            "user": self.user_json(), "roles": self.roles, "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "deaf": false, "mute": false, "flags": 0, "pending": false, "permissions": "0",
            "nick": null, "avatar": null, "premium_since": null, "communication_disabled_until": null,
        })
    }
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub base_url: String,
    shared: Arc<Shared>,
}

impl FakeDiscord {
    /// Starts the fake; panics when 127.0.0.1 cannot be bound (tests). See [`FakeDiscord::try_start`].
    pub async fn start() -> FakeDiscord {
        Self::try_start()
            .await
            .expect("cannot bind the fake Discord on 127.0.0.1")
    }

    /// Starts the REST server and the gateway on free ports of 127.0.0.1.
    pub async fn try_start() -> std::io::Result<FakeDiscord> {
        let shared = Arc::new(Shared::default());
        shared.ids.store(900_000, Ordering::SeqCst);
        let ws_listener = TcpListener::bind("127.0.0.1:0").await?;
        *shared.ws_url.lock().unwrap() = format!("ws://{}", ws_listener.local_addr()?);
        tokio::spawn(gateway(ws_listener, shared.clone()));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(rest)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the fake Discord stopped");
            }
        });
        Ok(FakeDiscord { base_url, shared })
    }

    /// Waits until the client has identified and received READY.
    pub async fn wait_ready(&self) {
        if !self.wait_ready_within(Duration::from_secs(15)).await {
            panic!("the client never identified on the fake gateway");
        }
    }

    /// Waits up to `limit` for the client to identify; false when it did not.
    pub async fn wait_ready_within(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.ready.notified();
            if *self.shared.identified.lock().unwrap() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits up to `limit` until at least `count` requests match `filter`; returns how many matched
    /// when it stopped waiting (counted without copying, so a benchmark can poll it cheaply).
    pub async fn wait_count(
        &self,
        filter: impl Fn(&Recorded) -> bool,
        count: usize,
        limit: Duration,
    ) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            let found = self
                .shared
                .requests
                .lock()
                .unwrap()
                .iter()
                .filter(|r| filter(r))
                .count();
            if found >= count || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return found;
            }
        }
    }

    /// The next `count` requests matching `filter`, in order, waiting up to 10 s.
    pub async fn wait_for(
        &self,
        what: &str,
        filter: impl Fn(&Recorded) -> bool,
        count: usize,
    ) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.changed.notified();
            let found: Vec<Recorded> = self
                .shared
                .requests
                .lock()
                .unwrap()
                .iter()
                .filter(|r| filter(r))
                .cloned()
                .collect();
            if found.len() >= count {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "waited 10 s for {count} x {what}; requests seen: {:#?}",
                    self.requests()
                        .iter()
                        .map(|r| format!("{} {}", r.method, r.path))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests whose path contains `fragment`.
    pub fn requests_to(&self, fragment: &str) -> Vec<Recorded> {
        // Filtered before copying: a benchmark's fake Discord holds thousands of requests.
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains(fragment))
            .cloned()
            .collect()
    }

    /// The next `times` requests whose path contains `fragment` are answered 429.
    pub fn rate_limit(&self, fragment: &str, times: u32) {
        self.shared
            .rate_limited
            .lock()
            .unwrap()
            .insert(fragment.to_owned(), times);
    }

    /// From now on, requests whose path contains `fragment` are answered after `delay` (they are
    /// recorded when they arrive).
    pub fn delay(&self, fragment: &str, delay: Duration) {
        self.shared
            .delayed
            .lock()
            .unwrap()
            .push((fragment.to_owned(), delay));
    }

    /// From now on, creating a thread is refused with 403.
    pub fn refuse_threads(&self) {
        self.shared.refuse_threads.store(true, Ordering::SeqCst);
    }

    /// Sends a gateway dispatch with the next sequence number; panics without a connection (tests).
    pub fn dispatch(&self, event: &str, data: Value) {
        if !self.try_dispatch(event, data) {
            panic!("no open gateway connection");
        }
    }

    /// Sends a gateway dispatch; false when no client is connected.
    pub fn try_dispatch(&self, event: &str, data: Value) -> bool {
        let seq = self.shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let frame = json!({"op": 0, "s": seq, "t": event, "d": data}).to_string();
        let sender = self.shared.gateway.lock().unwrap().clone();
        sender.is_some_and(|sender| sender.send(frame).is_ok())
    }

    fn next_id(&self) -> String {
        self.shared.ids.fetch_add(1, Ordering::SeqCst).to_string()
    }

    /// Types `/invite-check` with these options; returns the interaction's token.
    pub fn invite_check(&self, user: &FakeUser, options: &[(&str, &str)]) -> String {
        self.try_invite_check(user, options)
            .expect("no open gateway connection")
    }

    /// Types `/invite-check`; the interaction's token, or None when no client is connected. The
    /// callback arrives at `/api/v10/interactions/{id}/{token}/callback`.
    pub fn try_invite_check(&self, user: &FakeUser, options: &[(&str, &str)]) -> Option<String> {
        let (token, interaction) = self.invite_check_json(user, options);
        self.try_dispatch("INTERACTION_CREATE", interaction)
            .then_some(token)
    }

    /// `/invite-check` as Discord sends it (over the gateway, or POSTed to an interactions
    /// endpoint): its token and its JSON.
    pub fn invite_check_json(&self, user: &FakeUser, options: &[(&str, &str)]) -> (String, Value) {
        let token = format!("token-{}", self.next_id());
        let options: Vec<Value> = options
            .iter()
            .map(|(name, value)| json!({"name": name, "type": 3, "value": value}))
            .collect();
        let data = json!({"id": "3000", "name": "invite-check", "type": 1, "options": options});
        let interaction = self.interaction(2, &token, user, data, None);
        (token, interaction)
    }

    /// Types the slash command `name` (e.g. `invite-report`) with these string options; returns
    /// the interaction's token.
    pub fn command(&self, user: &FakeUser, name: &str, options: &[(&str, &str)]) -> String {
        let token = format!("token-{}", self.next_id());
        let options: Vec<Value> = options
            .iter()
            .map(|(name, value)| json!({"name": name, "type": 3, "value": value}))
            .collect();
        let data = json!({"id": "3001", "name": name, "type": 1, "options": options});
        self.dispatch(
            "INTERACTION_CREATE",
            self.interaction(2, &token, user, data, None),
        );
        token
    }

    /// Serves `bytes` as an uploaded file; returns its URL.
    pub fn host_attachment(&self, name: &str, bytes: Vec<u8>) -> String {
        self.shared
            .attachments
            .lock()
            .unwrap()
            .insert(name.to_owned(), bytes);
        format!("{}/attachments/{name}", self.base_url)
    }

    /// Types `/invite-check-list` with string options and, optionally, an attached file
    /// (file name, URL, the size Discord reports); returns the interaction's token.
    pub fn invite_check_list(
        &self,
        user: &FakeUser,
        options: &[(&str, &str)],
        file: Option<(&str, &str, u64)>,
    ) -> String {
        let token = format!("token-{}", self.next_id());
        let mut list: Vec<Value> = options
            .iter()
            .map(|(name, value)| json!({"name": name, "type": 3, "value": value}))
            .collect();
        let mut data = json!({"id": "3001", "name": "invite-check-list", "type": 1});
        if let Some((filename, url, size)) = file {
            let id = self.next_id();
            list.push(json!({"name": "file", "type": 11, "value": id}));
            data["resolved"] = json!({"attachments": {id.clone(): {
                "id": id, "filename": filename, "size": size, "url": url, "proxy_url": url,
                "content_type": if filename.ends_with(".csv") { "text/csv" } else { "text/plain" },
            }}});
        }
        data["options"] = json!(list);
        self.dispatch(
            "INTERACTION_CREATE",
            self.interaction(2, &token, user, data, None),
        );
        token
    }

    /// Types into the `workspace` option of `/invite-check`; returns the interaction's token.
    pub fn autocomplete(&self, user: &FakeUser, typed: &str) -> String {
        let (token, interaction) = self.autocomplete_json(user, typed);
        self.dispatch("INTERACTION_CREATE", interaction);
        token
    }

    /// The autocomplete interaction for `typed` in the `workspace` option: token and JSON.
    pub fn autocomplete_json(&self, user: &FakeUser, typed: &str) -> (String, Value) {
        let token = format!("token-{}", self.next_id());
        let data = json!({"id": "3000", "name": "invite-check", "type": 1, "options": [
            {"name": "email", "type": 3, "value": "jane@corp.example"},
            {"name": "workspace", "type": 3, "value": typed, "focused": true},
        ]});
        let interaction = self.interaction(4, &token, user, data, None);
        (token, interaction)
    }

    /// Presses the button `custom_id` on `message` (a message JSON, e.g. from [`message_json`]).
    pub fn press(&self, user: &FakeUser, custom_id: &str, message: Value) -> String {
        let (token, interaction) = self.press_json(user, custom_id, message);
        self.dispatch("INTERACTION_CREATE", interaction);
        token
    }

    /// A press of the button `custom_id` on `message`: token and JSON.
    pub fn press_json(&self, user: &FakeUser, custom_id: &str, message: Value) -> (String, Value) {
        let token = format!("token-{}", self.next_id());
        let data = json!({"custom_id": custom_id, "component_type": 2});
        let interaction = self.interaction(3, &token, user, data, Some(message));
        (token, interaction)
    }

    /// Someone writes `content` in `channel`.
    pub fn say(&self, user: &FakeUser, channel: u64, content: &str) {
        let mut message = message_json(&self.next_id(), channel, content, json!([]), json!([]));
        message["author"] = user.user_json();
        message["guild_id"] = json!(GUILD_ID.to_string());
        message["member"] = json!({"roles": user.roles, "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0});
        self.dispatch("MESSAGE_CREATE", message);
    }

    fn interaction(
        &self,
        kind: u8,
        token: &str,
        user: &FakeUser,
        data: Value,
        message: Option<Value>,
    ) -> Value {
        // Every field serenity 0.12.5 requires; without e.g. `attachment_size_limit` or
        // `entitlements` the event is dropped before it reaches the handler.
        let mut interaction = json!({
            "id": self.next_id(), "application_id": APPLICATION_ID, "type": kind, "token": token,
            "version": 1, "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "attachment_size_limit": 8_388_608, "app_permissions": "0",
            "guild_id": GUILD_ID.to_string(), "channel_id": CHANNEL_ID.to_string(),
            "member": user.member_json(), "data": data, "context": 0,
            "authorizing_integration_owners": {"0": GUILD_ID.to_string()},
        });
        if let Some(message) = message {
            interaction["message"] = message;
        }
        interaction
    }
}

/// A message as Discord returns it, with every field serenity requires.
pub fn message_json(
    id: &str,
    channel: u64,
    content: &str,
    embeds: Value,
    components: Value,
) -> Value {
    json!({
        "id": id, "channel_id": channel.to_string(), "content": content,
        "author": {"id": BOT_USER_ID, "username": "invite-bot", "discriminator": "0", "bot": true, "avatar": null},
        "timestamp": "2026-11-26T00:00:00.000000+00:00", "edited_timestamp": null, "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": embeds, "components": components, "pinned": false, "type": 0, "flags": 0,
    })
}

/// The message a callback body would have created, so a test can press one of its buttons.
pub fn message_from_callback(callback: &Recorded) -> Value {
    let data = &callback.body["data"];
    message_json(
        "880001",
        CHANNEL_ID,
        data["content"].as_str().unwrap_or(""),
        data.get("embeds").cloned().unwrap_or(json!([])),
        data.get("components").cloned().unwrap_or(json!([])),
    )
}

/// Every button `custom_id` in a message body, in order.
pub fn custom_ids(data: &Value) -> Vec<(String, String, bool)> {
    let mut found = Vec::new();
    for row in data["components"].as_array().into_iter().flatten() {
        for button in row["components"].as_array().into_iter().flatten() {
            found.push((
                button["label"].as_str().unwrap_or("").to_owned(),
                button["custom_id"].as_str().unwrap_or("").to_owned(),
                button["disabled"].as_bool().unwrap_or(false),
            ));
        }
    }
    found
}

async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let path = uri.path().to_owned();
    if let Some(name) = path.strip_prefix("/attachments/") {
        return match shared.attachments.lock().unwrap().get(name) {
            Some(bytes) => bytes.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    // Messages with files come as multipart: the JSON in `payload_json`, each file a part.
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (body, files): (Value, Vec<RecordedFile>) =
        if content_type.starts_with("multipart/form-data") {
            let mut json = Value::Null;
            let mut files = Vec::new();
            for (field, filename, content) in multipart_parts(content_type, &body) {
                match filename {
                    Some(filename) => files.push(RecordedFile {
                        field,
                        filename,
                        bytes: content,
                    }),
                    None if field == "payload_json" => {
                        json = serde_json::from_slice(&content).unwrap_or(Value::Null)
                    }
                    None => {}
                }
            }
            (json, files)
        } else {
            (
                serde_json::from_slice(&body).unwrap_or(Value::Null),
                Vec::new(),
            )
        };
    tracing::debug!(%method, %path, "fake discord request");
    {
        let mut limited = shared.rate_limited.lock().unwrap();
        if let Some((_, left)) = limited
            .iter_mut()
            .find(|(k, left)| path.contains(k.as_str()) && **left > 0)
        {
            *left -= 1;
            drop(limited);
            shared.requests.lock().unwrap().push(Recorded {
                method: method.clone(),
                path: format!("429 {path}"),
                body: body.clone(),
                at,
                files: files.clone(),
            });
            shared.changed.notify_waiters();
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0.2")],
                Json(json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false, "code": 0})),
            )
                .into_response();
        }
    }
    shared.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        body: body.clone(),
        at,
        files,
    });
    shared.changed.notify_waiters();
    let delay = shared
        .delayed
        .lock()
        .unwrap()
        .iter()
        .find(|(fragment, _)| path.contains(fragment.as_str()))
        .map(|(_, delay)| *delay);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let id = shared.ids.fetch_add(1, Ordering::SeqCst).to_string();
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => Json(json!({"url": *shared.ws_url.lock().unwrap()})).into_response(),
        ("GET", ["gateway", "bot"]) => Json(json!({
            "url": *shared.ws_url.lock().unwrap(), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        }))
        .into_response(),
        ("PUT", ["applications", _, "guilds", _, "commands"]) | ("PUT", ["applications", _, "commands"]) => {
            let commands: Vec<Value> = body
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| json!({"id": "3000", "type": 1, "application_id": APPLICATION_ID,
                               "name": c["name"], "description": c["description"], "version": "1"}))
                .collect();
            Json(json!(commands)).into_response()
        }
        ("POST", ["interactions", _, _, "callback"]) => StatusCode::NO_CONTENT.into_response(),
        ("PATCH", ["webhooks", _, _, "messages", _]) | ("POST", ["webhooks", _, _]) => Json(message_json(
            &id,
            CHANNEL_ID,
            body["content"].as_str().unwrap_or(""),
            body.get("embeds").cloned().unwrap_or(json!([])),
            body.get("components").cloned().unwrap_or(json!([])),
        ))
        .into_response(),
        ("POST", ["channels", channel, "messages"]) => Json(message_json(
            &id,
            channel.parse().unwrap_or(0),
            body["content"].as_str().unwrap_or(""),
            body.get("embeds").cloned().unwrap_or(json!([])),
            body.get("components").cloned().unwrap_or(json!([])),
        ))
        .into_response(),
        ("POST", ["channels", _, "messages", _, "threads"])
            if shared.refuse_threads.load(Ordering::SeqCst) =>
        {
            (StatusCode::FORBIDDEN, Json(json!({"code": 50001, "message": "Missing Access"}))).into_response()
        }
        ("POST", ["channels", channel, "messages", _, "threads"]) => Json(json!({
            "id": id, "type": 11, "guild_id": GUILD_ID.to_string(), "parent_id": channel,
            "name": body["name"], "nsfw": false, "position": 0, "permission_overwrites": [],
            "thread_metadata": {"archived": false, "auto_archive_duration": 1440, "locked": false,
                                "archive_timestamp": "2026-11-26T00:00:00.000000+00:00"},
        }))
        .into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"code": 0, "message": "404: Not Found"}))).into_response(),
    }
}

async fn gateway(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        // Like the real gateway: each event goes out at once, not held back by Nagle's algorithm
        // until the bot's delayed ACK (40 ms), which the benchmark would charge to the bot.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(socket) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let (mut sink, mut stream) = socket.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            *shared.gateway.lock().unwrap() = Some(tx.clone());
            let _ = tx.send(json!({"op": 10, "d": {"heartbeat_interval": 41250}}).to_string());
            let writer = tokio::spawn(async move {
                while let Some(frame) = rx.recv().await {
                    if sink.send(WsMessage::Text(frame)).await.is_err() {
                        break;
                    }
                }
            });
            while let Some(Ok(frame)) = stream.next().await {
                let WsMessage::Text(text) = frame else {
                    if matches!(frame, WsMessage::Close(_)) {
                        break;
                    }
                    continue;
                };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match payload["op"].as_u64() {
                    Some(1) => {
                        let _ = tx.send(json!({"op": 11}).to_string());
                    }
                    Some(2) => {
                        let seq = shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
                        let ready = json!({"op": 0, "s": seq, "t": "READY", "d": {
                            "v": 10, "user": {"id": BOT_USER_ID, "username": "bot", "bot": true, "discriminator": "0", "avatar": null},
                            "guilds": [], "session_id": "s", "resume_gateway_url": *shared.ws_url.lock().unwrap(),
                            "application": {"id": APPLICATION_ID, "flags": 0}}});
                        let _ = tx.send(ready.to_string());
                        *shared.identified.lock().unwrap() = true;
                        shared.ready.notify_waiters();
                    }
                    _ => {}
                }
            }
            writer.abort();
        });
    }
}
