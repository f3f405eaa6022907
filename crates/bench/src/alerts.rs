//! `invite-bot-bench --alerts`: issue 15's numbers for alerts and list checks, in process, on a
//! fresh database per backend (a temporary SQLite file; a PostgreSQL database created on the
//! given server and dropped afterwards).
//!
//! - **List check**: a 500-entry list (members in every state, unknown addresses, typos, duplicates
//!   and lines that are not addresses) checked by the chat flow's `check_list`, as
//!   `/invite-check-list` and `invite-bot check --file` do. Target: under 3 s.
//! - **Alert scan**: a webhook batch of 1,000 events (10% hard bounces, 2% complaints, each with its
//!   suppression, the rest delivered or deferred) written as a provider's request is, then one
//!   scan. Target: under 1 s. The posts that follow (at most 20 per run, each with a check) are
//!   timed too, against the fake Discord, for information.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use sqlx::Connection;

use invite_bot::alerts::{AlertSettings, Alerts};
use invite_bot::chat::list_check::{read_list, ListFormat};
use invite_bot::chat::Chat;
use invite_bot::config::Config;
use invite_bot::discord::alerts::DiscordAlerts;
use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::invitation::{BounceKind, DeliveryEventKind, SuppressionReason};
use invite_bot::fixture::Fixture;
use invite_bot::store::{NewDeliveryEvent, NewSuppression, WebhookBatch};
use invite_bot_testkit::fake_discord::FakeDiscord;

/// Issue 15's targets.
const LIST_SECONDS: f64 = 3.0;
const SCAN_SECONDS: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct AlertBenchOptions {
    /// Members of the synthetic workspace (each invited once).
    pub members: usize,
    /// Entries of the checked list.
    pub list: usize,
    /// Events per webhook batch.
    pub events: usize,
    /// Timed repetitions of each measurement.
    pub rounds: usize,
    /// A PostgreSQL server to run on as well (a database is created there and dropped).
    pub postgres_url: Option<String>,
}

impl Default for AlertBenchOptions {
    fn default() -> Self {
        AlertBenchOptions {
            members: 20_000,
            list: 500,
            events: 1_000,
            rounds: 3,
            postgres_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertBenchError {
    #[error("--alerts-members must cover the list and the events ({needed} at least)")]
    TooFewMembers { needed: usize },
    #[error("{what}: {message}")]
    Failed { what: String, message: String },
}

fn failed(what: &str, error: impl std::fmt::Display) -> AlertBenchError {
    AlertBenchError::Failed {
        what: what.to_owned(),
        message: error.to_string(),
    }
}

/// One backend's measurements, each the rounds' min, median and max in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct BackendResult {
    pub backend: String,
    pub members: usize,
    pub list_entries: usize,
    pub list_ms: [f64; 3],
    pub events: usize,
    pub alerts_recorded: u64,
    pub scan_ms: [f64; 3],
    pub posts_ms: [f64; 3],
    pub posts: u64,
}

impl BackendResult {
    pub fn pass(&self) -> bool {
        self.list_ms[2] < LIST_SECONDS * 1000.0 && self.scan_ms[2] < SCAN_SECONDS * 1000.0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertBenchReport {
    pub results: Vec<BackendResult>,
}

impl AlertBenchReport {
    pub fn all_pass(&self) -> bool {
        self.results.iter().all(BackendResult::pass)
    }

    pub fn to_text(&self) -> String {
        let mut text = String::from(
            "| backend | members | list of | list check (min / median / max) | events | new alerts | scan (min / median / max) | posts | posting (min / median / max) |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        let ms = |m: &[f64; 3]| format!("{:.0} / {:.0} / {:.0} ms", m[0], m[1], m[2]);
        for r in &self.results {
            text.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.backend,
                r.members,
                r.list_entries,
                ms(&r.list_ms),
                r.events,
                r.alerts_recorded,
                ms(&r.scan_ms),
                r.posts,
                ms(&r.posts_ms),
            ));
        }
        text.push_str(&format!(
            "targets: list check < {LIST_SECONDS} s, alert scan < {SCAN_SECONDS} s: {}\n",
            if self.all_pass() { "met" } else { "MISSED" }
        ));
        text
    }
}

pub async fn run(
    options: AlertBenchOptions,
    progress: &dyn Fn(&str),
) -> Result<AlertBenchReport, AlertBenchError> {
    let needed = options.list + options.events * options.rounds;
    if options.members < needed {
        return Err(AlertBenchError::TooFewMembers { needed });
    }
    let mut results = Vec::new();
    let suffix = invite_bot_testkit::database::random_suffix();
    let dir = tempfile_dir(&suffix)?;
    let sqlite = format!("sqlite://{}", dir.join("alerts-bench.db").display());
    results.push(run_on("sqlite", &sqlite, &options, progress).await?);
    if let Some(server) = &options.postgres_url {
        let name = format!("invite_bot_alerts_bench_{suffix}");
        let url = create_postgres(server, &name).await?;
        let result = run_on("postgres", &url, &options, progress).await;
        drop_postgres(server, &name).await;
        results.push(result?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(AlertBenchReport { results })
}

fn tempfile_dir(suffix: &str) -> Result<std::path::PathBuf, AlertBenchError> {
    let dir = std::env::temp_dir().join(format!("invite-bot-alerts-bench-{suffix}"));
    std::fs::create_dir_all(&dir).map_err(|e| failed("create a temporary directory", e))?;
    Ok(dir)
}

/// `server` with its database replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

async fn create_postgres(server: &str, name: &str) -> Result<String, AlertBenchError> {
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| failed("connect to PostgreSQL", e))?;
    let sql = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
    sqlx::query(sql)
        .execute(&mut admin)
        .await
        .map_err(|e| failed("create the bench database", e))?;
    let _ = admin.close().await;
    Ok(database_url(server, name))
}

async fn drop_postgres(server: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
        let sql = sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        let _ = sqlx::query(sql).execute(&mut admin).await;
        let _ = admin.close().await;
    }
}

/// The address of member `i`: 200 company domains and two webmail providers.
fn member_email(i: usize) -> String {
    match i % 10 {
        0 => format!("user{i}@gmail.com"),
        1 => format!("user{i}@outlook.com"),
        _ => format!("user{i}@company{}.example", i % 200),
    }
}

/// Every member invited, a fifth of them active; a tenth of the invitations delivered.
fn fixture(members: usize) -> String {
    let mut text = String::from("[[workspace]]\nslug = \"bench\"\nname = \"Bench\"\n");
    for i in 0..members {
        let email = member_email(i);
        let status = if i % 5 == 0 { "active" } else { "invited" };
        text.push_str(&format!(
            "[[member]]\nworkspace = \"bench\"\nemail = \"{email}\"\nrole = \"learner\"\nstatus = \"{status}\"\n\
             [[invitation]]\nworkspace = \"bench\"\nemail = \"{email}\"\nsent_at = \"3 hours ago\"\nmessage_id = \"bench-{i}\"\n"
        ));
        if i % 10 == 3 {
            text.push_str(&format!(
                "[[delivery_event]]\nemail = \"{email}\"\nevent = \"delivered\"\nat = \"2 hours ago\"\n"
            ));
        }
    }
    text
}

/// `size` entries: members, unknown addresses, one-letter typos, repeats and lines that are not
/// addresses.
fn list(size: usize) -> String {
    (0..size)
        .map(|i| match i % 20 {
            0 => format!("nobody{i}@unknown.example"),
            1 => member_email(i).replacen("user", "usr", 1),
            2 => member_email(i.saturating_sub(2)).to_uppercase(),
            3 => format!("not-an-address-{i}"),
            _ => member_email(i),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Events for members `from..from + count`.
fn batch(from: usize, count: usize, round: usize) -> WebhookBatch {
    let now = Utc::now();
    let mut batch = WebhookBatch::default();
    for i in from..from + count {
        let email = member_email(i);
        let recipient = EmailAddress::parse(&email).expect("generated addresses parse");
        let (kind, bounce) = match i % 50 {
            0..=4 => (DeliveryEventKind::Bounced, Some(BounceKind::Hard)),
            5 => (DeliveryEventKind::SpamComplaint, None),
            6..=9 => (DeliveryEventKind::Deferred, None),
            _ => (DeliveryEventKind::Delivered, None),
        };
        let reason = match (kind, bounce) {
            (DeliveryEventKind::Bounced, _) => Some(SuppressionReason::HardBounce),
            (DeliveryEventKind::SpamComplaint, _) => Some(SuppressionReason::SpamComplaint),
            _ => None,
        };
        if let Some(reason) = reason {
            batch.suppressions.push(NewSuppression {
                recipient: recipient.clone(),
                reason,
                at: now,
            });
        }
        batch.events.push(NewDeliveryEvent {
            event_key: format!("bench:{round}:{i}"),
            message_ids: vec![format!("bench-{i}")],
            recipient,
            kind,
            bounce,
            at: now,
            detail: None,
        });
    }
    batch
}

fn spread(mut samples: Vec<f64>) -> [f64; 3] {
    samples.sort_by(f64::total_cmp);
    match samples.len() {
        0 => [0.0; 3],
        n => [samples[0], samples[n / 2], samples[n - 1]],
    }
}

async fn run_on(
    backend: &str,
    url: &str,
    options: &AlertBenchOptions,
    progress: &dyn Fn(&str),
) -> Result<BackendResult, AlertBenchError> {
    let fake = FakeDiscord::try_start()
        .await
        .map_err(|e| failed("start the fake Discord", e))?;
    let mut config = Config {
        database_url: url.to_owned(),
        ..Config::default()
    };
    config.discord.token = Some("bench-token".to_owned().into());
    config.discord.api_base_url = Some(fake.base_url.clone());
    config.alerts.channels = [("bench".to_owned(), 9001)].into_iter().collect();
    let actions = invite_bot::app::startup::build_for_seeding(&config)
        .await
        .map_err(|e| failed("start the bot", e))?;
    progress(&format!("{backend}: seeding {} members", options.members));
    let fixture = Fixture::parse(&fixture(options.members), "bench", Utc::now())
        .map_err(|e| failed("build the fixture", e))?;
    actions
        .engine()
        .seed(&fixture)
        .await
        .map_err(|e| failed("seed", e))?;

    let chat = Chat::new(actions.clone(), &config);
    let operator = invite_bot::actions::Authorizer::from_config(&config).operator();
    let text = list(options.list);
    let mut list_ms = Vec::new();
    for round in 0..options.rounds {
        let entries = read_list(&text, ListFormat::Text)
            .map_err(|e| failed("read the list", format!("{e:?}")))?;
        let started = Instant::now();
        let report = chat
            .check_list(&operator, entries, Some("bench"))
            .await
            .map_err(|e| failed("check the list", e))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        progress(&format!(
            "{backend}: list of {} checked in {ms:.0} ms (round {}, {} need action)",
            options.list,
            round + 1,
            report.needing_action
        ));
        list_ms.push(ms);
    }

    let poster = DiscordAlerts::from_config(&config).map_err(|e| failed("the poster", e))?;
    let settings = AlertSettings::from_config(&config).map_err(|e| failed("[alerts]", e))?;
    let alerts = Alerts::new(chat, settings, Arc::new(poster));
    alerts
        .run_once(Utc::now())
        .await
        .map_err(|e| failed("the first scan", e))?;
    let (mut scan_ms, mut posts_ms, mut recorded, mut posts) = (Vec::new(), Vec::new(), 0, 0);
    for round in 0..options.rounds {
        let from = options.list + round * options.events;
        actions
            .engine()
            .store()
            .record_webhook_batch(&batch(from, options.events, round), Utc::now())
            .await
            .map_err(|e| failed("write the webhook batch", e))?;
        let started = Instant::now();
        let found = alerts
            .scan(Utc::now())
            .await
            .map_err(|e| failed("scan", e))?;
        scan_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        recorded += found;
        let started = Instant::now();
        let mut run = invite_bot::alerts::AlertRun::default();
        alerts
            .post_due(Utc::now(), &mut run)
            .await
            .map_err(|e| failed("post", e))?;
        posts_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        posts += run.messages;
        progress(&format!(
            "{backend}: batch {} scanned in {:.0} ms ({found} new alerts), {} posts in {:.0} ms",
            round + 1,
            scan_ms[round],
            run.messages,
            posts_ms[round]
        ));
    }
    actions.engine().store().close().await;
    // Let the fake's last answers go before it is dropped.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(BackendResult {
        backend: backend.to_owned(),
        members: options.members,
        list_entries: options.list,
        list_ms: spread(list_ms),
        events: options.events,
        alerts_recorded: recorded,
        scan_ms: spread(scan_ms),
        posts_ms: spread(posts_ms),
        posts,
    })
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_bench_database_replaces_the_servers() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            database_url("postgres://u@h/postgres?sslmode=disable", "b"),
            "postgres://u@h/b?sslmode=disable"
        );
    }
}
