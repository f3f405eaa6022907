//! Integration tests: the engine, the store and the CLI, against SQLite and PostgreSQL.

mod helpers;

mod bench;
mod cli;
mod domain_finding;
mod fixtures;
mod input;
mod plans;
mod suggestions;
mod verdicts;
