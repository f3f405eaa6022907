//! Outgoing email through lettre: SMTP when configured, otherwise lettre's file transport (a local
//! outbox directory, so the demo works without a mail server).

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{Config, SmtpSecurity};
use crate::domain::invitation::{canonical_message_id, message_id_as_tag};

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

    /// Sends the email. Returns the provider's own id for it when the SMTP server's acceptance named
    /// one (`250 Ok: queued as X`): providers report events under that id.
    pub async fn send(&self, email: &OutgoingEmail<'_>) -> Result<Option<String>, MailError> {
        let message = build_message(email)?;
        match self {
            // Dropping the send at the deadline drops its connection too: nothing is left waiting.
            Mailer::Smtp(transport, deadline) => {
                match tokio::time::timeout(*deadline, transport.send(message)).await {
                    Ok(sent) => sent
                        .map(|response| provider_queue_id(response.message()))
                        .map_err(classify),
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
                    .map(|_| None)
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
    let message_id = canonical_message_id(email.message_id);
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject)
        .message_id(Some(format!("<{message_id}>")));
    for header in correlation_headers(&message_id) {
        builder = builder.raw_header(header);
    }
    builder
        .header(ContentType::TEXT_PLAIN)
        .body(email.body.to_owned())
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// The key under which each provider hands the message id back in its webhook events.
pub const CORRELATION_KEY: &str = "invite_ref";

/// The message id again, in each provider's own way of carrying a value through to its events:
/// providers replace or ignore the Message-ID header, but report these back. A provider ignores the
/// others' headers, so every email carries all of them and works with whichever relay is configured.
fn correlation_headers(message_id: &str) -> Vec<HeaderValue> {
    let header = |name: &'static str, value: String| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
    };
    let mut headers = vec![
        // Postmark: every X-PM-Metadata-<key> header becomes the event's Metadata.<key>.
        header("X-PM-Metadata-invite_ref", message_id.to_owned()),
        // SendGrid: unique_args come back as top-level fields of each event.
        header(
            "X-SMTPAPI",
            serde_json::json!({ "unique_args": { CORRELATION_KEY: message_id } }).to_string(),
        ),
        // Mailgun: the variables come back as the event's user-variables.
        header(
            "X-Mailgun-Variables",
            serde_json::json!({ CORRELATION_KEY: message_id }).to_string(),
        ),
    ];
    // SES: tags come back in mail.tags; their values allow few characters, so the id is escaped.
    if let Some(tag) = message_id_as_tag(message_id) {
        headers.push(header(
            "X-SES-MESSAGE-TAGS",
            format!("{CORRELATION_KEY}={tag}"),
        ));
    }
    headers
}

/// The provider's id for an accepted email, from the text of the SMTP 250 reply, in the forms
/// relays use: `Ok: queued as X` (Postfix, SendGrid), `Ok X` or `Ok <X>` (Amazon SES), `OK id=X`
/// (Exim). `None` when the reply names nothing recognisable (`Great success`, `Ok`).
pub fn provider_queue_id<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<String> {
    lines.into_iter().find_map(|line| {
        let mut text = line.trim();
        // An enhanced status code (`2.0.0`) may lead the text.
        if let Some((code, rest)) = text.split_once(' ') {
            if code.split('.').count() == 3 && code.split('.').all(|p| p.parse::<u16>().is_ok()) {
                text = rest.trim_start();
            }
        }
        let lower = text.to_ascii_lowercase();
        let (candidate, named) = if let Some(at) = lower.find("queued as ") {
            (
                text[at + "queued as ".len()..].split_whitespace().next(),
                true,
            )
        } else if lower.starts_with("ok ") || lower.starts_with("ok: ") {
            // Only a lone word after "Ok" is an id; a sentence ("Ok thanks, message accepted") is not.
            let rest = text[2..].trim_start_matches(':').trim();
            let mut words = rest.split_whitespace();
            (words.next().filter(|_| words.next().is_none()), false)
        } else {
            (None, false)
        };
        let id = candidate?;
        let id = id.strip_prefix("id=").unwrap_or(id);
        let id = canonical_message_id(id.trim_end_matches(['.', ',', ';']));
        // Queue ids are opaque tokens; a lone word after "Ok" counts only when it has a digit in it
        // ("Ok accepted" names nothing).
        let plausible = id.len() >= 4
            && id.len() <= 200
            && id.bytes().all(|b| b.is_ascii_graphic())
            && (named || id.bytes().any(|b| b.is_ascii_digit()));
        plausible.then_some(id)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_are_read_from_250_replies() {
        let id = |text: &str| provider_queue_id(text.lines());
        assert_eq!(
            id("2.0.0 Ok: queued as 4XyZ12AbC").as_deref(),
            Some("4XyZ12AbC")
        );
        assert_eq!(
            id("Ok: queued as 9kzyCa2WTZ2b8CcR1Bn8Hg").as_deref(),
            Some("9kzyCa2WTZ2b8CcR1Bn8Hg")
        );
        assert_eq!(
            id("Ok 0100018c1d2e3f4a-5b6c7d8e-9f00-1122-3344-556677889900-000000").as_deref(),
            Some("0100018c1d2e3f4a-5b6c7d8e-9f00-1122-3344-556677889900-000000")
        );
        assert_eq!(
            id("Ok <0100018c-abc1@email.amazonses.com>").as_deref(),
            Some("0100018c-abc1@email.amazonses.com")
        );
        assert_eq!(
            id("OK id=1pXyZ7-000AbC-Q1").as_deref(),
            Some("1pXyZ7-000AbC-Q1")
        );
        assert_eq!(
            id("first line\n2.0.0 Ok: queued as ABCDEF").as_deref(),
            Some("ABCDEF")
        );
        assert_eq!(id("Great success"), None);
        assert_eq!(id("Ok"), None);
        assert_eq!(id("2.0.0 Ok"), None);
        assert_eq!(id("OK thanks, message accepted"), None);
        assert_eq!(id("Ok: accepted"), None);
    }

    #[test]
    fn invitation_emails_carry_their_id_for_every_provider() {
        let message = build_message(&OutgoingEmail {
            from: "bot@example.com",
            to: "ada@school.example",
            subject: "Your invitation",
            body: "Hello",
            message_id: "<rsd-1.ab_c@invite-bot>",
        })
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <rsd-1.ab_c@invite-bot>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("X-PM-Metadata-invite_ref: rsd-1.ab_c@invite-bot\r\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"X-SMTPAPI: {"unique_args":{"invite_ref":"rsd-1.ab_c@invite-bot"}}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"X-Mailgun-Variables: {"invite_ref":"rsd-1.ab_c@invite-bot"}"#),
            "{text}"
        );
        assert!(
            text.contains("X-SES-MESSAGE-TAGS: invite_ref=rsd-1_2Eab_5Fc_40invite-bot\r\n"),
            "{text}"
        );
    }
}
