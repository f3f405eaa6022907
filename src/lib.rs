//! invite-bot: answers "my user never got the invitation" where support happens.
//!
//! The [`engine`] runs the help article's checklist against the workspace database and returns a
//! typed [`diagnosis::Diagnosis`]; the edges (CLI, and later chat) only translate requests and replies.

pub mod actions;
pub mod alerts;
pub mod app;
pub mod chat;
pub mod cli;
pub mod config;
pub mod console;
pub mod diagnosis;
pub mod discord;
pub mod domain;
pub mod drain;
pub mod engine;
pub mod error;
pub mod fixture;
/// The parsers run on untrusted bytes with their invariants: for `fuzz/` and the property tests.
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ingest;
pub mod mail;
pub mod metrics;
pub mod prompts;
pub mod providers;
pub mod random;
pub mod report;
pub mod source;
pub mod urls;

pub mod store;
pub mod summary;

/// The demo fixture that ships with the binary, so a fresh clone has data to check.
pub const DEMO_FIXTURE: &str = include_str!("../fixtures/demo.toml");
