//! Alerts end to end: problems arriving as webhook batches (or made by time), the scan recording
//! each once, and the posts the real serenity HTTP client makes to the fake Discord.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use invite_bot::actions::Actions;
use invite_bot::alerts::{AlertRun, AlertSettings, Alerts};
use invite_bot::chat::Chat;
use invite_bot::config::Config;
use invite_bot::discord::alerts::DiscordAlerts;
use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::invitation::{BounceKind, DeliveryEventKind, SuppressionReason};
use invite_bot::store::{NewDeliveryEvent, NewSuppression, Store, WebhookBatch};
use invite_bot_testkit::fake_discord::{custom_ids, FakeDiscord, Recorded};
use serde_json::Value;

use crate::helpers::{both_backends, TestApp};

const CHANNEL: u64 = 7001;
const OTHER_CHANNEL: u64 = 7002;

/// Workspace `acme` (alerts to [`CHANNEL`]) and `beta` (no channel), invited members with one
/// invitation each, `m-<local>` its message id.
fn fixture(members: &[&str]) -> String {
    let mut text = String::from(
        "[[workspace]]\nslug = \"acme\"\nname = \"Acme Academy\"\n\
         [[workspace]]\nslug = \"beta\"\nname = \"Beta\"\n",
    );
    for email in members {
        let workspace = if email.starts_with("beta.") {
            "beta"
        } else {
            "acme"
        };
        text.push_str(&format!(
            "[[member]]\nworkspace = \"{workspace}\"\nemail = \"{email}\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"{workspace}\"\nemail = \"{email}\"\nsent_at = \"2 hours ago\"\nmessage_id = \"m-{email}\"\n"
        ));
    }
    text
}

fn configure(config: &mut Config) {
    config.discord.token = Some("test-token".to_owned().into());
    config.alerts.channels = [("acme".to_owned(), CHANNEL)].into_iter().collect();
}

/// The alert service as `serve` builds it, posting to `fake`.
fn alerts(actions: &Actions, config: &Config, fake: &FakeDiscord) -> Alerts {
    let mut config = config.clone();
    config.discord.api_base_url = Some(fake.base_url.clone());
    let poster = DiscordAlerts::from_config(&config).unwrap();
    Alerts::new(
        Chat::new(actions.clone(), &config),
        AlertSettings::from_config(&config).unwrap(),
        Arc::new(poster),
    )
}

fn event(email: &str, kind: DeliveryEventKind, bounce: Option<BounceKind>) -> NewDeliveryEvent {
    event_at(email, kind, bounce, Utc::now())
}

fn event_at(
    email: &str,
    kind: DeliveryEventKind,
    bounce: Option<BounceKind>,
    at: DateTime<Utc>,
) -> NewDeliveryEvent {
    NewDeliveryEvent {
        event_key: format!("test:{email}:{}:{}", kind.as_str(), at.timestamp_micros()),
        message_ids: vec![format!("m-{email}")],
        recipient: EmailAddress::parse(email).unwrap(),
        kind,
        bounce,
        at,
        detail: Some("550 5.1.1 <x@y> unknown @everyone <@123> https://evil.example".into()),
    }
}

fn suppression(email: &str, reason: SuppressionReason) -> NewSuppression {
    NewSuppression {
        recipient: EmailAddress::parse(email).unwrap(),
        reason,
        at: Utc::now(),
    }
}

async fn webhook(app: &TestApp, events: Vec<NewDeliveryEvent>, suppressions: Vec<NewSuppression>) {
    app.engine
        .store()
        .record_webhook_batch(
            &WebhookBatch {
                replay_token: None,
                events,
                suppressions,
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

/// Alert posts made to `channel`, in order.
fn posts(fake: &FakeDiscord, channel: u64) -> Vec<Recorded> {
    let path = format!("/api/v10/channels/{channel}/messages");
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .collect()
}

/// A post's text as a person reads it: without the escapes that keep it inert.
fn content(post: &Recorded) -> String {
    post.body["content"]
        .as_str()
        .unwrap_or("")
        .replace(['\u{200B}', '\\'], "")
}

async fn run(alerts: &Alerts, now: DateTime<Utc>) -> AlertRun {
    alerts.run_once(now).await.unwrap()
}

both_backends! {
    async fn one_alert_per_problem_never_twice(app) with configure; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&[
            "ann@one.example", "bob@two.example", "cat@three.example",
            "dan@four.example", "beta.eve@five.example",
        ]))
        .await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        // The first run marks where history ends.
        assert_eq!(run(&alerts, Utc::now()).await, AlertRun::default());

        webhook(
            &app,
            vec![
                event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard)),
                event("bob@two.example", DeliveryEventKind::SpamComplaint, None),
                // Not a problem: delivered, and a soft bounce (still retried).
                event("dan@four.example", DeliveryEventKind::Delivered, None),
                event("cat@three.example", DeliveryEventKind::Bounced, Some(BounceKind::Soft)),
                // An unmapped workspace gets nothing.
                event("beta.eve@five.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard)),
            ],
            vec![
                // The bounce's own suppression is the same problem: one alert, not two.
                suppression("ann@one.example", SuppressionReason::HardBounce),
                suppression("cat@three.example", SuppressionReason::Manual),
            ],
        )
        .await;
        let first = run(&alerts, Utc::now()).await;
        assert_eq!((first.recorded, first.messages, first.alerts_posted), (3, 3, 3), "{first:?}");
        let sent = posts(&fake, CHANNEL);
        assert_eq!(sent.len(), 3);
        assert!(posts(&fake, OTHER_CHANNEL).is_empty());
        let texts: Vec<String> = sent.iter().map(content).collect();
        assert!(texts[0].contains("ann@one.example") && texts[0].contains("bounced"), "{texts:?}");
        assert!(texts[1].contains("bob@two.example") && texts[1].contains("spam"), "{texts:?}");
        assert!(texts[2].contains("cat@three.example") && texts[2].contains("suppression"), "{texts:?}");
        // Each post is the card of a check, with its buttons.
        let card = &sent[0].body["embeds"][0];
        // (Suppressed outranks bounced; the bounce is in the evidence.)
        assert_eq!(card["title"], "Invitations to this address are blocked", "{card}");
        assert!(card["fields"].to_string().contains("hard-bounced"), "{card}");
        let labels: Vec<String> = custom_ids(&sent[0].body).into_iter().map(|(l, _, _)| l).collect();
        assert!(labels.contains(&"Issue activation code".to_owned()), "{labels:?}");
        assert!(labels.contains(&"Escalate to support".to_owned()), "{labels:?}");
        // The provider's words never ping or link.
        let body = sent[0].body.to_string();
        assert!(!body.contains("@everyone") && !body.contains("https://evil"), "{body}");
        assert_eq!(sent[0].body["allowed_mentions"]["parse"], serde_json::json!([]));
        assert!(sent[0].body["nonce"].as_str().unwrap().starts_with("ib-alert-"));

        // Scanned again, and by a restarted bot: nothing new, nothing posted.
        assert_eq!(run(&alerts, Utc::now()).await, AlertRun::default());
        let restarted = alerts_of(&app, &fake).await;
        assert_eq!(run(&restarted, Utc::now()).await, AlertRun::default());
        assert_eq!(posts(&fake, CHANNEL).len(), 3);
        assert_eq!(app.count("alerts").await, 3);

        // A new event of the same problem and invitation is no new alert; a new invitation's is.
        webhook(
            &app,
            vec![event_at("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard), Utc::now() + Duration::seconds(1))],
            vec![],
        )
        .await;
        assert_eq!(run(&alerts, Utc::now()).await.recorded, 0);
    }

    async fn a_domain_burst_is_one_alert(app) with configure; {
        let fake = FakeDiscord::start().await;
        let burst: Vec<String> = (0..7).map(|i| format!("learner{i}@bigbank.example")).collect();
        let mut members: Vec<&str> = burst.iter().map(String::as_str).collect();
        members.push("solo@elsewhere.example");
        app.seed(&fixture(&members)).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        run(&alerts, Utc::now()).await;
        let mut events: Vec<_> = burst
            .iter()
            .map(|e| event(e, DeliveryEventKind::Bounced, Some(BounceKind::Hard)))
            .collect();
        events.push(event("solo@elsewhere.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard)));
        webhook(&app, events, vec![]).await;

        let done = run(&alerts, Utc::now()).await;
        assert_eq!((done.recorded, done.messages, done.alerts_posted), (8, 2, 8), "{done:?}");
        let sent = posts(&fake, CHANNEL);
        let grouped = sent.iter().find(|p| content(p).contains("bigbank.example")).unwrap();
        let text = content(grouped);
        assert!(text.contains("7 invitations to @bigbank.example"), "{text}");
        assert!(text.contains("learner0@bigbank.example"), "{text}");
        // The card under it carries the domain finding.
        let card = grouped.body["embeds"][0].to_string();
        assert!(card.contains("allow-list"), "{card}");
        assert!(grouped.body["nonce"].as_str().unwrap().starts_with("ib-burst-"));
        assert!(sent.iter().any(|p| content(p).contains("solo@elsewhere.example")));
    }

    async fn two_instances_post_each_alert_once(app) with configure; {
        let fake = FakeDiscord::start().await;
        let members: Vec<String> = (0..6).map(|i| format!("p{i}@domain{i}.example")).collect();
        app.seed(&fixture(&members.iter().map(String::as_str).collect::<Vec<_>>())).await;
        let one = alerts(&app.actions, &app.config, &fake);
        let two = alerts(&app.second_instance().await, &app.config, &fake);
        run(&one, Utc::now()).await;
        webhook(
            &app,
            members
                .iter()
                .map(|e| event(e, DeliveryEventKind::Bounced, Some(BounceKind::Hard)))
                .collect(),
            vec![],
        )
        .await;
        let now = Utc::now();
        let (a, b) = tokio::join!(one.run_once(now), two.run_once(now));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.recorded + b.recorded, 6, "{a:?} {b:?}");
        assert_eq!(a.alerts_posted + b.alerts_posted, 6, "{a:?} {b:?}");
        let sent = posts(&fake, CHANNEL);
        assert_eq!(sent.len(), 6);
        for member in &members {
            assert_eq!(sent.iter().filter(|p| content(p).contains(member.as_str())).count(), 1, "{member}");
        }
        assert_eq!(app.count("alerts").await, 6);
    }

    async fn quiet_hours_hold_alerts_for_a_digest(app) with |config: &mut Config| {
        configure(config);
        // Quiet from an hour ago to an hour from now (UTC), whatever the time of the test.
        let now = Utc::now();
        let at = |t: DateTime<Utc>| t.format("%H:%M").to_string();
        config.alerts.quiet_hours = Some(format!("{}-{}", at(now - Duration::hours(1)), at(now + Duration::hours(1))));
    }; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&["ann@one.example", "bob@two.example", "cat@three.example"])).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        let now = Utc::now();
        run(&alerts, now).await;
        webhook(
            &app,
            vec![
                event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard)),
                event("bob@two.example", DeliveryEventKind::SpamComplaint, None),
                event("cat@three.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard)),
            ],
            vec![],
        )
        .await;
        let held = run(&alerts, now).await;
        assert!(held.held && held.recorded == 3 && held.messages == 0, "{held:?}");
        assert!(posts(&fake, CHANNEL).is_empty());

        // The quiet hours end: one digest with all three, and a Check button for each.
        let morning = run(&alerts, now + Duration::minutes(90)).await;
        assert_eq!((morning.messages, morning.alerts_posted), (1, 3), "{morning:?}");
        let sent = posts(&fake, CHANNEL);
        assert_eq!(sent.len(), 1);
        let text = content(&sent[0]);
        assert!(text.contains("Held during quiet hours") && text.contains("3 invitation problems"), "{text}");
        for email in ["ann@one.example", "bob@two.example", "cat@three.example"] {
            assert!(text.contains(email), "{text}");
        }
        let labels: Vec<String> = custom_ids(&sent[0].body).into_iter().map(|(l, _, _)| l).collect();
        assert_eq!(labels.len(), 3, "{labels:?}");
        assert!(labels.iter().all(|l| l.starts_with("Check ")), "{labels:?}");
        assert_eq!(run(&alerts, now + Duration::minutes(95)).await.messages, 0);
    }

    async fn only_the_configured_role_is_mentioned(app) with |config: &mut Config| {
        configure(config);
        config.alerts.mention_role = Some(7777);
    }; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&["ann@one.example"])).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        run(&alerts, Utc::now()).await;
        webhook(&app, vec![event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard))], vec![]).await;
        run(&alerts, Utc::now()).await;
        let sent = posts(&fake, CHANNEL);
        assert_eq!(sent.len(), 1);
        let text = content(&sent[0]);
        assert!(text.starts_with("<@&7777> "), "{text}");
        let mentions = &sent[0].body["allowed_mentions"];
        assert_eq!(mentions["roles"], serde_json::json!(["7777"]), "{mentions}");
        assert_eq!(mentions["parse"], serde_json::json!([]), "{mentions}");
        assert!(mentions.get("users").is_none_or(|u| u == &serde_json::json!([])), "{mentions}");
        // Nothing echoed from the delivery data can ping: no raw @everyone or user mention.
        let body = sent[0].body.to_string();
        assert!(!body.contains("@everyone") && !body.contains("<@123>"), "{body}");
    }

    async fn a_failed_post_stays_pending_and_is_retried(app) with configure; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&["ann@one.example"])).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        run(&alerts, Utc::now()).await;
        webhook(&app, vec![event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard))], vec![]).await;
        fake.rate_limit(&format!("/channels/{CHANNEL}/messages"), 1);
        let now = Utc::now();
        let failed = run(&alerts, now).await;
        assert_eq!((failed.recorded, failed.messages, failed.post_failures), (1, 0, 1), "{failed:?}");
        // Not before its retry is due.
        assert_eq!(run(&alerts, now + Duration::seconds(30)).await.messages, 0);
        let retried = run(&alerts, now + Duration::minutes(2)).await;
        assert_eq!(retried.messages, 1, "{retried:?}");
        assert_eq!(posts(&fake, CHANNEL).len(), 1);
        // Both attempts carried the same nonce, so Discord could drop a duplicate.
        let nonces: Vec<Value> = fake
            .requests()
            .iter()
            .filter(|r| r.path.contains(&format!("/channels/{CHANNEL}/messages")))
            .map(|r| r.body["nonce"].clone())
            .collect();
        assert_eq!(nonces.len(), 2);
        assert_eq!(nonces[0], nonces[1]);
    }

    async fn a_post_that_always_fails_is_given_up(app) with |config: &mut Config| {
        configure(config);
        config.alerts.max_post_attempts = 2;
    }; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&["ann@one.example"])).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        run(&alerts, Utc::now()).await;
        webhook(&app, vec![event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard))], vec![]).await;
        fake.rate_limit(&format!("/channels/{CHANNEL}/messages"), 10);
        let now = Utc::now();
        assert_eq!(run(&alerts, now).await.given_up, 0);
        assert_eq!(run(&alerts, now + Duration::minutes(2)).await.given_up, 1);
        assert_eq!(run(&alerts, now + Duration::hours(2)).await.post_failures, 0);
        assert!(app.dump("alerts").await.contains("failed"));
    }

    async fn expiries_and_long_deferrals_are_found_by_time(app) with configure; {
        let fake = FakeDiscord::start().await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        let now = Utc::now();
        // Alerts were enabled three hours ago.
        run(&alerts, now - Duration::hours(3)).await;
        // Sent 169 hours ago, valid for 168: expired an hour ago, never accepted.
        app.seed(
            "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n\
             [[member]]\nworkspace = \"acme\"\nemail = \"old@one.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = \"old@one.example\"\nsent_at = \"169 hours ago\"\n\
             [[member]]\nworkspace = \"acme\"\nemail = \"slow@two.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = \"slow@two.example\"\nsent_at = \"14 hours ago\"\n\
             [[delivery_event]]\nemail = \"slow@two.example\"\nevent = \"deferred\"\nat = \"13 hours ago\"\n\
             [[member]]\nworkspace = \"acme\"\nemail = \"late@three.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = \"late@three.example\"\nsent_at = \"14 hours ago\"\n\
             [[delivery_event]]\nemail = \"late@three.example\"\nevent = \"deferred\"\nat = \"13 hours ago\"\n\
             [[delivery_event]]\nemail = \"late@three.example\"\nevent = \"delivered\"\nat = \"12 hours ago\"\n\
             [[member]]\nworkspace = \"acme\"\nemail = \"fresh@four.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = \"fresh@four.example\"\nsent_at = \"3 hours ago\"\n\
             [[delivery_event]]\nemail = \"fresh@four.example\"\nevent = \"deferred\"\nat = \"2 hours ago\"\n",
        )
        .await;
        let found = run(&alerts, now).await;
        // The expiry and the 13-hour deferral; not the deferral that was delivered later, nor the
        // one only two hours old.
        assert_eq!((found.recorded, found.messages), (2, 2), "{found:?}");
        let texts: Vec<String> = posts(&fake, CHANNEL).iter().map(content).collect();
        assert!(texts.iter().any(|t| t.contains("old@one.example") && t.contains("expired")), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("slow@two.example") && t.contains("deferred for more than 12 hours")), "{texts:?}");
        // Eleven hours later the young deferral is old enough.
        let later = run(&alerts, now + Duration::hours(11)).await;
        assert_eq!(later.recorded, 1, "{later:?}");
        assert_eq!(run(&alerts, now + Duration::hours(11)).await.recorded, 0);
    }

    async fn a_problem_solved_before_its_post_is_not_posted(app) with configure; {
        let fake = FakeDiscord::start().await;
        app.seed(&fixture(&["ann@one.example"])).await;
        let alerts = alerts(&app.actions, &app.config, &fake);
        run(&alerts, Utc::now()).await;
        webhook(&app, vec![event("ann@one.example", DeliveryEventKind::Bounced, Some(BounceKind::Hard))], vec![]).await;
        fake.rate_limit(&format!("/channels/{CHANNEL}/messages"), 1);
        let now = Utc::now();
        assert_eq!(run(&alerts, now).await.post_failures, 1);
        // Meanwhile the member got in another way.
        let activate = "UPDATE members SET status = 'active' WHERE email_key = 'ann@one.example'";
        match app.engine.store() {
            Store::Sqlite(pool, _) => sqlx::query(activate).execute(pool).await.map(drop),
            Store::Postgres(pool, _) => sqlx::query(activate).execute(pool).await.map(drop),
        }
        .unwrap();
        let retried = run(&alerts, now + Duration::minutes(2)).await;
        assert_eq!((retried.messages, retried.resolved), (0, 1), "{retried:?}");
    }
}

async fn alerts_of(app: &TestApp, fake: &FakeDiscord) -> Alerts {
    alerts(&app.second_instance().await, &app.config, fake)
}
