//! What the benchmarks that run the bot as a child process share: a scratch directory, the child
//! (killed however the benchmark ends), its log, `/proc` readings and the demo data.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};

/// A temporary directory removed on drop (tempfile is only a dev-dependency).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// `invite-bot-bench-<name>-<pid>-<nanos>` under the system's temporary directory.
    pub(crate) fn new(name: &str) -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "invite-bot-bench-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The child ended while a benchmark still needed it.
pub(crate) struct Exited {
    pub(crate) status: ExitStatus,
    pub(crate) log: String,
}

/// The bot as a child process, killed (by its own pid) when the benchmark ends, however it ends.
pub(crate) struct Bot {
    child: Child,
    log: PathBuf,
}

impl Bot {
    /// `child` writes its stderr to `log`.
    pub(crate) fn new(child: Child, log: PathBuf) -> Self {
        Bot { child, log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The whole log as it stands.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log's tail: that is what explains a failure.
    pub(crate) fn log(&self) -> String {
        tail(&self.log_text(), 4000)
    }

    /// An error, with the log's tail, when the child has already exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), Exited> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(Exited {
                status,
                log: self.log(),
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `bytes` of `text`, cut at a character boundary.
pub(crate) fn tail(text: &str, bytes: usize) -> String {
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// `VmRSS` or `VmHWM` of `pid`, in kB.
pub(crate) fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Seeds the demo fixture into `database_url` (migrating it first); the error is the whole chain.
pub(crate) async fn seed_demo(database_url: &str) -> Result<(), String> {
    let config = invite_bot::config::Config {
        database_url: database_url.to_owned(),
        ..invite_bot::config::Config::default()
    };
    let actions = invite_bot::app::startup::build_for_seeding(&config)
        .await
        .map_err(|e| invite_bot::error::error_chain(&e))?;
    let fixture = invite_bot::fixture::Fixture::parse(
        invite_bot::DEMO_FIXTURE,
        "fixtures/demo.toml",
        chrono::Utc::now(),
    )
    .map_err(|e| e.to_string())?;
    let engine = actions.engine();
    engine
        .seed(&fixture)
        .await
        .map_err(|e| invite_bot::error::error_chain(&e))?;
    engine.store().close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_reads_this_process() {
        assert!(proc_status_kb(std::process::id(), "VmRSS").unwrap() > 0);
        assert!(proc_status_kb(std::process::id(), "NoSuchField").is_none());
    }

    #[test]
    fn a_tail_never_splits_a_character() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ééé", 3), "é");
        assert_eq!(tail("ab", 10), "ab");
    }
}
