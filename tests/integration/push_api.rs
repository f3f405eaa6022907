//! The push API (`POST /api/v1/members`, `/api/v1/invitations`): Standard Webhooks signatures
//! (valid, tampered, wrong secret, stale, early, replayed, across replicas), batches applied all or
//! nothing and idempotently, bad rows named by index, bounds, and invitations whose Message-ID lets
//! a provider's event attach to them.

use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{both_backends, random_suffix};
use crate::http_app::{verdict, HttpApp, Reply};

/// The product's copy of `[api] push_secret`.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7t/BzD1tWRs=";

/// Request headers as name and value.
type Headers = Vec<(&'static str, String)>;

pub fn push_on(config: &mut invite_bot::config::Config) {
    config.api.push_secret = Some(SECRET.into());
}

/// The three Standard Webhooks headers of one request.
pub struct Signed(Vec<(&'static str, String)>);

impl Signed {
    pub fn borrowed(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    pub fn id(&self) -> &str {
        &self.0[0].1
    }
}

/// Signed now with a new id, as a product's Standard Webhooks library does it.
pub fn signed(secret: &str, body: &str) -> Signed {
    sign_as(
        secret,
        &format!("msg_{}", random_suffix()),
        Utc::now().timestamp(),
        body,
    )
}

pub fn sign_as(secret: &str, id: &str, timestamp: i64, body: &str) -> Signed {
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, timestamp, body.as_bytes())
        .unwrap();
    Signed(vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ])
}

async fn push(http: &HttpApp, path: &str, body: &Value) -> Reply {
    let body = body.to_string();
    http.post(path, &signed(SECRET, &body).borrowed(), body)
        .await
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

fn member(email: &str, status: &str, updated_at: &str) -> Value {
    json!({
        "workspace": "acme", "workspace_name": "Acme Academy", "email": email,
        "role": "learner", "status": status, "invited_at": "2026-11-30T09:00:00Z",
        "activated_at": null, "updated_at": updated_at, "deleted": false,
    })
}

fn members(rows: Vec<Value>) -> Value {
    json!({ "members": rows })
}

both_backends! {
    async fn a_signed_batch_is_applied_once_and_idempotently(app) {
        let http = HttpApp::start(app, push_on).await;
        let batch = members(vec![
            member("ada@school.example", "invited", "2026-11-30T10:00:00Z"),
            member("bob@school.example", "active", "2026-11-30T10:00:00Z"),
        ]);
        let reply = push(&http, "/api/v1/members", &batch).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(json_of(&reply), json!({"applied": 2, "unchanged": 0}));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_never_sent");

        // The same rows again (a new id): nothing newer, nothing changed.
        let again = push(&http, "/api/v1/members", &batch).await;
        assert_eq!(json_of(&again), json!({"applied": 0, "unchanged": 2}));
        // An older row changes nothing either; a newer one does.
        let older = members(vec![member("ada@school.example", "deactivated", "2026-11-29T10:00:00Z")]);
        assert_eq!(json_of(&push(&http, "/api/v1/members", &older).await), json!({"applied": 0, "unchanged": 1}));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_never_sent");
        let newer = members(vec![member("ada@school.example", "deactivated", "2026-11-30T11:00:00Z")]);
        assert_eq!(json_of(&push(&http, "/api/v1/members", &newer).await), json!({"applied": 1, "unchanged": 0}));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "deactivated");
    }

    async fn signatures_that_do_not_hold_are_refused_and_apply_nothing(app) {
        let http = HttpApp::start(app, push_on).await;
        let body = members(vec![member("ada@school.example", "invited", "2026-11-30T10:00:00Z")]).to_string();
        let path = "/api/v1/members";
        let now = Utc::now().timestamp();
        let other_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let tampered = body.replace("invited", "active\"       ");
        // (case, headers, body, what the refusal says)
        let cases: Vec<(&str, Headers, String, &str)> = vec![
            ("unsigned", vec![], body.clone(), "webhook-id header is missing"),
            ("tampered", sign_as(SECRET, "msg_1", now, &body).0, tampered, "does not match"),
            ("wrong secret", sign_as(other_secret, "msg_2", now, &body).0, body.clone(), "does not match"),
            ("stale", sign_as(SECRET, "msg_3", now - 6 * 60, &body).0, body.clone(), "more than 5 minutes old"),
            ("early", sign_as(SECRET, "msg_4", now + 6 * 60, &body).0, body.clone(), "ahead"),
            ("the oldest time there is", sign_as(SECRET, "msg_6", i64::MIN, &body).0, body.clone(), "more than 5 minutes old"),
            ("the latest time there is", sign_as(SECRET, "msg_7", i64::MAX, &body).0, body.clone(), "ahead"),
            ("not a time", {
                let mut h = sign_as(SECRET, "msg_5", now, &body).0;
                h[1].1 = "soon".into();
                h
            }, body.clone(), "Unix time"),
        ];
        for (what, headers, body, reason) in cases {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = http.post(path, &headers, body).await;
            assert_eq!(reply.status, 401, "{what}: {}", reply.body);
            let answer = json_of(&reply);
            assert_eq!(answer["error"], "unauthorized", "{what}");
            assert!(answer["message"].as_str().unwrap().contains(reason), "{what}: {answer}");
        }
        assert_eq!(http.app.count("members").await, 0, "nothing was applied");
        assert_eq!(http.app.count("webhook_tokens").await, 0, "no id was spent");
    }

    async fn a_replayed_id_is_refused_even_by_another_replica(app) {
        let http = HttpApp::start(app, push_on).await;
        let body = members(vec![member("ada@school.example", "invited", "2026-11-30T10:00:00Z")]).to_string();
        let headers = signed(SECRET, &body);
        let first = http.post("/api/v1/members", &headers.borrowed(), body.clone()).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let replay = http.post("/api/v1/members", &headers.borrowed(), body.clone()).await;
        assert_eq!(replay.status, 401, "{}", replay.body);
        assert!(json_of(&replay)["message"].as_str().unwrap().contains("used before"));

        // A second bot on the same database knows the id too.
        let mut config = invite_bot::config::Config::default();
        push_on(&mut config);
        let state = invite_bot::app::serve::http_state(&config, http.app.second_instance().await).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let replica = invite_bot::app::serve::start_http("127.0.0.1:0", state, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
        let mut request = http.client.post(format!("http://{}/api/v1/members", replica.local_addr))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in headers.borrowed() {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
        stop.send(()).unwrap();
        replica.wait().await.unwrap();
        assert_eq!(http.app.count("webhook_tokens").await, 1);
    }

    async fn a_bad_row_refuses_the_whole_batch_naming_each(app) {
        let http = HttpApp::start(app, push_on).await;
        let mut unknown_field = member("eve@school.example", "invited", "2026-11-30T10:00:00Z");
        unknown_field["nickname"] = json!("Eve");
        let mut no_time = member("dan@school.example", "invited", "2026-11-30T10:00:00Z");
        no_time.as_object_mut().unwrap().remove("updated_at");
        let mut wrong_type = member("fay@school.example", "invited", "2026-11-30T10:00:00Z");
        wrong_type["deleted"] = json!("no");
        let batch = members(vec![
            member("ada@school.example", "invited", "2026-11-30T10:00:00Z"),
            member("not an address", "invited", "2026-11-30T10:00:00Z"),
            no_time,
            unknown_field,
            member("bob@school.example", "sleeping", "2026-11-30T10:00:00Z"),
            wrong_type,
            json!("a string"),
        ]);
        let body = batch.to_string();
        let headers = signed(SECRET, &body);
        let reply = http.post("/api/v1/members", &headers.borrowed(), body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        let answer = json_of(&reply);
        assert_eq!(answer["error"], "bad_rows");
        let rows = answer["rows"].as_array().unwrap();
        let named: Vec<(u64, &str)> = rows
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
            .collect();
        assert_eq!(
            named,
            [(1, "email"), (2, "updated_at"), (3, "nickname"), (4, "status"), (5, "deleted"), (6, "")],
            "{answer}"
        );
        for row in rows {
            assert!(!row["reason"].as_str().unwrap().is_empty(), "{row}");
        }
        assert_eq!(http.app.count("members").await, 0, "nothing of the batch was applied");

        // The id of a refused batch is not spent: the fixed batch may reuse it.
        let fixed = members(vec![member("ada@school.example", "invited", "2026-11-30T10:00:00Z")]).to_string();
        let again = sign_as(SECRET, headers.id(), Utc::now().timestamp(), &fixed);
        let reply = http.post("/api/v1/members", &again.borrowed(), fixed).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    async fn batches_are_bounded(app) {
        let http = HttpApp::start(app, push_on).await;
        let rows = (0..1001)
            .map(|i| member(&format!("m{i}@school.example"), "invited", "2026-11-30T10:00:00Z"))
            .collect();
        let reply = push(&http, "/api/v1/members", &members(rows)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(json_of(&reply)["message"].as_str().unwrap().contains("at most 1000"));

        let rows: Vec<Value> = (0..1000)
            .map(|i| member(&format!("m{i}@school.example"), "invited", "2026-11-30T10:00:00Z"))
            .collect();
        let reply = push(&http, "/api/v1/members", &members(rows)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(json_of(&reply)["applied"], 1000);

        let huge = format!("{{\"members\": [], \"pad\": \"{}\"}}", "x".repeat(3 << 20));
        let signature = signed(SECRET, &huge);
        let mut headers = signature.borrowed();
        headers.push(crate::openapi::CLOSE);
        let reply = http.post("/api/v1/members", &headers, huge).await;
        assert_eq!(reply.status, 413);
        assert_eq!(json_of(&reply)["error"], "too_large");

        for (body, says) in [
            ("not json", "not JSON"),
            ("[]", "not a JSON object"),
            ("{\"rows\": []}", "`rows` is not a field"),
            ("{\"members\": {}}", "must be a list"),
        ] {
            let reply = http.post("/api/v1/members", &signed(SECRET, body).borrowed(), body).await;
            assert_eq!(reply.status, 400, "{body}");
            assert!(json_of(&reply)["message"].as_str().unwrap().contains(says), "{}", reply.body);
        }
    }

    async fn without_a_secret_the_push_api_is_off(app) {
        let http = HttpApp::start(app, |_| {}).await;
        for path in ["/api/v1/members", "/api/v1/invitations"] {
            let body = "{\"members\": []}";
            let reply = http.post(path, &signed(SECRET, body).borrowed(), body).await;
            assert_eq!(reply.status, 404, "{}", reply.body);
            let answer = json_of(&reply);
            assert_eq!(answer["error"], "not_enabled");
            assert!(answer["message"].as_str().unwrap().contains("push_secret"));
        }
    }

    async fn a_pushed_invitation_takes_the_providers_events(app) {
        let http = HttpApp::start(app, |config| {
            push_on(config);
            config.providers.postmark = Some(
                toml::from_str("webhook_username = \"pm\"\nwebhook_password = \"pw\"\n").unwrap(),
            );
        })
        .await;
        let sent = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let batch = members(vec![member("ada@school.example", "invited", &sent)]);
        assert_eq!(push(&http, "/api/v1/members", &batch).await.status, 200);
        let invitations = json!({"invitations": [{
            "workspace": "acme", "email": "ada@school.example", "sent_at": sent,
            "message_id": "<pushed-1@mail.acme.example>", "updated_at": sent,
        }]});
        let reply = push(&http, "/api/v1/invitations", &invitations).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(json_of(&reply), json!({"applied": 1, "unchanged": 0}));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_sent");

        // Postmark reports the bounce of that message: it attaches to the pushed invitation.
        use base64::Engine as _;
        let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("pm:pw"));
        let bounce = json!({"RecordType": "Bounce", "ID": 9, "Type": "HardBounce",
            "MessageID": "pushed-1@mail.acme.example", "Email": "ada@school.example",
            "BouncedAt": Utc::now().to_rfc3339(), "Details": "smtp;550 5.1.1 user unknown"});
        let reply = http.post("/webhooks/postmark", &[("authorization", &auth)], bounce.to_string()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let stored = crate::http_app::events(&http.app).await;
        assert!(stored[0].2, "the bounce attached to the pushed invitation: {stored:?}");
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_suppressed");

        // An invitation for a member the bot does not hold refuses the batch, naming the row.
        let stranger = json!({"invitations": [
            invitations["invitations"][0].clone(),
            {"workspace": "acme", "email": "nobody@school.example", "sent_at": sent, "updated_at": sent},
        ]});
        let reply = push(&http, "/api/v1/invitations", &stranger).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(json_of(&reply)["rows"][0]["index"], 1, "{}", reply.body);
    }

    async fn old_ids_are_forgotten(app) {
        use invite_bot::store::ReplayToken;
        let store = app.engine.store();
        let token = |id: &str| ReplayToken {
            provider: "push",
            token: id.into(),
            keep_for: chrono::Duration::minutes(10),
        };
        let now = Utc::now();
        assert!(store.remember_replay_token(&token("old"), now - chrono::Duration::minutes(11)).await.unwrap());
        assert!(!store.replay_token_seen(&token("old"), now).await.unwrap(), "past its window");
        assert!(store.remember_replay_token(&token("new"), now).await.unwrap());
        assert!(!store.remember_replay_token(&token("new"), now).await.unwrap());
        assert!(store.replay_token_seen(&token("new"), now).await.unwrap());
        assert_eq!(app.count("webhook_tokens").await, 1, "the old id was pruned");
    }
}

#[test]
fn the_push_secret_must_be_a_standard_webhooks_secret() {
    use invite_bot::config::Config;
    let load = |secret: &str| {
        let env = |key: &str| (key == "INVITE_BOT_PUSH_SECRET").then(|| secret.to_owned());
        Config::load(None, &env)
    };
    let config = load(SECRET).unwrap();
    assert!(config.api.push_secret.is_some());
    assert!(
        !format!("{config:?}").contains("MfKQ9r8"),
        "the secret is not printed"
    );
    for bad in ["s3cret", "whsec_not base64!", "whsec_c2hvcnQ="] {
        let error = load(bad).unwrap_err().to_string();
        assert!(error.starts_with("api.push_secret"), "{error}");
        assert!(!error.contains(bad), "the secret is not echoed: {error}");
    }
}
