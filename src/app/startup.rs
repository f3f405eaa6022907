//! Builds the application from its config: templates checked, database connected and migrated.

use std::sync::Arc;
use std::time::Duration;

use crate::actions::{ActionSettings, Actions};
use crate::config::Config;
use crate::engine::{CheckSettings, Engine};
use crate::mail::{Mailer, MailerConfigError};
use crate::prompts::{PromptError, Prompts};
use crate::store::{ConnectOptions, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Prompts(#[from] PromptError),
    #[error(transparent)]
    Mailer(#[from] MailerConfigError),
    #[error("{source} (database: {url})")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
}

/// Loads templates first (a broken template should stop start-up before anything touches the
/// database), then connects and applies migrations. The one constructor `main` and the tests use.
/// A configured SQLite file that does not exist is an error ([`StoreError::Missing`]): see
/// [`build_for_seeding`].
pub async fn build(config: &Config) -> Result<Actions, StartupError> {
    build_with(config, false).await
}

/// [`build`] for the long-running bot: `warm` keeps the whole pool open from the start.
pub async fn build_with(config: &Config, warm: bool) -> Result<Actions, StartupError> {
    assemble(config, warm, false).await
}

/// [`build`] for the commands that fill a database (`seed`, `demo`, `chat --demo`): a SQLite file
/// that does not exist yet is created.
pub async fn build_for_seeding(config: &Config) -> Result<Actions, StartupError> {
    assemble(config, false, true).await
}

async fn assemble(config: &Config, warm: bool, create: bool) -> Result<Actions, StartupError> {
    let prompts = Prompts::load(config.prompts_dir.as_deref())?;
    let store = connect_with(config, warm, create).await?;
    store
        .migrate()
        .await
        .map_err(|source| StartupError::Store {
            url: redact_url(&config.database_url),
            source,
        })?;
    let mailer = Mailer::from_config(config)?;
    let mut engine = Engine::new(store, Arc::new(prompts), CheckSettings::from(config));
    if config.source.is_configured() && config.source.live_refresh {
        // Opening connects nothing: a product database that is down only costs each check the
        // refresh deadline.
        if let Ok(source) = crate::source::Source::open(config) {
            let deadline = std::time::Duration::from_millis(config.source.live_refresh_timeout_ms);
            engine = engine.with_live_source(Arc::new(source), deadline);
        }
    }
    if let Some(lookups) = crate::providers::LiveLookups::from_config(&config.providers) {
        engine = engine.with_lookups(lookups);
    }
    Ok(Actions::new(engine, ActionSettings::from(config), mailer))
}

/// Connects for `migrate`, creating a SQLite file that does not exist yet.
pub async fn connect(config: &Config) -> Result<Store, StartupError> {
    connect_with(config, false, true).await
}

async fn connect_with(config: &Config, warm: bool, create: bool) -> Result<Store, StartupError> {
    let options = ConnectOptions {
        max_connections: config.database_max_connections,
        warm,
        connect_timeout: Duration::from_millis(config.database_connect_timeout_ms),
        statement_timeout: Duration::from_millis(config.database_statement_timeout_ms),
        create_if_missing: create,
    };
    Store::connect(&config.database_url, &options)
        .await
        .map_err(|source| StartupError::Store {
            url: redact_url(&config.database_url),
            source,
        })
}

pub use crate::urls::redact_url;
