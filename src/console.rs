//! The local chat: the same request/reply flow as Discord, in a terminal or a pipe.
//!
//! Lines are `/invite-check ADDRESS [WORKSPACE]`, a plain message naming addresses (what a support
//! channel would see), `press N` for the Nth button of the latest reply, or `quit`. With
//! `--format json` every bot reply is one JSON line.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::actions::Actor;
use crate::chat::{Chat, ChatReply, ChatRequest, BUTTON_PREFIX};

/// One bot reply as a JSON line.
#[derive(Debug, Serialize)]
pub struct ReplyLine<'a> {
    pub ephemeral: bool,
    pub verdict: Option<&'static str>,
    pub text: String,
    pub buttons: Vec<ButtonLine<'a>>,
    /// Set after an action: what it did (the original message now shows it, buttons disabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<&'a str>,
    /// Set when an escalation was handed to human support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

/// How replies are written: for people, or one JSON object per line for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Serialize)]
pub struct ButtonLine<'a> {
    pub n: usize,
    pub label: &'a str,
    pub action: &'static str,
}

/// Reads requests from `input` until it ends (or `quit`), writing replies to `output`.
pub async fn run(
    chat: &Chat,
    actor: &Actor,
    format: Format,
    input: impl AsyncBufRead + Unpin,
    output: &mut (impl Write + Send),
    prompt: bool,
) -> std::io::Result<()> {
    let mut input = input;
    let mut raw = Vec::new();
    // The buttons of the latest reply that had any: number -> reference.
    let mut buttons: HashMap<usize, String> = HashMap::new();
    loop {
        if prompt {
            write!(output, "> ")?;
            output.flush()?;
        }
        // A line that cannot be read is answered like a usage mistake, and reading goes on.
        let request = match read_line(&mut input, &mut raw).await? {
            None => break,
            Some(Err(skipped)) => Request::Skipped(skipped),
            Some(Ok(line)) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                if line == "quit" || line == "exit" {
                    break;
                }
                Request::Chat(ChatRequest::parse(line))
            }
        };
        let request = match request {
            Request::Chat(request) => request,
            Request::Skipped(skipped) => {
                let words = match skipped {
                    Skipped::NotUtf8 => chat.say("line_not_utf8", json!({})),
                    Skipped::TooLong => {
                        chat.say("line_too_long", json!({ "max_kib": MAX_LINE_BYTES / 1024 }))
                    }
                };
                write_reply(chat, format, output, &ChatReply::notice(words), None, None)?;
                continue;
            }
        };
        let (reply, finished, escalation) = match request {
            ChatRequest::InviteCheck { email, workspace } => (
                chat.invite_check(actor, &email, workspace.as_deref()).await,
                None,
                None,
            ),
            ChatRequest::Message(text) => (
                chat.on_message(actor, &text)
                    .await
                    .unwrap_or_else(|| ChatReply::notice(chat.say("no_address", json!({})))),
                None,
                None,
            ),
            ChatRequest::Usage(usage) => (
                ChatReply::notice(chat.say(usage.template(), json!({}))),
                None,
                None,
            ),
            ChatRequest::Press(n) => match buttons.get(&n) {
                Some(reference) => {
                    let outcome = chat
                        .press(actor, &format!("{BUTTON_PREFIX}{reference}"))
                        .await;
                    if outcome.finished.is_some() {
                        // The message those buttons were on is finished: they are disabled.
                        buttons.clear();
                    }
                    (outcome.reply, outcome.finished, outcome.escalation)
                }
                None => (
                    ChatReply::notice(chat.say("no_button", json!({ "n": n }))),
                    None,
                    None,
                ),
            },
        };
        if !reply.buttons.is_empty() {
            buttons = reply
                .buttons
                .iter()
                .enumerate()
                .map(|(i, b)| (i + 1, b.reference.clone()))
                .collect();
        }
        write_reply(
            chat,
            format,
            output,
            &reply,
            finished.as_deref(),
            escalation,
        )?;
    }
    Ok(())
}

/// What a line of input turned out to be.
enum Request {
    Chat(ChatRequest),
    Skipped(Skipped),
}

/// Why a line was skipped; each has its words in `chat.j2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skipped {
    NotUtf8,
    TooLong,
}

/// Writes one bot reply, as text or a JSON line.
fn write_reply(
    chat: &Chat,
    format: Format,
    output: &mut (impl Write + Send),
    reply: &ChatReply,
    finished: Option<&str>,
    escalation: Option<crate::chat::EscalationPost>,
) -> std::io::Result<()> {
    let line = ReplyLine {
        ephemeral: reply.ephemeral,
        verdict: reply.verdict().map(|v| v.as_str()),
        text: reply.plain_text(&chat.say("next_steps_label", json!({}))),
        buttons: reply
            .buttons
            .iter()
            .enumerate()
            .map(|(i, b)| ButtonLine {
                n: i + 1,
                label: &b.label,
                action: b.action.as_str(),
            })
            .collect(),
        finished,
        escalation: escalation.map(|e| format!("{}\n{}\n{}", e.title, e.text, e.diagnosis)),
    };
    match format {
        Format::Json => {
            let json = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            writeln!(output, "{json}")?;
        }
        Format::Text => write_text(chat, output, &line)?,
    }
    output.flush()
}

/// A line longer than this is skipped, not held: no request is anywhere near it.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The next line without its end, `Err` with what to tell the person when it cannot be used, or
/// `None` at the end of the input. Memory stays within [`MAX_LINE_BYTES`] however long a line is.
async fn read_line<'a>(
    input: &mut (impl AsyncBufRead + Unpin),
    raw: &'a mut Vec<u8>,
) -> std::io::Result<Option<Result<&'a str, Skipped>>> {
    raw.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (part, end) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (&available[..newline], true),
            None => (available, false),
        };
        if !too_long && raw.len() + part.len() <= MAX_LINE_BYTES {
            raw.extend_from_slice(part);
        } else {
            too_long = true;
            raw.clear();
        }
        let consumed = part.len() + usize::from(end);
        input.consume(consumed);
        if end {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if too_long {
        return Ok(Some(Err(Skipped::TooLong)));
    }
    Ok(Some(std::str::from_utf8(raw).map_err(|_| Skipped::NotUtf8)))
}

fn write_text(chat: &Chat, output: &mut impl Write, line: &ReplyLine<'_>) -> std::io::Result<()> {
    let who = chat.say("console_speaker", json!({ "ephemeral": line.ephemeral }));
    writeln!(output, "{who}:")?;
    for text_line in line.text.lines() {
        writeln!(output, "  {text_line}")?;
    }
    if let Some(finished) = line.finished {
        let words = chat.say("console_finished", json!({ "finished": finished }));
        writeln!(output, "  {words}")?;
    }
    if let Some(escalation) = &line.escalation {
        let words = chat.say("console_escalation", json!({}));
        writeln!(output, "  {words}")?;
        for text_line in escalation.lines() {
            writeln!(output, "    {text_line}")?;
        }
    }
    if !line.buttons.is_empty() {
        let buttons: Vec<String> = line
            .buttons
            .iter()
            .map(|b| format!("[{}] {}", b.n, b.label))
            .collect();
        let hint = chat.say("console_press_hint", json!({}));
        writeln!(output, "  {}    {hint}", buttons.join("  "))?;
    }
    writeln!(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(mut input: &[u8]) -> Vec<Result<String, Skipped>> {
        let mut raw = Vec::new();
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut input, &mut raw).await.unwrap() {
            out.push(line.map(str::to_owned));
        }
        out
    }

    #[tokio::test]
    async fn a_line_that_cannot_be_read_is_skipped_and_reading_goes_on() {
        let mut input = b"first\n\xff\xfe broken\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE_BYTES + 1]);
        input.extend(b"\nlast");
        assert_eq!(
            lines(&input).await,
            [
                Ok("first".to_owned()),
                Err(Skipped::NotUtf8),
                Err(Skipped::TooLong),
                Ok("last".to_owned())
            ]
        );
        assert_eq!(lines(b"").await, []);
        assert_eq!(lines(b"\n").await, [Ok(String::new())]);
    }
}
