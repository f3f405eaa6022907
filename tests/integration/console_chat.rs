//! The local chat (`invite-bot chat`): the same flow as Discord, driven by piped input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{fresh_database, Backend};

const FIXTURE: &str = crate::discord::FIXTURE;

/// Runs `invite-bot chat ARGS` in `dir` with `input` piped to it; returns (JSON lines, stderr).
fn chat(dir: &Path, url: &str, args: &[&str], input: &str) -> (Vec<Value>, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", url, "chat", "--format", "json"])
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .env_remove("DISCORD_TOKEN")
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}")))
        .collect();
    (
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

async fn seeded(backend: Backend) -> Option<(crate::helpers::FreshDatabase, tempfile::TempDir)> {
    let database = fresh_database(backend).await?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fixture.toml"), FIXTURE).unwrap();
    let seed = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", &database.url, "seed", "fixture.toml"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        seed.status.success(),
        "{}",
        String::from_utf8_lossy(&seed.stderr)
    );
    Some((database, dir))
}

fn button_actions(line: &Value) -> Vec<(&str, &str)> {
    line["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["label"].as_str().unwrap(), b["action"].as_str().unwrap()))
        .collect()
}

async fn a_piped_conversation(backend: Backend) {
    let Some((database, dir)) = seeded(backend).await else {
        return;
    };
    let input = "/invite-check never@corp.example\n\
                 \n\
                 /invite-check jane.deo@corp.example\n\
                 press 1\n\
                 my learner never@corp.example and bob@corp.example never got it\n\
                 press 9\n\
                 /invite-check not-an-address\n\
                 /invite-check\n";
    let (lines, stderr, ok) = chat(dir.path(), &database.url, &[], input);
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 7, "{lines:#?}");
    for line in &lines {
        for key in ["ephemeral", "verdict", "text", "buttons"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    assert_eq!(lines[0]["verdict"], "invite_never_sent");
    assert_eq!(lines[0]["ephemeral"], true);
    assert_eq!(
        button_actions(&lines[0]),
        [
            ("Resend invite", "resend_invite"),
            ("Issue activation code", "issue_activation_code"),
            ("Escalate to support", "escalate")
        ]
    );
    assert_eq!(lines[0]["buttons"][0]["n"], 1);
    assert_eq!(lines[1]["verdict"], "not_registered");
    assert_eq!(
        button_actions(&lines[1]),
        [("Did you mean jane.doe@corp.example?", "check")]
    );
    // press 1: the suggestion's own check.
    assert_eq!(lines[2]["verdict"], "invite_bounced");
    assert!(lines[2]["text"]
        .as_str()
        .unwrap()
        .contains("jane.doe@corp.example"));
    // A plain message: check buttons, no diagnosis.
    assert_eq!(lines[3]["verdict"], Value::Null);
    assert_eq!(
        button_actions(&lines[3]),
        [
            ("Check never@corp.example", "check"),
            ("Check bob@corp.example", "check")
        ]
    );
    assert!(lines[4]["text"].as_str().unwrap().contains("no button 9"));
    assert!(lines[5]["text"]
        .as_str()
        .unwrap()
        .contains("not a valid email address"));
    assert!(lines[6]["text"].as_str().unwrap().contains("Usage"));
}

async fn text_mode_numbers_the_buttons(backend: Backend) {
    let Some((database, dir)) = seeded(backend).await else {
        return;
    };
    let output = {
        let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
            .args(["--database-url", &database.url, "chat"])
            .current_dir(dir.path())
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(
                b"/invite-check never@corp.example\nquit\n/invite-check active@corp.example\n",
            )
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        text.contains("[1] Resend invite  [2] Issue activation code  [3] Escalate to support"),
        "{text}"
    );
    assert!(
        !text.contains("active@corp.example"),
        "nothing is read after quit: {text}"
    );
}

async fn permissions_come_from_the_grants(backend: Backend) {
    let Some((database, dir)) = seeded(backend).await else {
        return;
    };
    std::fs::write(
        dir.path().join("config.toml"),
        "[[permissions.grant]]\nroles = [\"7000\"]\nallow = [\"check\"]\n",
    )
    .unwrap();
    let check = "/invite-check never@corp.example\npress 1\n";
    let (lines, _, _) = chat(dir.path(), &database.url, &["--user", "42"], check);
    assert!(
        lines[0]["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("permission"),
        "{lines:#?}"
    );
    assert_eq!(lines[0]["verdict"], Value::Null);
    // A support agent may check but not resend.
    let (lines, _, _) = chat(
        dir.path(),
        &database.url,
        &["--user", "42", "--role", "7000"],
        check,
    );
    assert_eq!(lines[0]["verdict"], "invite_never_sent");
    // Resend is not even offered to them (issue 11 #19); the press still re-authorizes.
    let actions: Vec<&str> = lines[0]["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].as_str().unwrap())
        .collect();
    assert!(!actions.contains(&"resend_invite"), "{lines:#?}");
    // The local operator may do everything; the email goes to the file outbox.
    let (lines, _, _) = chat(dir.path(), &database.url, &[], check);
    assert_eq!(lines[0]["verdict"], "invite_never_sent");
    assert_eq!(lines[1]["ephemeral"], true);
    assert!(
        lines[1]["finished"].as_str().unwrap().contains("done by"),
        "{lines:#?}"
    );
    let outbox: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .collect();
    assert_eq!(outbox.len(), 1);
}

macro_rules! on_both {
    ($($name:ident),*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

on_both!(
    a_piped_conversation,
    text_mode_numbers_the_buttons,
    permissions_come_from_the_grants
);
