//! Outgoing email through lettre: SMTP when configured, otherwise lettre's file transport (a local
//! outbox directory, so the demo works without a mail server).

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::app::config::{Config, SmtpSecurity};

/// Why an email did not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth retrying: a 4xx answer, a timeout, or the server could not be reached.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// The server refused for good (5xx): retrying the same email will not help.
    #[error("refused by the mail server: {0}")]
    Permanent(String),
    /// The email could not be built (bad sender or recipient).
    #[error("the email could not be built: {0}")]
    Invalid(String),
    /// The server stopped answering and the send was given up after this long. Worth retrying
    /// later, not at once: whatever made it silent is unlikely to pass in a second, and it may have
    /// taken the email before it went quiet.
    #[error("the mail server did not answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("email sending is not configured")]
    NotConfigured,
}

impl MailError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, MailError::Temporary(_) | MailError::TimedOut(_))
    }
}

/// One email to send.
pub struct OutgoingEmail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// Kept stable across retries so receiving servers and providers can tell it is one email.
    pub message_id: &'a str,
}

#[derive(Clone)]
pub enum Mailer {
    /// The transport and the deadline of one whole send through it.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Duration),
    /// Writes `.eml` files into the directory (created on first send).
    File(AsyncFileTransport<Tokio1Executor>, std::path::PathBuf),
    /// No transport: every send fails with [`MailError::NotConfigured`].
    Disabled,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mailer::Smtp(..) => "Mailer::Smtp",
            Mailer::File(..) => "Mailer::File",
            Mailer::Disabled => "Mailer::Disabled",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailerConfigError {
    #[error("smtp: {0}")]
    Smtp(String),
}

impl Mailer {
    /// `SMTP_URL`/`smtp.url` first, then `smtp.host`, else the file outbox.
    pub fn from_config(config: &Config) -> Result<Self, MailerConfigError> {
        let smtp = &config.smtp;
        // lettre's async transport applies its timeout to connecting only: once connected, a server
        // that stops answering (after DATA, say) would hold the send forever. The whole-send
        // deadline in `send` is what bounds every later wait.
        let timeout = Some(Duration::from_secs(smtp.timeout_seconds));
        let send_timeout = Duration::from_secs(smtp.send_timeout_seconds);
        if let Some(url) = &smtp.url {
            let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .map_err(|e| {
                    MailerConfigError::Smtp(format!("SMTP_URL is not a valid lettre SMTP URL: {e}"))
                })?;
            return Ok(Mailer::Smtp(builder.timeout(timeout).build(), send_timeout));
        }
        if let Some(host) = &smtp.host {
            let builder = match smtp.security {
                SmtpSecurity::None => {
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                }
                SmtpSecurity::Starttls => {
                    AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(|e| MailerConfigError::Smtp(e.to_string()))?
                }
                SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                    .map_err(|e| MailerConfigError::Smtp(e.to_string()))?,
            };
            let mut builder = builder.timeout(timeout);
            if let Some(port) = smtp.port {
                builder = builder.port(port);
            }
            if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.expose_secret().to_owned(),
                ));
            }
            return Ok(Mailer::Smtp(builder.build(), send_timeout));
        }
        Ok(Mailer::File(
            AsyncFileTransport::new(&smtp.outbox_dir),
            smtp.outbox_dir.clone(),
        ))
    }

    /// A mailer for lettre's URL form, e.g. `smtp://127.0.0.1:2525`, whose connection and whole
    /// send each get `timeout`.
    pub fn smtp_url(url: &str, timeout: Duration) -> Result<Self, MailerConfigError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailerConfigError::Smtp(e.to_string()))?;
        Ok(Mailer::Smtp(
            builder.timeout(Some(timeout)).build(),
            timeout,
        ))
    }

    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<(), MailError> {
        let message = build_message(email)?;
        match self {
            // Dropping the send at the deadline drops its connection too: nothing is left waiting.
            Mailer::Smtp(transport, deadline) => {
                match tokio::time::timeout(*deadline, transport.send(message)).await {
                    Ok(sent) => sent.map(|_| ()).map_err(classify),
                    Err(_) => Err(MailError::TimedOut(*deadline)),
                }
            }
            Mailer::File(transport, dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    MailError::Temporary(format!("cannot create the outbox {}: {e}", dir.display()))
                })?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| MailError::Temporary(format!("cannot write to the outbox: {e}")))
            }
            Mailer::Disabled => Err(MailError::NotConfigured),
        }
    }
}

fn build_message(email: &OutgoingEmail<'_>) -> Result<Message, MailError> {
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|e| MailError::Invalid(format!("sender: {e}")))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| MailError::Invalid(format!("recipient: {e}")))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject)
        .message_id(Some(email.message_id.to_owned()))
        .header(ContentType::TEXT_PLAIN)
        .body(email.body.to_owned())
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// 4xx and connection trouble are temporary; 5xx is permanent.
fn classify(error: lettre::transport::smtp::Error) -> MailError {
    let text = match error.status() {
        Some(code) => format!("{code} {error}"),
        None => error.to_string(),
    };
    if error.is_permanent() {
        MailError::Permanent(text)
    } else {
        MailError::Temporary(text)
    }
}
