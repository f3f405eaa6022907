//! SendGrid Event Webhook: ECDSA P-256 over timestamp + raw body; batches of events.

use base64::Engine as _;
use chrono::Utc;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::json;

use crate::helpers::{both_backends, random_suffix};
use crate::http_app::{events, verdict, HttpApp, MEMBERS};

struct Keys {
    signing: SigningKey,
}

impl Keys {
    fn new() -> Self {
        Keys {
            signing: SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// The Verification Key as SendGrid shows it: base64 DER, no armour.
    fn public_key(&self) -> String {
        let der = self.signing.verifying_key().to_public_key_der().unwrap();
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes())
    }

    fn sign(&self, timestamp: &str, body: &str) -> String {
        let signature: Signature = self.signing.sign(format!("{timestamp}{body}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

fn configure(keys: &Keys) -> impl FnOnce(&mut invite_bot::config::Config) + '_ {
    move |config| {
        config.providers.sendgrid =
            Some(toml::from_str(&format!("public_key = \"{}\"", keys.public_key())).unwrap());
    }
}

fn event(kind: &str, email: &str, message_id: &str) -> serde_json::Value {
    json!({
        "email": email, "timestamp": 1_795_000_000, "event": kind,
        "sg_event_id": format!("sg-{}", random_suffix()),
        "sg_message_id": format!("{message_id}.filterdrecv-5bd4b6dd4-abcde-1-5F2A-3.0"),
        "smtp-id": format!("<{message_id}@ismtpd0001p1lon1.sendgrid.net>"),
    })
}

async fn post(http: &HttpApp, keys: &Keys, timestamp: i64, body: &str) -> crate::http_app::Reply {
    let timestamp = timestamp.to_string();
    let signature = keys.sign(&timestamp, body);
    http.post(
        "/webhooks/sendgrid",
        &[
            ("x-twilio-email-event-webhook-signature", &signature),
            ("x-twilio-email-event-webhook-timestamp", &timestamp),
        ],
        body.to_owned(),
    )
    .await
}

both_backends! {
    async fn a_batch_of_known_and_unknown_messages(app) {
        app.seed(MEMBERS).await;
        let keys = Keys::new();
        let http = HttpApp::start(app, configure(&keys)).await;
        let mut bounce = event("bounce", "ada@school.example", "msg-ada");
        bounce["reason"] = json!("550 5.1.1 The email account that you tried to reach does not exist");
        bounce["type"] = json!("bounce");
        let mut blocked = event("bounce", "cyd@school.example", "msg-cyd");
        blocked["type"] = json!("blocked");
        let batch = json!([
            event("processed", "bob@school.example", "msg-bob"),
            event("delivered", "bob@school.example", "msg-bob"),
            bounce,
            blocked,
            event("delivered", "stranger@elsewhere.example", "msg-unknown"),
            event("open", "bob@school.example", "msg-bob"),
        ])
        .to_string();
        let reply = post(&http, &keys, Utc::now().timestamp(), &batch).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let report: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(report["stored"], 4);
        assert_eq!(report["unknown_message"], 1);
        assert_eq!(report["suppressions_added"], 1);
        let stored = events(&http.app).await;
        assert_eq!(stored.iter().filter(|e| e.2).count(), 3, "{stored:?}");
        assert_eq!(stored[0].3.as_deref(), Some("msg-bob"), "the .filter suffix is not part of the id");

        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_delivered");
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_suppressed");
        assert_eq!(verdict(&http.app, "cyd@school.example").await, "invite_deferred");

        // The same batch again (a retry, or a replay inside the time window): nothing new.
        let reply = post(&http, &keys, Utc::now().timestamp(), &batch).await;
        assert_eq!(reply.status, 200);
        assert!(reply.body.contains("\"duplicates\":4"), "{}", reply.body);
        assert_eq!(http.stored().await, (4, 1));
        http.stop().await;
    }

    async fn deferred_dropped_and_spamreport(app) {
        app.seed(MEMBERS).await;
        let keys = Keys::new();
        let http = HttpApp::start(app, configure(&keys)).await;
        let mut deferred = event("deferred", "ada@school.example", "msg-ada");
        deferred["response"] = json!("400 try again later");
        let mut dropped = event("dropped", "bob@school.example", "msg-bob");
        dropped["reason"] = json!("Bounced Address");
        let batch = json!([deferred, dropped, event("spamreport", "cyd@school.example", "msg-cyd")]).to_string();
        assert_eq!(post(&http, &keys, Utc::now().timestamp(), &batch).await.status, 200);
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_deferred");
        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_suppressed");
        assert_eq!(verdict(&http.app, "cyd@school.example").await, "invite_suppressed");
        http.stop().await;
    }

    async fn bad_signatures_store_nothing(app) {
        app.seed(MEMBERS).await;
        let keys = Keys::new();
        let http = HttpApp::start(app, configure(&keys)).await;
        let batch = json!([event("bounce", "ada@school.example", "msg-ada")]).to_string();
        let now = Utc::now().timestamp();

        // Signed by another key.
        let reply = post(&http, &Keys::new(), now, &batch).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        // Tampered body: the signature is for the original.
        let timestamp = now.to_string();
        let signature = keys.sign(&timestamp, &batch);
        let tampered = batch.replace("ada@school.example", "bob@school.example");
        let headers = [
            ("x-twilio-email-event-webhook-signature", signature.as_str()),
            ("x-twilio-email-event-webhook-timestamp", timestamp.as_str()),
        ];
        assert_eq!(http.post("/webhooks/sendgrid", &headers, tampered).await.status, 401);
        // The timestamp changed after signing.
        let later = (now + 1).to_string();
        let headers = [
            ("x-twilio-email-event-webhook-signature", signature.as_str()),
            ("x-twilio-email-event-webhook-timestamp", later.as_str()),
        ];
        assert_eq!(http.post("/webhooks/sendgrid", &headers, batch.clone()).await.status, 401);
        // Stale: validly signed ten minutes ago (a captured request replayed later).
        let reply = post(&http, &keys, now - 600, &batch).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert!(reply.body.contains("seconds away"), "{}", reply.body);
        // No signature, garbage signature.
        assert_eq!(http.post("/webhooks/sendgrid", &[], batch.clone()).await.status, 401);
        let headers = [
            ("x-twilio-email-event-webhook-signature", "bm90IGEgc2lnbmF0dXJl"),
            ("x-twilio-email-event-webhook-timestamp", timestamp.as_str()),
        ];
        assert_eq!(http.post("/webhooks/sendgrid", &headers, batch).await.status, 401);
        assert_eq!(http.stored().await, (0, 0));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_sent");
        http.stop().await;
    }

    async fn malformed_batches_get_a_reason(app) {
        let keys = Keys::new();
        let http = HttpApp::start(app, configure(&keys)).await;
        let now = Utc::now().timestamp();
        let reply = post(&http, &keys, now, "{\"not\": \"an array\"}").await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("JSON array"), "{}", reply.body);
        let mut no_id = event("delivered", "ada@school.example", "msg-ada");
        no_id.as_object_mut().unwrap().remove("sg_event_id");
        // One bad event refuses the whole batch: nothing half-written.
        let batch = json!([event("delivered", "bob@school.example", "msg-bob"), no_id]).to_string();
        let reply = post(&http, &keys, now, &batch).await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("event #2") && reply.body.contains("sg_event_id"), "{}", reply.body);
        assert_eq!(http.stored().await, (0, 0));
        http.stop().await;
    }
}

#[test]
fn a_bad_public_key_is_a_config_error() {
    let config: invite_bot::config::ProvidersConfig =
        toml::from_str("[sendgrid]\npublic_key = \"bm90IGEga2V5\"").unwrap();
    let error = invite_bot::providers::Webhooks::from_config(&config).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("providers.sendgrid.public_key"),
        "{error}"
    );
}
