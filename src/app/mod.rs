//! The application around the engine: its config, how it is built (one constructor used by `main`
//! and the tests), how it serves, and its telemetry and metrics.

pub mod config;
pub mod metrics;
pub mod serve;
pub mod startup;
pub mod telemetry;
