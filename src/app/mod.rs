//! The application around the engine: how it is built (one constructor used by `main` and the
//! tests), how it serves, and its telemetry.

// Config and metrics live below the engine (everything reads them); these paths stay for callers.
pub use crate::{config, metrics};
pub mod serve;
pub mod startup;
pub mod telemetry;
