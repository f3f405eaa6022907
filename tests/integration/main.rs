//! Integration tests: the engine, the store and the CLI, against SQLite and PostgreSQL.

mod helpers;

mod cli;
mod domain_finding;
mod fixtures;
mod input;
mod plans;
mod suggestions;
mod verdicts;
mod discord;
mod fake_discord;
mod console_chat;
