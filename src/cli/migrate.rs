//! `invite-bot migrate`: apply the database migrations (also done at every start).

use serde_json::json;

use crate::app::startup;
use crate::config::Config;
use crate::error::error_chain;
use crate::prompts::Prompts;

use super::output::print_facts;
use super::{Failure, Format};

pub(super) async fn migrate(config: &Config, format: Format) -> Result<(), Failure> {
    // Loaded first so that a broken `prompts_dir` is reported before the database is touched, as
    // every other command does at start-up.
    let prompts = Prompts::load(config.prompts_dir.as_deref())?;
    let store = startup::connect(config).await?;
    let migrated = store.migrate().await;
    let backend = store.backend();
    store.close().await;
    migrated.map_err(|e| Failure::operational(format!("migration failed: {}", error_chain(&e))))?;
    print_facts(
        &prompts,
        format,
        "migrated",
        &json!({ "backend": backend.as_str() }),
    )
}
