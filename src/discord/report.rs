//! `/invite-report` on Discord: the command, its answer with the CSV attached, and the two buttons
//! of the bulk resend with the progress message a run edits. The chat flow decides
//! (`chat/report.rs`); this only shapes messages.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use serenity::all::{
    CommandInteraction, CommandOptionType, ComponentInteraction, CreateActionRow, CreateAttachment,
    CreateButton, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, EditInteractionResponse,
    Http, ResolvedValue,
};

use super::{chat_user, log_failure, render, with_retry, Handler, Responder};
use crate::chat::report::{BulkReply, ReportReply};
use crate::chat::Chat;

pub const COMMAND_NAME: &str = "invite-report";

/// Discord refuses message content longer than this.
const MAX_CONTENT: usize = 2000;

/// The command, its words from `report.j2` (descriptions held to Discord's 100 characters).
pub(super) fn command(chat: &Chat) -> CreateCommand {
    let words = |name: &str| {
        let text = chat
            .engine()
            .prompts()
            .report_text(name, &json!({}))
            .unwrap_or_else(|error| {
                crate::error::EngineError::from(error).public_message(chat.engine().prompts())
            });
        crate::chat::truncate(&text, 100)
    };
    CreateCommand::new(COMMAND_NAME)
        .description(words("command_description"))
        .dm_permission(false)
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::String,
                "workspace",
                words("workspace_option"),
            )
            .set_autocomplete(true),
        )
}

fn components(reply: &ReportReply) -> Vec<CreateActionRow> {
    reply
        .button
        .iter()
        .map(|button| {
            CreateActionRow::Buttons(vec![CreateButton::new(button.custom_id.clone())
                .label(button.label.clone())
                .style(serenity::all::ButtonStyle::Primary)])
        })
        .collect()
}

fn content(reply: &ReportReply) -> String {
    crate::chat::truncate(&render::escape(&reply.text), MAX_CONTENT)
}

fn followup(reply: &ReportReply) -> CreateInteractionResponseFollowup {
    CreateInteractionResponseFollowup::new()
        .ephemeral(reply.ephemeral)
        .content(content(reply))
        .components(components(reply))
        .allowed_mentions(render::no_mentions())
}

impl Handler {
    /// `/invite-report`: deferred at once (over a large workspace the report and its CSV take
    /// longer than Discord's three seconds), then the answer edited in with the file.
    pub(super) async fn on_report_command(&self, ctx: &Responder, command: CommandInteraction) {
        let wait = self.options.rate_limit_wait;
        let mut workspace = None;
        for option in command.data.options() {
            if let ("workspace", ResolvedValue::String(value)) = (option.name, option.value) {
                workspace = Some(value.to_owned());
            }
        }
        let workspace = workspace.or_else(|| {
            command
                .guild_id
                .and_then(|g| self.discord.default_workspaces.get(&g.to_string()).cloned())
        });
        let actor = self
            .chat
            .actor(&chat_user(&command.user, command.member.as_deref()));
        let deferred = ctx
            .respond(
                wait,
                "defer report",
                command.id,
                &command.token,
                CreateInteractionResponse::Defer(
                    CreateInteractionResponseMessage::new()
                        .ephemeral(self.chat.settings().ephemeral_replies),
                ),
            )
            .await;
        if let Err(error) = deferred {
            tracing::error!(%error, "cannot defer a report");
            return;
        }
        let reply = self.chat.invite_report(&actor, workspace.as_deref()).await;
        let mut edit = EditInteractionResponse::new()
            .content(content(&reply))
            .components(components(&reply))
            .allowed_mentions(render::no_mentions());
        if let Some(file) = &reply.attachment {
            edit = edit.new_attachment(CreateAttachment::bytes(
                file.bytes.clone(),
                file.filename.clone(),
            ));
        }
        let result = with_retry(wait, "edit report", || {
            command.edit_response(&ctx.http, edit.clone())
        })
        .await;
        log_failure("answer a report", result);
    }

    /// A press of "Resend all eligible (N)" or of its confirmation.
    pub(super) async fn on_bulk_button(&self, ctx: &Responder, press: ComponentInteraction) {
        let wait = self.options.rate_limit_wait;
        let actor = self
            .chat
            .actor(&chat_user(&press.user, press.member.as_ref()));
        if !self.acknowledge(ctx, &press).await {
            return;
        }
        match self.chat.press_bulk(&actor, &press.data.custom_id).await {
            BulkReply::Answer(reply) => {
                self.follow_up(ctx, &press, followup(&reply), "answer a bulk button")
                    .await;
            }
            BulkReply::Started { text, run } => {
                // The confirmation's button is spent: shown disabled, with the run's first line.
                self.show_finished(ctx, &press, &text, "update the confirmation")
                    .await;
                let first = ReportReply {
                    ephemeral: self.chat.settings().ephemeral_replies,
                    text,
                    attachment: None,
                    button: None,
                };
                let posted = with_retry(wait, "progress message", || {
                    press.create_followup(&ctx.http, followup(&first))
                })
                .await;
                match posted {
                    Ok(message) => {
                        let every = self.chat.reports().settings().bulk.progress_every;
                        tokio::spawn(edit_progress(
                            ctx.http.clone(),
                            press,
                            message.id,
                            self.chat.clone(),
                            run,
                            every,
                            wait,
                        ));
                    }
                    // The run goes on without its message; its summary is in its row and the log.
                    Err(error) => tracing::error!(%error, "cannot post the bulk resend's progress"),
                }
            }
        }
    }
}

/// Edits the progress message as the run goes (at most once per `every`), and a last time with
/// the summary. Ends with the run; a run is bounded in time, so this is too.
async fn edit_progress(
    http: Arc<Http>,
    press: ComponentInteraction,
    message: serenity::all::MessageId,
    chat: Chat,
    mut run: crate::report::bulk::BulkRun,
    every: Duration,
    wait: Duration,
) {
    let mut shown = String::new();
    loop {
        let progress = run.progress.borrow_and_update().clone();
        let text = chat.bulk_progress_text(&progress);
        if text != shown {
            let edit = CreateInteractionResponseFollowup::new()
                .content(crate::chat::truncate(&render::escape(&text), MAX_CONTENT))
                .allowed_mentions(render::no_mentions());
            let result = with_retry(wait, "edit progress", || {
                press.edit_followup(http.as_ref(), message, edit.clone())
            })
            .await;
            log_failure("edit the bulk resend's progress", result);
            shown = text;
        }
        if progress.finished {
            return;
        }
        tokio::time::sleep(every).await;
        // Changed, or the run is gone (its sender dropped): either way, show what is last.
        if run.progress.changed().await.is_err() {
            let last = run.progress.borrow().clone();
            if !last.finished {
                tracing::warn!("bulk resend ended without its summary");
            }
            let text = chat.bulk_progress_text(&last);
            if text != shown {
                let edit = CreateInteractionResponseFollowup::new()
                    .content(crate::chat::truncate(&render::escape(&text), MAX_CONTENT))
                    .allowed_mentions(render::no_mentions());
                let result = press.edit_followup(http.as_ref(), message, edit).await;
                log_failure("edit the bulk resend's progress", result);
            }
            return;
        }
    }
}
