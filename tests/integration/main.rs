//! Integration tests: the engine, the store and the CLI, against SQLite and PostgreSQL.

mod helpers;
mod smtp;

mod actions;
mod activate_throttle;
mod activation_api;
mod appends;
mod chat_buttons;
mod cli;
mod console_chat;
mod correlation;
mod discord;
mod domain_finding;
mod escalations;
mod fixtures;
mod hostile_input;
mod http_app;
mod http_health;
mod input;
mod liveness_database;
mod liveness_http;
mod liveness_mail;
mod lookups;
mod pools;
mod retention;
mod scopes;
mod secrets_kept;
mod seed_conflicts;
mod serve;
mod stored_enums;
mod suggestions;
mod verdicts;
mod webhooks_mailgun;
mod webhooks_postmark;
mod webhooks_sendgrid;
mod webhooks_ses;
