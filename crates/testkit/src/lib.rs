//! What the tests of more than one workspace member share, and the Discord benchmark too: a local
//! fake Discord, a fresh database per test and backend, and running a binary with no inherited
//! configuration. Never part of the bot itself.

pub mod database;
pub mod fake_discord;
pub mod process;
pub mod signing;
