//! Running a workspace binary the way a test needs it: isolated from the machine's configuration.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `exe` in `dir` (so no stray config.toml is read), with no inherited configuration, plus
/// `env`.
pub fn run_binary(exe: &Path, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(exe);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .env_remove("INVITE_BOT_PROMPTS_DIR")
        .env_remove("SMTP_URL")
        .env("RUST_LOG", "off");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
