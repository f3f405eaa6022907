//! Two tiers of errors: what the person is told word for word, and what only the operator sees.
//!
//! A [`UserError`] is the person's mistake or a refusal and is shown as is, in the words of
//! `prompts/errors.j2` (the `Display` texts are for logs and the command line). Anything else is
//! internal: the person sees "something went wrong (ref abc123)" and the full error chain goes to the
//! log under the same reference, so a support ticket can be matched to its log line.

use serde_json::json;

use crate::domain::email::EmailError;
use crate::domain::workspace::{SlugError, WorkspaceSlug};
use crate::prompts::Prompts;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("That is not a valid email address: {0}.")]
    InvalidEmail(#[from] EmailError),
    #[error("That is not a valid workspace: {0}.")]
    InvalidWorkspace(#[from] SlugError),
    #[error("There is no workspace `{0}`.")]
    UnknownWorkspace(WorkspaceSlug),
    #[error("You do not have the `{permission}` permission{}; nothing was done.", .workspace.as_ref().map(|w| format!(" in {w}")).unwrap_or_default())]
    Forbidden {
        permission: &'static str,
        workspace: Option<WorkspaceSlug>,
    },
}

/// An action that ran but could not finish, told to the person who started it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionFailure {
    #[error("The mail server refused the invitation ({detail}); nothing was sent. Check the address, or issue an activation code instead (ref {reference}).")]
    MailRejected { reference: String, detail: String },
    #[error("The mail server is not accepting mail right now ({detail}). The invitation is queued and will be retried; it has not been sent yet (ref {reference}).")]
    MailQueued { reference: String, detail: String },
    #[error("The mail server stopped answering (nothing for {seconds} s), so the invitation may not have gone out. It is queued and will be retried (ref {reference}).")]
    MailUnanswered { reference: String, seconds: u64 },
    #[error("Email sending is not configured, so nothing was sent (ref {reference}).")]
    MailNotConfigured { reference: String },
    /// The mail server accepted the invitation but the database did not record it. `message` is
    /// the words from `prompts/actions.j2` (`resend_sent_unrecorded`).
    #[error("{message}")]
    MailSentUnrecorded { reference: String, message: String },
    /// The product gave no answer to tell by on any try (`detail` says what the last one got): it
    /// may have been done. The same button asks again with the same key, so pressing is safe.
    #[error("The product did not answer ({detail}), so the {action} may have been done. Pressing the button again is safe: the product does it only once (ref {reference}).")]
    ProductUnknown {
        reference: String,
        action: &'static str,
        detail: String,
    },
    /// The product refused (HTTP `status`), with its own words if it gave any (cleaned, short).
    #[error("The product refused the {action} (HTTP {status}{}); nothing was done (ref {reference}).", .message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    ProductRefused {
        reference: String,
        action: &'static str,
        status: u16,
        message: Option<String>,
    },
    /// The product answered with something that is not its contract: an operational error.
    #[error("The product's answer to the {action} could not be read; it may have been done. The operator's log has the details (ref {reference}).")]
    ProductGarbled {
        reference: String,
        action: &'static str,
    },
}

impl UserError {
    /// The macro of `errors.j2` that says it, and its facts.
    fn words(&self) -> (&'static str, serde_json::Value) {
        match self {
            UserError::InvalidEmail(error) => ("invalid_email", error.facts()),
            UserError::InvalidWorkspace(error) => ("invalid_workspace", error.facts()),
            UserError::UnknownWorkspace(slug) => {
                ("unknown_workspace", json!({ "workspace": slug.as_str() }))
            }
            UserError::Forbidden {
                permission,
                workspace,
            } => (
                "forbidden",
                json!({ "permission": permission, "workspace": workspace.as_ref().map(WorkspaceSlug::as_str) }),
            ),
        }
    }

    /// What the person is told, in the words of `errors.j2`.
    pub fn public_message(&self, prompts: &Prompts) -> String {
        let (name, facts) = self.words();
        say(prompts, name, &facts, || self.to_string())
    }
}

impl ActionFailure {
    /// The macro of `errors.j2` that says it, and its facts; `None` when the failure carries its
    /// words already.
    fn words(&self) -> Option<(&'static str, serde_json::Value)> {
        match self {
            ActionFailure::MailRejected { reference, detail } => Some((
                "mail_rejected",
                json!({ "reference": reference, "detail": detail }),
            )),
            ActionFailure::MailQueued { reference, detail } => Some((
                "mail_queued",
                json!({ "reference": reference, "detail": detail }),
            )),
            ActionFailure::MailUnanswered { reference, seconds } => Some((
                "mail_unanswered",
                json!({ "reference": reference, "seconds": seconds }),
            )),
            ActionFailure::MailNotConfigured { reference } => {
                Some(("mail_not_configured", json!({ "reference": reference })))
            }
            ActionFailure::MailSentUnrecorded { .. } => None,
            ActionFailure::ProductUnknown {
                reference,
                action,
                detail,
            } => Some((
                "product_unknown",
                json!({ "reference": reference, "action": action, "detail": detail }),
            )),
            ActionFailure::ProductRefused {
                reference,
                action,
                status,
                message,
            } => Some((
                "product_refused",
                json!({ "reference": reference, "action": action, "status": status, "message": message }),
            )),
            ActionFailure::ProductGarbled { reference, action } => Some((
                "product_garbled",
                json!({ "reference": reference, "action": action }),
            )),
        }
    }
}

/// Macro `name` of `errors.j2`; when it cannot be rendered (an edited copy gone wrong), the
/// operator's text, so the person is still told something and the log says why.
fn say(
    prompts: &Prompts,
    name: &str,
    facts: &serde_json::Value,
    fallback: impl FnOnce() -> String,
) -> String {
    prompts.error_text(name, facts).unwrap_or_else(|error| {
        tracing::error!(error = %error, "the words of an error cannot be rendered");
        fallback()
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Action(#[from] ActionFailure),
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            EngineError::Unavailable(error)
        } else {
            EngineError::Internal(Box::new(error))
        }
    }
}

impl From<crate::prompts::PromptError> for EngineError {
    fn from(error: crate::prompts::PromptError) -> Self {
        EngineError::Internal(Box::new(error))
    }
}

impl EngineError {
    /// What the person is told, in the words of `errors.j2`. Internal errors are logged here,
    /// once, under a fresh reference.
    pub fn public_message(&self, prompts: &Prompts) -> String {
        match self {
            EngineError::User(error) => error.public_message(prompts),
            EngineError::Action(failure) => {
                tracing::warn!(failure = %failure, "action failed");
                match failure.words() {
                    Some((name, facts)) => say(prompts, name, &facts, || failure.to_string()),
                    None => failure.to_string(),
                }
            }
            EngineError::Unavailable(source) => {
                let reference = new_reference();
                tracing::error!(reference, error = %error_chain(source), "database unavailable");
                let state = if source.is_not_answering() {
                    "not_answering"
                } else {
                    "not_reachable"
                };
                let facts = json!({ "state": state, "reference": reference });
                say(prompts, "unavailable", &facts, || {
                    format!("database unavailable (ref {reference})")
                })
            }
            EngineError::Internal(source) => {
                let reference = new_reference();
                tracing::error!(reference, error = %error_chain(source.as_ref()), "internal error");
                say(
                    prompts,
                    "internal",
                    &json!({ "reference": reference }),
                    || format!("internal error (ref {reference})"),
                )
            }
        }
    }
}

/// A short reference that ties what a person saw to the operator's log line. Lower case, so it
/// is not taken for an action's reference (`RSD-...`).
pub fn new_reference() -> String {
    crate::random::symbols(6).to_ascii_lowercase()
}

/// `outer: inner: innermost`, for one log line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
