//! `invite-bot-bench`: the benchmark's command line (what `invite-bot bench` was).
//!
//! Exit codes as the bot's: 0 the run finished, 2 bad input (options, config, a database that holds
//! real data), 1 an operational failure.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use invite_bot::config::Config;
use invite_bot::error::error_chain;
use invite_bot_bench::alerts::{self, AlertBenchError, AlertBenchOptions, AlertBenchReport};
use invite_bot_bench::discord::{self, DiscordBenchError, DiscordBenchOptions, DiscordBenchReport};
use invite_bot_bench::hostile::{self, HostileBenchError, HostileBenchOptions, HostileReport};
use invite_bot_bench::interactions_http::{
    self, InteractionsHttpError, InteractionsHttpOptions, InteractionsHttpReport,
};
use invite_bot_bench::report::BenchReport as LatencyReport;
use invite_bot_bench::sync::{self, SyncBenchError, SyncBenchOptions, SyncBenchReport};
use invite_bot_bench::workspace_report::{self, ReportBenchReport};
use invite_bot_bench::{BenchError, BenchOptions, DEFAULT_DATABASE};
use serde::Serialize;

/// Measure check latency on a synthetic workspace (built once, reused when already seeded).
#[derive(Debug, Parser)]
#[command(name = "invite-bot-bench", version)]
struct Cli {
    /// Config file (default: ./config.toml when present, else built-in defaults).
    #[arg(long, env = "INVITE_BOT_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL; the bench database when --database is not given.
    #[arg(long)]
    database_url: Option<String>,
    /// The bench database (default sqlite://invite-bot-bench.db, never the bot's own database).
    #[arg(long)]
    database: Option<String>,
    #[arg(long, default_value_t = 1_000_000)]
    members: u64,
    #[arg(long, default_value_t = 1)]
    workspaces: u32,
    /// Operations in flight at once (default 16). With --discord: at most this many
    /// interactions unanswered at a time (default: all at once).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Operations per scenario.
    #[arg(long, default_value_t = 2_000)]
    checks: usize,
    /// Instead: `serve` against a local fake Discord: memory idle and while answering
    /// --interactions `/invite-check`s at once, and the time from arrival to callback.
    #[arg(long)]
    discord: bool,
    /// With --discord and --interactions-http: how many interactions.
    #[arg(long, default_value_t = 200)]
    interactions: usize,
    /// Instead: issue 14's numbers: `serve` in `[discord] mode = "http"` on one fresh PostgreSQL
    /// database, sent --interactions signed `/invite-check`s at once (or --concurrency at a
    /// time) by a load generator on 127.0.0.1: one replica, two, and two with one killed mid-run
    /// while one Resend is pressed on both. Requests/s, p50/p95/p99, errors, each replica's RSS.
    /// Exits 1 when a target is missed.
    #[arg(long, conflicts_with_all = ["discord", "hostile", "sync"])]
    interactions_http: bool,
    /// With --interactions-http: the PostgreSQL server (a database is created and dropped).
    #[arg(long, default_value = invite_bot_bench::sync::DEFAULT_POSTGRES_URL)]
    interactions_http_postgres_url: String,
    /// Instead: issue 11's numbers against the real binary: the CPU each hostile request costs
    /// `serve`, its memory under --concurrent wrong guesses at /api/activate, and how long `check`
    /// and `resend` take to give up on a database and a mail server that go silent. Exits 1 when a
    /// target is missed.
    #[arg(long, conflicts_with = "discord")]
    hostile: bool,
    /// With --hostile: requests of each hostile kind (the CPU time is their average).
    #[arg(long, default_value_t = 20)]
    requests_per_kind: usize,
    /// With --hostile: wrong guesses sent at once.
    #[arg(long, default_value_t = 200)]
    concurrent: usize,
    /// With --hostile: the SMTP send timeout configured for the resend (seconds).
    #[arg(long, default_value_t = 5)]
    smtp_send_timeout: u64,
    /// Instead: issue 12's numbers: a product database (users, teams, team_users) on PostgreSQL
    /// and on MariaDB, `invite-bot sync` of every member into a fresh PostgreSQL store, then of
    /// 10,000 changed rows: time and peak RSS. Every database it creates is dropped afterwards.
    /// Exits 1 when a target is missed.
    #[arg(long, conflicts_with_all = ["discord", "hostile"])]
    sync: bool,
    /// With --sync: members in the product.
    #[arg(long, default_value_t = 1_000_000)]
    sync_rows: u64,
    /// With --sync: the PostgreSQL server that holds the product and the bot's store.
    #[arg(long, default_value = invite_bot_bench::sync::DEFAULT_POSTGRES_URL)]
    sync_postgres_url: String,
    /// With --sync: the MariaDB server of the second product.
    #[arg(long, default_value = invite_bot_bench::sync::DEFAULT_MARIADB_URL)]
    sync_mariadb_url: String,
    /// With --sync: PostgreSQL only.
    #[arg(long)]
    sync_no_mariadb: bool,
    /// Instead: issue 15's number: the workspace report (`/invite-report`) over the bench's first
    /// workspace (--members, the same database as the checks), on the backend of --database: the
    /// counts and top domains, and the CSV's list. Exits 1 when it takes 2 s or more.
    #[arg(long, conflicts_with_all = ["discord", "hostile", "sync"])]
    report: bool,
    /// Instead: issue 15's numbers: a 500-entry list checked, and the alert scan after a webhook
    /// batch of 1,000 events, on a fresh SQLite file (and PostgreSQL with --alerts-postgres-url).
    /// Exits 1 when a target is missed.
    #[arg(long, conflicts_with_all = ["discord", "hostile", "sync"])]
    alerts: bool,
    /// With --alerts: members of the synthetic workspace.
    #[arg(long, default_value_t = 20_000)]
    alerts_members: usize,
    /// With --alerts: a PostgreSQL server to measure on too (a database is created and dropped).
    #[arg(long)]
    alerts_postgres_url: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Why the run failed: the message for the person and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn operational(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    if std::env::var_os(discord::RUN_AS_BOT).is_some() {
        return run_as_bot();
    }
    let cli = Cli::parse();
    invite_bot::app::telemetry::init("warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// The child of the Discord scenario: exactly what `invite-bot`'s own `main` does.
fn run_as_bot() -> ExitCode {
    let cli = invite_bot::cli::Cli::parse();
    invite_bot::app::telemetry::init(cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(invite_bot::cli::run(cli))
}

async fn execute(cli: Cli) -> Result<(), Failure> {
    let config = Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok())
        .map_err(|e| Failure::bad_input(format!("config: {e}")))?;
    // The bench must never seed the bot's configured database: it only takes a URL given to it.
    let database = cli.database.or(cli.database_url);
    let progress = |line: &str| eprintln!("{line}");
    if cli.sync {
        let options = SyncBenchOptions {
            rows: cli.sync_rows,
            postgres_url: cli.sync_postgres_url,
            mariadb_url: (!cli.sync_no_mariadb).then_some(cli.sync_mariadb_url),
            ..Default::default()
        };
        return scenario(
            cli.format,
            sync::run(options, &progress),
            |e| matches!(e, SyncBenchError::NoRows),
            "a target of issue 12 was missed (see the table)",
        )
        .await;
    }
    if cli.interactions_http {
        let options = InteractionsHttpOptions {
            interactions: cli.interactions,
            concurrency: cli.concurrency.unwrap_or(0),
            postgres_url: cli.interactions_http_postgres_url,
            ..Default::default()
        };
        return scenario(
            cli.format,
            interactions_http::run(options),
            |e| matches!(e, InteractionsHttpError::NoInteractions),
            "a target of issue 14 was missed (see the table)",
        )
        .await;
    }
    if cli.alerts {
        let options = AlertBenchOptions {
            members: cli.alerts_members,
            postgres_url: cli.alerts_postgres_url,
            ..Default::default()
        };
        return scenario(
            cli.format,
            alerts::run(options, &progress),
            |e| matches!(e, AlertBenchError::TooFewMembers { .. }),
            "a target of issue 15 was missed (see the table)",
        )
        .await;
    }
    if cli.hostile {
        let options = HostileBenchOptions {
            requests_per_kind: cli.requests_per_kind,
            concurrent: cli.concurrent,
            smtp_send_timeout_seconds: cli.smtp_send_timeout,
            ..Default::default()
        };
        return scenario(
            cli.format,
            hostile::run(options),
            |e| matches!(e, HostileBenchError::NothingToSend),
            "a target of issue 11 was missed (see the table)",
        )
        .await;
    }
    if cli.discord {
        let options = DiscordBenchOptions {
            interactions: cli.interactions,
            concurrency: cli.concurrency.unwrap_or(0),
            database_url: database,
            ..Default::default()
        };
        return scenario(
            cli.format,
            discord::run(options),
            |e| matches!(e, DiscordBenchError::NoInteractions),
            NO_TARGET,
        )
        .await;
    }
    let options = BenchOptions {
        database_url: database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned()),
        members: cli.members,
        workspaces: cli.workspaces,
        concurrency: cli.concurrency.unwrap_or(16),
        checks: cli.checks,
    };
    if cli.report {
        return scenario(
            cli.format,
            workspace_report::run(&options, &config, &progress),
            BenchError::is_bad_input,
            "the report took 2 s or more (issue 15's target)",
        )
        .await;
    }
    scenario(
        cli.format,
        invite_bot_bench::run(&options, &config, &progress),
        BenchError::is_bad_input,
        NO_TARGET,
    )
    .await
}

/// What the command line needs of each scenario's report (they are serialized as they are).
trait Report: Serialize {
    fn to_text(&self) -> String;
    /// False when the run missed one of its targets (exit 1).
    fn all_pass(&self) -> bool;
}

/// The reports that already answer both as their own methods.
macro_rules! report {
    ($($report:ty),*) => {$(
        impl Report for $report {
            fn to_text(&self) -> String {
                <$report>::to_text(self)
            }
            fn all_pass(&self) -> bool {
                <$report>::all_pass(self)
            }
        }
    )*};
}
report!(
    SyncBenchReport,
    InteractionsHttpReport,
    AlertBenchReport,
    HostileReport
);

impl Report for ReportBenchReport {
    fn to_text(&self) -> String {
        ReportBenchReport::to_text(self)
    }
    fn all_pass(&self) -> bool {
        self.pass
    }
}

/// The Discord scenario and the check latencies measure; they have no target to miss.
const NO_TARGET: &str = "";

impl Report for DiscordBenchReport {
    fn to_text(&self) -> String {
        DiscordBenchReport::to_text(self)
    }
    fn all_pass(&self) -> bool {
        true
    }
}

impl Report for LatencyReport {
    fn to_text(&self) -> String {
        LatencyReport::to_text(self)
    }
    fn all_pass(&self) -> bool {
        true
    }
}

/// Runs one scenario: its error as an exit code (2 when `bad_input` says so, else 1), its report
/// as text or JSON, and exit 1 with `missed` when the report says a target was missed.
async fn scenario<R: Report, E: std::error::Error + 'static>(
    format: Format,
    run: impl Future<Output = Result<R, E>>,
    bad_input: impl FnOnce(&E) -> bool,
    missed: &str,
) -> Result<(), Failure> {
    let report = run.await.map_err(|e| {
        if bad_input(&e) {
            Failure::bad_input(e.to_string())
        } else {
            Failure::operational(error_chain(&e))
        }
    })?;
    match format {
        Format::Text => print!("{}", report.to_text()),
        Format::Json => println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| Failure::operational(e.to_string()))?
        ),
    }
    if !report.all_pass() {
        return Err(Failure::operational(missed));
    }
    Ok(())
}
