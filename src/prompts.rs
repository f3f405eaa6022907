//! The words: templates in `prompts/`, rendered with minijinja.
//!
//! The templates are compiled into the binary; `prompts_dir` in the config swaps in a directory of
//! edited copies. Either way every template is loaded and checked at start-up, so a missing file or a
//! syntax error stops the bot with the file name and line rather than surfacing mid-conversation.

use std::path::{Path, PathBuf};

use minijinja::{Environment, Value};
use serde::Serialize;

use crate::diagnosis::{Outcome, Verdict};

/// Every template the bot uses, with its built-in text.
const BUILTIN: &[(&str, &str)] = &[
    ("findings.j2", include_str!("../prompts/findings.j2")),
    ("reply.txt.j2", include_str!("../prompts/reply.txt.j2")),
    ("actions.j2", include_str!("../prompts/actions.j2")),
    ("cli.j2", include_str!("../prompts/cli.j2")),
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
];

/// The macros `cli.j2` must define.
const CLI_MACROS: &[&str] = &[
    "seeded",
    "migrated",
    "retried",
    "listening",
    "chat_banner",
    "demo_banner",
    "action_refused",
    "activation_code",
    "redeem_activated",
    "redeem_rejected",
    "redeem_throttled",
    "audit_entry",
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
        for (name, text) in sources {
            env.add_template_owned(name, text)?;
        }
        let prompts = Prompts { env };
        prompts.check_complete()?;
        Ok(prompts)
    }

    /// Every verdict has its blocks and every finding outcome its macro.
    fn check_complete(&self) -> Result<(), PromptError> {
        let findings = self.env.get_template("findings.j2")?.render_captured(())?;
        for outcome in Outcome::ALL {
            if findings.state().lookup(outcome.as_str()).is_none() {
                return Err(PromptError::Incomplete {
                    file: "findings.j2".into(),
                    message: format!("no macro `{}` for that finding", outcome.as_str()),
                });
            }
        }
        let actions = self.env.get_template("actions.j2")?.render_captured(())?;
        for name in ACTION_MACROS {
            if actions.state().lookup(name).is_none() {
                return Err(PromptError::Incomplete {
                    file: "actions.j2".into(),
                    message: format!("no macro `{name}`"),
                });
            }
        }
        let cli = self.env.get_template("cli.j2")?.render_captured(())?;
        for name in CLI_MACROS {
            if cli.state().lookup(name).is_none() {
                return Err(PromptError::Incomplete {
                    file: "cli.j2".into(),
                    message: format!("no macro `{name}`"),
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

    /// The sentence for one finding.
    pub fn finding_detail(
        &self,
        outcome: Outcome,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        self.macro_text("findings.j2", outcome.as_str(), facts)
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
        let captured = self.env.get_template("cli.j2")?.render_captured(())?;
        let text = captured
            .state()
            .call_macro(name, &[Value::from_serialize(facts)])?;
        Ok(text.trim().to_owned())
    }

    fn macro_text(
        &self,
        file: &str,
        name: &str,
        facts: &serde_json::Value,
    ) -> Result<String, PromptError> {
        let captured = self.env.get_template(file)?.render_captured(())?;
        let text = captured
            .state()
            .call_macro(name, &[Value::from_serialize(facts)])?;
        Ok(collapse_whitespace(&text))
    }

    /// The invitation email: (subject, body).
    pub fn invitation_email(
        &self,
        context: &serde_json::Value,
    ) -> Result<(String, String), PromptError> {
        let mut captured = self
            .env
            .get_template("email/invitation.j2")?
            .render_captured(Value::from_serialize(context))?;
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
            .render_captured(Value::from_serialize(context))?;
        Ok(captured.with_state_mut(|state| state.render_block(block))?)
    }

    /// Renders a whole template by name (e.g. `reply.txt.j2`).
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String, PromptError> {
        let template = self.env.get_template(name)?;
        Ok(template.render(Value::from_serialize(context))?)
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
}
