//! The `invite-bot` command line: an edge like any other, calling the engine.
//!
//! Exit codes: 0 the command ran (whatever the verdict), 2 bad input (address, workspace, fixture,
//! config), 1 an operational failure (database unreachable, internal error).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::email::EmailAddress;
use crate::engine::Engine;
use crate::error::{error_chain, EngineError, UserError};
use crate::fixture::{Fixture, FixtureError};
use crate::reply::render_text;
use crate::startup::{self, StartupError};
use crate::workspace::WorkspaceSlug;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check why an invitation did not arrive.
    Check {
        /// The address, as pasted (spaces, <...> and mailto: are fine).
        email: String,
        /// Only this workspace; without it, every workspace the address belongs to.
        #[arg(long)]
        workspace: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Load a TOML fixture into the database (idempotent; all or nothing).
    Seed { file: PathBuf },
    /// Apply database migrations (also done at every start).
    Migrate,
    /// Load the bundled demo data and check one address per verdict.
    Demo {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Measure check latency on a synthetic workspace (built once, reused when already seeded).
    Bench {
        /// The bench database (default sqlite://invite-bot-bench.db, never the bot's own database).
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        members: u64,
        #[arg(long, default_value_t = 1)]
        workspaces: u32,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Operations per scenario.
        #[arg(long, default_value_t = 2_000)]
        checks: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl Cli {
    /// Quiet for one-shot commands, whose output is the point.
    pub fn default_log_level(&self) -> &'static str {
        "warn"
    }
}

/// Why a command failed: the message for the person and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
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

impl From<UserError> for Failure {
    fn from(error: UserError) -> Self {
        Failure::bad_input(error.to_string())
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::User(user) => user.into(),
            EngineError::Unavailable(source) => Failure::operational(format!(
                "cannot reach the database: {}",
                error_chain(&source)
            )),
            EngineError::Internal(source) => Failure::operational(error_chain(source.as_ref())),
        }
    }
}

impl From<StartupError> for Failure {
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Prompts(_) => Failure::operational(error_chain(&error)),
            StartupError::Store { .. } => Failure::operational(error_chain(&error)),
        }
    }
}

impl From<FixtureError> for Failure {
    fn from(error: FixtureError) -> Self {
        match error {
            FixtureError::Store(ref store) if store.is_unavailable() => Failure::operational(
                format!("cannot reach the database: {}", error_chain(&error)),
            ),
            FixtureError::Store(_) => Failure::operational(error_chain(&error)),
            other => Failure::bad_input(format!("the fixture was not loaded: {other}")),
        }
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn execute(cli: Cli) -> Result<(), Failure> {
    let mut config = Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok())
        .map_err(|e| Failure::bad_input(format!("config: {e}")))?;
    // The bench must never seed the bot's configured database: it only takes a URL given to it.
    let explicit_database_url = cli.database_url.clone();
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    match cli.command {
        Command::Check {
            email,
            workspace,
            format,
        } => {
            // Input is checked before any connection is made: a typo should not wait on a database.
            let email = EmailAddress::parse(&email).map_err(UserError::from)?;
            let workspace = workspace
                .as_deref()
                .map(WorkspaceSlug::parse)
                .transpose()
                .map_err(UserError::from)?;
            let engine = startup::build_engine(&config).await?;
            let diagnoses = engine.check(&email, workspace.as_ref()).await?;
            print_diagnoses(&engine, &diagnoses, format)?;
            engine.store().close().await;
        }
        Command::Seed { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Failure::bad_input(format!("cannot read the fixture {}: {e}", file.display()))
            })?;
            let fixture = Fixture::parse(&text, &file.display().to_string(), Utc::now())?;
            let engine = startup::build_engine(&config).await?;
            let report = engine.seed(&fixture).await?;
            println!(
                "seeded {} workspaces, {} members, {} invitations, {} delivery events, {} suppressions",
                report.workspaces, report.members, report.invitations, report.delivery_events, report.suppressions
            );
            engine.store().close().await;
        }
        Command::Migrate => {
            let store = startup::connect(&config).await?;
            store.migrate().await.map_err(|e| {
                Failure::operational(format!("migration failed: {}", error_chain(&e)))
            })?;
            println!("migrations applied ({})", store.backend().as_str());
            store.close().await;
        }
        Command::Demo { format } => {
            let fixture = Fixture::parse(crate::DEMO_FIXTURE, "fixtures/demo.toml", Utc::now())?;
            let engine = startup::build_engine(&config).await?;
            engine.seed(&fixture).await?;
            let mut all = Vec::new();
            for address in DEMO_ADDRESSES {
                let email = EmailAddress::parse(address).map_err(UserError::from)?;
                all.extend(engine.check(&email, None).await?);
            }
            if format == Format::Text {
                println!(
                    "Demo data loaded into {}. One check per verdict follows; try your own with\n  \
                     cargo run -- check jane.doe@acme-corp.com\n",
                    startup::redact_url(&config.database_url)
                );
            }
            print_diagnoses(&engine, &all, format)?;
            engine.store().close().await;
        }
        Command::Bench {
            database,
            members,
            workspaces,
            concurrency,
            checks,
            format,
        } => {
            let options = crate::bench::BenchOptions {
                database_url: database
                    .or(explicit_database_url)
                    .unwrap_or_else(|| crate::bench::DEFAULT_DATABASE.to_owned()),
                members,
                workspaces,
                concurrency,
                checks,
            };
            let report = crate::bench::run(&options, &config, &|line| eprintln!("{line}"))
                .await
                .map_err(|e| {
                    if e.is_bad_input() {
                        Failure::bad_input(e.to_string())
                    } else {
                        Failure::operational(error_chain(&e))
                    }
                })?;
            match format {
                Format::Json => println!("{}", report.to_json()),
                Format::Text => print!("{}", report.to_text()),
            }
        }
    }
    Ok(())
}

/// One address per verdict in the demo fixture, plus a typo of a member's address.
const DEMO_ADDRESSES: &[&str] = &[
    "jane.deo@acme-corp.com",
    "omar.haddad@gmail.com",
    "lee.chen@initech.io",
    "sam.rivera@yahoo.com",
    "priya.patel@gmial.com",
    "tom.becker@outlook.com",
    "ana.souza@acme-corp.com",
    "kofi.mensah@hotmail.com",
    "eva.novak@bigbank.co.uk",
    "jane.doe@acme-corp.com",
    "mia.wong@acme-corp.com",
];

fn print_diagnoses(
    engine: &Engine,
    diagnoses: &[crate::diagnosis::Diagnosis],
    format: Format,
) -> Result<(), Failure> {
    match format {
        Format::Json => {
            let json: Vec<_> = diagnoses.iter().map(|d| d.to_json()).collect();
            let text = serde_json::to_string_pretty(&json)
                .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
            println!("{text}");
        }
        Format::Text => {
            let mut blocks = Vec::with_capacity(diagnoses.len());
            for diagnosis in diagnoses {
                let text = render_text(diagnosis, engine.prompts())
                    .map_err(|e| Failure::operational(error_chain(&e)))?;
                blocks.push(format!("{}\n{text}", diagnosis.email));
            }
            println!("{}", blocks.join("\n\n────────\n\n"));
        }
    }
    Ok(())
}
