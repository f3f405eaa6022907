//! Why a command failed: the message for the person and the exit code.

use crate::app::startup::StartupError;
use crate::error::{error_chain, EngineError, UserError};
use crate::fixture::FixtureError;
use crate::prompts::PromptError;
use crate::store::{SeedError, StoreError};

/// Exit code 2: bad input (address, workspace, fixture, config, a flag the command cannot honour).
const BAD_INPUT: u8 = 2;
/// Exit code 1: an operational failure (database unreachable, mail server down, internal error).
const OPERATIONAL: u8 = 1;
/// Exit code 3: the command ran and its answer is "no" (an action refused, a code rejected).
const REFUSED: u8 = 3;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    /// Empty when the answer was already printed as the command's output.
    pub message: String,
}

impl Failure {
    pub(super) fn bad_input(message: impl Into<String>) -> Self {
        Failure {
            code: BAD_INPUT,
            message: message.into(),
        }
    }

    pub(super) fn operational(message: impl Into<String>) -> Self {
        Failure {
            code: OPERATIONAL,
            message: message.into(),
        }
    }

    /// A store error of a command that works on the database directly.
    pub(super) fn from_store(error: StoreError) -> Self {
        let text = error_chain(&error);
        if error.is_unavailable() {
            store_failure(&error, text)
        } else {
            Failure::operational(text)
        }
    }

    /// The refusal itself was the output; nothing more is said on stderr.
    pub(super) fn refused() -> Self {
        Failure {
            code: REFUSED,
            message: String::new(),
        }
    }
}

impl From<UserError> for Failure {
    fn from(error: UserError) -> Self {
        Failure::bad_input(error.to_string())
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::User(user) => user.into(),
            EngineError::Action(failure) => Failure::operational(failure.to_string()),
            EngineError::Unavailable(source) => store_failure(&source, error_chain(&source)),
            EngineError::Internal(source) => Failure::operational(error_chain(source.as_ref())),
        }
    }
}

impl From<StartupError> for Failure {
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Prompts(_) | StartupError::Mailer(_) => {
                Failure::operational(error_chain(&error))
            }
            StartupError::Store { ref source, .. } => store_failure(source, error_chain(&error)),
        }
    }
}

/// A template that cannot be rendered is the operator's edited `prompts_dir`, not the input.
impl From<PromptError> for Failure {
    fn from(error: PromptError) -> Self {
        Failure::operational(error_chain(&error))
    }
}

/// A database that is missing, silent or unreachable is operational (exit 1); the message says
/// what the operator can do about it.
fn store_failure(source: &StoreError, text: String) -> Failure {
    Failure::operational(match source {
        StoreError::Missing(_) => format!(
            "{text}. Create it with `invite-bot migrate` (or load data into it with `invite-bot seed FILE`)"
        ),
        StoreError::NotAnswering(_) => format!("{text}; try again in a minute"),
        _ => text,
    })
}

impl From<FixtureError> for Failure {
    fn from(error: FixtureError) -> Self {
        Failure::bad_input(format!("the fixture was not loaded: {error}"))
    }
}

impl From<SeedError> for Failure {
    fn from(error: SeedError) -> Self {
        match error {
            SeedError::Fixture(fixture) => fixture.into(),
            SeedError::Store(ref store) if store.is_unavailable() => {
                store_failure(store, error_chain(&error))
            }
            SeedError::Store(_) => Failure::operational(error_chain(&error)),
        }
    }
}
