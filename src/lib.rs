//! invite-bot: answers "my user never got the invitation" where support happens.
//!
//! The [`engine`] runs the help article's checklist against the workspace database and returns a
//! typed [`diagnosis::Diagnosis`]; the edges (CLI, and later chat) only translate requests and replies.

pub mod bench;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod diagnosis;
pub mod email;
pub mod engine;
pub mod error;
pub mod fixture;
pub mod humanize;
pub mod member;
pub mod prompts;
pub mod reply;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod workspace;

/// The demo fixture that ships with the binary, so a fresh clone has data to check.
pub const DEMO_FIXTURE: &str = include_str!("../fixtures/demo.toml");
