//! Two tiers of errors: what the person is told word for word, and what only the operator sees.
//!
//! A [`UserError`] is the person's mistake or a refusal and is shown as is. Anything else is internal:
//! the person sees "something went wrong (ref abc123)" and the full error chain goes to the log under
//! the same reference, so a support ticket can be matched to its log line.

use crate::domain::email::EmailError;
use crate::domain::workspace::{SlugError, WorkspaceSlug};
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
    /// What the person is told. Internal errors are logged here, once, under a fresh reference.
    pub fn public_message(&self) -> String {
        match self {
            EngineError::User(error) => error.to_string(),
            EngineError::Action(failure) => {
                tracing::warn!(failure = %failure, "action failed");
                failure.to_string()
            }
            EngineError::Unavailable(source) => {
                let reference = new_reference();
                tracing::error!(reference, error = %error_chain(source), "database unavailable");
                let state = if source.is_not_answering() {
                    "not answering"
                } else {
                    "not reachable"
                };
                format!(
                    "The workspace database is {state} right now; nothing was changed. \
                     Try again in a minute (ref {reference})."
                )
            }
            EngineError::Internal(source) => {
                let reference = new_reference();
                tracing::error!(reference, error = %error_chain(source.as_ref()), "internal error");
                format!("Something went wrong on our side; nothing was changed (ref {reference}).")
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
