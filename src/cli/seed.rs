//! `invite-bot seed FILE`: load a TOML fixture (idempotent; all or nothing).

use std::path::Path;

use chrono::Utc;

use crate::app::startup;
use crate::config::Config;
use crate::fixture::Fixture;

use super::output::print_facts;
use super::{Failure, Format};

pub(super) async fn seed(config: &Config, file: &Path, format: Format) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::bad_input(format!("cannot read the fixture {}: {e}", file.display()))
    })?;
    let fixture = Fixture::parse(&text, &file.display().to_string(), Utc::now())?;
    let actions = startup::build_for_seeding(config).await?;
    let engine = actions.engine();
    let report = engine.seed(&fixture).await;
    engine.store().close().await;
    let facts = serde_json::to_value(report?)
        .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
    print_facts(engine.prompts(), format, "seeded", &facts)
}
