//! What the process and the database cost: peak resident memory and size on disk.

use invite_bot::store::{Store, StoreResult};

/// The process's peak resident set size in MB (`VmHWM` in /proc/self/status); `None` off Linux.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm_kb(&status).map(|kb| kb as f64 / 1024.0)
}

/// Resets the peak so that it measures what follows (seeding a million members is not part of
/// answering checks). Linux since 4.0; elsewhere the peak simply includes the seeding.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The size of the database in MB: all of PostgreSQL's database, or SQLite's pages.
pub async fn database_size_mb(store: &Store) -> StoreResult<f64> {
    let bytes: i64 = match store {
        Store::Postgres(pool, _) => {
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(pool)
                .await?
        }
        Store::Sqlite(pool, _) => {
            sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .fetch_one(pool)
            .await?
        }
    };
    Ok(bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_peak_from_proc_status() {
        let status =
            "Name:\tinvite-bot\nVmPeak:\t  300000 kB\nVmHWM:\t   23456 kB\nVmRSS:\t 20000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(23456));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\n"), None);
    }

    #[test]
    fn the_peak_of_this_process_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            let peak = peak_rss_mb().expect("VmHWM on Linux");
            assert!(peak > 0.5, "{peak}");
        }
    }
}
