//! Integration tests of the benchmark: `invite-bot-bench` end to end on each backend, the Discord
//! scenario, and the query plans of a check. (Correctness only: never timing.)

mod helpers;

mod alerts;
mod bench;
mod discord;
mod hostile;
mod plans;
mod sync;
