//! Builds the application from its config: templates checked, database connected and migrated.

use std::sync::Arc;
use std::time::Duration;

use crate::actions::ActionSettings;
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
/// database), then connects and applies migrations. A configured SQLite file that does not exist
/// is an error ([`StoreError::Missing`]): see [`build_engine_for_seeding`].
pub async fn build_engine(config: &Config) -> Result<Engine, StartupError> {
    build_engine_with(config, false).await
}

/// [`build_engine`] for the long-running bot: `warm` keeps the whole pool open from the start.
pub async fn build_engine_with(config: &Config, warm: bool) -> Result<Engine, StartupError> {
    build(config, warm, false).await
}

/// [`build_engine`] for the commands that fill a database (`seed`, `demo`, `chat --demo`): a
/// SQLite file that does not exist yet is created.
pub async fn build_engine_for_seeding(config: &Config) -> Result<Engine, StartupError> {
    build(config, false, true).await
}

async fn build(config: &Config, warm: bool, create: bool) -> Result<Engine, StartupError> {
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
    let engine = Engine::new(store, Arc::new(prompts), CheckSettings::from(config))
        .with_actions(ActionSettings::from(config), mailer);
    Ok(
        match crate::providers::LiveLookups::from_config(&config.providers) {
            Some(lookups) => engine.with_lookups(lookups),
            None => engine,
        },
    )
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

/// The URL without its password, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://bot:s3cret@db:5432/x"),
            "postgres://bot:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://bot@db/x"), "postgres://bot@db/x");
        assert_eq!(
            redact_url("sqlite://invite-bot.db"),
            "sqlite://invite-bot.db"
        );
    }
}
