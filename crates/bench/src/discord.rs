//! The Discord scenario of the benchmark: the bot's real `serve`, as a child process, connected
//! to the local fake Discord ([`invite_bot_testkit::fake_discord`]), answering many `/invite-check` interactions
//! sent at once over the gateway.
//!
//! Measured: the child's resident memory (VmRSS from `/proc/<pid>/status`, so the numbers are the
//! bot's alone, not the benchmark's or the fake's) once idle after READY and command registration,
//! and its peak while answering; and per interaction, the time from the gateway send to the arrival
//! of the interaction's callback POST at the fake. Linux only (it reads `/proc`).

use crate::child::{proc_status_kb, seed_demo, Bot, Exited, TempDir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use invite_bot_testkit::fake_discord::{FakeDiscord, FakeUser, Recorded, GUILD_ID};

/// Set in the child's environment: `invite-bot-bench` then runs as the bot (`invite_bot::cli`), so
/// by default the child is this very executable and the bot measured is always the one the bench
/// was built with (a separately built `invite-bot` could be stale). `invite-bot` ignores it.
pub const RUN_AS_BOT: &str = "INVITE_BOT_BENCH_RUN_AS_BOT";

/// The role the benchmark's fake user holds; the generated config grants it `check`.
const BENCH_ROLE: &str = "7100";

/// Addresses from the demo fixture: registered, typo'd and unknown, so the checks are varied.
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

#[derive(Debug, Clone)]
pub struct DiscordBenchOptions {
    /// How many `/invite-check` interactions are sent.
    pub interactions: usize,
    /// At most this many unanswered at a time; 0 means all at once.
    pub concurrency: usize,
    /// The database `serve` uses (seeded with the demo fixture first, idempotently). None: a
    /// fresh SQLite file in a temporary directory, removed afterwards.
    pub database_url: Option<String>,
    /// The bot's binary: `invite-bot`, or `invite-bot-bench` (see [`RUN_AS_BOT`]). None: the running
    /// executable (`invite-bot-bench --discord`).
    pub bot_exe: Option<PathBuf>,
    /// Give up waiting for READY, registration or the answers after this long.
    pub timeout: Duration,
}

impl Default for DiscordBenchOptions {
    fn default() -> Self {
        DiscordBenchOptions {
            interactions: 200,
            concurrency: 0,
            database_url: None,
            bot_exe: None,
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DiscordBenchReport {
    pub interactions: usize,
    pub concurrency: usize,
    /// Interactions whose callback POST arrived.
    pub answered: usize,
    /// Of those, how many were deferred (type 5) because the check took longer than the bot waits.
    pub deferred: usize,
    pub idle_rss_mb: f64,
    /// The highest VmRSS sampled (every 5 ms) while answering.
    pub peak_rss_mb: f64,
    /// VmHWM at the end: the peak over the whole life of the process, start-up included.
    pub hwm_rss_mb: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the first send to the last callback.
    pub wall_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscordBenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot seed the benchmark database: {0}")]
    Seed(String),
    #[error("invite-bot serve exited early ({status}); its log:\n{log}")]
    BotExited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("{0} (log of invite-bot serve:\n{1})")]
    Timeout(String, String),
    #[error("cannot read the memory of process {0} (Linux /proc only)")]
    NoProcStatus(u32),
    #[error("the interactions value must be at least 1")]
    NoInteractions,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DiscordBenchError {
    let what = what.into();
    move |source| DiscordBenchError::Io { what, source }
}

impl From<Exited> for DiscordBenchError {
    fn from(exited: Exited) -> Self {
        DiscordBenchError::BotExited {
            status: exited.status,
            log: exited.log,
        }
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn is_callback(request: &Recorded) -> bool {
    request.method == axum::http::Method::POST
        && request.path.starts_with("/api/v10/interactions/")
        && request.path.ends_with("/callback")
}

/// The token in `/api/v10/interactions/{id}/{token}/callback`.
fn callback_token(path: &str) -> Option<&str> {
    let mut segments = path.trim_start_matches("/api/v10/interactions/").split('/');
    let _id = segments.next()?;
    segments.next()
}

fn write_config(
    dir: &Path,
    database_url: &str,
    api_base: &str,
) -> Result<PathBuf, DiscordBenchError> {
    let path = dir.join("config.toml");
    // Built with toml's own string quoting, so a URL with quotes cannot break the file.
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let text = format!(
        "database_url = {db}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[discord]\nguild_ids = [{GUILD_ID}]\napi_base_url = {base}\n\n[[permissions.grant]]\nroles = [\"{BENCH_ROLE}\"]\nallow = [\"check\"]\n",
        db = quote(database_url),
        base = quote(api_base),
    );
    let mut file = std::fs::File::create(&path).map_err(io("write the benchmark config"))?;
    file.write_all(text.as_bytes())
        .map_err(io("write the benchmark config"))?;
    Ok(path)
}

async fn seed(database_url: &str) -> Result<(), DiscordBenchError> {
    seed_demo(database_url)
        .await
        .map_err(DiscordBenchError::Seed)
}

/// Waits for `what` while watching the child: a bot that exits fails the wait at once.
async fn wait_or_fail<F: std::future::Future<Output = bool>>(
    bot: &mut Bot,
    what: &str,
    limit: Duration,
    mut poll: impl FnMut() -> F,
) -> Result<(), DiscordBenchError> {
    let deadline = Instant::now() + limit;
    loop {
        if poll().await {
            return Ok(());
        }
        bot.check_alive()?;
        if Instant::now() >= deadline {
            return Err(DiscordBenchError::Timeout(
                format!("waited {} s for {what}", limit.as_secs()),
                bot.log(),
            ));
        }
    }
}

#[tracing::instrument(skip_all, fields(interactions = options.interactions))]
pub async fn run(options: DiscordBenchOptions) -> Result<DiscordBenchReport, DiscordBenchError> {
    if options.interactions == 0 {
        return Err(DiscordBenchError::NoInteractions);
    }
    let concurrency = match options.concurrency {
        0 => options.interactions,
        n => n.min(options.interactions),
    };
    let dir = TempDir::new("discord").map_err(io("create a temporary directory"))?;
    let database_url = match &options.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    seed(&database_url).await?;

    let fake = FakeDiscord::try_start()
        .await
        .map_err(io("start the fake Discord"))?;
    let config = write_config(dir.path(), &database_url, &fake.base_url)?;
    let exe = match &options.bot_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(io("find the invite-bot executable"))?,
    };
    let log = dir.path().join("serve.log");
    let log_file = std::fs::File::create(&log).map_err(io("create the serve log"))?;
    let child = Command::new(&exe)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env(RUN_AS_BOT, "1")
        .env("DISCORD_TOKEN", "bench-token")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_HTTP_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(io(format!("start {}", exe.display())))?;
    let mut bot = Bot::new(child, log);
    let pid = bot.pid();

    let step = Duration::from_millis(200);
    wait_or_fail(
        &mut bot,
        "READY on the fake gateway",
        options.timeout,
        || fake.wait_ready_within(step),
    )
    .await?;
    let registered =
        |r: &Recorded| r.method == axum::http::Method::PUT && r.path.ends_with("/commands");
    wait_or_fail(
        &mut bot,
        "command registration",
        options.timeout,
        || async { fake.wait_count(registered, 1, step).await >= 1 },
    )
    .await?;

    // Let start-up work (migrations, the first connections) settle before the idle sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kb = proc_status_kb(pid, "VmRSS").ok_or(DiscordBenchError::NoProcStatus(pid))?;

    // Sampled on a plain thread so the sampling never waits behind the runtime's tasks.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(idle_kb));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let user = FakeUser::new("9100", "bench", &[BENCH_ROLE]);
    let mut sent: std::collections::HashMap<String, Instant> =
        std::collections::HashMap::with_capacity(options.interactions);
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut outcome = Ok(());
    for i in 0..options.interactions {
        if i >= concurrency {
            // Wait for room: at most `concurrency` unanswered.
            let needed = i + 1 - concurrency;
            loop {
                if fake.wait_count(is_callback, needed, step).await >= needed {
                    break;
                }
                if let Err(e) = bot.check_alive() {
                    outcome = Err(e.into());
                    break;
                }
                if Instant::now() >= deadline {
                    outcome = Err(DiscordBenchError::Timeout(
                        format!("only {} of {i} interactions answered", needed - 1),
                        bot.log(),
                    ));
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        let address = ADDRESSES[i % ADDRESSES.len()];
        let at = Instant::now();
        match fake.try_invite_check(&user, &[("email", address)]) {
            Some(token) => {
                sent.insert(token, at);
            }
            None => {
                outcome = Err(DiscordBenchError::Timeout(
                    "the gateway connection closed".into(),
                    bot.log(),
                ));
                break;
            }
        }
    }
    if outcome.is_ok() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let total = sent.len();
        let answered = fake.wait_count(is_callback, total, remaining).await;
        if answered < total {
            bot.check_alive()?;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    outcome?;
    // The kernel folds per-thread RSS counters into VmHWM lazily: never report it below a sample.
    let hwm_kb = proc_status_kb(pid, "VmHWM")
        .unwrap_or(0)
        .max(peak.load(Ordering::Relaxed));

    let mut latencies = Vec::with_capacity(sent.len());
    let mut deferred = 0;
    let mut last = started;
    for callback in fake.requests().iter().filter(|r| is_callback(r)) {
        let Some(sent_at) = callback_token(&callback.path).and_then(|t| sent.remove(t)) else {
            continue;
        };
        latencies.push(callback.at.duration_since(sent_at).as_secs_f64() * 1000.0);
        last = last.max(callback.at);
        if callback.body["type"].as_u64() == Some(5) {
            deferred += 1;
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    drop(bot);
    Ok(DiscordBenchReport {
        interactions: options.interactions,
        concurrency,
        answered: latencies.len(),
        deferred,
        idle_rss_mb: mb(idle_kb),
        peak_rss_mb: mb(peak.load(Ordering::Relaxed)),
        hwm_rss_mb: mb(hwm_kb),
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        wall_ms: last.duration_since(started).as_secs_f64() * 1000.0,
    })
}

impl DiscordBenchReport {
    /// The table `invite-bot-bench --discord` prints.
    pub fn to_text(&self) -> String {
        format!(
            "Discord scenario: invite-bot serve against the fake Discord\n\
             interactions     {} ({} at a time), answered {}, deferred {}\n\
             idle RSS         {:.1} MB\n\
             peak RSS         {:.1} MB while answering (VmHWM over the whole run {:.1} MB)\n\
             arrival->callback p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms\n\
             wall             {:.0} ms\n",
            self.interactions,
            self.concurrency,
            self.answered,
            self.deferred,
            self.idle_rss_mb,
            self.peak_rss_mb,
            self.hwm_rss_mb,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            self.wall_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_callback_path_names_the_token() {
        assert_eq!(
            callback_token("/api/v10/interactions/900001/token-900000/callback"),
            Some("token-900000")
        );
    }
}
