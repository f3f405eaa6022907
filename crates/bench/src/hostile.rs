//! The hostile scenario of the benchmark (`invite-bot-bench --hostile`): issue 11's "numbers to
//! reach", measured against the bot's real binary as a child process.
//!
//! 1. **CPU per hostile request.** `invite-bot serve --no-discord` on a seeded SQLite file; for each
//!    kind of hostile request, N are sent one after another and the child's CPU time (utime + stime
//!    from `/proc/<pid>/stat`) is read around each one. Every request comes from its own loopback
//!    address (127.x.y.z), so the per-client throttle never answers in the handler's place: what is
//!    measured is the full cost of the body, not the cost of a cheap 429.
//! 2. **Memory under 200 concurrent wrong guesses** at `/api/activate`, each from its own address
//!    and for its own unknown address (so no throttle short-cuts the hashing): peak RSS (`VmHWM`
//!    of the child) and every answer's status; none may be dropped or time out.
//! 3. **A database that accepts connections and never answers:** `invite-bot check` pointed at a
//!    local TCP listener that accepts and stays silent; the wall time to its error, and the error.
//! 4. **A mail server that goes silent after DATA:** `invite-bot resend` through a local SMTP server
//!    that answers up to DATA and then never again; the wall time to giving up against the
//!    configured send timeout.
//!
//! Linux only (it reads `/proc`). Nothing here asserts: the report says pass or fail per target.

use crate::child::{proc_status_kb, seed_demo, Bot, Exited, TempDir};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::discord::RUN_AS_BOT;

/// The targets of issue 11.
pub const CPU_TARGET_MS: f64 = 50.0;
pub const RSS_TARGET_MB: f64 = 300.0;
pub const DATABASE_TARGET_S: f64 = 2.5;
/// "Its configured timeout plus a few seconds".
pub const SMTP_GRACE_S: f64 = 3.0;

const WORKSPACE: &str = "acme-academy";
/// Registered in the demo fixture: an invitation that can be resent, and addresses for guesses.
const RESEND_ADDRESS: &str = "ana.souza@acme-corp.com";
const MEMBER_ADDRESSES: &[&str] = &[
    "Jane.Doe@acme-corp.com",
    "omar.haddad@gmail.com",
    "priya.patel@gmial.com",
    "sam.rivera@yahoo.com",
    "tom.becker@outlook.com",
    "ana.souza@acme-corp.com",
    "lee.chen@initech.io",
];
/// Code-shaped, and not any member's code.
const WRONG_CODE: &str = "K7QF-9MZX-2H";
const MAILGUN_KEY: &str = "bench-signing-key";

#[derive(Debug, Clone)]
pub struct HostileBenchOptions {
    /// Requests of each hostile kind, one after another (the CPU time is averaged over them).
    pub requests_per_kind: usize,
    /// Wrong guesses at `/api/activate` sent at once.
    pub concurrent: usize,
    /// The SMTP send timeout configured for the resend (whole seconds, at least 1).
    pub smtp_send_timeout_seconds: u64,
    /// The bot's binary (see [`RUN_AS_BOT`]); None: the running executable.
    pub bot_exe: Option<PathBuf>,
    /// Give up on any one step (start-up, a request, a child command) after this long.
    pub timeout: Duration,
}

impl Default for HostileBenchOptions {
    fn default() -> Self {
        HostileBenchOptions {
            requests_per_kind: 20,
            concurrent: 200,
            smtp_send_timeout_seconds: 5,
            bot_exe: None,
            timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostileBenchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot seed the benchmark database: {0}")]
    Seed(String),
    #[error("invite-bot serve exited early ({status}); its log:\n{log}")]
    BotExited { status: ExitStatus, log: String },
    #[error("{0} (log of invite-bot serve:\n{1})")]
    Timeout(String, String),
    #[error("cannot read /proc/{0} (Linux only)")]
    NoProc(u32),
    #[error("requests per kind and concurrent requests must each be at least 1")]
    NothingToSend,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostileBenchError {
    let what = what.into();
    move |source| HostileBenchError::Io { what, source }
}

/// One line of the table: a number of issue 11 against its target.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub measured: f64,
    pub unit: &'static str,
    /// The target, as printed (`<= 50 ms`).
    pub target: String,
    pub pass: bool,
    /// What else the run saw: statuses, the error text, the worst single request.
    pub detail: String,
}

/// The cost of one kind of hostile request.
#[derive(Debug, Clone, Serialize)]
pub struct KindCost {
    pub kind: &'static str,
    pub route: &'static str,
    pub request_bytes: usize,
    pub requests: usize,
    /// Child CPU (user + system) over all the requests, divided by their number.
    pub cpu_ms_mean: f64,
    /// The most one request cost (at the kernel's tick, 10 ms on Linux).
    pub cpu_ms_max: f64,
    /// How each was answered: `"413": 20`, `"closed"` (the server closed without an answer,
    /// which is how hyper refuses some headers), `"timeout"`.
    pub answers: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrentCost {
    pub requests: usize,
    pub idle_rss_mb: f64,
    /// `VmHWM` at the end: the highest resident memory over the child's whole life.
    pub peak_rss_mb: f64,
    pub answers: std::collections::BTreeMap<String, usize>,
    pub wall_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Deadline {
    pub command: String,
    pub wall_s: f64,
    /// The configured deadline the wall time is judged against.
    pub limit_s: f64,
    pub exit_code: Option<i32>,
    /// The first lines the command printed (stderr, then stdout).
    pub message: String,
    /// Whether the command got as far as the silence: the database was connected to, the SMTP
    /// server was sent the whole message. A run that stopped short measured something else.
    pub reached_silence: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostileReport {
    pub rows: Vec<Row>,
    pub kinds: Vec<KindCost>,
    pub concurrent: ConcurrentCost,
    pub silent_database: Deadline,
    pub silent_smtp: Deadline,
}

impl HostileReport {
    pub fn all_pass(&self) -> bool {
        self.rows.iter().all(|row| row.pass)
    }

    /// The table `invite-bot-bench --hostile` prints.
    pub fn to_text(&self) -> String {
        let mut text = String::from(
            "Hostile scenario: issue 11's numbers against invite-bot serve, check and resend\n",
        );
        let width = self
            .rows
            .iter()
            .map(|row| row.metric.len())
            .max()
            .unwrap_or(6)
            .max(6);
        text.push_str(&format!(
            "{:<width$}  {:>12}  {:<12}  {:<4}  detail\n",
            "metric", "measured", "target", "pass"
        ));
        for row in &self.rows {
            text.push_str(&format!(
                "{:<width$}  {:>9.1} {:<2}  {:<12}  {:<4}  {}\n",
                row.metric,
                row.measured,
                row.unit,
                row.target,
                if row.pass { "yes" } else { "NO" },
                row.detail,
            ));
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------
// The child process and /proc

impl From<Exited> for HostileBenchError {
    fn from(exited: Exited) -> Self {
        HostileBenchError::BotExited {
            status: exited.status,
            log: exited.log,
        }
    }
}

/// utime + stime of `pid` in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Milliseconds per clock tick: `getconf CLK_TCK`, which Linux fixes at 100 for /proc.
fn tick_ms() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .map(|hz| 1000.0 / hz)
        .unwrap_or(10.0)
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn write_file(path: &Path, text: &str) -> Result<(), HostileBenchError> {
    let mut file = std::fs::File::create(path).map_err(io(format!("write {}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(io(format!("write {}", path.display())))
}

fn bot_command(exe: &Path, dir: &Path, config: &Path) -> Command {
    let mut command = Command::new(exe);
    command
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .env(RUN_AS_BOT, "1")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("DISCORD_TOKEN")
        .env_remove("SMTP_URL")
        .env_remove("INVITE_BOT_HTTP_LISTEN")
        .env_remove("INVITE_BOT_PROMPTS_DIR")
        .stdin(Stdio::null());
    command
}

/// Starts `serve --no-discord` and waits for the address it prints.
async fn start_serve(
    exe: &Path,
    dir: &Path,
    config: &Path,
    limit: Duration,
) -> Result<(Bot, SocketAddr), HostileBenchError> {
    let log = dir.join("serve.log");
    let log_file = std::fs::File::create(&log).map_err(io("create the serve log"))?;
    let child = bot_command(exe, dir, config)
        .args(["serve", "--no-discord"])
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(io(format!("start {}", exe.display())))?;
    let mut bot = Bot::new(child, log);
    let deadline = Instant::now() + limit;
    loop {
        let text = bot.log_text();
        if let Some(addr) = text
            .lines()
            .find_map(|line| line.split("listening on http://").nth(1))
            .and_then(|rest| rest.trim().parse::<SocketAddr>().ok())
        {
            return Ok((bot, addr));
        }
        bot.check_alive()?;
        if Instant::now() >= deadline {
            return Err(HostileBenchError::Timeout(
                "invite-bot serve never said where it listens".into(),
                bot.log(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn seed(database_url: &str) -> Result<(), HostileBenchError> {
    seed_demo(database_url)
        .await
        .map_err(HostileBenchError::Seed)
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client: hostile requests are exactly the ones a polite client refuses to send.

/// Hands out loopback source addresses, one per request, so no two requests share a per-client
/// throttle. 127.0.0.0/8 is all local on Linux; 127.0.0.1 itself is never used.
#[derive(Debug, Default)]
struct Sources(AtomicU32);

impl Sources {
    fn next(&self) -> Ipv4Addr {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        // 127.1.0.1 onwards, skipping .0 and .255 in the last octet.
        let host = n % 254 + 1;
        let rest = n / 254;
        Ipv4Addr::new(
            127,
            1 + (rest / 256 % 254) as u8,
            (rest % 256) as u8,
            host as u8,
        )
    }
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Status(u16),
    /// The connection ended without a status line.
    Closed,
    TimedOut,
    ConnectFailed,
}

impl Answer {
    fn label(&self) -> String {
        match self {
            Answer::Status(code) => code.to_string(),
            Answer::Closed => "closed".into(),
            Answer::TimedOut => "timeout".into(),
            Answer::ConnectFailed => "connect_failed".into(),
        }
    }
}

/// Sends `request` from `from` and reads the answer's status. The request is written while the
/// answer is read, so a server that answers 413 and closes before reading everything is heard.
async fn send(from: Ipv4Addr, to: SocketAddr, request: Arc<Vec<u8>>, limit: Duration) -> Answer {
    let connect = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from.into(), 0))?;
        socket.connect(to).await
    };
    let stream: TcpStream = match tokio::time::timeout(limit, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) => return Answer::ConnectFailed,
        Err(_) => return Answer::TimedOut,
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        // A refusal closes the connection under the writer: that is an answer, not a failure.
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });
    let mut head = Vec::with_capacity(64);
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if head.len() < 64 {
                        head.extend_from_slice(&buffer[..n.min(64 - head.len())]);
                    }
                }
            }
        }
    })
    .await;
    writing.abort();
    match parse_status(&head) {
        Some(code) => Answer::Status(code),
        None if read.is_err() => Answer::TimedOut,
        None => Answer::Closed,
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(head.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

fn http_request(path: &str, extra_headers: &str, body: &[u8], content_length: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\nConnection: close\r\n{extra_headers}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn activate_body(email: &str, code: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "email": email, "workspace": WORKSPACE, "code": code,
    }))
    .expect("JSON of strings")
}

/// One kind of hostile request; `build(i)` makes the i-th (some vary the address).
struct Kind {
    name: &'static str,
    route: &'static str,
    build: Box<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
}

const MB: usize = 1_000_000;

fn kinds() -> Vec<Kind> {
    let activate = "/api/activate";
    let mailgun = "/webhooks/mailgun";
    let limit = invite_bot::http::activate::MAX_BODY_BYTES;
    let plain = |path: &'static str, body: Vec<u8>| {
        let request = http_request(path, "", &body, body.len());
        move |_: usize| request.clone()
    };
    let spaces_dots = |total: usize| {
        let prefix = "{\"email\":\"jane.doe@acme-corp.com";
        let suffix = format!("\",\"workspace\":\"{WORKSPACE}\",\"code\":\"{WRONG_CODE}\"}}");
        let pairs = total.saturating_sub(prefix.len() + suffix.len()) / 2;
        format!("{prefix}{}{suffix}", " .".repeat(pairs)).into_bytes()
    };
    let big_json = |total: usize| {
        // Valid JSON: the three fields and a long unknown one.
        let head = format!(
            "{{\"email\":\"jane.doe@acme-corp.com\",\"workspace\":\"{WORKSPACE}\",\"code\":\"{WRONG_CODE}\",\"padding\":["
        );
        let mut body = head.into_bytes();
        while body.len() + 4 < total {
            body.extend_from_slice(b"1,");
        }
        body.extend_from_slice(b"1]}");
        body
    };
    let nested = |total: usize| {
        let depth = total / 2;
        let mut body = "[".repeat(depth).into_bytes();
        body.extend("]".repeat(depth).into_bytes());
        body
    };
    vec![
        Kind {
            name: "1 MB of \" .\" after an address",
            route: activate,
            build: Box::new(plain(activate, spaces_dots(MB))),
        },
        Kind {
            name: "\" .\" after an address, up to the route's limit",
            route: activate,
            build: Box::new(plain(activate, spaces_dots(limit))),
        },
        Kind {
            name: "1 MB JSON",
            route: activate,
            build: Box::new(plain(activate, big_json(MB))),
        },
        Kind {
            name: "1 MB JSON to a webhook",
            route: mailgun,
            build: Box::new(plain(mailgun, big_json(MB))),
        },
        Kind {
            name: "deeply nested JSON",
            route: activate,
            build: Box::new(plain(activate, nested(limit))),
        },
        Kind {
            name: "deeply nested JSON to a webhook (1 MB)",
            route: mailgun,
            build: Box::new(plain(mailgun, nested(MB))),
        },
        Kind {
            name: "invalid UTF-8",
            route: activate,
            build: Box::new(plain(activate, {
                let mut body = activate_body("jane.doe@acme-corp.com", WRONG_CODE);
                let at = body.iter().position(|&b| b == b'@').expect("an @");
                body.splice(at..at, [0xff, 0xfe, 0xc3, 0x28]);
                body
            })),
        },
        Kind {
            name: "huge header (1 MB)",
            route: activate,
            build: Box::new({
                let body = activate_body("jane.doe@acme-corp.com", WRONG_CODE);
                let header = format!("X-Padding: {}\r\n", "a".repeat(MB));
                let request = http_request(activate, &header, &body, body.len());
                move |_: usize| request.clone()
            }),
        },
        Kind {
            name: "oversized body (declares 64 MB, sends 2 MB)",
            route: activate,
            build: Box::new({
                let body = big_json(2 * MB);
                let request = http_request(activate, "", &body, 64 * MB);
                move |_: usize| request.clone()
            }),
        },
        Kind {
            name: "right-to-left override in the address",
            route: activate,
            build: Box::new(plain(
                activate,
                activate_body("jane.doe\u{202E}moc.liamg@acme-corp.com", WRONG_CODE),
            )),
        },
        Kind {
            name: "a wrong code for a member",
            route: activate,
            // A member's address each time, at most the per-address throttle's four an hour
            // each (beyond, the throttle answers, which the statuses show).
            build: Box::new(move |i: usize| {
                let body = activate_body(MEMBER_ADDRESSES[i % MEMBER_ADDRESSES.len()], WRONG_CODE);
                http_request(activate, "", &body, body.len())
            }),
        },
        Kind {
            name: "a wrong code for an unknown address",
            route: activate,
            build: Box::new(move |i: usize| {
                let body = activate_body(&format!("stranger{i}@example.org"), WRONG_CODE);
                http_request(activate, "", &body, body.len())
            }),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Silent servers

/// Accepts connections and never writes a byte (keeps each one open until the run ends).
async fn silent_listener(
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>, Arc<AtomicU64>), HostileBenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("bind the silent database"))?;
    let addr = listener
        .local_addr()
        .map_err(io("bind the silent database"))?;
    let connections = Arc::new(AtomicU64::new(0));
    let seen = connections.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::Relaxed);
            held.push(stream);
        }
    });
    Ok((addr, task, connections))
}

/// An SMTP server that answers everything up to DATA, then reads the message and goes silent.
async fn smtp_silent_after_data(
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>, Arc<AtomicU64>), HostileBenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("bind the silent SMTP server"))?;
    let addr = listener
        .local_addr()
        .map_err(io("bind the silent SMTP server"))?;
    let messages = Arc::new(AtomicU64::new(0));
    let seen = messages.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut lines = BufReader::new(reader).lines();
                if writer.write_all(b"220 bench ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            // The message is in: never say whether it was accepted.
                            seen.fetch_add(1, Ordering::Relaxed);
                            while let Ok(Some(_)) = lines.next_line().await {}
                            return;
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        _ => b"502 not implemented\r\n",
                    };
                    if writer.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, task, messages))
}

/// Runs a bot command to its end (killed after `limit`) and times it.
async fn time_command(
    mut command: Command,
    label: String,
    limit_s: f64,
    give_up: Duration,
) -> Result<Deadline, HostileBenchError> {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("start {label}")))?;
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let id = child.id();
        // Kill this child (by its own pid) if it outlives the limit, so a hang ends the run.
        let (done, waiting) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if waiting.recv_timeout(give_up).is_err() {
                let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            }
        });
        let output = child.wait_with_output();
        let _ = done.send(());
        let _ = watchdog.join();
        output
    })
    .await
    .map_err(|e| HostileBenchError::Io {
        what: format!("wait for {label}"),
        source: std::io::Error::other(e),
    })?
    .map_err(io(format!("wait for {label}")))?;
    let wall_s = started.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let message = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ");
    Ok(Deadline {
        command: label,
        wall_s,
        limit_s,
        exit_code: output.status.code(),
        message,
        reached_silence: false,
    })
}

// ---------------------------------------------------------------------------------------------
// The run

#[tracing::instrument(skip_all)]
pub async fn run(options: HostileBenchOptions) -> Result<HostileReport, HostileBenchError> {
    if options.requests_per_kind == 0 || options.concurrent == 0 {
        return Err(HostileBenchError::NothingToSend);
    }
    let smtp_send_timeout = options.smtp_send_timeout_seconds.max(1);
    let dir = TempDir::new("hostile").map_err(io("create a temporary directory"))?;
    let exe = match &options.bot_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(io("find the invite-bot executable"))?,
    };
    let database_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    seed(&database_url).await?;
    let serve_config = dir.path().join("serve.toml");
    write_file(
        &serve_config,
        &format!(
            "database_url = {db}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[providers.mailgun]\nsigning_key = {key}\n",
            db = quote(&database_url),
            key = quote(MAILGUN_KEY),
        ),
    )?;

    let (mut bot, addr) = start_serve(&exe, dir.path(), &serve_config, options.timeout).await?;
    let pid = bot.pid();
    let sources = Sources::default();
    let tick = tick_ms();

    // 1. CPU per request, kind by kind.
    let mut kinds_cost = Vec::new();
    for kind in kinds() {
        let mut answers = std::collections::BTreeMap::new();
        let mut worst = 0u64;
        let before = cpu_ticks(pid).ok_or(HostileBenchError::NoProc(pid))?;
        let mut bytes = 0;
        for i in 0..options.requests_per_kind {
            let request = Arc::new((kind.build)(i));
            bytes = request.len();
            let start = cpu_ticks(pid).ok_or(HostileBenchError::NoProc(pid))?;
            let answer = send(sources.next(), addr, request, options.timeout).await;
            let end = cpu_ticks(pid).ok_or(HostileBenchError::NoProc(pid))?;
            worst = worst.max(end.saturating_sub(start));
            *answers.entry(answer.label()).or_insert(0) += 1;
        }
        let after = cpu_ticks(pid).ok_or(HostileBenchError::NoProc(pid))?;
        bot.check_alive()?;
        kinds_cost.push(KindCost {
            kind: kind.name,
            route: kind.route,
            request_bytes: bytes,
            requests: options.requests_per_kind,
            cpu_ms_mean: (after - before) as f64 * tick / options.requests_per_kind as f64,
            cpu_ms_max: worst as f64 * tick,
            answers,
        });
    }

    // 2. Many wrong guesses at once, each from its own address and for its own stranger.
    let idle_kb = proc_status_kb(pid, "VmRSS").ok_or(HostileBenchError::NoProc(pid))?;
    let barrier = Arc::new(tokio::sync::Barrier::new(options.concurrent));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(options.concurrent);
    for i in 0..options.concurrent {
        let body = activate_body(&format!("guess{i}@example.net"), WRONG_CODE);
        let request = Arc::new(http_request("/api/activate", "", &body, body.len()));
        let from = sources.next();
        let barrier = barrier.clone();
        let limit = options.timeout;
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            send(from, addr, request, limit).await
        }));
    }
    let mut answers = std::collections::BTreeMap::new();
    for task in tasks {
        let label = match task.await {
            Ok(answer) => answer.label(),
            Err(_) => "client_failed".to_owned(),
        };
        *answers.entry(label).or_insert(0) += 1;
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    bot.check_alive()?;
    let hwm_kb = proc_status_kb(pid, "VmHWM").ok_or(HostileBenchError::NoProc(pid))?;
    let concurrent = ConcurrentCost {
        requests: options.concurrent,
        idle_rss_mb: idle_kb as f64 / 1024.0,
        peak_rss_mb: hwm_kb as f64 / 1024.0,
        answers,
        wall_ms,
    };
    drop(bot);

    // 3. `check` against a database that accepts and never answers.
    let (db_addr, db_task, connections) = silent_listener().await?;
    let silent_url = format!("postgres://bench@{db_addr}/bench");
    let empty_config = dir.path().join("empty.toml");
    write_file(&empty_config, "")?;
    let mut command = bot_command(&exe, dir.path(), &empty_config);
    command
        .args([
            "--database-url",
            &silent_url,
            "check",
            "jane.doe@acme-corp.com",
        ])
        .env("RUST_LOG", "off");
    let mut silent_database = time_command(
        command,
        "invite-bot check (postgres:// that accepts and never answers)".into(),
        DATABASE_TARGET_S,
        options.timeout,
    )
    .await?;
    db_task.abort();
    silent_database.reached_silence = connections.load(Ordering::Relaxed) > 0;

    // 4. `resend` through an SMTP server that goes silent after DATA.
    let (smtp_addr, smtp_task, messages) = smtp_silent_after_data().await?;
    let resend_config = dir.path().join("resend.toml");
    write_file(
        &resend_config,
        &format!(
            "database_url = {db}\n\n[smtp]\nurl = {url}\ntimeout_seconds = 2\nsend_timeout_seconds = {smtp_send_timeout}\n",
            db = quote(&database_url),
            url = quote(&format!("smtp://{smtp_addr}")),
        ),
    )?;
    let mut command = bot_command(&exe, dir.path(), &resend_config);
    command
        .args(["resend", RESEND_ADDRESS, "--workspace", WORKSPACE])
        .env("RUST_LOG", "off");
    let mut silent_smtp = time_command(
        command,
        format!("invite-bot resend (SMTP silent after DATA, send timeout {smtp_send_timeout} s)"),
        smtp_send_timeout as f64 + SMTP_GRACE_S,
        options.timeout,
    )
    .await?;
    smtp_task.abort();
    silent_smtp.reached_silence = messages.load(Ordering::Relaxed) > 0;

    Ok(HostileReport {
        rows: rows(&kinds_cost, &concurrent, &silent_database, &silent_smtp),
        kinds: kinds_cost,
        concurrent,
        silent_database,
        silent_smtp,
    })
}

fn answers_text(answers: &std::collections::BTreeMap<String, usize>) -> String {
    answers
        .iter()
        .map(|(label, count)| format!("{label}x{count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rows(
    kinds: &[KindCost],
    concurrent: &ConcurrentCost,
    database: &Deadline,
    smtp: &Deadline,
) -> Vec<Row> {
    let mut rows: Vec<Row> = kinds
        .iter()
        .map(|kind| Row {
            metric: format!("CPU/request: {}", kind.kind),
            measured: kind.cpu_ms_mean,
            unit: "ms",
            target: format!("<= {CPU_TARGET_MS} ms"),
            // The mean is the measurement; the worst single request (at tick resolution) may
            // not exceed the target by more than one tick either.
            pass: kind.cpu_ms_mean <= CPU_TARGET_MS && kind.cpu_ms_max <= CPU_TARGET_MS + 10.0,
            detail: format!(
                "{} {} B, max {:.0} ms; {}",
                kind.route,
                kind.request_bytes,
                kind.cpu_ms_max,
                answers_text(&kind.answers)
            ),
        })
        .collect();
    let answered: usize = concurrent
        .answers
        .iter()
        .filter(|(label, _)| *label == "422" || *label == "429")
        .map(|(_, count)| count)
        .sum();
    rows.push(Row {
        metric: format!("peak RSS, {} concurrent wrong guesses", concurrent.requests),
        measured: concurrent.peak_rss_mb,
        unit: "MB",
        target: format!("< {RSS_TARGET_MB} MB"),
        pass: concurrent.peak_rss_mb < RSS_TARGET_MB,
        detail: format!(
            "VmHWM; idle {:.1} MB, wall {:.0} ms",
            concurrent.idle_rss_mb, concurrent.wall_ms
        ),
    });
    rows.push(Row {
        metric: format!("answered 422/429 of {}", concurrent.requests),
        measured: answered as f64,
        unit: "",
        target: format!("= {}", concurrent.requests),
        pass: answered == concurrent.requests,
        detail: answers_text(&concurrent.answers),
    });
    for (deadline, what) in [(database, "silent database"), (smtp, "silent SMTP")] {
        rows.push(Row {
            metric: format!(
                "{what}: {} gives up",
                deadline.command.split(" (").next().unwrap_or("")
            ),
            measured: deadline.wall_s,
            unit: "s",
            target: format!("<= {:.1} s", deadline.limit_s),
            // Killed by the watchdog, or stopped before the silence, is no measurement of giving up.
            pass: deadline.wall_s <= deadline.limit_s
                && deadline.exit_code.is_some()
                && deadline.reached_silence,
            detail: format!(
                "exit {}{}; {}",
                deadline
                    .exit_code
                    .map_or("killed".to_owned(), |code| code.to_string()),
                if deadline.reached_silence {
                    ""
                } else {
                    ", never reached the silent server"
                },
                deadline.message
            ),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "1234 (invite (bot) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 37 5 0 0 20 0 9 0 100 1000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(42));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_cpu_ticks() {
        assert!(cpu_ticks(std::process::id()).is_some());
    }

    #[test]
    fn status_lines_are_read_from_the_answer() {
        assert_eq!(
            parse_status(b"HTTP/1.1 413 Payload Too Large\r\n"),
            Some(413)
        );
        assert_eq!(parse_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
    }

    #[test]
    fn every_source_address_is_a_distinct_loopback_host() {
        let sources = Sources::default();
        let addresses: std::collections::HashSet<Ipv4Addr> =
            (0..70_000).map(|_| sources.next()).collect();
        assert_eq!(addresses.len(), 70_000);
        for address in addresses {
            let [a, _, _, d] = address.octets();
            assert_eq!(a, 127);
            assert!(d != 0 && d != 255 && address != Ipv4Addr::LOCALHOST);
        }
    }

    #[test]
    fn the_hostile_bodies_have_the_sizes_they_claim() {
        let kinds = kinds();
        let size = |name: &str| (kinds.iter().find(|k| k.name == name).unwrap().build)(0).len();
        assert!(size("1 MB of \" .\" after an address") > MB);
        assert!(size("1 MB JSON") > MB);
        assert!(size("huge header (1 MB)") > MB);
        let at_limit = size("\" .\" after an address, up to the route's limit");
        assert!(at_limit < invite_bot::http::activate::MAX_BODY_BYTES + 200);
    }
}
