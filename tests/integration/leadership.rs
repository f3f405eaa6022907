//! Background work is led by one process at a time on a shared PostgreSQL database, and taken
//! over when the leader goes; on SQLite the one process always leads.

use std::time::Duration;

use invite_bot::store::Store;

use crate::helpers::both_backends;

/// Tries to lead until it works or `within` passes.
async fn lead_within(store: &Store, within: Duration) -> Option<invite_bot::store::Lead> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(lead) = store.try_lead("background").await.unwrap() {
            return Some(lead);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn one_process_leads_and_another_takes_over_when_it_goes(app) {
        let first = app.engine.store().clone();
        let second_actions = app.second_instance().await;
        let second = second_actions.engine().store();
        let mut lead = first.try_lead("background").await.unwrap().expect("the first process leads");
        assert!(lead.still_held().await);
        let postgres = matches!(first, Store::Postgres(..));
        if postgres {
            assert!(second.try_lead("background").await.unwrap().is_none(), "one leader at a time");
            // Other work is not this lead's.
            assert!(second.try_lead("other-job").await.unwrap().is_some());
        }

        // Given up: the other process takes over at its next try.
        lead.release().await;
        let second_lead = lead_within(second, Duration::from_secs(5)).await.expect("taken over");
        if postgres {
            assert!(first.try_lead("background").await.unwrap().is_none());
        }

        // A leader that vanishes without a word (its session dropped, as when its process is
        // killed) loses the lead as soon as the server sees the session end.
        drop(second_lead);
        let taken = lead_within(&first, Duration::from_secs(10)).await;
        assert!(taken.is_some(), "a dead leader's lead is taken over");
    }
}

/// Two `serve` processes on one PostgreSQL store: one leads the background work; killed with
/// SIGKILL (no chance to let go), its lead passes to the other within 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_by_the_other_serve_process() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;

    let Some(app) =
        crate::helpers::TestApp::spawn_with(crate::helpers::Backend::Postgres, |_| {}).await
    else {
        return;
    };
    let url = app.database_url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    // Each process's log lines, as they come, tagged with which process said them.
    let (lines, heard) = mpsc::channel::<(usize, String)>();
    let start = |which: usize| -> Child {
        let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
            .args(["--database-url", &url, "serve", "--no-discord"])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("INVITE_BOT_CONFIG")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines.send((which, line));
            }
        });
        child
    };
    let leader_within = |heard: &mpsc::Receiver<(usize, String)>, wait: Duration| {
        let deadline = std::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match heard.recv_timeout(left) {
                Ok((which, line)) if line.contains("leading background work") => {
                    return Some(which)
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };

    let mut first = start(0);
    assert_eq!(
        leader_within(&heard, Duration::from_secs(20)),
        Some(0),
        "the first process leads"
    );
    let mut second = start(1);
    // The second stands by: it does not lead while the first lives.
    assert_eq!(
        leader_within(&heard, Duration::from_secs(12)),
        None,
        "one leader at a time"
    );

    first.kill().unwrap();
    let _ = first.wait();
    let taken = leader_within(&heard, Duration::from_secs(30));
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let _ = second.wait();
    assert_eq!(taken, Some(1), "the other process took over within 30 s");
}
