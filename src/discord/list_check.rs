//! `/invite-check-list list:<addresses> | file:<attachment> [workspace:<slug>]`: a whole list
//! checked at once. Always deferred (a list takes longer than Discord's three seconds), then the
//! summary edited in with the CSV attached. An attached file is fetched from Discord's CDN only
//! (or the local stand-in of tests), with a size bound and a deadline.

use std::time::Duration;

use serde_json::json;
use serenity::all::{
    Attachment, CommandInteraction, CommandOptionType, CreateAttachment, CreateCommand,
    CreateCommandOption, CreateInteractionResponse, CreateInteractionResponseMessage,
    EditInteractionResponse, ResolvedValue,
};

use super::{render, Responder};
use crate::chat::list_check::{read_list, read_list_file, ListFormat, ListRefusal, MAX_LIST_BYTES};
use crate::chat::{Chat, ChatUser};
use crate::config::DiscordConfig;

pub const COMMAND_NAME: &str = "invite-check-list";

/// The whole download of an attached list, connection included.
const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(10);

/// The command, worded by `list_check.j2`.
pub fn command(chat: &Chat) -> CreateCommand {
    let words = |name: &str| {
        let text = chat
            .engine()
            .prompts()
            .list_check_text(name, &json!({}))
            .unwrap_or_else(|_| name.to_owned());
        crate::chat::truncate(&text, 100)
    };
    CreateCommand::new(COMMAND_NAME)
        .description(words("command_description"))
        .dm_permission(false)
        .add_option(
            CreateCommandOption::new(CommandOptionType::String, "list", words("list_option"))
                .max_length(6000),
        )
        .add_option(CreateCommandOption::new(
            CommandOptionType::Attachment,
            "file",
            words("file_option"),
        ))
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::String,
                "workspace",
                words("workspace_option"),
            )
            .set_autocomplete(true),
        )
}

/// Answers one `/invite-check-list`.
pub async fn answer(
    chat: &Chat,
    discord: &DiscordConfig,
    api_base: Option<&str>,
    ctx: &Responder,
    wait: std::time::Duration,
    command: &CommandInteraction,
    user: ChatUser,
) {
    let mut pasted = None;
    let mut file: Option<&Attachment> = None;
    let mut workspace = None;
    for option in command.data.options() {
        match (option.name, option.value) {
            ("list", ResolvedValue::String(value)) => pasted = Some(value.to_owned()),
            ("file", ResolvedValue::Attachment(attachment)) => file = Some(attachment),
            ("workspace", ResolvedValue::String(value)) => workspace = Some(value.to_owned()),
            _ => {}
        }
    }
    let workspace = workspace.or_else(|| {
        command
            .guild_id
            .and_then(|g| discord.default_workspaces.get(&g.to_string()).cloned())
    });
    let deferred = ctx
        .respond(
            wait,
            "defer list check",
            command.id,
            &command.token,
            CreateInteractionResponse::Defer(
                CreateInteractionResponseMessage::new()
                    .ephemeral(chat.settings().ephemeral_replies),
            ),
        )
        .await;
    if let Err(error) = deferred {
        tracing::error!(%error, "cannot defer a list check");
        return;
    }
    let actor = chat.actor(&user);
    let entries = match (file, pasted) {
        (Some(file), _) => match download(file, api_base).await {
            Ok(bytes) => read_list_file(
                &bytes,
                ListFormat::of_file(&file.filename, file.content_type.as_deref()),
            ),
            Err(refusal) => Err(refusal),
        },
        (None, Some(text)) => read_list(&text, ListFormat::Text),
        (None, None) => Err(ListRefusal::Usage),
    };
    let edit = match entries {
        Err(refusal) => notice(&refusal.words(chat.engine().prompts())),
        Ok(entries) => match chat.check_list(&actor, entries, workspace.as_deref()).await {
            Err(error) => notice(&error.public_message(chat.engine().prompts())),
            Ok(report) => {
                let reply = chat.list_reply(&report);
                EditInteractionResponse::new()
                    .content(render::content(&reply))
                    .new_attachment(CreateAttachment::bytes(
                        report.csv(),
                        "invite-check-list.csv",
                    ))
                    .allowed_mentions(render::no_mentions())
            }
        },
    };
    if let Err(error) = command.edit_response(&ctx.http, edit).await {
        tracing::error!(%error, "cannot answer a list check");
    }
}

fn notice(text: &str) -> EditInteractionResponse {
    EditInteractionResponse::new()
        .content(render::escape(text))
        .allowed_mentions(render::no_mentions())
}

/// Only Discord's own file hosts, over https; or, in tests, the local stand-in the REST API goes to.
fn allowed_url(url: &str, api_base: Option<&str>) -> bool {
    let on_cdn = [
        "https://cdn.discordapp.com/",
        "https://media.discordapp.net/",
    ]
    .iter()
    .any(|host| url.starts_with(host));
    let local = api_base.is_some_and(|base| {
        let base = base.trim_end_matches('/');
        url.strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    on_cdn || local
}

/// The attachment's bytes: refused when Discord says it is too large, when more than the bound
/// arrives, or when the download does not finish within [`DOWNLOAD_DEADLINE`].
async fn download(file: &Attachment, api_base: Option<&str>) -> Result<Vec<u8>, ListRefusal> {
    if file.size as usize > MAX_LIST_BYTES {
        return Err(ListRefusal::TooLarge);
    }
    if !allowed_url(&file.url, api_base) {
        tracing::warn!("list attachment not on Discord's CDN; not fetched");
        return Err(ListRefusal::DownloadFailed);
    }
    let fetch = async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| ListRefusal::DownloadFailed)?;
        let mut response = client
            .get(&file.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|_| ListRefusal::DownloadFailed)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| ListRefusal::DownloadFailed)?
        {
            if bytes.len() + chunk.len() > MAX_LIST_BYTES {
                return Err(ListRefusal::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(DOWNLOAD_DEADLINE, fetch)
        .await
        .unwrap_or(Err(ListRefusal::DownloadFailed))
}

#[cfg(test)]
mod tests {
    use super::allowed_url;

    #[test]
    fn attachments_come_from_discord_only() {
        assert!(allowed_url(
            "https://cdn.discordapp.com/attachments/1/2/list.csv",
            None
        ));
        assert!(!allowed_url("http://cdn.discordapp.com/a", None));
        assert!(!allowed_url(
            "https://cdn.discordapp.com.evil.example/a",
            None
        ));
        assert!(!allowed_url("http://127.0.0.1:9/a", None));
        assert!(allowed_url(
            "http://127.0.0.1:9/attachments/a",
            Some("http://127.0.0.1:9")
        ));
        assert!(!allowed_url(
            "http://127.0.0.1:90/attachments/a",
            Some("http://127.0.0.1:9")
        ));
    }
}
