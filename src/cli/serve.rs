//! `invite-bot serve [--no-discord]`: run the bot until SIGINT/SIGTERM.

use serde_json::json;

use std::sync::Arc;
use std::time::Duration;

use crate::alerts::{AlertSettings, Alerts};
use crate::app::serve::{self, BackgroundJob, ServeError, ServeOptions};
use crate::app::startup;
use crate::config::Config;
use crate::discord::alerts::DiscordAlerts;
use crate::engine::Engine;
use crate::error::error_chain;
use crate::source::Source;
use crate::source::{sync_once, SyncOptions};

use super::output::words;
use super::Failure;

/// Takes no format: `serve` has no result to print, only logs (the dispatcher refuses `--format
/// json`). The one line it prints, where it listens, goes to stderr beside the logs.
pub(super) async fn serve(config: &Config, no_discord: bool) -> Result<(), Failure> {
    check_source(config).await?;
    let actions = startup::build_with(config, true).await?;
    // `run` takes the actions; the line it announces is worded with the same templates.
    let engine = actions.engine().clone();
    let mut jobs: Vec<BackgroundJob> = sync_job(config, &engine)?.into_iter().collect();
    jobs.extend(alert_job(config, &actions, no_discord)?);
    serve::run(
        config,
        actions,
        ServeOptions {
            no_discord,
            jobs,
            discord: crate::discord::DiscordOptions::from_config(&config.discord),
        },
        serve::shutdown_signal(),
        move |addr| match words(engine.prompts(), "listening", &json!({ "address": addr })) {
            Ok(line) => eprintln!("{line}"),
            // The templates were checked at start-up; an edited `prompts_dir` can still fail to
            // render, and that must not stop a bot that is already listening.
            Err(failure) => eprintln!("error: {}", failure.message),
        },
    )
    .await
    .map_err(|e| match e {
        ServeError::Config(_) => Failure::bad_input(e.to_string()),
        other => Failure::operational(error_chain(&other)),
    })
}

/// The product's sync, every `[source] interval_seconds`, on the one process that leads the
/// background work. A failed run is recorded (readiness, metrics, every card's data line) and
/// logged; checks go on answering from the last good one.
fn sync_job(config: &Config, engine: &Engine) -> Result<Option<BackgroundJob>, Failure> {
    if !config.source.is_configured() {
        return Ok(None);
    }
    let source = Source::open(config).map_err(|e| Failure::bad_input(format!("[source] {e}")))?;
    let (source, store) = (Arc::new(source), engine.store().clone());
    Ok(Some(BackgroundJob {
        name: "product-sync",
        every: Duration::from_secs(config.source.interval_seconds.max(1)),
        run: Box::new(move || {
            let (source, store) = (source.clone(), store.clone());
            Box::pin(async move {
                let options = SyncOptions::default();
                match sync_once(&store, &source, options, &mut |_| {}).await {
                    Ok(report) => tracing::info!(
                        members_applied = report.members.applied,
                        members_unchanged = report.members.unchanged,
                        seconds = report.seconds,
                        "synced the product's database"
                    ),
                    Err(error) => tracing::warn!(%error, "syncing the product's database failed"),
                }
            })
        }),
    }))
}

/// Alerts, every `[alerts] scan_interval_seconds`, on the one process that leads the background
/// work: only with alert channels, a Discord token, and Discord not switched off.
fn alert_job(
    config: &Config,
    actions: &crate::actions::Actions,
    no_discord: bool,
) -> Result<Option<BackgroundJob>, Failure> {
    if !config.alerts.is_enabled() || no_discord || config.discord.token.is_none() {
        return Ok(None);
    }
    let settings =
        AlertSettings::from_config(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    let poster =
        DiscordAlerts::from_config(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    let alerts = Alerts::new(
        crate::chat::Chat::new(actions.clone(), config),
        settings,
        Arc::new(poster),
    );
    Ok(Some(BackgroundJob {
        name: "alerts",
        every: Duration::from_secs(config.alerts.scan_interval_seconds.max(1)),
        run: Box::new(move || {
            let alerts = alerts.clone();
            Box::pin(async move {
                match alerts.run_once(chrono::Utc::now()).await {
                    Ok(run) => tracing::debug!(?run, "alerts run"),
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "the alert run failed")
                    }
                }
            })
        }),
    }))
}

/// A bad `[source]` query stops start-up, naming the query; a product database that is down does
/// not: checks answer from the last sync meanwhile.
async fn check_source(config: &Config) -> Result<(), Failure> {
    if !config.source.is_configured() {
        return Ok(());
    }
    let source = Source::open(config).map_err(|e| Failure::bad_input(format!("[source] {e}")))?;
    let checked = source.validate().await;
    source.close().await;
    match checked {
        Ok(()) => Ok(()),
        Err(error) if error.is_config() => Err(Failure::bad_input(format!("[source] {error}"))),
        Err(error) => {
            tracing::warn!(%error, "the product's database is not answering; checks answer from the last sync");
            Ok(())
        }
    }
}
