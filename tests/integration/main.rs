//! Integration tests: the engine, the store and the CLI, against SQLite and PostgreSQL.

mod helpers;
mod smtp;

mod actions;
mod activation_api;
mod chat_buttons;
mod cli;
mod console_chat;
mod discord;
mod domain_finding;
mod escalations;
mod fake_discord;
mod fixtures;
mod input;
mod plans;
mod suggestions;
mod verdicts;
