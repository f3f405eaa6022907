//! The HTTP interactions scenario (`--interactions-http`): the bot's real `serve` in
//! `[discord] mode = "http"`, as child processes on one fresh PostgreSQL database, sent signed
//! `/invite-check` interactions by a load generator on 127.0.0.1, as Discord would POST them.
//!
//! Three runs: one replica; two replicas (requests alternate); two replicas with one killed
//! (SIGKILL) halfway, while one Resend button is also pressed on both: its in-flight requests may
//! fail, nothing may be done twice. Measured from the request's send to its response (the first
//! response is the HTTP answer in this mode), requests per second, errors, and each replica's peak
//! VmRSS (Linux `/proc`). The fake Discord only takes the command registration and follow-ups.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::child::{proc_status_kb, seed_demo, Bot, Exited, TempDir};
use crate::discord::RUN_AS_BOT;
use invite_bot_testkit::fake_discord::{custom_ids, message_json, FakeDiscord, FakeUser, GUILD_ID};
use invite_bot_testkit::signing::InteractionSigner;

/// The role of the load generator's user: the generated config grants it check and resend.
const BENCH_ROLE: &str = "7100";

/// Addresses from the demo fixture, as in `--discord`.
const ADDRESSES: &[&str] = &[
    "Jane.Doe@acme-corp.com",
    "omar.haddad@gmail.com",
    "priya.patel@gmial.com",
    "sam.rivera@yahoo.com",
    "eva.novak@bigbank.co.uk",
    "jane.doe@acme-corp.con",
    "nobody.at.all@example.org",
    "mia.wong@acme-corp.com",
];

/// The member whose Resend is pressed on both replicas in the third run: invited, never activated.
const RESENT: &str = "omar.haddad@gmail.com";

#[derive(Debug, Clone)]
pub struct InteractionsHttpOptions {
    /// Interactions per run.
    pub interactions: usize,
    /// Requests in flight at once (0: all at once).
    pub concurrency: usize,
    /// The PostgreSQL server; a fresh database is created there and dropped afterwards.
    pub postgres_url: String,
    /// The bot's binary; None: this executable (see [`RUN_AS_BOT`]).
    pub bot_exe: Option<PathBuf>,
    /// Presses of the one Resend button during the third run.
    pub presses: usize,
    pub timeout: Duration,
}

impl Default for InteractionsHttpOptions {
    fn default() -> Self {
        InteractionsHttpOptions {
            interactions: 200,
            concurrency: 0,
            postgres_url: crate::sync::DEFAULT_POSTGRES_URL.to_owned(),
            bot_exe: None,
            presses: 50,
            timeout: Duration::from_secs(60),
        }
    }
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRun {
    pub setup: String,
    pub requests: usize,
    pub concurrency: usize,
    /// Answered 200 with an interaction response.
    pub ok: usize,
    pub errors: usize,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Each replica's peak VmRSS during the run.
    pub peak_rss_mb: Vec<f64>,
    /// Invitations sent for the pressed Resend (third run): at most 1.
    pub resend_emails: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InteractionsHttpReport {
    pub runs: Vec<HttpRun>,
    pub idle_rss_mb: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum InteractionsHttpError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Database(String),
    #[error("cannot seed the benchmark database: {0}")]
    Seed(String),
    #[error("invite-bot serve exited early ({status}); its log:\n{log}")]
    BotExited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("{0} (log of invite-bot serve:\n{1})")]
    Timeout(String, String),
    #[error("the interactions value must be at least 1")]
    NoInteractions,
}

impl From<Exited> for InteractionsHttpError {
    fn from(exited: Exited) -> Self {
        InteractionsHttpError::BotExited {
            status: exited.status,
            log: exited.log,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InteractionsHttpError {
    let what = what.into();
    move |source| InteractionsHttpError::Io { what, source }
}

/// A `serve` child and where it listens.
struct Replica {
    bot: Bot,
    base: String,
}

fn write_config(
    dir: &Path,
    database_url: &str,
    api_base: &str,
    public_key: &str,
) -> Result<PathBuf, InteractionsHttpError> {
    let path = dir.join("config.toml");
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let text = format!(
        "database_url = {db}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[smtp]\noutbox_dir = {outbox}\n\n\
         [discord]\nmode = \"http\"\npublic_key = {key}\napplication_id = {app}\nguild_ids = [{GUILD_ID}]\napi_base_url = {base}\n\n\
         [[permissions.grant]]\nroles = [\"{BENCH_ROLE}\"]\nallow = [\"check\", \"resend_invite\"]\n",
        db = quote(database_url),
        outbox = quote(&dir.join("outbox").display().to_string()),
        key = quote(public_key),
        app = invite_bot_testkit::fake_discord::APPLICATION_ID,
        base = quote(api_base),
    );
    std::fs::write(&path, text).map_err(io("write the benchmark config"))?;
    Ok(path)
}

async fn start_replica(
    exe: &Path,
    config: &Path,
    dir: &Path,
    n: usize,
    timeout: Duration,
) -> Result<Replica, InteractionsHttpError> {
    let log = dir.join(format!("serve-{n}.log"));
    let log_file = std::fs::File::create(&log).map_err(io("create the serve log"))?;
    let child = Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .current_dir(dir)
        .env(RUN_AS_BOT, "1")
        .env("DISCORD_TOKEN", "bench-token")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_HTTP_LISTEN")
        .env_remove("SMTP_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(io(format!("start {}", exe.display())))?;
    let mut bot = Bot::new(child, log);
    let deadline = Instant::now() + timeout;
    loop {
        let text = bot.log_text();
        if let Some(addr) = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("listening on "))
        {
            let base = format!("http://{}", addr.trim());
            return Ok(Replica { bot, base });
        }
        bot.check_alive()?;
        if Instant::now() >= deadline {
            return Err(InteractionsHttpError::Timeout(
                "serve did not listen".into(),
                bot.log(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A signed request, ready to send: the body and its two headers.
struct Signed {
    body: Vec<u8>,
    headers: [(&'static str, String); 2],
}

fn sign(signer: &InteractionSigner, interaction: &serde_json::Value) -> Signed {
    let body = serde_json::to_vec(interaction).unwrap_or_default();
    let headers = signer.headers(&body);
    Signed { body, headers }
}

/// Sends every request to its replica (at most `concurrency` in flight); per request its latency
/// and whether it was answered 200. `kill`: (after how many sent, which pid) to SIGKILL mid-run;
/// a request whose replica refuses the connection then goes to `fallback`, as a load balancer
/// sends it to the next upstream (one that was in flight on the killed replica fails).
async fn fire(
    client: &reqwest::Client,
    requests: Vec<(Signed, String)>,
    concurrency: usize,
    kill: Option<(usize, u32)>,
    fallback: Option<&str>,
) -> (Vec<(f64, bool)>, Duration) {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (signed, base)) in requests.into_iter().enumerate() {
        if let Some((at, pid)) = kill {
            if i == at {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        let fallback = fallback.map(str::to_owned);
        tasks.spawn(async move {
            let at = Instant::now();
            let send = |base: &str| {
                let mut request = client
                    .post(format!("{base}{}", invite_bot::discord::endpoint::PATH))
                    .header("content-type", "application/json")
                    .body(signed.body.clone());
                for (name, value) in &signed.headers {
                    request = request.header(*name, value);
                }
                request.send()
            };
            let sent = match (send(&base).await, fallback) {
                (Err(error), Some(next)) if error.is_connect() => send(&next).await,
                (sent, _) => sent,
            };
            let ok = match sent {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            drop(permit);
            (at.elapsed().as_secs_f64() * 1000.0, ok)
        });
    }
    let results = tasks.join_all().await;
    (results, started.elapsed())
}

/// Samples each pid's VmRSS every 5 ms on a plain thread until stopped; the peaks in kB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peaks: Vec<Arc<AtomicU64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Vec<Arc<AtomicU64>> = pids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
        let thread = {
            let (stop, peaks) = (stop.clone(), peaks.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for (pid, peak) in pids.iter().zip(&peaks) {
                        if let Some(kb) = proc_status_kb(*pid, "VmRSS") {
                            peak.fetch_max(kb, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        RssSampler {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peaks
            .iter()
            .map(|kb| kb.load(Ordering::Relaxed) as f64 / 1024.0)
            .collect()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summarize(
    setup: &str,
    results: &[(f64, bool)],
    wall: Duration,
    concurrency: usize,
    peak_rss_mb: Vec<f64>,
    resend_emails: Option<usize>,
) -> HttpRun {
    let mut latencies: Vec<f64> = results
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(ms, _)| *ms)
        .collect();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let ok = latencies.len();
    HttpRun {
        setup: setup.to_owned(),
        requests: results.len(),
        concurrency,
        ok,
        errors: results.len() - ok,
        requests_per_second: results.len() as f64 / wall.as_secs_f64().max(1e-9),
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        peak_rss_mb,
        resend_emails,
    }
}

/// Invitations written to the outbox for `address` (the mailer's file transport).
fn emails_to(outbox: &Path, address: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read_to_string(entry.path())
                .map(|text| text.contains(&format!("To: {address}")))
                .unwrap_or(false)
        })
        .count()
}

async fn create_database(server: &str) -> Result<(String, String), InteractionsHttpError> {
    use sqlx::Connection;
    let name = crate::sync::scratch_name("http");
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .map_err(|e| InteractionsHttpError::Database(format!("connect to {server}: {e}")))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .map_err(|e| InteractionsHttpError::Database(format!("create {name}: {e}")))?;
    let _ = admin.close().await;
    Ok((name.clone(), crate::sync::with_database(server, &name)))
}

async fn drop_database(server: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
        {
            tracing::warn!(%error, database = %name, "cannot drop the bench database");
        }
        let _ = admin.close().await;
    }
}

pub async fn run(
    options: InteractionsHttpOptions,
) -> Result<InteractionsHttpReport, InteractionsHttpError> {
    if options.interactions == 0 {
        return Err(InteractionsHttpError::NoInteractions);
    }
    let (name, database_url) = create_database(&options.postgres_url).await?;
    let result = run_on(&options, &database_url).await;
    drop_database(&options.postgres_url, &name).await;
    result
}

async fn run_on(
    options: &InteractionsHttpOptions,
    database_url: &str,
) -> Result<InteractionsHttpReport, InteractionsHttpError> {
    let concurrency = match options.concurrency {
        0 => options.interactions,
        n => n.min(options.interactions),
    };
    seed_demo(database_url)
        .await
        .map_err(InteractionsHttpError::Seed)?;
    let dir = TempDir::new("interactions-http").map_err(io("create a temporary directory"))?;
    let fake = FakeDiscord::try_start()
        .await
        .map_err(io("start the fake Discord"))?;
    let signer = InteractionSigner::generate();
    let config = write_config(
        dir.path(),
        database_url,
        &fake.base_url,
        &signer.public_key_hex(),
    )?;
    let exe = match &options.bot_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(io("find the invite-bot executable"))?,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(|e| InteractionsHttpError::Io {
            what: "build the HTTP client".into(),
            source: std::io::Error::other(e),
        })?;
    let user = FakeUser::new("9100", "bench", &[BENCH_ROLE]);
    let checks = |targets: &[String]| -> Vec<(Signed, String)> {
        (0..options.interactions)
            .map(|i| {
                let (_, interaction) =
                    fake.invite_check_json(&user, &[("email", ADDRESSES[i % ADDRESSES.len()])]);
                (
                    sign(&signer, &interaction),
                    targets[i % targets.len()].clone(),
                )
            })
            .collect()
    };

    let first = start_replica(&exe, &config, dir.path(), 1, options.timeout).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kb = proc_status_kb(first.bot.pid(), "VmRSS").unwrap_or(0);
    let mut runs = Vec::new();

    // Warm the connection pools (the bot's to PostgreSQL, the client's to the bot), as a running
    // replica would be; then one replica.
    let targets = [first.base.clone()];
    let _ = fire(&client, checks(&targets), concurrency, None, None).await;
    let sampler = RssSampler::start(vec![first.bot.pid()]);
    let (results, wall) = fire(&client, checks(&targets), concurrency, None, None).await;
    runs.push(summarize(
        "1 replica",
        &results,
        wall,
        concurrency,
        sampler.finish(),
        None,
    ));

    // Two replicas, requests alternating.
    let mut second = start_replica(&exe, &config, dir.path(), 2, options.timeout).await?;
    let targets = [first.base.clone(), second.base.clone()];
    let _ = fire(&client, checks(&targets), concurrency, None, None).await;
    let sampler = RssSampler::start(vec![first.bot.pid(), second.bot.pid()]);
    let (results, wall) = fire(&client, checks(&targets), concurrency, None, None).await;
    runs.push(summarize(
        "2 replicas",
        &results,
        wall,
        concurrency,
        sampler.finish(),
        None,
    ));

    // Two replicas, the second killed halfway, while one Resend is pressed on both.
    let (_, check) = fake.invite_check_json(&user, &[("email", RESENT)]);
    let answer = fire_one(&client, &sign(&signer, &check), &first.base).await;
    let data = &answer["data"];
    let custom_id = custom_ids(data)
        .into_iter()
        .find(|(label, _, _)| label == "Resend invite")
        .map(|(_, id, _)| id)
        .ok_or_else(|| {
            InteractionsHttpError::Timeout(
                format!("no Resend button for {RESENT}: {answer}"),
                first.bot.log(),
            )
        })?;
    let message = message_json(
        "880001",
        invite_bot_testkit::fake_discord::CHANNEL_ID,
        "",
        data.get("embeds").cloned().unwrap_or(serde_json::json!([])),
        data.get("components")
            .cloned()
            .unwrap_or(serde_json::json!([])),
    );
    let mut requests = checks(&targets);
    for i in 0..options.presses {
        let (_, press) = fake.press_json(&user, &custom_id, message.clone());
        let at = (i * requests.len() / options.presses.max(1)).min(requests.len());
        requests.insert(at, (sign(&signer, &press), targets[i % 2].clone()));
    }
    let total = requests.len();
    let second_pid = second.bot.pid();
    let sampler = RssSampler::start(vec![first.bot.pid(), second_pid]);
    let (results, wall) = fire(
        &client,
        requests,
        concurrency,
        Some((total / 2, second_pid)),
        Some(&first.base),
    )
    .await;
    let _ = second.bot.check_alive();
    // Whatever the first replica does for the presses (a queued send included) is done within the
    // retry interval; the presses' own sends are done when their follow-ups arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let emails = emails_to(&dir.path().join("outbox"), RESENT);
    runs.push(summarize(
        "2 replicas, one killed mid-run",
        &results,
        wall,
        concurrency.min(total),
        sampler.finish(),
        Some(emails),
    ));
    drop(second);
    drop(first);
    Ok(InteractionsHttpReport {
        runs,
        idle_rss_mb: idle_kb as f64 / 1024.0,
    })
}

async fn fire_one(client: &reqwest::Client, signed: &Signed, base: &str) -> serde_json::Value {
    let mut request = client
        .post(format!("{base}{}", invite_bot::discord::endpoint::PATH))
        .header("content-type", "application/json")
        .body(signed.body.clone());
    for (name, value) in &signed.headers {
        request = request.header(*name, value);
    }
    match request.send().await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

impl InteractionsHttpReport {
    /// 200 at once on one replica: p99 under 50 ms, no error; every replica under 60 MB; the
    /// killed run did nothing twice.
    pub fn all_pass(&self) -> bool {
        let one = &self.runs[0];
        one.errors == 0
            && one.p99_ms < 50.0
            && self
                .runs
                .iter()
                .all(|run| run.peak_rss_mb.iter().all(|mb| *mb < 60.0))
            && self
                .runs
                .iter()
                .all(|run| run.resend_emails.is_none_or(|n| n <= 1))
    }

    pub fn to_text(&self) -> String {
        let mut text = format!(
            "HTTP interactions: signed /invite-check POSTs to invite-bot serve (mode = \"http\") on one PostgreSQL\n\
             idle RSS {:.1} MB\n\
             {:<32} {:>8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}  {}\n",
            self.idle_rss_mb, "setup", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "peak RSS (MB)"
        );
        for run in &self.runs {
            let rss: Vec<String> = run
                .peak_rss_mb
                .iter()
                .map(|mb| format!("{mb:.1}"))
                .collect();
            text.push_str(&format!(
                "{:<32} {:>8} {:>6} {:>6.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}{}\n",
                run.setup,
                run.requests,
                run.errors,
                run.requests_per_second,
                run.p50_ms,
                run.p95_ms,
                run.p99_ms,
                run.max_ms,
                rss.join(" / "),
                run.resend_emails
                    .map(|n| format!("  (Resend emails: {n})"))
                    .unwrap_or_default(),
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_failures_as_errors_and_times_only_answers() {
        let results = [(10.0, true), (20.0, true), (5000.0, false)];
        let run = summarize("x", &results, Duration::from_secs(1), 3, vec![30.0], None);
        assert_eq!((run.ok, run.errors), (2, 1));
        assert_eq!(run.max_ms, 20.0);
        assert_eq!(run.requests_per_second, 3.0);
    }
}
