//! Mailgun webhooks: HMAC-SHA256 of timestamp + token in the body; tokens single-use; 5 minutes.

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{both_backends, random_suffix};
use crate::http_app::{events, verdict, HttpApp, MEMBERS};

pub const SIGNING_KEY: &str = "key-test-signing-0123456789";

pub fn configure(config: &mut invite_bot::config::Config) {
    config.providers.mailgun =
        Some(toml::from_str(&format!("signing_key = \"{SIGNING_KEY}\"")).unwrap());
}

fn sign(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn event(kind: &str, severity: Option<&str>, email: &str, message_id: &str) -> Value {
    let mut data = json!({
        "event": kind, "id": format!("ev-{}", random_suffix()), "timestamp": 1_795_000_000.25,
        "recipient": email, "log-level": "error",
        "message": {"headers": {"message-id": message_id, "to": email}},
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist", "description": ""},
    });
    if let Some(severity) = severity {
        data["severity"] = json!(severity);
    }
    data
}

/// A request body signed with `key` at `timestamp` with a fresh token.
pub fn signed(data: &Value, key: &str, timestamp: i64) -> String {
    let token = random_suffix() + &random_suffix();
    let timestamp = timestamp.to_string();
    json!({
        "signature": {"timestamp": timestamp, "token": token, "signature": sign(key, &timestamp, &token)},
        "event-data": data,
    })
    .to_string()
}

both_backends! {
    async fn signed_events_change_the_verdict(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let now = Utc::now().timestamp();
        let delivered = event("delivered", None, "ada@school.example", "<msg-ada>");
        assert_eq!(http.post("/webhooks/mailgun", &[], signed(&delivered, SIGNING_KEY, now)).await.status, 200);
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_delivered");

        let temporary = event("failed", Some("temporary"), "bob@school.example", "msg-bob");
        assert_eq!(http.post("/webhooks/mailgun", &[], signed(&temporary, SIGNING_KEY, now)).await.status, 200);
        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_deferred");

        let permanent = event("failed", Some("permanent"), "cyd@school.example", "msg-cyd");
        let reply = http.post("/webhooks/mailgun", &[], signed(&permanent, SIGNING_KEY, now)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(verdict(&http.app, "cyd@school.example").await, "invite_suppressed");

        let complained = event("complained", None, "ada@school.example", "msg-ada");
        assert_eq!(http.post("/webhooks/mailgun", &[], signed(&complained, SIGNING_KEY, now)).await.status, 200);
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_suppressed");

        let stored = events(&http.app).await;
        assert_eq!(stored.len(), 4);
        assert!(stored.iter().all(|e| e.2), "every event attached: {stored:?}");
        assert_eq!(http.stored().await, (4, 2));

        // The same event re-sent with a new signature (a Mailgun retry) stores nothing new.
        let reply = http.post("/webhooks/mailgun", &[], signed(&permanent, SIGNING_KEY, now)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(http.stored().await, (4, 2));
        http.stop().await;
    }

    async fn forged_stale_and_replayed_requests_store_nothing(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let now = Utc::now().timestamp();
        let bounce = event("failed", Some("permanent"), "ada@school.example", "msg-ada");

        // Wrong key.
        let reply = http.post("/webhooks/mailgun", &[], signed(&bounce, "key-someone-else", now)).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        // Tampered: Mailgun signs timestamp + token (not the event), so those are what can be
        // tampered with; a changed token or timestamp no longer matches the signature.
        let body: Value = serde_json::from_str(&signed(&bounce, SIGNING_KEY, now)).unwrap();
        let mut new_token = body.clone();
        new_token["signature"]["token"] = json!("a-token-of-my-choosing-0123456789abcdef");
        let reply = http.post("/webhooks/mailgun", &[], new_token.to_string()).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert!(reply.body.contains("does not match"), "{}", reply.body);
        let mut new_time = body.clone();
        new_time["signature"]["timestamp"] = json!((now + 1).to_string());
        assert_eq!(http.post("/webhooks/mailgun", &[], new_time.to_string()).await.status, 401);
        let mut garbage = body;
        garbage["signature"]["signature"] = json!("zz-not-hex");
        assert_eq!(http.post("/webhooks/mailgun", &[], garbage.to_string()).await.status, 401);
        // Stale: signed six minutes ago.
        let reply = http.post("/webhooks/mailgun", &[], signed(&bounce, SIGNING_KEY, now - 360)).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert!(reply.body.contains("seconds away"), "{}", reply.body);
        // No signature at all.
        let unsigned = json!({"event-data": bounce}).to_string();
        assert_eq!(http.post("/webhooks/mailgun", &[], unsigned).await.status, 401);
        assert_eq!(http.stored().await, (0, 0));

        // A valid request, then the very same request again: the token was used.
        let body = signed(&bounce, SIGNING_KEY, now);
        assert_eq!(http.post("/webhooks/mailgun", &[], body.clone()).await.status, 200);
        let replay = http.post("/webhooks/mailgun", &[], body).await;
        assert_eq!(replay.status, 401, "{}", replay.body);
        assert!(replay.body.contains("replay"), "{}", replay.body);
        assert_eq!(http.stored().await, (1, 1));
        assert_eq!(http.app.count("webhook_tokens").await, 1);
        http.stop().await;
    }

    async fn malformed_bodies_get_a_reason(app) {
        let http = HttpApp::start(app, configure).await;
        let now = Utc::now().timestamp();
        let reply = http.post("/webhooks/mailgun", &[], "{{{").await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("not JSON"), "{}", reply.body);
        let no_severity = event("failed", None, "ada@school.example", "msg-ada");
        let reply = http.post("/webhooks/mailgun", &[], signed(&no_severity, SIGNING_KEY, now)).await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("severity"), "{}", reply.body);
        let mut bad_recipient = event("delivered", None, "ada@school.example", "msg-ada");
        bad_recipient["recipient"] = json!("ada at school");
        let reply = http.post("/webhooks/mailgun", &[], signed(&bad_recipient, SIGNING_KEY, now)).await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("not an email address"), "{}", reply.body);
        assert_eq!(http.stored().await, (0, 0));
        // A refused body does not use up its token: nothing at all was written.
        assert_eq!(http.app.count("webhook_tokens").await, 0);
        http.stop().await;
    }
}
