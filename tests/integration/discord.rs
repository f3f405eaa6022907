//! The Discord edge end to end: the real serenity client against the local fake Discord.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use invite_bot::config::Config;
use invite_bot::discord::{DiscordBot, DiscordOptions};
use invite_bot::store::Store;
use invite_bot_testkit::fake_discord::{
    self, custom_ids, message_from_callback, FakeDiscord, FakeUser, Recorded, CHANNEL_ID, GUILD_ID,
};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{configure_discord, Backend, TestApp};

pub const FIXTURE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "active@corp.example"
role = "trainer"
status = "active"
activated_at = "3 days ago"

[[member]]
workspace = "acme"
email = "never@corp.example"
role = "learner"
status = "invited"
invited_at = "2 days ago"

[[member]]
workspace = "acme"
email = "jane.doe@corp.example"
role = "learner"
status = "invited"
invited_at = "2 days ago"

[[invitation]]
workspace = "acme"
email = "jane.doe@corp.example"
sent_at = "2 days ago"

[[delivery_event]]
email = "jane.doe@corp.example"
event = "bounced"
bounce = "hard"
at = "2 days ago"
detail = "550 5.1.1 user unknown"
"#;

pub use crate::helpers::{ADMIN_ROLE, ESCALATION_CHANNEL, SUPPORT_ROLE};

pub fn agent() -> FakeUser {
    FakeUser::new("111", "agent", &[SUPPORT_ROLE])
}

pub fn admin() -> FakeUser {
    FakeUser::new("333", "admin", &[ADMIN_ROLE])
}

pub fn outsider() -> FakeUser {
    FakeUser::new("222", "outsider", &[])
}

/// Tracing on, so an event serenity drops (a model mismatch) shows up as a warning in test output.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("RUST_LOG")
                .unwrap_or_else(|_| "warn,serenity=warn,invite_bot=info".to_owned()),
        )
        .with_test_writer()
        .try_init();
}

/// A seeded app, the fake Discord, and the real bot connected to it.
pub struct DiscordApp {
    pub app: TestApp,
    pub fake: FakeDiscord,
    shutdown: Option<oneshot::Sender<()>>,
    bot: Option<JoinHandle<Result<(), invite_bot::discord::DiscordError>>>,
}

impl DiscordApp {
    pub async fn spawn_with_options(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
        options: DiscordOptions,
    ) -> Option<Self> {
        init_tracing();
        let captured = Arc::new(Mutex::new(None));
        let keep = captured.clone();
        let app = TestApp::spawn_with(backend, move |config| {
            configure_discord(config);
            config.discord.support_channel_ids = vec![CHANNEL_ID];
            configure(config);
            *keep.lock().unwrap() = Some(config.clone());
        })
        .await?;
        app.seed(FIXTURE).await;
        let config = captured.lock().unwrap().take().unwrap();
        let fake = FakeDiscord::start().await;
        let bot = DiscordBot::new(app.actions.clone(), &config)
            .unwrap()
            .with_api_base(fake.base_url.clone())
            .with_options(DiscordOptions {
                rate_limit_wait: Duration::from_millis(200),
                ..options
            });
        let (shutdown, stop) = oneshot::channel::<()>();
        let bot = tokio::spawn(bot.run(async move {
            let _ = stop.await;
        }));
        fake.wait_ready().await;
        Some(DiscordApp {
            app,
            fake,
            shutdown: Some(shutdown),
            bot: Some(bot),
        })
    }

    /// `/invite-check` typed by `user`; returns the interaction callback the bot sent.
    pub async fn invite_check(&self, user: &FakeUser, options: &[(&str, &str)]) -> Recorded {
        let token = self.fake.invite_check(user, options);
        self.callback(&token).await
    }

    /// The interaction callback for `token` (the first successful one).
    pub async fn callback(&self, token: &str) -> Recorded {
        let fragment = format!("/{token}/callback");
        self.fake
            .wait_for("interaction callback", |r| r.path.ends_with(&fragment), 1)
            .await
            .remove(0)
    }

    /// Presses the button labelled `label` in the message `callback` created; returns the token.
    pub fn press(&self, user: &FakeUser, callback: &Recorded, label: &str) -> String {
        let (_, custom_id, _) = custom_ids(&callback.body["data"])
            .into_iter()
            .find(|(l, _, _)| l == label)
            .unwrap_or_else(|| panic!("no button {label:?} in {:#}", callback.body));
        self.fake
            .press(user, &custom_id, message_from_callback(callback))
    }

    /// The follow-up message sent for an interaction `token`.
    pub async fn followup(&self, token: &str) -> Recorded {
        let fragment = format!("/webhooks/{}/{token}", fake_discord::APPLICATION_ID);
        self.fake
            .wait_for(
                "follow-up",
                |r| r.method == "POST" && r.path.ends_with(&fragment),
                1,
            )
            .await
            .remove(0)
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(bot) = self.bot.take() {
            let result = tokio::time::timeout(Duration::from_secs(15), bot)
                .await
                .expect("the bot did not shut down within 15 s")
                .unwrap();
            result.expect("the bot stopped with an error");
        }
    }
}

impl Drop for DiscordApp {
    fn drop(&mut self) {
        if let Some(bot) = self.bot.take() {
            bot.abort();
        }
    }
}

/// Sets a button record's offer time back, as if the check had been run long ago.
pub async fn age_buttons(store: &Store, hours: i64) {
    let at = chrono::Utc::now() - chrono::Duration::hours(hours);
    match store {
        Store::Sqlite(pool, _) => {
            sqlx::query("UPDATE chat_buttons SET offered_at = $1")
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
        Store::Postgres(pool, _) => {
            sqlx::query("UPDATE chat_buttons SET offered_at = $1")
                .bind(at)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

pub fn assert_no_mentions(body: &Value) {
    let mentions = &body["allowed_mentions"];
    assert_eq!(
        mentions["parse"],
        serde_json::json!([]),
        "allowed_mentions: {body:#}"
    );
    assert_eq!(mentions["users"], serde_json::json!([]), "{body:#}");
    assert_eq!(mentions["roles"], serde_json::json!([]), "{body:#}");
}

fn labels(data: &Value) -> Vec<String> {
    custom_ids(data)
        .into_iter()
        .map(|(label, _, _)| label)
        .collect()
}

fn all_text(data: &Value) -> String {
    data.to_string()
}

/// Each test once per backend, with `$app` a connected [`DiscordApp`]; PostgreSQL is skipped (or
/// fails, under `INVITE_BOT_REQUIRE_POSTGRES=1`) as in `helpers.rs`.
macro_rules! discord_tests {
    ($(async fn $name:ident($app:ident) $(with $configure:expr;)? $(options $options:expr;)? $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run(backend: Backend) {
                    #[allow(unused_variables)]
                    let configure = |_: &mut Config| {};
                    $(let configure = $configure;)?
                    #[allow(unused_variables)]
                    let options = DiscordOptions::default();
                    $(let options = $options;)?
                    let Some($app) = DiscordApp::spawn_with_options(backend, configure, options).await else {
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

const GREEN: u64 = 0x2EA043;
const YELLOW: u64 = 0xF1C40F;
const RED: u64 = 0xD93F0B;

discord_tests! {
    async fn registers_the_command_and_shuts_down_cleanly(app) {
        let put = app
            .fake
            .wait_for("command registration", |r| r.method == "PUT", 1)
            .await
            .remove(0);
        assert_eq!(put.path, format!("/api/v10/applications/2000/guilds/{GUILD_ID}/commands"));
        let command = &put.body[0];
        assert_eq!(command["name"], "invite-check");
        assert_eq!(command["options"][0]["name"], "email");
        assert_eq!(command["options"][0]["required"], true);
        assert_eq!(command["options"][1]["name"], "workspace");
        assert_eq!(command["options"][1]["autocomplete"], true);
        app.stop().await;
    }

    async fn invite_check_answers_with_an_embed_per_verdict(app) {
        // (who asks, address, colour, the buttons offered: only the actions that person may take)
        let cases: &[(FakeUser, &str, u64, &[&str])] = &[
            (agent(), "active@corp.example", GREEN, &[]),
            (agent(), "never@corp.example", YELLOW, &["Escalate to support"]),
            (admin(), "never@corp.example", YELLOW, &["Resend invite", "Issue activation code", "Escalate to support"]),
            (agent(), "jane.doe@corp.example", RED, &["Escalate to support"]),
            (admin(), "jane.doe@corp.example", RED, &["Issue activation code", "Escalate to support"]),
            (agent(), "jane.deo@corp.example", RED, &["Did you mean jane.doe@corp.example?"]),
        ];
        for (user, address, colour, buttons) in cases {
            let callback = app.invite_check(user, &[("email", address)]).await;
            let body = &callback.body;
            assert_eq!(body["type"], 4, "{address}: answered at once");
            assert_eq!(body["data"]["flags"], 64, "{address}: ephemeral by default");
            assert_no_mentions(&body["data"]);
            let embed = &body["data"]["embeds"][0];
            assert_eq!(embed["color"], *colour, "{address}: {embed:#}");
            assert!(!embed["title"].as_str().unwrap().is_empty());
            assert!(!embed["fields"].as_array().unwrap().is_empty(), "{address}: findings as fields");
            assert_eq!(labels(&body["data"]), *buttons, "{address}");
            for (_, custom_id, disabled) in custom_ids(&body["data"]) {
                assert!(custom_id.len() <= 100 && !custom_id.contains('@'), "opaque: {custom_id}");
                assert!(!disabled);
            }
        }
    }

    async fn a_workspace_default_comes_from_the_guild(app) with |c: &mut Config| {
        c.discord.default_workspaces.insert(GUILD_ID.to_string(), "nowhere".into());
    }; {
        let callback = app.invite_check(&agent(), &[("email", "active@corp.example")]).await;
        let content = callback.body["data"]["content"].as_str().unwrap_or_default().to_owned();
        assert!(content.contains("nowhere"), "{content}");
        assert!(callback.body["data"]["embeds"].as_array().is_none_or(|e| e.is_empty()));
    }

    async fn public_replies_when_configured(app) with |c: &mut Config| c.discord.ephemeral_replies = false; {
        let callback = app.invite_check(&agent(), &[("email", "active@corp.example")]).await;
        assert_eq!(callback.body["type"], 4);
        assert_ne!(callback.body["data"]["flags"], 64);
    }

    async fn checks_need_the_support_role(app) {
        let callback = app.invite_check(&outsider(), &[("email", "active@corp.example")]).await;
        let data = &callback.body["data"];
        assert_eq!(data["flags"], 64);
        assert!(data["content"].as_str().unwrap().to_lowercase().contains("permission"), "{data:#}");
        assert!(data["embeds"].as_array().is_none_or(|e| e.is_empty()));
    }

    async fn mention_injection_in_the_address_is_inert(app) {
        for input in ["<@&7000>@everyone", "jane_*x*@everyone", "@here"] {
            let callback = app.invite_check(&agent(), &[("email", input)]).await;
            let data = &callback.body["data"];
            assert_no_mentions(data);
            let text = all_text(data);
            assert!(!text.contains("@everyone") && !text.contains("@here"), "{input}: {text}");
            assert!(!text.contains("<@&"), "{input}: {text}");
            assert!(!text.contains("*x*"), "{input}: {text}");
        }
        // A well-formed address with markdown in it is echoed escaped in the findings.
        let callback = app.invite_check(&agent(), &[("email", "ja_ne*@corp.example")]).await;
        let text = all_text(&callback.body["data"]["embeds"][0]["fields"]);
        assert!(!text.contains("ja_ne*@"), "{text}");
    }

    async fn did_you_mean_runs_the_check_for_the_suggestion(app) {
        let callback = app.invite_check(&agent(), &[("email", "jane.deo@corp.example")]).await;
        let token = app.press(&agent(), &callback, "Did you mean jane.doe@corp.example?");
        let ack = app.callback(&token).await;
        assert_eq!(ack.body["type"], 6, "buttons are acknowledged at once");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        assert_no_mentions(&answer.body);
        assert_eq!(answer.body["embeds"][0]["color"], RED);
        assert!(all_text(&answer.body["embeds"][0]).contains("jane.doe@corp.example"));
    }

    async fn forged_buttons_are_refused(app) {
        let callback = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        let message = message_from_callback(&callback);
        for custom_id in ["ib:AAAAAAAAAAAAAAAAAAAAAAAA", "resend_invite:never@corp.example:acme", "ib:../../x"] {
            let token = app.fake.press(&agent(), custom_id, message.clone());
            let answer = app.followup(&token).await;
            assert_eq!(answer.body["flags"], 64);
            assert!(answer.body["content"].as_str().unwrap().contains("not one the bot offered"), "{:#}", answer.body);
        }
        assert!(app.fake.requests_to("/messages/@original").is_empty(), "nothing was updated");
    }

    async fn stale_buttons_ask_for_a_new_check(app) {
        let callback = app.invite_check(&agent(), &[("email", "jane.deo@corp.example")]).await;
        age_buttons(app.app.engine.store(), 2).await;
        let token = app.press(&agent(), &callback, "Did you mean jane.doe@corp.example?");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        assert!(answer.body["content"].as_str().unwrap().contains("run the check again"), "{:#}", answer.body);
        assert!(answer.body["embeds"].as_array().is_none_or(|e| e.is_empty()));

        // An action button just as much: nothing is sent.
        let callback = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        age_buttons(app.app.engine.store(), 2).await;
        let token = app.press(&admin(), &callback, "Resend invite");
        let answer = app.followup(&token).await;
        assert!(answer.body["content"].as_str().unwrap().contains("run the check again"), "{:#}", answer.body);
        assert!(app.app.smtp.received().is_empty());
    }

    async fn the_listener_offers_check_buttons_and_no_diagnosis(app) {
        app.fake.say(&agent(), CHANNEL_ID,
            "my learners a1@corp.example a2@corp.example a3@corp.example a4@corp.example \
             a5@corp.example a6@corp.example never got it @everyone <@&7000>");
        let posted = app.fake
            .wait_for("listener reply", |r| r.method == "POST" && r.path.ends_with(&format!("/channels/{CHANNEL_ID}/messages")), 1)
            .await
            .remove(0);
        assert_no_mentions(&posted.body);
        assert_eq!(
            labels(&posted.body),
            ["Check a1@corp.example", "Check a2@corp.example", "Check a3@corp.example", "Check a4@corp.example", "Check a5@corp.example"]
        );
        assert!(posted.body["embeds"].as_array().is_none_or(|e| e.is_empty()), "no public diagnosis");
        assert!(!all_text(&posted.body).contains("not_registered"));

        // Pressing one shows the check privately to the presser.
        let message = fake_discord::message_json("990001", CHANNEL_ID, "", serde_json::json!([]), posted.body["components"].clone());
        let (_, custom_id, _) = custom_ids(&posted.body)[0].clone();
        let token = app.fake.press(&agent(), &custom_id, message);
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        assert_eq!(answer.body["embeds"][0]["color"], RED);

        // A message naming nobody, or in another channel, gets nothing.
        app.fake.say(&agent(), CHANNEL_ID, "hello, is anyone there?");
        app.fake.say(&agent(), 1234, "jane.doe@corp.example never got it");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.fake.requests_to("/messages").iter().filter(|r| r.method == "POST" && r.path.contains("/channels/")).count(), 1);
    }

    async fn the_listener_replies_to_one_person_only_so_often(app) {
        for i in 0..12 {
            app.fake.say(&agent(), CHANNEL_ID, &format!("learner{i}@corp.example never got it"));
        }
        app.fake
            .wait_for("listener replies", |r| r.method == "POST" && r.path.ends_with(&format!("/channels/{CHANNEL_ID}/messages")), 5)
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let replies = app.fake.requests_to("/messages").iter().filter(|r| r.method == "POST" && r.path.contains("/channels/")).count();
        assert_eq!(replies, 5, "five replies a minute per person and channel");
    }

    async fn a_database_outage_mid_conversation_gets_a_clear_reply(app) {
        let first = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        assert_eq!(first.body["data"]["embeds"][0]["color"], YELLOW);
        app.app.engine.store().close().await;
        let callback = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        let content = callback.body["data"]["content"].as_str().unwrap().to_owned();
        assert!(content.contains("not reachable") && content.contains("ref "), "{content}");
        assert_eq!(callback.body["data"]["flags"], 64);
        // A press during the outage is answered too, never left to fail.
        let token = app.press(&agent(), &first, "Escalate to support");
        let answer = app.followup(&token).await;
        assert!(answer.body["content"].as_str().unwrap().contains("ref "), "{:#}", answer.body);
    }

    async fn slow_answers_are_deferred_and_edited_in(app) options DiscordOptions {
        answer_within: Duration::ZERO,
        ..DiscordOptions::default()
    }; {
        let callback = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        assert_eq!(callback.body["type"], 5);
        assert_eq!(callback.body["data"]["flags"], 64);
        let edit = app.fake
            .wait_for("edited answer", |r| r.method == "PATCH" && r.path.ends_with("/messages/@original"), 1)
            .await
            .remove(0);
        assert_eq!(edit.body["embeds"][0]["color"], YELLOW);
        assert_no_mentions(&edit.body);
        assert_eq!(labels(&edit.body), ["Escalate to support"]);
    }

    async fn a_429_is_waited_out_and_retried_once(app) {
        app.fake.rate_limit("/callback", 1);
        let callback = app.invite_check(&agent(), &[("email", "active@corp.example")]).await;
        assert_eq!(callback.body["type"], 4);
        let limited = app.fake.requests().iter().filter(|r| r.path.starts_with("429 ") && r.path.ends_with("/callback")).count();
        assert_eq!(limited, 1);

        // Twice limited: one retry, then the bot gives up instead of looping.
        app.fake.rate_limit("/callback", 5);
        let token = app.fake.invite_check(&agent(), &[("email", "active@corp.example")]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let attempts = app.fake.requests().iter().filter(|r| r.path.contains(&token)).count();
        assert_eq!(attempts, 2);
    }

    async fn an_admin_resends_and_the_message_is_finished(app) {
        let callback = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        let token = app.press(&admin(), &callback, "Resend invite");
        assert_eq!(app.callback(&token).await.body["type"], 6, "deferred: sending mail may be slow");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        assert_no_mentions(&answer.body);
        let mail = app.app.smtp.received();
        assert_eq!(mail.len(), 1, "one invitation sent");
        assert_eq!(mail[0].to, ["never@corp.example"]);

        // The original message now shows the outcome, every button disabled.
        let edit = app.fake
            .wait_for("original updated", |r| r.method == "PATCH" && r.path.ends_with("/messages/@original"), 1)
            .await
            .remove(0);
        assert!(edit.body["content"].as_str().unwrap().contains("done by admin"), "{:#}", edit.body);
        assert_no_mentions(&edit.body);
        let buttons = custom_ids(&edit.body);
        assert_eq!(buttons.len(), 3);
        assert!(buttons.iter().all(|(_, _, disabled)| *disabled), "{buttons:?}");

        // The same button again (a replay): refused, nothing sent.
        let again = app.press(&admin(), &callback, "Resend invite");
        let answer = app.followup(&again).await;
        assert!(answer.body["content"].as_str().unwrap().contains("already done"), "{:#}", answer.body);
        assert_eq!(app.app.smtp.received().len(), 1);
    }

    async fn a_non_admin_press_is_refused_and_audited(app) {
        // The agent is not offered Resend, but may press it on an admin's message.
        let callback = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        let audit_before = app.app.count("audit_log").await;
        let token = app.press(&agent(), &callback, "Resend invite");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        assert!(answer.body["content"].as_str().unwrap().to_lowercase().contains("permission"), "{:#}", answer.body);
        assert!(app.app.smtp.received().is_empty(), "nothing sent");
        assert!(app.fake.requests_to("/messages/@original").is_empty(), "the message is unchanged");
        assert_eq!(app.app.count("audit_log").await, audit_before + 1, "the refusal is audited");
        assert!(app.app.dump("audit_log").await.contains("forbidden"));

        // Someone without any permission gets the same refusal.
        let token = app.press(&outsider(), &callback, "Issue activation code");
        assert!(app.followup(&token).await.body["content"].as_str().unwrap().to_lowercase().contains("permission"));

        // The refusal did not use the button up: an admin can still press it.
        let token = app.press(&admin(), &callback, "Resend invite");
        app.followup(&token).await;
        assert_eq!(app.app.smtp.received().len(), 1);
    }

    async fn activation_codes_are_shown_only_to_the_admin(app) {
        let callback = app.invite_check(&admin(), &[("email", "jane.doe@corp.example")]).await;
        let token = app.press(&admin(), &callback, "Issue activation code");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64, "always ephemeral");
        let text = answer.body["content"].as_str().unwrap().to_owned();
        assert!(text.contains("Activation code"), "{text}");
        assert!(text.contains("Do not open the activation link"), "{text}");
        let edit = app.fake
            .wait_for("original updated", |r| r.method == "PATCH" && r.path.ends_with("/messages/@original"), 1)
            .await
            .remove(0);
        let code_line = text.lines().find(|l| l.starts_with("Activation code:")).unwrap();
        let code = code_line.split_whitespace().nth(2).unwrap().trim_matches('\\');
        assert!(code.len() >= 6, "{code_line}");
        assert!(!edit.body.to_string().contains(code), "the code never reaches the shared message");
    }

    async fn escalation_is_posted_to_the_support_channel(app) {
        let callback = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        let token = app.press(&agent(), &callback, "Escalate to support");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        let posted = app.fake
            .wait_for("escalation", |r| r.method == "POST" && r.path == format!("/api/v10/channels/{ESCALATION_CHANNEL}/messages"), 1)
            .await
            .remove(0);
        let content = posted.body["content"].as_str().unwrap();
        assert!(content.starts_with(&format!("<@&{SUPPORT_ROLE}>")), "{content}");
        // Only the support role may be pinged.
        assert_eq!(posted.body["allowed_mentions"]["parse"], serde_json::json!([]));
        assert_eq!(posted.body["allowed_mentions"]["roles"], serde_json::json!([SUPPORT_ROLE]));
        assert_eq!(posted.body["allowed_mentions"]["users"], serde_json::json!([]));
        let embed = all_text(&posted.body["embeds"][0]);
        assert!(embed.contains("ESC-") && embed.contains("never") && embed.contains("agent"), "{embed}");
        assert!(embed.contains("```json") && embed.contains("invite_never_sent"), "the full diagnosis: {embed}");
        app.fake
            .wait_for("thread", |r| r.method == "POST" && r.path.ends_with("/threads"), 1)
            .await;
    }

    async fn the_workspace_option_is_autocompleted(app) {
        let token = app.fake.autocomplete(&agent(), "ac");
        let callback = app.callback(&token).await;
        assert_eq!(callback.body["type"], 8);
        assert_eq!(callback.body["data"]["choices"][0]["value"], "acme");
        assert_eq!(callback.body["data"]["choices"][0]["name"], "Acme Academy (acme)");
        let token = app.fake.autocomplete(&agent(), "zz");
        let callback = app.callback(&token).await;
        assert_eq!(callback.body["data"]["choices"], serde_json::json!([]));
    }

    async fn listener_buttons_remember_their_message(app) {
        app.fake.say(&agent(), CHANNEL_ID, "jane.doe@corp.example never got it");
        app.fake
            .wait_for("listener reply", |r| r.method == "POST" && r.path.ends_with("/messages"), 1)
            .await;
        // The store is written right after the message is sent.
        for _ in 0..50 {
            if app.app.dump("chat_buttons").await.contains(&format!("{CHANNEL_ID}/")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("button not tied to its message: {}", app.app.dump("chat_buttons").await);
    }

    async fn an_smtp_failure_is_a_clear_reply_not_a_finished_message(app) {
        app.app.smtp.set_mode(crate::smtp::SmtpMode::Permanent);
        let callback = app.invite_check(&admin(), &[("email", "never@corp.example")]).await;
        let token = app.press(&admin(), &callback, "Resend invite");
        let answer = app.followup(&token).await;
        assert_eq!(answer.body["flags"], 64);
        let text = answer.body["content"].as_str().unwrap().to_owned();
        assert!(text.contains("ref "), "{text}");
        assert!(app.fake.requests_to("/messages/@original").is_empty(), "not shown as done: {text}");

        assert!(app.app.smtp.received().is_empty());
        // The button was given back (what a second press does is the engine's idempotency rule).
        let (_, custom_id, _) = custom_ids(&callback.body["data"])
            .into_iter()
            .find(|(label, _, _)| label == "Resend invite")
            .unwrap();
        let record = app.app.engine.store().find_button(&custom_id[3..]).await.unwrap().unwrap();
        assert!(record.used_at.is_none() && record.outcome.is_none(), "{record:?}");
    }

    async fn escalation_without_thread_permission_is_still_posted(app) {
        app.fake.refuse_threads();
        let callback = app.invite_check(&agent(), &[("email", "never@corp.example")]).await;
        let token = app.press(&agent(), &callback, "Escalate to support");
        let answer = app.followup(&token).await;
        assert!(answer.body["content"].as_str().unwrap().contains("ESC-"), "{:#}", answer.body);
        let posted = app.fake.requests_to(&format!("/channels/{ESCALATION_CHANNEL}/messages"));
        assert_eq!(posted.iter().filter(|r| !r.path.contains("threads")).count(), 1);
    }

    async fn without_guilds_the_command_is_registered_globally(app) with |c: &mut Config| c.discord.guild_ids.clear(); {
        let put = app
            .fake
            .wait_for("command registration", |r| r.method == "PUT", 1)
            .await
            .remove(0);
        assert_eq!(put.path, "/api/v10/applications/2000/commands");
        assert_eq!(put.body[0]["name"], "invite-check");
    }
}

#[tokio::test]
async fn serve_refuses_a_discord_api_base_that_is_not_local() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[discord]\napi_base_url = \"http://discord.evil.example\"\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("DISCORD_TOKEN", "t")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("discord.api_base_url"), "{stderr}");
}
