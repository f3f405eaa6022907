//! The `invite-bot` command line: an edge like any other, calling the engine.
//!
//! This module holds the clap types and the dispatcher; each subcommand is one function in its own
//! module. What they share: `failure` (exit codes), `operator` (the local operator and the member it
//! names) and `output` (JSON as data, text from `prompts/cli.j2`).
//!
//! Exit codes: 0 the command ran (whatever the verdict), 2 bad input (address, workspace, fixture,
//! config, a `--format` the command cannot honour), 1 an operational failure (database unreachable,
//! internal error), 3 the answer is no (an action refused, a code rejected).

mod activate;
mod activation_code;
mod audit;
mod chat;
mod check;
mod demo;
mod escalate;
mod failure;
mod import;
mod migrate;
mod operator;
mod output;
mod report;
mod resend;
mod retry_pending;
mod seed;
mod serve;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use crate::console::Format;
pub use failure::Failure;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "invite-bot",
    version,
    about = "Diagnoses \"my user never got the invitation\""
)]
pub struct Cli {
    /// Config file (default: ./config.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "INVITE_BOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL; overrides the config file and DATABASE_URL.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Output for people (text) or for programs (json); before or after the subcommand. `serve`
    /// has no JSON output; only `report` writes csv.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--format`: what every command writes (text, json), and csv, which only `report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check why an invitation did not arrive.
    Check {
        /// The address, as pasted (spaces, <...> and mailto: are fine).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        email: Option<String>,
        /// Only this workspace; without it, every workspace the address belongs to.
        #[arg(long)]
        workspace: Option<String>,
        /// Check every address of a list file instead (CSV or text, up to 500): a summary, the
        /// addresses needing action first.
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: also write the CSV with one row per address here (`-` for stdout).
        #[arg(long, requires = "file")]
        csv: Option<PathBuf>,
    },
    /// Load a TOML fixture into the database (idempotent; all or nothing).
    Seed { file: PathBuf },
    /// Import a product's user export (CSV or JSON Lines): all or nothing, every bad row reported.
    Import(ImportArgs),
    /// Apply database migrations (also done at every start).
    Migrate,
    /// Run the bot: the HTTP listener (health, readiness, metrics, provider webhooks) until
    /// SIGINT/SIGTERM.
    Serve {
        /// Run the HTTP listener alone, even when Discord is configured.
        #[arg(long)]
        no_discord: bool,
    },
    /// Talk to the bot in the terminal: `/invite-check ADDRESS`, a message naming addresses, `press N`.
    Chat {
        /// Talk as this chat user id (permissions from the [permissions] grants); without it, as the
        /// local operator.
        #[arg(long)]
        user: Option<String>,
        /// A role you hold (repeatable), e.g. the support role id.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Load the bundled demo data first (idempotent).
        #[arg(long)]
        demo: bool,
    },
    /// Load the bundled demo data and check one address per verdict.
    Demo,
    /// Resend the invitation by email (as the local operator).
    Resend {
        email: String,
        #[arg(long)]
        workspace: String,
    },
    /// Issue a one-time activation code to hand to the person yourself.
    ActivationCode {
        email: String,
        #[arg(long)]
        workspace: String,
    },
    /// Hand the case to human support, with everything already checked.
    Escalate {
        email: String,
        #[arg(long)]
        workspace: String,
        /// A note for the support team.
        #[arg(long)]
        note: Option<String>,
    },
    /// Redeem an activation code (or an invitation token): marks the member active.
    Activate {
        email: String,
        code: String,
        #[arg(long)]
        workspace: String,
    },
    /// Read the audit log.
    Audit {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        workspace: Option<String>,
        /// RFC 3339, or relative: "2 days ago", "-3h".
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Send invitation emails left waiting (after a mail outage or a crash) and retry escalation webhooks.
    RetryPending,
    /// Read the product's database ([source] in the config) once: the members and invitations
    /// changed since the last sync, in batches.
    Sync {
        /// Read everything from the start, then remove from the bot's view the members the product
        /// no longer returns (kept for the audit log).
        #[arg(long)]
        full: bool,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A workspace's members counted by invitation state, the company domains with the most
    /// failures, and (with --format csv or json) every member needing action with the next step.
    Report {
        /// The workspace's slug.
        workspace: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The export: .csv, or .jsonl / .ndjson (one JSON object per line).
    pub file: PathBuf,
    /// The file's kind, when its name does not say.
    #[arg(long = "kind", value_enum)]
    pub kind: Option<crate::ingest::export_file::FileKind>,
    /// Which column holds a field: FIELD=COLUMN, e.g. --column "email=Email address" (repeatable).
    #[arg(long = "column")]
    pub columns: Vec<String>,
    /// The workspace of every row when the export has no workspace column.
    #[arg(long)]
    pub workspace: Option<String>,
    /// The product's role values: VALUE=learner|trainer (repeatable).
    #[arg(long = "role-map")]
    pub role_map: Vec<String>,
    /// The product's status values: VALUE=invited|active|deactivated (repeatable).
    #[arg(long = "status-map")]
    pub status_map: Vec<String>,
    /// Offset of timestamps written without one: UTC or +HH:MM (default: [import] timezone, UTC).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Check and count everything, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl Cli {
    /// Quiet for one-shot commands, whose output is the point; `serve` logs what it does.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve { .. } => "info",
            _ => "warn",
        }
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // A refusal was already printed as the command's output.
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

async fn execute(cli: Cli) -> Result<(), Failure> {
    let output = cli.format;
    let format = match output {
        OutputFormat::Text => Format::Text,
        OutputFormat::Json => Format::Json,
        OutputFormat::Csv if matches!(cli.command, Command::Report { .. }) => Format::Text,
        OutputFormat::Csv => {
            return Err(Failure::bad_input(
                "only `report` writes CSV; use --format text or --format json",
            ))
        }
    };
    // Refused before anything is loaded: a script asking for JSON should not get a server.
    if format == Format::Json && matches!(cli.command, Command::Serve { .. }) {
        return Err(Failure::bad_input(
            "`serve` has no JSON output: it runs until stopped and writes logs; leave out --format json",
        ));
    }
    let mut config = Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok())
        .map_err(|e| Failure::bad_input(format!("config: {e}")))?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        Command::Check {
            email,
            workspace,
            file,
            csv,
        } => match (email, file) {
            (_, Some(file)) => {
                check::check_file(&config, &file, workspace.as_deref(), csv.as_deref(), format)
                    .await
            }
            // clap requires one of them; an empty address is refused as such.
            (email, None) => {
                let email = email.unwrap_or_default();
                check::check(&config, &email, workspace.as_deref(), format).await
            }
        },
        Command::Seed { file } => seed::seed(&config, &file, format).await,
        Command::Import(args) => import::import(&config, &args, format).await,
        Command::Migrate => migrate::migrate(&config, format).await,
        Command::Serve { no_discord } => serve::serve(&config, no_discord).await,
        Command::Chat { user, roles, demo } => chat::chat(&config, user, roles, demo, format).await,
        Command::Demo => demo::demo(&config, format).await,
        Command::Resend { email, workspace } => {
            resend::resend(&config, &email, &workspace, format).await
        }
        Command::ActivationCode { email, workspace } => {
            activation_code::activation_code(&config, &email, &workspace, format).await
        }
        Command::Escalate {
            email,
            workspace,
            note,
        } => escalate::escalate(&config, &email, &workspace, note.as_deref(), format).await,
        Command::Activate {
            email,
            code,
            workspace,
        } => activate::activate(&config, &email, &code, &workspace, format).await,
        Command::Audit {
            email,
            workspace,
            since,
            limit,
        } => {
            audit::audit(
                &config,
                email.as_deref(),
                workspace.as_deref(),
                since,
                limit,
                format,
            )
            .await
        }
        Command::RetryPending => retry_pending::retry_pending(&config, format).await,
        Command::Sync { full, dry_run } => sync::sync(&config, full, dry_run, format).await,
        Command::Report { workspace } => report::report(&config, &workspace, output).await,
    }
}
