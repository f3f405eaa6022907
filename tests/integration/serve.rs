//! `invite-bot serve` as an operator runs it: the listener comes up, takes a webhook, and stops
//! cleanly on SIGTERM; `invite-bot check` then shows the verdict the webhook brought.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::helpers::{both_backends, TestApp};
use crate::http_app::MEMBERS;

fn check_json(dir: &std::path::Path, url: &str, email: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", url, "check", email, "--format", "json"])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn serve_then_check(app: TestApp) {
    app.seed(MEMBERS).await;
    let url = app.database_url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[providers.postmark]\nwebhook_username = \"pm\"\nwebhook_password = \"pw\"\n",
    )
    .unwrap();
    assert_eq!(
        check_json(dir.path(), &url, "ada@school.example")[0]["verdict"],
        "invite_sent"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", &url, "serve", "--no-discord"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let bounce = json!({
        "RecordType": "Bounce", "ID": 7, "Type": "HardBounce", "MessageID": "msg-ada",
        "Email": "ada@school.example", "BouncedAt": "2026-11-26T04:00:00Z",
        "Details": "smtp;550 5.1.1 user unknown",
    });
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("pm:pw")
    );
    let reply = client
        .post(format!("{base}/webhooks/postmark"))
        .header("authorization", auth)
        .body(bounce.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");

    let result = &check_json(dir.path(), &url, "ada@school.example")[0];
    assert_eq!(result["verdict"], "invite_suppressed");
    let outcomes: Vec<&str> = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"hard_bounce"), "{outcomes:?}");
}

both_backends! {
    async fn serve_takes_webhooks_and_check_shows_them(app) {
        serve_then_check(app).await;
    }
}
