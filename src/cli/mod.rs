//! The `invite-bot` command line: an edge like any other, calling the engine.
//!
//! Exit codes: 0 the command ran (whatever the verdict), 2 bad input (address, workspace, fixture,
//! config), 1 an operational failure (database unreachable, internal error).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};

pub use crate::console::Format;

use crate::actions::{ActionOutcome, Actions, Actor, Authorizer, RedeemOutcome};
use crate::app::config::Config;
use crate::app::startup::{self, StartupError};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::AuditOutcome;
use crate::engine::Engine;
use crate::error::{error_chain, EngineError, UserError};
use crate::fixture::{Fixture, FixtureError};
use crate::store::{AuditFilter, StoreError};
use crate::summary::render_text;
use secrecy::ExposeSecret;

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
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Load the bundled demo data first (idempotent).
        #[arg(long)]
        demo: bool,
    },
    /// Load the bundled demo data and check one address per verdict.
    Demo {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Resend the invitation by email (as the local operator).
    Resend {
        email: String,
        #[arg(long)]
        workspace: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Issue a one-time activation code to hand to the person yourself.
    ActivationCode {
        email: String,
        #[arg(long)]
        workspace: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Hand the case to human support, with everything already checked.
    Escalate {
        email: String,
        #[arg(long)]
        workspace: String,
        /// A note for the support team.
        #[arg(long)]
        note: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Redeem an activation code (or an invitation token): marks the member active.
    Activate {
        email: String,
        code: String,
        #[arg(long)]
        workspace: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
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
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Send invitation emails left waiting (after a mail outage or a crash) and retry escalation webhooks.
    RetryPending,
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
            EngineError::Action(failure) => Failure::operational(failure.to_string()),
            EngineError::Unavailable(source) => store_failure(&source, error_chain(&source)),
            EngineError::Internal(source) => Failure::operational(error_chain(source.as_ref())),
        }
    }
}

impl From<StartupError> for Failure {
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Prompts(_) | StartupError::Mailer(_) => {
                Failure::operational(error_chain(&error))
            }
            StartupError::Store { ref source, .. } => store_failure(source, error_chain(&error)),
        }
    }
}

/// A database that is missing, silent or unreachable is operational (exit 1); the message says
/// what the operator can do about it.
fn store_failure(source: &StoreError, text: String) -> Failure {
    Failure::operational(match source {
        StoreError::Missing(_) => format!(
            "{text}. Create it with `invite-bot migrate` (or load data into it with `invite-bot seed FILE`)"
        ),
        StoreError::NotAnswering(_) => format!("{text}; try again in a minute"),
        _ => text,
    })
}

impl From<FixtureError> for Failure {
    fn from(error: FixtureError) -> Self {
        match error {
            FixtureError::Store(ref store) if store.is_unavailable() => {
                store_failure(store, error_chain(&error))
            }
            FixtureError::Store(_) => Failure::operational(error_chain(&error)),
            other => Failure::bad_input(format!("the fixture was not loaded: {other}")),
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
    let mut config = Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok())
        .map_err(|e| Failure::bad_input(format!("config: {e}")))?;
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
            let (actions, operator) = operator_actions(&config).await?;
            let diagnoses = actions
                .check_as(&operator, &email, workspace.as_ref())
                .await?;
            print_diagnoses(actions.engine(), &diagnoses, format)?;
            actions.engine().store().close().await;
        }
        Command::Seed { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Failure::bad_input(format!("cannot read the fixture {}: {e}", file.display()))
            })?;
            let fixture = Fixture::parse(&text, &file.display().to_string(), Utc::now())?;
            let actions = startup::build_for_seeding(&config).await?;
            let engine = actions.engine();
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
        Command::Serve { no_discord } => {
            let actions = startup::build_with(&config, true).await?;
            let options = crate::app::serve::ServeOptions { no_discord };
            crate::app::serve::run(
                &config,
                actions,
                options,
                crate::app::serve::shutdown_signal(),
                |addr| eprintln!("listening on http://{addr}"),
            )
            .await
            .map_err(|e| match e {
                crate::app::serve::ServeError::Config(_) => Failure::bad_input(e.to_string()),
                other => Failure::operational(error_chain(&other)),
            })?;
        }
        Command::Chat {
            user,
            roles,
            format,
            demo,
        } => {
            use std::io::IsTerminal;
            let actions = if demo {
                startup::build_for_seeding(&config).await?
            } else {
                startup::build(&config).await?
            };
            let engine = actions.engine();
            if demo {
                let fixture =
                    Fixture::parse(crate::DEMO_FIXTURE, "fixtures/demo.toml", Utc::now())?;
                engine.seed(&fixture).await?;
            }
            let chat = crate::chat::Chat::new(actions.clone(), &config);
            let actor = match user {
                Some(id) => chat.actor(&crate::chat::ChatUser {
                    name: id.clone(),
                    id,
                    roles,
                }),
                None => chat.operator(),
            };
            let interactive = std::io::stdin().is_terminal();
            if interactive && format == Format::Text {
                println!(
                    "invite-bot chat on {}. Try: /invite-check jane.doe@acme-corp.com  (quit to leave)",
                    startup::redact_url(&config.database_url)
                );
            }
            let input = tokio::io::BufReader::new(tokio::io::stdin());
            crate::console::run(
                &chat,
                &actor,
                format,
                input,
                &mut std::io::stdout(),
                interactive,
            )
            .await
            .map_err(|e| Failure::operational(format!("chat: {e}")))?;
            engine.store().close().await;
        }
        Command::Demo { format } => {
            let fixture = Fixture::parse(crate::DEMO_FIXTURE, "fixtures/demo.toml", Utc::now())?;
            let actions = startup::build_for_seeding(&config).await?;
            let engine = actions.engine();
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
            print_diagnoses(engine, &all, format)?;
            engine.store().close().await;
        }
        Command::Resend {
            email,
            workspace,
            format,
        } => {
            let (email, workspace) = parse_target(&email, &workspace)?;
            let (actions, operator) = operator_actions(&config).await?;
            let outcome = actions
                .resend_invite(&operator, &email, &workspace, None)
                .await;
            actions.engine().store().close().await;
            return report_action(outcome?, format);
        }
        Command::ActivationCode {
            email,
            workspace,
            format,
        } => {
            let (email, workspace) = parse_target(&email, &workspace)?;
            let (actions, operator) = operator_actions(&config).await?;
            let outcome = actions
                .issue_activation_code(&operator, &email, &workspace, None)
                .await;
            actions.engine().store().close().await;
            return report_action(outcome?, format);
        }
        Command::Escalate {
            email,
            workspace,
            note,
            format,
        } => {
            let (email, workspace) = parse_target(&email, &workspace)?;
            let (actions, operator) = operator_actions(&config).await?;
            let outcome = actions
                .escalate(&operator, &email, &workspace, note.as_deref())
                .await;
            actions.engine().store().close().await;
            return report_action(outcome?, format);
        }
        Command::Activate {
            email,
            code,
            workspace,
            format,
        } => {
            let (email, workspace) = parse_target(&email, &workspace)?;
            let (actions, operator) = operator_actions(&config).await?;
            let outcome = actions.redeem(&operator, &email, &workspace, &code).await;
            actions.engine().store().close().await;
            let outcome = outcome?;
            let activated = outcome == RedeemOutcome::Activated;
            let (label, message) = match outcome {
                RedeemOutcome::Activated => (
                    "activated",
                    format!("{} is now active and can log in.", email.key()),
                ),
                RedeemOutcome::Rejected => (
                    "rejected",
                    "That code is not valid for this address: it may be mistyped, expired, already used or \
                     for someone else. Issue a new one if needed."
                        .to_owned(),
                ),
                RedeemOutcome::Throttled { retry_after } => (
                    "throttled",
                    format!(
                        "Too many attempts for this address. Try again in {} seconds.",
                        retry_after.as_secs().max(1)
                    ),
                ),
            };
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({ "outcome": label, "message": message })
                ),
                Format::Text => println!("{message}"),
            }
            if !activated {
                return Err(Failure {
                    code: 3,
                    message: String::new(),
                });
            }
        }
        Command::Audit {
            email,
            workspace,
            since,
            limit,
            format,
        } => {
            let email = email
                .as_deref()
                .map(EmailAddress::parse)
                .transpose()
                .map_err(UserError::from)?;
            let workspace = workspace
                .as_deref()
                .map(WorkspaceSlug::parse)
                .transpose()
                .map_err(UserError::from)?;
            let since = since
                .map(|s| crate::fixture::parse_when(&toml::Value::String(s), Utc::now()))
                .transpose()
                .map_err(|e| Failure::bad_input(format!("--since: {e}")))?;
            let actions = startup::build(&config).await?;
            let engine = actions.engine();
            let entries = actions
                .read_audit(&AuditFilter {
                    email_key: email.map(|e| e.key().to_owned()),
                    workspace: workspace.map(|w| w.as_str().to_owned()),
                    since,
                    limit: limit.max(1),
                })
                .await?;
            engine.store().close().await;
            match format {
                Format::Json => {
                    let text = serde_json::to_string_pretty(&entries)
                        .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
                    println!("{text}");
                }
                Format::Text => {
                    for entry in &entries {
                        println!(
                            "{}  {:<24} {:<22} {:<16} {:<30} {}{}{}",
                            entry.at.format("%Y-%m-%d %H:%M:%S"),
                            entry.actor_name,
                            entry.action,
                            entry.workspace.as_deref().unwrap_or("-"),
                            entry.email.as_deref().unwrap_or("-"),
                            entry.outcome,
                            entry.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                            entry
                                .reference
                                .as_deref()
                                .map(|r| format!(" {r}"))
                                .unwrap_or_default(),
                        );
                    }
                }
            }
        }
        Command::RetryPending => {
            let actions = startup::build(&config).await?;
            let engine = actions.engine();
            let sent = actions.send_due_invitations().await?;
            let delivered = actions.deliver_due_escalations().await?;
            engine.store().close().await;
            println!("sent {sent} waiting invitations, delivered {delivered} escalations");
        }
    }
    Ok(())
}

/// The engine and the local operator, for the action commands.
async fn operator_actions(config: &Config) -> Result<(Actions, Actor), Failure> {
    let actions = startup::build(config).await?;
    Ok((actions, Authorizer::from_config(config).operator()))
}

fn parse_target(email: &str, workspace: &str) -> Result<(EmailAddress, WorkspaceSlug), Failure> {
    let email = EmailAddress::parse(email).map_err(UserError::from)?;
    let workspace = WorkspaceSlug::parse(workspace).map_err(UserError::from)?;
    Ok((email, workspace))
}

/// Prints an action's outcome; a refusal exits 3.
fn report_action(outcome: ActionOutcome, format: Format) -> Result<(), Failure> {
    let (json, text, refused) = match &outcome {
        ActionOutcome::Done(done) => {
            let mut json = serde_json::json!({
                "outcome": AuditOutcome::Done,
                "action": done.action,
                "reason": null,
                "message": done.summary,
                "reference": done.reference,
            });
            let mut text = done.summary.clone();
            if let Some(code) = &done.activation_code {
                // The operator asked for the code; this is the one place it is printed.
                json["code"] = code.code.expose_secret().into();
                json["expires_at"] = code.expires_at.to_rfc3339().into();
                text = format!("Activation code: {}\n{text}", code.code.expose_secret());
            }
            (json, text, false)
        }
        ActionOutcome::Refused(refusal) => (
            serde_json::json!({
                "outcome": AuditOutcome::Refused,
                "reason": refusal.reason,
                "message": refusal.message,
            }),
            format!("Refused ({}): {}", refusal.reason.as_str(), refusal.message),
            true,
        ),
    };
    match format {
        Format::Json => println!("{json}"),
        Format::Text => println!("{text}"),
    }
    if refused {
        return Err(Failure {
            code: 3,
            message: String::new(),
        });
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
