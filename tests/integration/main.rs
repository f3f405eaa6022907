//! Integration tests: the engine, the store and the CLI, against SQLite and PostgreSQL.

mod helpers;
mod smtp;

mod actions;
mod activation_api;
mod appends;
mod bench;
mod bench_discord;
mod chat_buttons;
mod cli;
mod console_chat;
mod correlation;
mod discord;
mod domain_finding;
mod escalations;
mod fake_discord;
mod fixtures;
mod hostile_input;
mod http_app;
mod http_health;
mod input;
mod lookups;
mod plans;
mod pools;
mod scopes;
mod secrets_kept;
mod seed_conflicts;
mod serve;
mod suggestions;
mod verdicts;
mod webhooks_mailgun;
mod webhooks_postmark;
mod webhooks_sendgrid;
mod webhooks_ses;
