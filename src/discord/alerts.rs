//! Alert posts through Discord's REST API (serenity's `Http`, no gateway needed): the chat reply
//! shaped as a message, mentioning only `[alerts] mention_role`, by id, and nothing from the text
//! (which is escaped like every reply).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serenity::all::{
    ChannelId, CreateAllowedMentions, CreateMessage, Http, HttpBuilder, Nonce, RoleId,
};

use super::{render, DiscordError};
use crate::alerts::{AlertPost, AlertPoster, PostFailed};
use crate::config::Config;

/// Posts alerts to their channels.
pub struct DiscordAlerts {
    http: Arc<Http>,
    mention_role: Option<RoleId>,
}

impl DiscordAlerts {
    /// With the configured token (and `[discord] api_base_url`, the local stand-in of tests).
    pub fn from_config(config: &Config) -> Result<Self, DiscordError> {
        let token = config
            .discord
            .token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .filter(|t| !t.trim().is_empty())
            .ok_or(DiscordError::MissingToken)?;
        // serenity's own client has no deadlines: a post that hangs would hold the job.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(serenity::Error::from)?;
        let mut http = HttpBuilder::new(&token)
            .client(client)
            .default_allowed_mentions(render::no_mentions());
        if let Some(base) = &config.discord.api_base_url {
            // As in `DiscordBot::with_api_base`: the proxy needs serenity's rate limiter off.
            http = http
                .proxy(base.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        Ok(DiscordAlerts {
            http: Arc::new(http.build()),
            // Config validation refuses 0, which is no role.
            mention_role: config
                .alerts
                .mention_role
                .filter(|id| *id != 0)
                .map(RoleId::new),
        })
    }

    fn message(&self, post: &AlertPost) -> CreateMessage {
        let text = render::content(&post.reply);
        let (content, mentions) = match self.mention_role {
            Some(role) => (
                format!("<@&{role}> {text}"),
                CreateAllowedMentions::new().roles([role]),
            ),
            None => (text, render::no_mentions()),
        };
        // The content limit holds with the mention in front.
        let content = crate::chat::truncate(&content, 2000);
        CreateMessage::new()
            .content(content)
            .embeds(render::embeds(&post.reply))
            .components(render::components(&post.reply.buttons, false))
            .allowed_mentions(mentions)
            .nonce(Nonce::String(crate::chat::truncate(&post.nonce, 25)))
            .enforce_nonce(true)
    }
}

impl AlertPoster for DiscordAlerts {
    fn post<'a>(
        &'a self,
        post: &'a AlertPost,
    ) -> Pin<Box<dyn Future<Output = Result<String, PostFailed>> + Send + 'a>> {
        Box::pin(async move {
            if post.channel_id == 0 {
                return Err(PostFailed("channel id 0".into()));
            }
            let channel = ChannelId::new(post.channel_id);
            match channel.send_message(&self.http, self.message(post)).await {
                Ok(sent) => Ok(format!("{}/{}", sent.channel_id, sent.id)),
                Err(error) => Err(PostFailed(error.to_string())),
            }
        })
    }
}
