//! Tracing set-up. Logs go to stderr so command output on stdout stays machine-readable.

use tracing_subscriber::EnvFilter;

/// `RUST_LOG` wins; otherwise `default_level` for invite-bot and warnings for dependencies.
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,invite_bot={default_level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
