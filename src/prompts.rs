//! The words: templates in `prompts/`, rendered with minijinja.
//!
//! The templates are compiled into the binary; `prompts_dir` in the config swaps in a directory of
//! edited copies. Either way every template is loaded and checked at start-up, so a missing file or a
//! syntax error stops the bot with the file name and line rather than surfacing mid-conversation.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::value::merge_maps;
use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::diagnosis::{Check, Outcome, Verdict};

/// Every template the bot uses, with its built-in text.
const BUILTIN: &[(&str, &str)] = &[
    ("time.j2", include_str!("../prompts/time.j2")),
    ("summary.j2", include_str!("../prompts/summary.j2")),
    ("findings.j2", include_str!("../prompts/findings.j2")),
    ("reply.txt.j2", include_str!("../prompts/reply.txt.j2")),
    ("actions.j2", include_str!("../prompts/actions.j2")),
    ("chat.j2", include_str!("../prompts/chat.j2")),
    ("cli.j2", include_str!("../prompts/cli.j2")),
    ("errors.j2", include_str!("../prompts/errors.j2")),
    ("api.j2", include_str!("../prompts/api.j2")),
    ("report.j2", include_str!("../prompts/report.j2")),
    ("alerts.j2", include_str!("../prompts/alerts.j2")),
    ("list_check.j2", include_str!("../prompts/list_check.j2")),
    (
        "email/invitation.j2",
        include_str!("../prompts/email/invitation.j2"),
    ),
    (
        "partials/spam_folder.j2",
        include_str!("../prompts/partials/spam_folder.j2"),
    ),
    (
        "partials/delivered_caveat.j2",
        include_str!("../prompts/partials/delivered_caveat.j2"),
    ),
    (
        "verdicts/not_registered.j2",
        include_str!("../prompts/verdicts/not_registered.j2"),
    ),
    (
        "verdicts/already_active.j2",
        include_str!("../prompts/verdicts/already_active.j2"),
    ),
    (
        "verdicts/deactivated.j2",
        include_str!("../prompts/verdicts/deactivated.j2"),
    ),
    (
        "verdicts/invite_suppressed.j2",
        include_str!("../prompts/verdicts/invite_suppressed.j2"),
    ),
    (
        "verdicts/invite_bounced.j2",
        include_str!("../prompts/verdicts/invite_bounced.j2"),
    ),
    (
        "verdicts/invite_marked_spam.j2",
        include_str!("../prompts/verdicts/invite_marked_spam.j2"),
    ),
    (
        "verdicts/invite_never_sent.j2",
        include_str!("../prompts/verdicts/invite_never_sent.j2"),
    ),
    (
        "verdicts/invite_expired.j2",
        include_str!("../prompts/verdicts/invite_expired.j2"),
    ),
    (
        "verdicts/invite_deferred.j2",
        include_str!("../prompts/verdicts/invite_deferred.j2"),
    ),
    (
        "verdicts/invite_delivered.j2",
        include_str!("../prompts/verdicts/invite_delivered.j2"),
    ),
    (
        "verdicts/invite_sent.j2",
        include_str!("../prompts/verdicts/invite_sent.j2"),
    ),
];

/// The macros `actions.j2` must define.
const ACTION_MACROS: &[&str] = &[
    "forbidden",
    "not_offered",
    "too_soon",
    "member_daily_limit",
    "actor_hourly_limit",
    "already_done",
    "resend_done",
    "activation_done",
    "escalation_done",
    "escalation_exists",
    "action_taken",
    "resend_unsent",
    "resend_sent_unrecorded",
    "product_resend_done",
    "product_activation_done",
];

/// The macros `alerts.j2` must define.
const ALERT_MACROS: &[&str] = &["problem", "alert", "burst", "digest"];

/// The macros `list_check.j2` must define.
const LIST_CHECK_MACROS: &[&str] = &[
    "summary",
    "too_many",
    "too_large",
    "not_text",
    "download_failed",
    "empty",
    "command_description",
    "list_option",
    "file_option",
    "workspace_option",
    "usage",
];

/// The macros `chat.j2` must define.
const CHAT_MACROS: &[&str] = &[
    "action_button",
    "suggestion_button",
    "check_button",
    "listener",
    "stale",
    "forged",
    "replayed",
    "finished",
    "activation_code",
    "product_activation_code",
    "escalation_title",
    "escalation_text",
    "command_description",
    "email_option",
    "workspace_option",
    "check_usage",
    "press_usage",
    "no_address",
    "no_button",
    "line_not_utf8",
    "line_too_long",
    "next_steps_label",
    "console_speaker",
    "console_finished",
    "console_escalation",
    "console_press_hint",
];

/// The macros `cli.j2` must define.
const CLI_MACROS: &[&str] = &[
    "seeded",
    "imported",
    "import_refused",
    "import_progress",
    "migrated",
    "retried",
    "listening",
    "chat_banner",
    "demo_banner",
    "action_refused",
    "activation_code",
    "activation_link",
    "redeem_activated",
    "redeem_rejected",
    "redeem_throttled",
    "audit_entry",
    "synced",
    "sync_progress",
];

/// The macros `errors.j2` must define.
const ERROR_MACROS: &[&str] = &[
    "email_problem",
    "slug_problem",
    "invalid_email",
    "invalid_workspace",
    "unknown_workspace",
    "forbidden",
    "mail_rejected",
    "mail_queued",
    "mail_unanswered",
    "mail_not_configured",
    "product_unknown",
    "product_refused",
    "product_garbled",
    "unavailable",
    "internal",
];

/// The macros `report.j2` must define.
const REPORT_MACROS: &[&str] = &[
    "state_name",
    "next_step",
    "report",
    "csv_note",
    "command_description",
    "workspace_option",
    "no_workspace",
    "bulk_button",
    "bulk_confirm",
    "bulk_confirm_button",
    "bulk_nobody",
    "bulk_already",
    "bulk_busy",
    "bulk_progress",
    "bulk_summary",
    "list_hint",
];

/// The macros `api.j2` must define.
const API_MACROS: &[&str] = &[
    "activated",
    "invalid_code",
    "too_many_attempts",
    "too_large",
    "bad_request",
];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("template {file} is missing from {dir}")]
    Missing { file: String, dir: PathBuf },
    #[error("template {file} cannot be read: {source}")]
    Unreadable {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {file}: {message}")]
    Incomplete { file: String, message: String },
    #[error("{}", describe(.0))]
    Template(#[from] minijinja::Error),
}

/// minijinja's message plus the file and line it points at.
fn describe(error: &minijinja::Error) -> String {
    match (error.name(), error.line()) {
        (Some(name), Some(line)) => format!("template {name}, line {line}: {error}"),
        (Some(name), None) => format!("template {name}: {error}"),
        _ => error.to_string(),
    }
}

pub struct Prompts {
    env: Environment<'static>,
    clock: Clock,
}

/// What "now" is for the time filters: the system clock, or a fixed moment (tests, replays).
#[derive(Debug, Clone, Copy)]
enum Clock {
    System,
    Fixed(DateTime<Utc>),
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prompts")
    }
}

impl Prompts {
    /// The templates compiled into the binary.
    pub fn builtin() -> Result<Self, PromptError> {
        Self::from_sources(
            BUILTIN
                .iter()
                .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
        )
    }

    /// The built-in templates, or those in `dir` when given (every file must be there).
    pub fn load(dir: Option<&Path>) -> Result<Self, PromptError> {
        let Some(dir) = dir else {
            return Self::builtin();
        };
        let mut sources = Vec::with_capacity(BUILTIN.len());
        for (name, _) in BUILTIN {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => PromptError::Missing {
                    file: (*name).to_owned(),
                    dir: dir.to_path_buf(),
                },
                _ => PromptError::Unreadable {
                    file: path.clone(),
                    source,
                },
            })?;
            sources.push(((*name).to_owned(), text));
        }
        Self::from_sources(sources.into_iter())
    }

    fn from_sources(sources: impl Iterator<Item = (String, String)>) -> Result<Self, PromptError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        filters::register(&mut env);
        for (name, text) in sources {
            env.add_template_owned(name, text)?;
        }
        let prompts = Prompts {
            env,
            clock: Clock::System,
        };
        prompts.check_complete()?;
        Ok(prompts)
    }

    /// The same templates with "now" fixed at `now`, so relative times render the same every time.
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.clock = Clock::Fixed(now);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        match self.clock {
            Clock::System => Utc::now(),
            Clock::Fixed(now) => now,
        }
    }

    /// The render context: `context` plus `now`, which the time filters measure from.
    fn context_at(&self, context: &impl Serialize, now: DateTime<Utc>) -> Value {
        merge_maps([now_context(now), Value::from_serialize(context)])
    }

    /// Every verdict has its blocks and every finding outcome its macro.
    fn check_complete(&self) -> Result<(), PromptError> {
        self.require_macros("time.j2", filters::TIME_MACROS)?;
        self.require_macros("summary.j2", &["field_name"])?;
        self.require_macros("actions.j2", ACTION_MACROS)?;
        self.require_macros("cli.j2", CLI_MACROS)?;
        self.require_macros("chat.j2", CHAT_MACROS)?;
        self.require_macros("errors.j2", ERROR_MACROS)?;
        self.require_macros("api.j2", API_MACROS)?;
        self.require_macros("report.j2", REPORT_MACROS)?;
        self.require_macros("alerts.j2", ALERT_MACROS)?;
        self.require_macros("list_check.j2", LIST_CHECK_MACROS)?;
        let findings = self.env.get_template("findings.j2")?.render_captured(())?;
        for outcome in Outcome::ALL {
            if findings.state().lookup(outcome.as_str()).is_none() {
                return Err(PromptError::Incomplete {
                    file: "findings.j2".into(),
                    message: format!("no macro `{}` for that finding", outcome.as_str()),
                });
            }
        }
        let mut email = self
            .env
            .get_template("email/invitation.j2")?
            .render_captured(())?;
        for block in ["subject", "body"] {
            email
                .with_state_mut(|state| state.render_block(block))
                .map_err(|e| PromptError::Incomplete {
                    file: "email/invitation.j2".into(),
                    message: format!("block `{block}`: {e}"),
                })?;
        }
        for verdict in Verdict::ALL {
            let file = verdict_file(verdict);
            let mut captured = self.env.get_template(&file)?.render_captured(())?;
            for block in ["title", "next_steps"] {
                captured
                    .with_state_mut(|state| state.render_block(block))
                    .map_err(|e| PromptError::Incomplete {
                        file: file.clone(),
                        message: format!("block `{block}`: {e}"),
                    })?;
            }
        }
        Ok(())
    }

    /// The sentence for one finding, with relative times measured from `now` (the check's moment).
    pub fn finding_detail(
        &self,
        outcome: Outcome,
        facts: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<String, PromptError> {
        self.macro_text_at("findings.j2", outcome.as_str(), facts, now)
    }

    /// The label of a summary field: the check that produced the finding, in words.
    pub fn field_name(&self, check: Check) -> Result<String, PromptError> {
        self.macro_text("summary.j2", "field_name", &check)
    }

    /// The words for an action outcome (a macro of `actions.j2`).
    pub fn action_text(
        &self,
        name: &str,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        self.macro_text("actions.j2", name, facts)
    }

    /// The words the command line prints (a macro of `cli.j2`); unlike the chat's words, line breaks
    /// are kept, since a terminal shows them as written.
    pub fn cli_text(&self, name: &str, facts: &serde_json::Value) -> Result<String, PromptError> {
        Ok(self
            .call_macro("cli.j2", name, facts, self.now())?
            .trim()
            .to_owned())
    }

    /// What a person is told when a request cannot be done (a macro of `errors.j2`). As written,
    /// trimmed: what a person typed, quoted back, keeps its every character.
    pub fn error_text(&self, name: &str, facts: &serde_json::Value) -> Result<String, PromptError> {
        Ok(self
            .call_macro("errors.j2", name, facts, self.now())?
            .trim()
            .to_owned())
    }

    /// The `message` of an answer of the HTTP API (a macro of `api.j2`), as written, trimmed.
    pub fn api_text(&self, name: &str, facts: &serde_json::Value) -> Result<String, PromptError> {
        Ok(self
            .call_macro("api.j2", name, facts, self.now())?
            .trim()
            .to_owned())
    }

    /// The words of the workspace report (a macro of `report.j2`), lines kept as written, each
    /// trimmed at its end.
    pub fn report_text(
        &self,
        name: &str,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        let text = self.call_macro("report.j2", name, facts, self.now())?;
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        Ok(lines.join("\n").trim_matches('\n').to_owned())
    }

    fn macro_text(
        &self,
        file: &str,
        name: &str,
        facts: &impl Serialize,
    ) -> Result<String, PromptError> {
        self.macro_text_at(file, name, facts, self.now())
    }

    fn macro_text_at(
        &self,
        file: &str,
        name: &str,
        facts: &impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<String, PromptError> {
        Ok(collapse_whitespace(
            &self.call_macro(file, name, facts, now)?,
        ))
    }

    /// The invitation email: (subject, body).
    pub fn invitation_email(
        &self,
        context: &serde_json::Value,
    ) -> Result<(String, String), PromptError> {
        let mut captured = self
            .env
            .get_template("email/invitation.j2")?
            .render_captured(self.context_at(context, self.now()))?;
        let subject = captured.with_state_mut(|state| state.render_block("subject"))?;
        let body = captured.with_state_mut(|state| state.render_block("body"))?;
        Ok((collapse_whitespace(&subject), body.trim().to_owned() + "\n"))
    }

    /// The verdict in words, for a title.
    pub fn verdict_title(
        &self,
        verdict: Verdict,
        context: &impl Serialize,
    ) -> Result<String, PromptError> {
        Ok(collapse_whitespace(
            &self.verdict_block(verdict, "title", context)?,
        ))
    }

    /// What to do next, as a short paragraph (may hold line breaks).
    pub fn verdict_next_steps(
        &self,
        verdict: Verdict,
        context: &impl Serialize,
    ) -> Result<String, PromptError> {
        Ok(self
            .verdict_block(verdict, "next_steps", context)?
            .trim()
            .to_owned())
    }

    fn verdict_block(
        &self,
        verdict: Verdict,
        block: &str,
        context: &impl Serialize,
    ) -> Result<String, PromptError> {
        let mut captured = self
            .env
            .get_template(&verdict_file(verdict))?
            .render_captured(self.context_at(context, self.now()))?;
        Ok(captured.with_state_mut(|state| state.render_block(block))?)
    }

    /// Renders a whole template by name (e.g. `reply.txt.j2`).
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String, PromptError> {
        let template = self.env.get_template(name)?;
        Ok(template.render(self.context_at(context, self.now()))?)
    }

    /// Words of the chat flow (a macro of `chat.j2`). Each line keeps its place, with its
    /// whitespace collapsed, so a macro writes one line or several as it means to.
    pub fn chat_text(&self, name: &str, facts: &serde_json::Value) -> Result<String, PromptError> {
        let text = self.call_macro("chat.j2", name, facts, self.now())?;
        let lines: Vec<String> = text.lines().map(collapse_whitespace).collect();
        Ok(lines.join("\n").trim_matches('\n').to_owned())
    }

    /// Words of an alert post (a macro of `alerts.j2`), lines kept as [`Prompts::chat_text`] keeps them.
    pub fn alert_text(&self, name: &str, facts: &serde_json::Value) -> Result<String, PromptError> {
        self.lines_of("alerts.j2", name, facts)
    }

    /// Words of a list check (a macro of `list_check.j2`), lines kept.
    pub fn list_check_text(
        &self,
        name: &str,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        self.lines_of("list_check.j2", name, facts)
    }

    /// Macro `name` of `file`, each line with its whitespace collapsed, blank lines kept inside.
    fn lines_of(
        &self,
        file: &str,
        name: &str,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        let text = self.call_macro(file, name, facts, self.now())?;
        let lines: Vec<String> = text.lines().map(collapse_whitespace).collect();
        Ok(lines.join("\n").trim_matches('\n').to_owned())
    }

    /// An error naming `file` and the first of `names` it does not define as a macro.
    fn require_macros(&self, file: &str, names: &[&str]) -> Result<(), PromptError> {
        let captured = self.env.get_template(file)?.render_captured(())?;
        match names
            .iter()
            .find(|name| captured.state().lookup(name).is_none())
        {
            Some(name) => Err(PromptError::Incomplete {
                file: file.into(),
                message: format!("no macro `{name}`"),
            }),
            None => Ok(()),
        }
    }

    /// What macro `name` of `file` writes for `facts`, as written, with `now` for the time filters.
    fn call_macro(
        &self,
        file: &str,
        name: &str,
        facts: &impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<String, PromptError> {
        let captured = self
            .env
            .get_template(file)?
            .render_captured(now_context(now))?;
        Ok(captured
            .state()
            .call_macro(name, &[Value::from_serialize(facts)])?)
    }
}

/// A context holding only `now` (macros see the root context of their template).
fn now_context(now: DateTime<Utc>) -> Value {
    context! { now => now.to_rfc3339_opts(SecondsFormat::Secs, true) }
}

/// The filters that turn facts (RFC 3339 times, seconds) into words. The numbers are worked out
/// here; the words come from the macros of `time.j2`, so a translation edits only `prompts/`.
mod filters {
    use chrono::{DateTime, Utc};
    use minijinja::value::ValueKind;
    use minijinja::{Environment, Error, ErrorKind, State, Value};

    /// The macros `time.j2` must define.
    pub(super) const TIME_MACROS: &[&str] = &["amount", "ago", "ahead", "datetime", "date"];

    pub(super) fn register(env: &mut Environment<'static>) {
        env.add_filter("ago", ago);
        env.add_filter("wait", wait);
        env.add_filter("duration", duration);
        env.add_filter("datetime", datetime);
        env.add_filter("date", date);
    }

    /// `{{ t | ago }}`: "3 days ago" for a past time, "in 5 minutes" for one still ahead.
    fn ago(state: &State, value: Value) -> Result<String, Error> {
        if absent(&value) {
            return Ok(String::new());
        }
        // `now` is whole seconds: a time later within the same second is now, not "in 0 seconds".
        let then = chrono::SubsecRound::trunc_subsecs(instant(&value)?, 0);
        let now = now(state)?;
        let (macro_name, seconds) = if then <= now {
            ("ago", (now - then).num_seconds())
        } else {
            ("ahead", (then - now).num_seconds())
        };
        let (amount, unit) = largest_unit(seconds.unsigned_abs());
        words(state, macro_name, &[Value::from(amount), Value::from(unit)])
    }

    /// `{{ t | wait }}` or `{{ seconds | wait }}`: how long to wait, rounded up so that waiting that
    /// long is always enough (9 min 10 s is "10 minutes"); a time already past is no wait at all.
    fn wait(state: &State, value: Value) -> Result<String, Error> {
        if absent(&value) {
            return Ok(String::new());
        }
        let seconds = match value.kind() {
            ValueKind::Number => seconds(&value)?,
            _ => (instant(&value)? - now(state)?).num_seconds(),
        };
        let (amount, unit) = largest_unit(rounded_up(seconds.max(0).unsigned_abs()));
        words(state, "amount", &[Value::from(amount), Value::from(unit)])
    }

    /// `{{ seconds | duration }}`: the largest whole unit, "15 minutes".
    fn duration(state: &State, value: Value) -> Result<String, Error> {
        if absent(&value) {
            return Ok(String::new());
        }
        let (amount, unit) = largest_unit(seconds(&value)?.max(0).unsigned_abs());
        words(state, "amount", &[Value::from(amount), Value::from(unit)])
    }

    /// `{{ t | datetime }}`: "2026-11-30 14:05 UTC".
    fn datetime(state: &State, value: Value) -> Result<String, Error> {
        if absent(&value) {
            return Ok(String::new());
        }
        let at = instant(&value)?;
        words(
            state,
            "datetime",
            &[
                Value::from(at.format("%Y-%m-%d").to_string()),
                Value::from(at.format("%H:%M").to_string()),
            ],
        )
    }

    /// `{{ t | date }}`: "2026-11-30".
    fn date(state: &State, value: Value) -> Result<String, Error> {
        if absent(&value) {
            return Ok(String::new());
        }
        let at = instant(&value)?;
        words(
            state,
            "date",
            &[Value::from(at.format("%Y-%m-%d").to_string())],
        )
    }

    /// A missing fact renders as nothing, as a missing variable does in any template (the start-up
    /// check renders every block with no facts at all).
    fn absent(value: &Value) -> bool {
        value.is_undefined() || value.is_none()
    }

    /// The largest whole unit that fits: 45 s is (45, second), 3 h 59 min is (3, hour).
    pub(super) fn largest_unit(seconds: u64) -> (u64, &'static str) {
        match seconds {
            0..=59 => (seconds, "second"),
            60..=3_599 => (seconds / 60, "minute"),
            3_600..=86_399 => (seconds / 3_600, "hour"),
            _ => (seconds / 86_400, "day"),
        }
    }

    /// Rounds up to a whole number of the unit it will be named in.
    pub(super) fn rounded_up(seconds: u64) -> u64 {
        match seconds {
            0..=59 => seconds,
            60..=3_599 => seconds.div_ceil(60) * 60,
            3_600..=86_399 => seconds.div_ceil(3_600) * 3_600,
            _ => seconds.div_ceil(86_400) * 86_400,
        }
    }

    fn words(state: &State, macro_name: &str, args: &[Value]) -> Result<String, Error> {
        let captured = state.env().get_template("time.j2")?.render_captured(())?;
        let text = captured.state().call_macro(macro_name, args)?;
        Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    fn now(state: &State) -> Result<DateTime<Utc>, Error> {
        let now = state.lookup("now").ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "no `now` in the render context to measure times from",
            )
        })?;
        instant(&now)
    }

    fn instant(value: &Value) -> Result<DateTime<Utc>, Error> {
        value
            .as_str()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("expected an RFC 3339 time, got {value:?}"),
                )
            })
    }

    /// Facts carry whole seconds; anything else is a mistake in the template or the facts.
    fn seconds(value: &Value) -> Result<i64, Error> {
        i64::try_from(value.clone()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("expected a whole number of seconds, got {value:?}"),
            )
        })
    }
}

fn verdict_file(verdict: Verdict) -> String {
    format!("verdicts/{}.j2", verdict.as_str())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The names of the built-in templates, for tools that copy them out.
pub fn builtin_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T14:05:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// `{{ value | filter }}` rendered at `now()`.
    fn filtered(filter: &str, value: serde_json::Value) -> String {
        let prompts = Prompts::builtin().unwrap();
        prompts
            .env
            .render_str(
                &format!("{{{{ value | {filter} }}}}"),
                prompts.context_at(&json!({ "value": value }), now()),
            )
            .unwrap()
    }

    fn from_now(offset: Duration) -> serde_json::Value {
        json!((now() + offset).to_rfc3339())
    }

    #[test]
    fn ago_says_how_long_ago_or_how_long_ahead() {
        assert_eq!(filtered("ago", from_now(-Duration::days(3))), "3 days ago");
        assert_eq!(filtered("ago", from_now(-Duration::days(1))), "1 day ago");
        assert_eq!(
            filtered("ago", from_now(-Duration::seconds(1))),
            "1 second ago"
        );
        // Whole units only, rounded down: 59 min 59 s is not yet an hour.
        assert_eq!(
            filtered("ago", from_now(-Duration::seconds(3_599))),
            "59 minutes ago"
        );
        assert_eq!(
            filtered("ago", from_now(-Duration::hours(2))),
            "2 hours ago"
        );
        assert_eq!(
            filtered("ago", from_now(Duration::minutes(5))),
            "in 5 minutes"
        );
        assert_eq!(filtered("ago", from_now(Duration::hours(1))), "in 1 hour");
        assert_eq!(filtered("ago", from_now(Duration::days(3))), "in 3 days");
    }

    #[test]
    fn wait_rounds_up_so_waiting_that_long_is_enough() {
        assert_eq!(filtered("wait", json!(9 * 60 + 10)), "10 minutes");
        assert_eq!(
            filtered("wait", from_now(Duration::seconds(9 * 60 + 10))),
            "10 minutes"
        );
        assert_eq!(filtered("wait", json!(15 * 60)), "15 minutes");
        assert_eq!(filtered("wait", json!(60)), "1 minute");
        assert_eq!(filtered("wait", json!(61)), "2 minutes");
        assert_eq!(filtered("wait", json!(1)), "1 second");
        assert_eq!(filtered("wait", json!(3_601)), "2 hours");
        assert_eq!(filtered("wait", json!(86_401)), "2 days");
        // A moment already past needs no waiting.
        assert_eq!(
            filtered("wait", from_now(-Duration::minutes(3))),
            "0 seconds"
        );
    }

    #[test]
    fn duration_names_the_largest_whole_unit() {
        assert_eq!(filtered("duration", json!(0)), "0 seconds");
        assert_eq!(filtered("duration", json!(45)), "45 seconds");
        assert_eq!(filtered("duration", json!(60)), "1 minute");
        assert_eq!(filtered("duration", json!(15 * 60)), "15 minutes");
        assert_eq!(filtered("duration", json!(90 * 60)), "1 hour");
        assert_eq!(filtered("duration", json!(25 * 3_600)), "1 day");
        assert_eq!(filtered("duration", json!(3 * 86_400)), "3 days");
    }

    #[test]
    fn datetime_and_date_are_shown_in_utc() {
        assert_eq!(
            filtered("datetime", json!("2026-11-30T14:05:59+01:00")),
            "2026-11-30 13:05 UTC"
        );
        assert_eq!(
            filtered("date", json!("2026-12-01T00:30:00+02:00")),
            "2026-11-30"
        );
    }

    #[test]
    fn a_time_filter_refuses_what_is_not_a_time() {
        let prompts = Prompts::builtin().unwrap();
        let context = prompts.context_at(&json!({ "value": "3 days" }), now());
        let err = prompts
            .env
            .render_str("{{ value | ago }}", context)
            .unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let err = prompts
            .env
            .render_str(
                "{{ value | ago }}",
                context! { value => "2026-11-30T14:05:00Z" },
            )
            .unwrap_err();
        assert!(err.to_string().contains("`now`"), "{err}");
    }

    #[test]
    fn a_fixed_now_makes_relative_times_repeatable() {
        let prompts = Prompts::builtin().unwrap().with_now(now());
        let facts = json!({
            "action": "resend_invite",
            "sent_at": (now() - Duration::minutes(2)).to_rfc3339(),
            "actor": "Ada",
            "reference": "RSD-1",
            "next_at": (now() + Duration::seconds(12 * 60 + 30)).to_rfc3339(),
        });
        assert_eq!(
            prompts.action_text("too_soon", &facts).unwrap(),
            "An invitation was already sent 2 minutes ago by Ada (ref RSD-1). \
             The next resend is allowed in 13 minutes (2026-11-30 14:17 UTC)."
        );
        // Findings are measured from the check's own moment, whatever the clock says.
        let detail = prompts
            .finding_detail(
                Outcome::Expired,
                &json!({ "expires_at": (now() - Duration::days(2)).to_rfc3339() }),
                now() + Duration::days(1),
            )
            .unwrap();
        assert_eq!(detail, "Its activation link expired 3 days ago.");
    }

    #[test]
    fn limits_name_what_they_count_by_action() {
        let prompts = Prompts::builtin().unwrap().with_now(now());
        let next_at = (now() + Duration::hours(5)).to_rfc3339();
        let codes = prompts
            .action_text(
                "member_daily_limit",
                &json!({ "action": "issue_activation_code", "limit": 3, "next_at": next_at }),
            )
            .unwrap();
        assert!(codes.contains("already got 3 activation codes"), "{codes}");
        assert!(
            codes.contains("allowed in 5 hours (2026-11-30 19:05 UTC)"),
            "{codes}"
        );
        let invitations = prompts
            .action_text(
                "member_daily_limit",
                &json!({ "action": "resend_invite", "limit": 2, "next_at": next_at }),
            )
            .unwrap();
        assert!(
            invitations.contains("already got 2 invitations"),
            "{invitations}"
        );
    }

    /// Translating the bot is editing copies of `prompts/`: a word changed in a copied template
    /// shows up in what the bot says, with no code involved.
    #[test]
    fn a_word_changed_in_a_copied_template_reaches_the_reply() {
        let dir = tempfile::tempdir().unwrap();
        copy_builtin(dir.path());
        let edit = |file: &str, from: &str, to: &str| {
            let path = dir.path().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains(from), "{file} has no {from:?}");
            std::fs::write(path, text.replacen(from, to, 1)).unwrap();
        };
        // One word in each kind of template: time words, a finding, an action, a verdict, a
        // field label, the email, the plain-text reply.
        edit("time.j2", "}} ago", "}} geleden");
        edit(
            "findings.j2",
            "The latest invitation was sent",
            "De laatste uitnodiging ging",
        );
        edit("actions.j2", "Already escalated as", "Al geëscaleerd als");
        edit(
            "verdicts/invite_expired.j2",
            "Invitation expired",
            "Uitnodiging verlopen",
        );
        edit("summary.j2", "Delivery", "Bezorging");
        edit(
            "email/invitation.j2",
            "You are invited to",
            "Je bent uitgenodigd voor",
        );
        edit("reply.txt.j2", "Next steps:", "Volgende stappen:");

        let prompts = Prompts::load(Some(dir.path())).unwrap().with_now(now());
        let sent = prompts
            .finding_detail(
                Outcome::LastSent,
                &json!({
                    "sent_at": (now() - Duration::days(3)).to_rfc3339(),
                    "expires_at": (now() - Duration::days(1)).to_rfc3339(),
                    "expired": true,
                }),
                now(),
            )
            .unwrap();
        assert!(
            sent.starts_with("De laatste uitnodiging ging 3 days geleden"),
            "{sent}"
        );
        let exists = prompts
            .action_text(
                "escalation_exists",
                &json!({ "action": "escalate", "reference": "ESC-1", "at": now().to_rfc3339(), "actor": "Ada" }),
            )
            .unwrap();
        assert!(exists.starts_with("Al geëscaleerd als ESC-1"), "{exists}");
        assert_eq!(
            prompts
                .verdict_title(Verdict::InviteExpired, &json!({}))
                .unwrap(),
            "Uitnodiging verlopen"
        );
        assert_eq!(prompts.field_name(Check::Delivery).unwrap(), "Bezorging");
        let (subject, _) = prompts
            .invitation_email(&json!({
                "workspace": "Acme", "role": "learner", "link": "https://x.example/a",
                "expires_at": now().to_rfc3339(),
            }))
            .unwrap();
        assert_eq!(subject, "Je bent uitgenodigd voor Acme");
        let reply = prompts
            .render(
                "reply.txt.j2",
                &json!({ "title": "t", "findings": [], "next_steps": "x", "actions": [] }),
            )
            .unwrap();
        assert!(reply.contains("Volgende stappen: x"), "{reply}");
        // The built-in templates are untouched by the copy.
        assert_eq!(
            Prompts::builtin()
                .unwrap()
                .field_name(Check::Delivery)
                .unwrap(),
            "Delivery"
        );
    }

    #[test]
    fn builtin_templates_load_and_are_complete() {
        Prompts::builtin().unwrap();
    }

    fn copy_builtin(dir: &Path) {
        for (name, text) in builtin_files() {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn a_missing_template_is_named() {
        let dir = tempfile::tempdir().unwrap();
        copy_builtin(dir.path());
        std::fs::remove_file(dir.path().join("verdicts/invite_sent.j2")).unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("verdicts/invite_sent.j2"), "{err}");
    }

    #[test]
    fn a_broken_template_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        copy_builtin(dir.path());
        std::fs::write(
            dir.path().join("verdicts/invite_expired.j2"),
            "{% block title %}Expired{% endblock %}\n\n{% block next_steps %}{{ oops( {% endblock %}\n",
        )
        .unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("verdicts/invite_expired.j2") && err.contains("line 3"),
            "{err}"
        );
    }

    #[test]
    fn a_template_without_a_block_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        copy_builtin(dir.path());
        std::fs::write(
            dir.path().join("verdicts/deactivated.j2"),
            "{% block title %}x{% endblock %}",
        )
        .unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("verdicts/deactivated.j2") && err.contains("next_steps"),
            "{err}"
        );
    }

    #[test]
    fn a_chat_template_without_a_macro_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        copy_builtin(dir.path());
        let chat = include_str!("../prompts/chat.j2").replace("macro forged(", "macro forgery(");
        std::fs::write(dir.path().join("chat.j2"), chat).unwrap();
        let err = Prompts::load(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("chat.j2") && err.contains("forged"), "{err}");
    }

    #[test]
    fn chat_words_keep_their_lines_and_show_times_to_the_minute() {
        let prompts = Prompts::builtin().unwrap();
        let text = prompts
            .chat_text(
                "activation_code",
                &serde_json::json!({
                    "email": "jane@acme.com",
                    "reference": "ACT-1",
                    "code": "K7P-2QX",
                    "expires_at": "2026-11-30T21:05:00Z",
                }),
            )
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "", "{text}");
        assert_eq!(
            lines[2],
            "Activation code: K7P-2QX (valid until 2026-11-30 21:05 UTC)"
        );
        assert!(
            lines[3].contains("Do not open the activation link yourself"),
            "{text}"
        );
    }
}
