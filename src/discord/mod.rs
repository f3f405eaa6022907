//! The Discord edge (serenity 0.12): connects to the gateway, registers `/invite-check`, and turns
//! interactions and support-channel messages into [`Chat`] calls and their replies into messages.
//!
//! Only the gateway events used are subscribed to (guild messages, for the listener), and serenity's
//! cache is not built in, so memory stays flat however large the guilds are.
//!
//! In http mode (`[discord] mode = "http"`) there is no gateway: Discord POSTs each interaction to
//! [`endpoint`], which runs it through the same [`Handler`] methods; only the first response's road
//! differs ([`Responder`]).

pub mod alerts;
pub mod endpoint;
pub mod list_check;
pub mod render;
pub mod report;
pub mod respond;

pub use respond::Responder;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use serenity::all::{
    ChannelId, ComponentInteraction, Context, CreateActionRow, CreateAllowedMentions,
    CreateAutocompleteResponse, CreateCommand, CreateCommandOption, CreateEmbed,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, CreateThread, EditInteractionResponse, EventHandler, GatewayIntents, GuildId,
    Http, HttpBuilder, Interaction, Member, Message, Ready, RoleId, User,
};
use serenity::all::{CommandInteraction, CommandOptionType, ResolvedValue};

use crate::actions::Actions;
use crate::chat::{Chat, ChatReply, ChatUser, EscalationPost};
use crate::config::{Config, DiscordConfig};

pub const COMMAND_NAME: &str = "invite-check";

#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("no Discord token: set DISCORD_TOKEN (or [discord] token)")]
    MissingToken,
    /// Boxed: serenity's error is several times the size of the others.
    #[error("Discord: {0}")]
    Serenity(Box<serenity::Error>),
    #[error("the Discord connection ended unexpectedly")]
    Stopped,
    #[error("{0} is needed (and must be valid) with [discord] mode = \"http\"")]
    HttpModeConfig(&'static str),
}

impl From<serenity::Error> for DiscordError {
    fn from(error: serenity::Error) -> Self {
        DiscordError::Serenity(Box::new(error))
    }
}

/// How the bot answers, beyond the config file.
#[derive(Debug, Clone)]
pub struct DiscordOptions {
    /// When the engine has not answered within this, the interaction is deferred (type 5, or 6 for
    /// an action button) and the answer edited in later: Discord drops interactions unanswered
    /// after 3 seconds.
    pub answer_within: Duration,
    /// Waited before the one retry of a request Discord answered with 429 while serenity's own
    /// rate limiter (which reads `retry_after` itself) is off.
    pub rate_limit_wait: Duration,
}

impl DiscordOptions {
    /// The options `[discord]` sets; the rest at their defaults.
    pub fn from_config(discord: &DiscordConfig) -> Self {
        DiscordOptions {
            answer_within: discord.answer_within(),
            ..DiscordOptions::default()
        }
    }
}

impl Default for DiscordOptions {
    fn default() -> Self {
        DiscordOptions {
            answer_within: Duration::from_millis(1500),
            rate_limit_wait: Duration::from_secs(1),
        }
    }
}

/// Connects with the configured token and runs until `shutdown` completes.
pub async fn run(
    actions: Actions,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DiscordError> {
    run_with(
        actions,
        config,
        DiscordOptions::from_config(&config.discord),
        shutdown,
    )
    .await
}

/// [`run`] with `options`.
pub async fn run_with(
    actions: Actions,
    config: &Config,
    options: DiscordOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DiscordError> {
    let bot = DiscordBot::new(actions, config)?.with_options(options);
    // Tests and benchmarks point serve at a local fake Discord; config validation keeps it local.
    let bot = match &config.discord.api_base_url {
        Some(base) => bot.with_api_base(base.trim_end_matches('/')),
        None => bot,
    };
    bot.run(shutdown).await
}

/// A configured, not yet connected bot.
/// Replies the support-channel listener gives one person in one channel per minute.
const LISTENER_REPLIES_PER_MINUTE: u32 = 5;

pub struct DiscordBot {
    chat: Chat,
    discord: DiscordConfig,
    token: String,
    api_base: Option<String>,
    options: DiscordOptions,
}

impl DiscordBot {
    pub fn new(actions: Actions, config: &Config) -> Result<Self, DiscordError> {
        let token = config
            .discord
            .token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .filter(|t| !t.trim().is_empty())
            .ok_or(DiscordError::MissingToken)?;
        Ok(DiscordBot {
            chat: Chat::new(actions, config),
            discord: config.discord.clone(),
            token,
            api_base: None,
            options: DiscordOptions::from_config(&config.discord),
        })
    }

    /// Sends every REST request to `base` (e.g. `http://127.0.0.1:PORT`, a local fake Discord)
    /// instead of discord.com; paths keep their `/api/v10/...` prefix. The gateway URL then comes
    /// from that server's `GET /api/v10/gateway`.
    ///
    /// This disables serenity's rate limiter: serenity silently ignores the proxy while its rate
    /// limiter is on (the limiter builds its own URLs). 429s are then retried once by this module.
    pub fn with_api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = Some(base.into());
        self
    }

    pub fn with_options(mut self, options: DiscordOptions) -> Self {
        self.options = options;
        self
    }

    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DiscordError> {
        let http = rest_client(&self.token, self.api_base.as_deref(), None)?;
        let intents = if self.discord.support_channel_ids.is_empty() {
            GatewayIntents::empty()
        } else {
            GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT
        };
        let handler = Handler::new(self.chat, self.discord, self.api_base.clone(), self.options);
        let mut client = serenity::all::ClientBuilder::new_with_http(http, intents)
            .event_handler(handler)
            .await?;
        let shards = client.shard_manager.clone();
        tracing::info!("connecting to Discord");
        let mut running = Box::pin(async move { client.start().await });
        tokio::select! {
            result = &mut running => result?,
            () = shutdown => {
                tracing::info!("shutting down the Discord connection");
                shards.shutdown_all().await;
                // start() returns once every shard has stopped.
                let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
            }
        }
        Ok(())
    }
}

/// serenity's REST client with deadlines, no mentions by default, and (tests, benchmarks) the local
/// stand-in for discord.com. `application_id`: known up front in http mode (the gateway's READY
/// tells it otherwise).
fn rest_client(
    token: &str,
    api_base: Option<&str>,
    application_id: Option<u64>,
) -> Result<Http, DiscordError> {
    // serenity's own client has no deadlines: a Discord API call that hangs would hold the
    // interaction (and the shutdown) with it.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(serenity::Error::from)?;
    let mut http = HttpBuilder::new(token)
        .client(client)
        .default_allowed_mentions(render::no_mentions());
    if let Some(base) = api_base {
        http = http.proxy(base.to_owned()).ratelimiter_disabled(true);
    }
    if let Some(id) = application_id {
        http = http.application_id(serenity::all::ApplicationId::new(id));
    }
    Ok(http.build())
}

/// Decides what to answer to each interaction and sends it, in both modes.
pub(crate) struct Handler {
    chat: Chat,
    /// The local stand-in of tests, whose attachment URLs a list check may fetch.
    api_base: Option<String>,
    /// Replies the support-channel listener gives per person and channel: it answers messages
    /// anyone can write, so a flood of addresses must not become a flood of replies and rows.
    listener: crate::actions::Throttle,
    discord: Arc<DiscordConfig>,
    options: DiscordOptions,
}

fn chat_user(user: &User, member: Option<&Member>) -> ChatUser {
    ChatUser {
        id: user.id.to_string(),
        name: member
            .and_then(|m| m.nick.clone())
            .or_else(|| user.global_name.clone())
            .unwrap_or_else(|| user.name.clone()),
        roles: member
            .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default(),
    }
}

fn message_builder(reply: &ChatReply) -> CreateInteractionResponseMessage {
    let mut message = CreateInteractionResponseMessage::new()
        .ephemeral(reply.ephemeral)
        .embeds(render::embeds(reply))
        .components(render::components(&reply.buttons, false))
        .allowed_mentions(render::no_mentions());
    let content = render::content(reply);
    if !content.is_empty() {
        message = message.content(content);
    }
    message
}

fn edit_builder(reply: &ChatReply) -> EditInteractionResponse {
    EditInteractionResponse::new()
        .content(render::content(reply))
        .embeds(render::embeds(reply))
        .components(render::components(&reply.buttons, false))
        .allowed_mentions(render::no_mentions())
}

fn followup_builder(reply: &ChatReply) -> CreateInteractionResponseFollowup {
    let mut followup = CreateInteractionResponseFollowup::new()
        .ephemeral(reply.ephemeral)
        .embeds(render::embeds(reply))
        .components(render::components(&reply.buttons, false))
        .allowed_mentions(render::no_mentions());
    let content = render::content(reply);
    if !content.is_empty() {
        followup = followup.content(content);
    }
    followup
}

/// Calls `request`, and once more after a pause if Discord answered 429; never loops.
async fn with_retry<T, F, Fut>(wait: Duration, what: &str, mut request: F) -> serenity::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = serenity::Result<T>>,
{
    match request().await {
        Err(serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)))
            if response.status_code.as_u16() == 429 =>
        {
            tracing::warn!(
                what,
                wait_ms = wait.as_millis() as u64,
                "rate limited by Discord; retrying once"
            );
            tokio::time::sleep(wait).await;
            request().await
        }
        other => other,
    }
}

fn log_failure(what: &str, result: serenity::Result<impl Sized>) {
    if let Err(error) = result {
        tracing::error!(what, error = %error, "Discord request failed");
    }
}

impl Handler {
    fn new(
        chat: Chat,
        discord: DiscordConfig,
        api_base: Option<String>,
        options: DiscordOptions,
    ) -> Self {
        Handler {
            chat,
            api_base,
            listener: crate::actions::Throttle::new(
                LISTENER_REPLIES_PER_MINUTE,
                Duration::from_secs(60),
                10_000,
            ),
            discord: Arc::new(discord),
            options,
        }
    }

    /// One interaction, whichever way it came: commands by name, autocomplete, button presses.
    async fn handle(&self, ctx: &Responder, interaction: Interaction) {
        // Each flow's future is boxed: nested in one, they are deep enough that computing the
        // type's layout overflows rustc's query depth in release builds.
        match interaction {
            Interaction::Command(command) => Box::pin(self.on_command(ctx, command)).await,
            Interaction::Autocomplete(command) => {
                Box::pin(self.on_autocomplete(ctx, command)).await
            }
            Interaction::Component(press) => Box::pin(self.on_button(ctx, press)).await,
            other => tracing::debug!(kind = ?other.kind(), "interaction ignored"),
        }
    }

    /// Registers the command in each configured guild, or globally when none is configured.
    async fn register(&self, http: &Http) {
        // Discord refuses a command whose descriptions are longer than 100 characters.
        let words = |name: &str| crate::chat::truncate(&self.chat.say(name, json!({})), 100);
        let command = CreateCommand::new(COMMAND_NAME)
            .description(words("command_description"))
            .dm_permission(false)
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "email", words("email_option"))
                    .required(true)
                    .max_length(320),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "workspace",
                    words("workspace_option"),
                )
                .set_autocomplete(true),
            );
        let commands = vec![
            command,
            report::command(&self.chat),
            list_check::command(&self.chat),
        ];
        if self.discord.guild_ids.is_empty() {
            let result = with_retry(self.options.rate_limit_wait, "register commands", || {
                serenity::all::Command::set_global_commands(http, commands.clone())
            })
            .await;
            log_failure("register global commands", result);
        } else {
            for guild in &self.discord.guild_ids {
                let result = with_retry(self.options.rate_limit_wait, "register commands", || {
                    GuildId::new(*guild).set_commands(http, commands.clone())
                })
                .await;
                match result {
                    Ok(_) => tracing::info!(guild, "commands registered"),
                    Err(error) => tracing::error!(guild, %error, "cannot register commands"),
                }
            }
        }
    }

    /// Each slash command by name; both modes come through here.
    async fn on_command(&self, ctx: &Responder, command: CommandInteraction) {
        match command.data.name.as_str() {
            COMMAND_NAME => self.on_invite_check(ctx, command).await,
            report::COMMAND_NAME => self.on_report_command(ctx, command).await,
            list_check::COMMAND_NAME => {
                let user = chat_user(&command.user, command.member.as_deref());
                let base = self.api_base.as_deref();
                let wait = self.options.rate_limit_wait;
                list_check::answer(&self.chat, &self.discord, base, ctx, wait, &command, user).await
            }
            other => tracing::debug!(command = other, "unknown command ignored"),
        }
    }

    async fn on_invite_check(&self, ctx: &Responder, command: CommandInteraction) {
        let mut email = String::new();
        let mut workspace = None;
        for option in command.data.options() {
            if let ResolvedValue::String(value) = option.value {
                match option.name {
                    "email" => email = value.to_owned(),
                    "workspace" => workspace = Some(value.to_owned()),
                    _ => {}
                }
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
        let chat = self.chat.clone();
        let work = async move {
            chat.invite_check(&actor, &email, workspace.as_deref())
                .await
        };
        self.answer(ctx, &command, work).await;
    }

    /// Answers at once when `work` is quick; otherwise defers and edits the answer in.
    async fn answer(
        &self,
        ctx: &Responder,
        interaction: &CommandInteraction,
        work: impl Future<Output = ChatReply>,
    ) {
        let wait = self.options.rate_limit_wait;
        let mut work = std::pin::pin!(work);
        let within = if ctx.is_busy() {
            Duration::ZERO
        } else {
            self.options.answer_within
        };
        match tokio::time::timeout(within, &mut work).await {
            Ok(reply) => {
                let result = ctx
                    .respond(
                        wait,
                        "answer",
                        interaction.id,
                        &interaction.token,
                        CreateInteractionResponse::Message(message_builder(&reply)),
                    )
                    .await;
                log_failure("answer a command", result);
            }
            Err(_) => {
                // The deferral decides the answer's visibility; checks are private unless configured.
                let deferred = ctx
                    .respond(
                        wait,
                        "defer",
                        interaction.id,
                        &interaction.token,
                        CreateInteractionResponse::Defer(
                            CreateInteractionResponseMessage::new()
                                .ephemeral(self.chat.settings().ephemeral_replies),
                        ),
                    )
                    .await;
                let reply = work.await;
                if deferred.is_ok() {
                    let result = with_retry(wait, "edit answer", || {
                        interaction.edit_response(&ctx.http, edit_builder(&reply))
                    })
                    .await;
                    log_failure("edit a deferred answer", result);
                } else {
                    log_failure("defer a command", deferred);
                }
            }
        }
    }

    async fn on_autocomplete(&self, ctx: &Responder, interaction: CommandInteraction) {
        let prefix = interaction
            .data
            .autocomplete()
            .filter(|option| option.name == "workspace")
            .map(|option| option.value.to_owned())
            .unwrap_or_default();
        let actor = self
            .chat
            .actor(&chat_user(&interaction.user, interaction.member.as_deref()));
        let mut response = CreateAutocompleteResponse::new();
        for (label, slug) in self.chat.workspace_choices(&actor, &prefix).await {
            response = response.add_string_choice(label, slug);
        }
        let result = ctx
            .respond(
                self.options.rate_limit_wait,
                "autocomplete",
                interaction.id,
                &interaction.token,
                CreateInteractionResponse::Autocomplete(response),
            )
            .await;
        log_failure("autocomplete", result);
    }

    async fn on_button(&self, ctx: &Responder, press: ComponentInteraction) {
        if crate::chat::report::is_bulk_button(&press.data.custom_id) {
            return self.on_bulk_button(ctx, press).await;
        }
        // The presser's own permissions, looked up now: never those of whoever ran the check.
        let actor = self
            .chat
            .actor(&chat_user(&press.user, press.member.as_ref()));
        if !self.acknowledge(ctx, &press).await {
            return;
        }
        let outcome = self.chat.press(&actor, &press.data.custom_id).await;
        if let Some(finished) = &outcome.finished {
            self.show_finished(ctx, &press, finished, "update the original message")
                .await;
        }
        if let Some(post) = &outcome.escalation {
            self.post_escalation(ctx, post).await;
        }
        self.follow_up(
            ctx,
            &press,
            followup_builder(&outcome.reply),
            "answer a button press",
        )
        .await;
    }

    /// Acknowledges a button press (type 6) before anything else: an action may send mail, which
    /// can take longer than Discord's three seconds. The pressed message is then edited, and the
    /// answer sent as a follow-up. False when Discord did not take it: nothing more can be sent.
    async fn acknowledge(&self, ctx: &Responder, press: &ComponentInteraction) -> bool {
        let acknowledged = ctx
            .respond(
                self.options.rate_limit_wait,
                "acknowledge",
                press.id,
                &press.token,
                CreateInteractionResponse::Acknowledge,
            )
            .await;
        if let Err(error) = acknowledged {
            tracing::error!(%error, "cannot acknowledge a button press");
            return false;
        }
        true
    }

    /// Shows `finished` on the pressed message, its buttons disabled (they are spent).
    async fn show_finished(
        &self,
        ctx: &Responder,
        press: &ComponentInteraction,
        finished: &str,
        what: &str,
    ) {
        let edit = finished_message(&press.message, finished);
        let result = with_retry(self.options.rate_limit_wait, what, || {
            press.edit_response(&ctx.http, edit.clone())
        })
        .await;
        log_failure(what, result);
    }

    /// Sends the answer to an acknowledged press; `what` names it in the log if that fails.
    async fn follow_up(
        &self,
        ctx: &Responder,
        press: &ComponentInteraction,
        answer: CreateInteractionResponseFollowup,
        what: &str,
    ) {
        let result = with_retry(self.options.rate_limit_wait, "follow-up", || {
            press.create_followup(&ctx.http, answer.clone())
        })
        .await;
        log_failure(what, result);
    }

    async fn post_escalation(&self, ctx: &Responder, post: &EscalationPost) {
        let Some(channel) = self.discord.escalation_channel_id.map(ChannelId::new) else {
            tracing::warn!("escalation recorded, but no escalation_channel_id is configured");
            return;
        };
        let wait = self.options.rate_limit_wait;
        // Only the support role may be pinged, and only by its id.
        let (content, mentions) = match self.discord.support_role_id {
            Some(role) => (
                format!("<@&{role}> {}", render::escape(&post.title)),
                CreateAllowedMentions::new().roles([RoleId::new(role)]),
            ),
            None => (render::escape(&post.title), render::no_mentions()),
        };
        let message = CreateMessage::new()
            .content(content)
            .embed(
                CreateEmbed::new()
                    .title(crate::chat::truncate(&render::escape(&post.title), 256))
                    .description(render::escalation_description(post))
                    .colour(render::colour(Some(crate::diagnosis::Severity::Bad))),
            )
            .allowed_mentions(mentions);
        let sent = with_retry(wait, "post escalation", || {
            channel.send_message(&ctx.http, message.clone())
        })
        .await;
        match sent {
            Ok(sent) => {
                let name = crate::chat::truncate(&post.title, 100);
                // A thread keeps the conversation about one case together; channels that do not
                // allow threads keep the message alone.
                if let Err(error) = channel
                    .create_thread_from_message(&ctx.http, sent.id, CreateThread::new(name))
                    .await
                {
                    tracing::info!(%error, "no thread for the escalation");
                }
            }
            Err(error) => tracing::error!(%error, "cannot post the escalation"),
        }
    }

    async fn on_message(&self, ctx: &Context, message: &Message) {
        if message.author.bot
            || !self
                .discord
                .support_channel_ids
                .contains(&message.channel_id.get())
        {
            return;
        }
        let actor = self.chat.actor(&ChatUser {
            id: message.author.id.to_string(),
            name: message.author.name.clone(),
            roles: message
                .member
                .as_ref()
                .map(|m| m.roles.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default(),
        });
        // Counted before any work (the reply writes button records), and only for messages that
        // could name an address: chatting in the channel costs nothing.
        if message.content.contains('@') {
            let key = format!("{}:{}", message.author.id, message.channel_id);
            if self
                .listener
                .attempt(&key, std::time::Instant::now())
                .is_err()
            {
                tracing::debug!(
                    "support-channel listener: reply skipped, too many from this person"
                );
                return;
            }
        }
        let Some(reply) = self.chat.on_message(&actor, &message.content).await else {
            return;
        };
        let create = CreateMessage::new()
            .content(render::content(&reply))
            .components(render::components(&reply.buttons, false))
            .reference_message(message)
            .allowed_mentions(render::no_mentions());
        let result = with_retry(self.options.rate_limit_wait, "offer checks", || {
            message.channel_id.send_message(&ctx.http, create.clone())
        })
        .await;
        match result {
            Ok(sent) => {
                let references: Vec<String> =
                    reply.buttons.iter().map(|b| b.reference.clone()).collect();
                let at = format!("{}/{}", sent.channel_id, sent.id);
                if let Err(error) = self
                    .chat
                    .engine()
                    .store()
                    .set_button_message(&references, &at)
                    .await
                {
                    tracing::warn!(error = %crate::error::error_chain(&error), "buttons not tied to their message");
                }
            }
            Err(error) => tracing::error!(%error, "cannot offer checks"),
        }
    }
}

/// The original message after an action: its embeds kept, the outcome shown, every button disabled.
fn finished_message(original: &Message, finished: &str) -> EditInteractionResponse {
    let rows: Vec<CreateActionRow> = original
        .components
        .iter()
        .map(|row| {
            CreateActionRow::Buttons(
                row.components
                    .iter()
                    .filter_map(|component| match component {
                        serenity::all::ActionRowComponent::Button(button) => {
                            Some(serenity::all::CreateButton::from(button.clone()).disabled(true))
                        }
                        _ => None,
                    })
                    .collect(),
            )
        })
        .collect();
    let embeds: Vec<CreateEmbed> = original
        .embeds
        .iter()
        .cloned()
        .map(CreateEmbed::from)
        .collect();
    EditInteractionResponse::new()
        .content(render::escape(finished))
        .embeds(embeds)
        .components(rows)
        .allowed_mentions(render::no_mentions())
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
        self.register(&ctx.http).await;
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        self.handle(&Responder::callback(ctx.http.clone()), interaction)
            .await;
    }

    async fn message(&self, ctx: Context, message: Message) {
        self.on_message(&ctx, &message).await;
    }
}
