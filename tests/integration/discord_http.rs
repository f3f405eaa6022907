//! Discord's HTTP interactions endpoint (`[discord] mode = "http"`): `serve` in this process,
//! interactions signed here with a generated Ed25519 key and POSTed to it, REST follow-ups
//! received by the fake Discord. The flow is the gateway's (`discord.rs`): same cards, buttons,
//! refusals, ephemerality and no mentions; only the first response travels in the HTTP answer.

use std::net::SocketAddr;
use std::time::Duration;

use invite_bot::app::serve::{self, ServeError, ServeOptions};
use invite_bot::config::{Config, DiscordMode};
use invite_bot::discord::DiscordOptions;
use invite_bot_testkit::fake_discord::{
    self, custom_ids, message_json, FakeDiscord, FakeUser, Recorded, CHANNEL_ID, GUILD_ID,
};
use invite_bot_testkit::signing::{now_seconds, InteractionSigner};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::discord::{
    admin, agent, assert_no_mentions, init_tracing, outsider, ESCALATION_CHANNEL, FIXTURE,
    SUPPORT_ROLE,
};
use crate::helpers::{configure_discord, Backend, TestApp};

pub const ENDPOINT: &str = "/discord/interactions";

/// `[discord]` in http mode against `fake`, and the grants of the gateway tests.
pub fn configure_http_mode(config: &mut Config, fake: &FakeDiscord, signer: &InteractionSigner) {
    configure_discord(config);
    config.discord.mode = DiscordMode::Http;
    config.discord.public_key = Some(signer.public_key_hex());
    config.discord.application_id = Some(fake_discord::APPLICATION_ID.parse().unwrap());
    config.discord.api_base_url = Some(fake.base_url.clone());
    config.http.listen = "127.0.0.1:0".into();
}

/// A seeded app served in http mode, the fake Discord for the REST calls, and the signing key.
pub struct HttpModeApp {
    pub app: TestApp,
    pub fake: FakeDiscord,
    pub signer: InteractionSigner,
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<Result<(), ServeError>>>,
}

impl HttpModeApp {
    pub async fn spawn(backend: Backend, options: DiscordOptions) -> Option<Self> {
        Self::spawn_with(backend, options, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        options: DiscordOptions,
        configure: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        init_tracing();
        let fake = FakeDiscord::start().await;
        let signer = InteractionSigner::generate();
        let (fake_for_config, signer_for_config) = (fake.clone(), signer.clone());
        let app = TestApp::spawn_with(backend, move |config| {
            configure_http_mode(config, &fake_for_config, &signer_for_config);
            configure(config);
        })
        .await?;
        app.seed(FIXTURE).await;
        let (shutdown, stop) = oneshot::channel::<()>();
        let (listening, address) = oneshot::channel::<SocketAddr>();
        let (config, actions) = (app.config.clone(), app.actions.clone());
        let serve = tokio::spawn(async move {
            serve::run(
                &config,
                actions,
                ServeOptions {
                    discord: DiscordOptions {
                        rate_limit_wait: Duration::from_millis(200),
                        ..options
                    },
                    ..ServeOptions::default()
                },
                async move {
                    let _ = stop.await;
                },
                move |addr| {
                    let _ = listening.send(addr);
                },
            )
            .await
        });
        let address = tokio::time::timeout(Duration::from_secs(15), address)
            .await
            .expect("serve listens within 15 s")
            .expect("serve started");
        Some(HttpModeApp {
            app,
            fake,
            signer,
            base: format!("http://{address}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            shutdown: Some(shutdown),
            serve: Some(serve),
        })
    }

    /// POSTs `body` to the endpoint with these headers.
    pub async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, String)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{ENDPOINT}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.unwrap()
    }

    /// POSTs `interaction`, signed now; returns the status and the JSON body (Null if none).
    pub async fn interact(&self, interaction: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(interaction).unwrap();
        let headers = self.signer.headers(&body);
        let response = self.post_raw(body, &headers).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `/invite-check` typed by `user`: its token and the HTTP response's JSON.
    pub async fn invite_check(&self, user: &FakeUser, options: &[(&str, &str)]) -> (String, Value) {
        let (token, interaction) = self.fake.invite_check_json(user, options);
        let (status, body) = self.interact(&interaction).await;
        assert_eq!(status, 200, "{body:#}");
        (token, body)
    }

    /// Presses `label` in the message `answer` (a type-4 response) showed; token and response.
    pub async fn press(&self, user: &FakeUser, answer: &Value, label: &str) -> (String, Value) {
        let (token, interaction) = self.press_json(user, answer, label);
        let (status, body) = self.interact(&interaction).await;
        assert_eq!(status, 200, "{body:#}");
        (token, body)
    }

    pub fn press_json(&self, user: &FakeUser, answer: &Value, label: &str) -> (String, Value) {
        press_json(&self.fake, user, answer, label)
    }

    /// The follow-up message sent through the REST API for `token`.
    pub async fn followup(&self, token: &str) -> Recorded {
        followup(&self.fake, token).await
    }

    pub async fn readyz(&self) -> u16 {
        self.client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Begins the shutdown (as SIGTERM does); `stopped` then waits for `serve` to return.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn stopped(&mut self) {
        if let Some(serve) = self.serve.take() {
            tokio::time::timeout(Duration::from_secs(20), serve)
                .await
                .expect("serve stops within 20 s")
                .unwrap()
                .expect("serve stopped without an error");
        }
    }

    pub async fn stop(mut self) {
        self.begin_shutdown();
        self.stopped().await;
    }
}

impl Drop for HttpModeApp {
    fn drop(&mut self) {
        if let Some(serve) = self.serve.take() {
            serve.abort();
        }
    }
}

/// A press of the button `label` of the message `answer` (a type-4 response body) showed.
pub fn press_json(
    fake: &FakeDiscord,
    user: &FakeUser,
    answer: &Value,
    label: &str,
) -> (String, Value) {
    let data = &answer["data"];
    let (_, custom_id, _) = custom_ids(data)
        .into_iter()
        .find(|(l, _, _)| l == label)
        .unwrap_or_else(|| panic!("no button {label:?} in {answer:#}"));
    let message = message_json(
        "880001",
        CHANNEL_ID,
        data["content"].as_str().unwrap_or(""),
        data.get("embeds").cloned().unwrap_or(json!([])),
        data.get("components").cloned().unwrap_or(json!([])),
    );
    fake.press_json(user, &custom_id, message)
}

/// The follow-up message sent through the REST API for `token` (waits up to 10 s).
pub async fn followup(fake: &FakeDiscord, token: &str) -> Recorded {
    let fragment = format!("/webhooks/{}/{token}", fake_discord::APPLICATION_ID);
    fake.wait_for(
        "follow-up",
        |r| r.method == "POST" && r.path.ends_with(&fragment),
        1,
    )
    .await
    .remove(0)
}

fn ping() -> Value {
    json!({"id": "1", "application_id": fake_discord::APPLICATION_ID, "type": 1, "token": "t", "version": 1})
}

/// Each test once per backend.
macro_rules! http_mode_tests {
    ($(async fn $name:ident($app:ident) $(options $options:expr;)? $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run(backend: Backend) {
                    #[allow(unused_variables)]
                    let options = DiscordOptions::default();
                    $(let options = $options;)?
                    #[allow(unused_mut)]
                    let Some(mut $app) = HttpModeApp::spawn(backend, options).await else {
                        return;
                    };
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(Backend::Postgres).await;
                }
            }
        )*
    };
}

http_mode_tests! {
    async fn only_requests_signed_with_the_application_key_are_read(app) {
        let body = serde_json::to_vec(&ping()).unwrap();
        let now = now_seconds();

        // Signed now with the right key: PONG.
        let response = app.post_raw(body.clone(), &app.signer.headers(&body)).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"type": 1}));

        // The body changed after signing.
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        let response = app.post_raw(tampered, &app.signer.headers(&body)).await;
        assert_eq!(response.status().as_u16(), 401, "tampered body");

        // Signed with another key.
        let stranger = InteractionSigner::generate();
        let response = app.post_raw(body.clone(), &stranger.headers(&body)).await;
        assert_eq!(response.status().as_u16(), 401, "wrong key");

        // The timestamp moved after signing.
        let mut headers = app.signer.headers(&body);
        headers[1].1 = (now + 1).to_string();
        let response = app.post_raw(body.clone(), &headers).await;
        assert_eq!(response.status().as_u16(), 401, "timestamp not the signed one");

        // Correctly signed, but too old or too far ahead (a replay).
        for timestamp in [now - 301, now + 301] {
            let headers = app.signer.headers_at(&timestamp.to_string(), &body);
            let response = app.post_raw(body.clone(), &headers).await;
            assert_eq!(response.status().as_u16(), 401, "timestamp {timestamp} vs now {now}");
        }
        // Within the window: fine.
        let headers = app.signer.headers_at(&(now - 200).to_string(), &body);
        assert_eq!(app.post_raw(body.clone(), &headers).await.status().as_u16(), 200);

        // Headers missing, or the signature not even hex.
        let signed = app.signer.headers(&body);
        for kept in [vec![], vec![signed[0].clone()], vec![signed[1].clone()]] {
            let response = app.post_raw(body.clone(), &kept).await;
            assert_eq!(response.status().as_u16(), 401, "headers {kept:?}");
        }
        let garbage = [("x-signature-ed25519", "zz".to_owned()), signed[1].clone()];
        assert_eq!(app.post_raw(body.clone(), &garbage).await.status().as_u16(), 401);

        // A body that is not an interaction is refused unread when unsigned, 400 when signed.
        let junk = b"not json".to_vec();
        assert_eq!(app.post_raw(junk.clone(), &[]).await.status().as_u16(), 401);
        let headers = app.signer.headers(&junk);
        assert_eq!(app.post_raw(junk, &headers).await.status().as_u16(), 400);

        // Larger than 64 KiB: 413, even correctly signed.
        let big = format!(r#"{{"type":1,"pad":"{}"}}"#, "x".repeat(65 * 1024)).into_bytes();
        let headers = app.signer.headers(&big);
        assert_eq!(app.post_raw(big, &headers).await.status().as_u16(), 413);

        // Nothing of this reached Discord's API, and no check ran.
        assert!(app.fake.requests_to("/interactions/").is_empty());
        assert!(app.fake.requests_to("/webhooks/").is_empty());
        app.stop().await;
    }

    async fn commands_are_registered_through_the_rest_api(app) {
        let put = app
            .fake
            .wait_for("command registration", |r| r.method == "PUT", 1)
            .await
            .remove(0);
        assert_eq!(put.path, format!("/api/v10/applications/2000/guilds/{GUILD_ID}/commands"));
        assert_eq!(put.body[0]["name"], "invite-check");
        assert_eq!(put.body[0]["options"][1]["autocomplete"], true);
        // No gateway: the bot never asked where it is.
        assert!(app.fake.requests_to("/gateway").is_empty());
        app.stop().await;
    }

    async fn a_quick_check_is_answered_in_the_response_body(app) {
        let (_, answer) = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        assert_eq!(answer["type"], 4, "{answer:#}");
        let data = &answer["data"];
        assert_eq!(data["flags"], 64, "ephemeral by default");
        assert_no_mentions(data);
        assert_eq!(data["embeds"][0]["color"], 0xF1C40F);
        let labels: Vec<String> = custom_ids(data).into_iter().map(|(l, _, _)| l).collect();
        assert_eq!(labels, ["Escalate to support"]);
        // The answer went back in the HTTP response, not through the callback endpoint.
        assert!(app.fake.requests_to("/callback").is_empty());

        // Refusals are the gateway's too: no check permission, a private refusal.
        let (_, refused) = app.invite_check(&outsider(), &[("email", "active@corp.example")]).await;
        assert_eq!(refused["type"], 4);
        assert_eq!(refused["data"]["flags"], 64);
        let content = refused["data"]["content"].as_str().unwrap().to_lowercase();
        assert!(content.contains("permission"), "{refused:#}");
        assert!(refused["data"]["embeds"].as_array().is_none_or(|e| e.is_empty()));
        app.stop().await;
    }

    async fn a_slow_check_is_deferred_and_edited_in_through_the_rest_api(app)
        options DiscordOptions { answer_within: Duration::ZERO, ..DiscordOptions::default() };
    {
        let (token, answer) = app.invite_check(&agent(), &[("email", "jane.doe@corp.example")]).await;
        assert_eq!(answer["type"], 5, "deferred: {answer:#}");
        assert_eq!(answer["data"]["flags"], 64, "the deferral keeps the answer private");
        let fragment = format!("/webhooks/2000/{token}/messages/@original");
        let edit = app
            .fake
            .wait_for("the answer edited in", |r| r.method == "PATCH" && r.path.ends_with(&fragment), 1)
            .await
            .remove(0);
        assert_eq!(edit.body["embeds"][0]["color"], 0xD93F0B);
        assert_no_mentions(&edit.body);
        app.stop().await;
    }

    async fn in_a_burst_a_check_defers_at_once_and_its_card_follows(app) {
        // Nine presses of a button nobody offered, their follow-ups held up at Discord: nine
        // interactions in flight, as in a burst. (The default `answer_within` is 1.5 s.)
        app.fake.delay("/webhooks/2000/", Duration::from_secs(2));
        let message = invite_bot_testkit::fake_discord::message_json(
            "880001",
            invite_bot_testkit::fake_discord::CHANNEL_ID,
            "",
            json!([]),
            json!([]),
        );
        let mut held = Vec::new();
        for _ in 0..9 {
            let (token, press) = app.fake.press_json(&admin(), "ib:forged", message.clone());
            let (status, ack) = app.interact(&press).await;
            assert_eq!((status, ack["type"].as_u64()), (200, Some(6)), "{ack:#}");
            held.push(token);
        }
        let (token, answer) = app.invite_check(&agent(), &[("email", "jane.doe@corp.example")]).await;
        assert_eq!(answer["type"], 5, "busy: deferred at once, not after the engine: {answer:#}");
        assert_eq!(answer["data"]["flags"], 64, "the deferral keeps the answer private");
        let fragment = format!("/webhooks/2000/{token}/messages/@original");
        let edit = app
            .fake
            .wait_for("the card edited in", |r| r.method == "PATCH" && r.path.ends_with(&fragment), 1)
            .await
            .remove(0);
        assert_eq!(edit.body["embeds"][0]["color"], 0xD93F0B, "the same card: {:#}", edit.body);
        for token in &held {
            app.followup(token).await;
        }
        // Recorded on arrival, answered 2 s later: then the presses' flows are done.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // The burst is over: the next check waits for the engine and answers in the response.
        let (_, answer) = app.invite_check(&agent(), &[("email", "jane.doe@corp.example")]).await;
        assert_eq!(answer["type"], 4, "{answer:#}");
        app.stop().await;
    }

    async fn the_workspace_option_is_autocompleted(app) {
        let (_, interaction) = app.fake.autocomplete_json(&agent(), "ac");
        let (status, answer) = app.interact(&interaction).await;
        assert_eq!(status, 200);
        assert_eq!(answer["type"], 8);
        assert_eq!(answer["data"]["choices"][0]["value"], "acme");
        assert_eq!(answer["data"]["choices"][0]["name"], "Acme Academy (acme)");
        let (_, interaction) = app.fake.autocomplete_json(&agent(), "zz");
        let (_, answer) = app.interact(&interaction).await;
        assert_eq!(answer["data"]["choices"], json!([]));
        app.stop().await;
    }

    async fn a_press_is_acknowledged_then_finished_through_the_rest_api(app) {
        let (_, answer) = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        // A presser without the permission first: acknowledged, refused privately, nothing sent.
        let (stranger, ack) = app.press(&agent(), &answer, "Resend invite").await;
        assert_eq!(ack["type"], 6);
        let refused = app.followup(&stranger).await;
        assert_eq!(refused.body["flags"], 64);
        assert!(refused.body["content"].as_str().unwrap().to_lowercase().contains("permission"), "{:#}", refused.body);
        assert!(app.app.smtp.received().is_empty(), "nothing sent");

        let (token, ack) = app.press(&admin(), &answer, "Resend invite").await;
        assert_eq!(ack["type"], 6, "acknowledged at once: {ack:#}");
        let followup = app.followup(&token).await;
        assert_eq!(followup.body["flags"], 64);
        assert_no_mentions(&followup.body);
        let mail = app.app.smtp.received();
        assert_eq!(mail.len(), 1, "one invitation sent");
        assert_eq!(mail[0].to, ["never@corp.example"]);
        let fragment = format!("/webhooks/2000/{token}/messages/@original");
        let edit = app
            .fake
            .wait_for("original updated", |r| r.method == "PATCH" && r.path.ends_with(&fragment), 1)
            .await
            .remove(0);
        assert!(edit.body["content"].as_str().unwrap().contains("done by admin"), "{:#}", edit.body);
        assert!(custom_ids(&edit.body).iter().all(|(_, _, disabled)| *disabled));

        // A replay of the same button: acknowledged, refused, nothing sent.
        let (again, ack) = app.press(&admin(), &answer, "Resend invite").await;
        assert_eq!(ack["type"], 6);
        let refused = app.followup(&again).await;
        assert!(refused.body["content"].as_str().unwrap().contains("already done"), "{:#}", refused.body);
        assert_eq!(app.app.smtp.received().len(), 1);
        app.stop().await;
    }

    async fn an_escalation_is_posted_to_the_support_channel(app) {
        let (_, answer) = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        let (token, ack) = app.press(&agent(), &answer, "Escalate to support").await;
        assert_eq!(ack["type"], 6);
        assert_eq!(app.followup(&token).await.body["flags"], 64);
        let posted = app
            .fake
            .wait_for("escalation", |r| r.method == "POST" && r.path == format!("/api/v10/channels/{ESCALATION_CHANNEL}/messages"), 1)
            .await
            .remove(0);
        assert!(posted.body["content"].as_str().unwrap().starts_with(&format!("<@&{SUPPORT_ROLE}>")));
        assert_eq!(posted.body["allowed_mentions"]["roles"], json!([SUPPORT_ROLE]));
        assert_eq!(posted.body["allowed_mentions"]["users"], json!([]));
        app.stop().await;
    }

    async fn shutdown_drains_what_is_in_flight_and_refuses_the_rest(app) {
        assert_eq!(app.readyz().await, 200);
        // Discord is slow to take the follow-up: the press is still in flight when SIGTERM comes.
        app.fake.delay("/webhooks/", Duration::from_millis(1500));
        let (_, answer) = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        let (token, ack) = app.press(&admin(), &answer, "Resend invite").await;
        assert_eq!(ack["type"], 6);
        let began = std::time::Instant::now();
        app.begin_shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Draining: not ready, new interactions refused; PING still answered.
        assert_eq!(app.readyz().await, 503, "readyz fails as soon as shutdown begins");
        let (_, late) = app.fake.invite_check_json(&agent(), &[("email", "active@corp.example")]);
        assert_eq!(app.interact(&late).await.0, 503, "no new interaction while draining");
        assert_eq!(app.interact(&ping()).await.0, 200);

        // The press in flight finishes: its edit and follow-up are sent, then serve exits.
        app.stopped().await;
        assert!(began.elapsed() >= Duration::from_millis(1500), "serve waited for the follow-up");
        let followup = app.followup(&token).await;
        assert!(followup.body["content"].is_string(), "{:#}", followup.body);
        assert_eq!(app.app.smtp.received().len(), 1);
    }
}
