//! `invite-bot chat`: talk to the bot in the terminal, as Discord would.

use std::io::IsTerminal;

use chrono::Utc;
use serde_json::json;

use crate::app::startup;
use crate::chat::{Chat, ChatUser};
use crate::config::Config;
use crate::fixture::Fixture;

use super::output::words;
use super::{Failure, Format};

pub(super) async fn chat(
    config: &Config,
    user: Option<String>,
    roles: Vec<String>,
    demo: bool,
    format: Format,
) -> Result<(), Failure> {
    let actions = if demo {
        startup::build_for_seeding(config).await?
    } else {
        startup::build(config).await?
    };
    let engine = actions.engine();
    if demo {
        let fixture = Fixture::parse(crate::DEMO_FIXTURE, "fixtures/demo.toml", Utc::now())?;
        engine.seed(&fixture).await?;
    }
    let chat = Chat::new(actions.clone(), config);
    let actor = match user {
        Some(id) => chat.actor(&ChatUser {
            name: id.clone(),
            id,
            roles,
        }),
        None => chat.operator(),
    };
    let interactive = std::io::stdin().is_terminal();
    // A pipe or a program reading JSON lines gets replies only.
    if interactive && format == Format::Text {
        let database = startup::redact_url(&config.database_url);
        println!(
            "{}",
            words(
                engine.prompts(),
                "chat_banner",
                &json!({ "database": database })
            )?
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
    Ok(())
}
