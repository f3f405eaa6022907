//! Input meant to hurt: huge or pathological bodies and addresses, invisible characters, bytes
//! that are not text. Each gets a refusal with a reason, and the service goes on.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::{both_backends, fresh_database, Backend};
use crate::http_app::HttpApp;

both_backends! {
    async fn a_huge_pathological_address_is_refused_by_its_size(app) {
        let http = HttpApp::start(app, |c| {
            c.providers.mailgun = Some(toml::from_str("signing_key = \"k\"").unwrap());
        }).await;
        // 1 MB of trailing " .": each one used to cost a scan of the whole input.
        let body = json!({"email": format!("jo@learners.example{}", " .".repeat(512 * 1024)), "workspace": "acme", "code": "AAAA-BBBB-CC"});
        // The server answers 413 from the length alone and closes; a client still writing the
        // megabyte may see that close before the answer. Either way nothing of it was read.
        let sent = http
            .client
            .post(format!("{}/api/activate", http.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(response) => {
                assert_eq!(response.status().as_u16(), 413);
                let text = response.text().await.unwrap();
                assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"], "too_large");
            }
            Err(error) => assert!(!error.is_timeout(), "refused by size, not by waiting: {error}"),
        }

        // Within the route's body limit but far beyond any address: refused before clean-up.
        let body = json!({"email": format!("jo@learners.example{}", " .".repeat(1000)), "workspace": "acme", "code": "AAAA-BBBB-CC"});
        let reply = http.post("/api/activate", &[], body.to_string()).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body.contains("bytes long"), "{}", reply.body);

        // Each route has its own limit: a webhook batch may be far larger than an activation.
        let batch = vec![b' '; 64 * 1024];
        let reply = http.post("/webhooks/mailgun", &[], batch).await;
        assert_ne!(reply.status, 413, "{}", reply.body);
        let reply = http.post("/api/activate", &[], vec![b' '; invite_bot::http::activate::MAX_BODY_BYTES + 1]).await;
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!(http.get("/healthz").await.status, 200);
        http.stop().await;
    }

    async fn invisible_characters_are_refused_and_not_echoed(app) {
        let http = HttpApp::start(app, |_| {}).await;
        for invisible in ['\u{202E}', '\u{200B}', '\u{FEFF}', '\u{00AD}', '\u{2066}'] {
            let body = json!({"email": format!("jo{invisible}@learners.example"), "workspace": "acme", "code": "AAAA-BBBB-CC"});
            let reply = http.post("/api/activate", &[], body.to_string()).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            let message = serde_json::from_str::<Value>(&reply.body).unwrap()["message"].as_str().unwrap().to_owned();
            assert!(message.contains("invisible formatting character"), "{message}");
            assert!(!message.contains(invisible), "{message:?}");
        }
        http.stop().await;
    }
}

/// `invite-bot chat --format json` with `input` (bytes, not necessarily text) piped in.
fn chat(dir: &std::path::Path, url: &str, input: &[u8]) -> (Vec<Value>, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
        .args(["--database-url", url, "chat", "--format", "json"])
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
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    (lines, output.status.success())
}

async fn chat_skips_what_it_cannot_read(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // `chat` without --demo answers from a database that exists; create it as an operator would.
    let migrated =
        crate::helpers::run_binary(dir.path(), &[("DATABASE_URL", &database.url)], &["migrate"]);
    assert!(migrated.status.success(), "{migrated:?}");
    let mut input = b"/invite-check ja\xe2\x80\xaene@corp.example\n".to_vec();
    input.extend(b"/invite-check \xff\xfe@corp.example\n");
    input.extend(b"/invite-check jane@corp.example workspace:Ac\xe2\x80\xaeme\n");
    input.extend(b"/invite-check nobody@corp.example\n");
    let (replies, success) = chat(dir.path(), &database.url, &input);
    assert!(success, "{replies:?}");
    assert_eq!(replies.len(), 4, "{replies:?}");
    let text = |i: usize| replies[i]["text"].as_str().unwrap().to_owned();
    assert!(
        text(0).contains("U+202E") && !text(0).contains('\u{202E}'),
        "{}",
        text(0)
    );
    assert!(text(1).contains("not valid UTF-8"), "{}", text(1));
    // A workspace name is echoed back only as visible text.
    assert!(!text(2).contains('\u{202E}'), "{:?}", text(2));
    // Reading went on after the bad line: the last request got a real answer.
    assert_eq!(replies[3]["verdict"], "not_registered", "{}", replies[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_skips_what_it_cannot_read_sqlite() {
    chat_skips_what_it_cannot_read(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_skips_what_it_cannot_read_postgres() {
    chat_skips_what_it_cannot_read(Backend::Postgres).await;
}
