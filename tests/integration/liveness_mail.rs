//! A mail server that stops answering: the send is given up at its deadline, the invitation stays
//! queued (never shown as sent), and `serve` still stops on SIGTERM with such a send in flight.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use invite_bot::actions::Actions;
use invite_bot::diagnosis::Verdict;
use invite_bot::engine::{CheckSettings, Engine};
use invite_bot::error::{ActionFailure, EngineError};
use invite_bot::mail::Mailer;
use invite_bot::prompts::Prompts;
use invite_bot::store::{ConnectOptions, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::helpers::{both_backends, TestApp};

/// Generous: only there so a hang fails the test instead of holding CI.
const GUARD: Duration = Duration::from_secs(30);

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "never@learners.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "second@learners.example"
role = "learner"
status = "invited"
"#;

/// Speaks SMTP up to DATA, takes the message, then never answers again (and never hangs up).
pub struct SilentSmtp {
    pub url: String,
    connections: Arc<AtomicUsize>,
    messages: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentSmtp {
    pub async fn start() -> SilentSmtp {
        Self::answering_after(None).await
    }

    /// Takes the message, waits `delay`, then accepts it with a 250: a slow server, not a dead one.
    pub async fn slow(delay: Duration) -> SilentSmtp {
        Self::answering_after(Some(delay)).await
    }

    async fn answering_after(delay: Option<Duration>) -> SilentSmtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let messages = Arc::new(AtomicUsize::new(0));
        let (seen, taken) = (connections.clone(), messages.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(converse(stream, taken.clone(), delay));
            }
        });
        SilentSmtp {
            url,
            connections,
            messages,
            task,
        }
    }

    /// Connections the server accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Messages received in full (the final "." included) and left unanswered.
    pub fn messages(&self) -> usize {
        self.messages.load(Ordering::SeqCst)
    }
}

impl Drop for SilentSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn converse(
    stream: tokio::net::TcpStream,
    messages: Arc<AtomicUsize>,
    answer_after: Option<Duration>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    if write.write_all(b"220 silent.test ESMTP\r\n").await.is_err() {
        return;
    }
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line == "." {
                messages.fetch_add(1, Ordering::SeqCst);
                if let Some(delay) = answer_after {
                    tokio::time::sleep(delay).await;
                    in_data = false;
                    if write.write_all(b"250 2.0.0 queued\r\n").await.is_err() {
                        return;
                    }
                    continue;
                }
                // Silence from here on: read whatever comes, answer nothing, keep the line open.
                while let Ok(Some(_)) = lines.next_line().await {}
                return;
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 silent.test\r\n",
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "QUIT" => return,
            _ => b"250 OK\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// An engine on `app`'s database whose mail goes to `url`, each send given `deadline`.
async fn engine_with_mail(app: &TestApp, url: &str, deadline: Duration) -> Actions {
    let store = Store::connect(app.database_url(), &ConnectOptions::default())
        .await
        .unwrap();
    let mut actions = invite_bot::actions::ActionSettings::from(&app.config);
    actions.smtp_retry_base = Duration::from_millis(10);
    Actions::new(
        Engine::new(
            store,
            Arc::new(Prompts::builtin().unwrap()),
            CheckSettings::from(&app.config),
        ),
        actions,
        Mailer::smtp_url(url, deadline).unwrap(),
    )
}

async fn audit_reasons(app: &TestApp) -> Vec<(String, Option<String>)> {
    let entries = app
        .actions
        .read_audit(&invite_bot::store::AuditFilter {
            email_key: None,
            workspace: None,
            since: None,
            limit: 100,
        })
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|e| (e.outcome.to_string(), e.reason.map(|r| r.to_string())))
        .collect()
}

/// Makes every queued email due now (its retry was scheduled for later).
async fn make_queue_due(app: &TestApp) {
    let due = chrono::Utc::now() - chrono::Duration::minutes(1);
    let sql = "UPDATE outbox SET next_attempt_at = $1 WHERE state = 'pending'";
    let updated = match app.engine.store() {
        Store::Sqlite(pool, _) => sqlx::query(sql)
            .bind(due)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
        Store::Postgres(pool, _) => sqlx::query(sql)
            .bind(due)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(updated, 1);
}

/// A send lease of one second, renewed every 200 ms.
fn short_lease(config: &mut invite_bot::config::Config) {
    config.smtp.send_lease_ms = 1_000;
    config.smtp.send_lease_renew_ms = 200;
}

both_backends! {
    // A send that lasts longer than its lease (the server takes three seconds to answer the
    // message) keeps renewing it: another process's retry rounds meanwhile never take the row
    // over, and exactly one email goes out.
    async fn a_slow_send_keeps_its_lease_and_is_never_sent_twice(app) with short_lease; {
        app.seed(PEOPLE).await;
        let slow = SilentSmtp::slow(Duration::from_secs(3)).await;
        let engine = engine_with_mail(&app, &slow.url, Duration::from_secs(20)).await;
        // The other process's mail goes to the harness's server, which accepts at once.
        let other = app.second_instance().await;
        let (operator, email, acme) = (app.operator(), app.email("never@learners.example"), app.slug("acme"));
        let resend = async {
            tokio::time::timeout(GUARD, engine.resend_invite(&operator, &email, &acme, None))
                .await
                .expect("the slow send finishes")
        };
        let retries = async {
            // Retry rounds every 250 ms while the send is in flight, well past the lease.
            let mut taken = 0;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                taken += other.send_due_invitations().await.unwrap();
            }
            taken
        };
        let (outcome, taken) = tokio::join!(resend, retries);
        let outcome = outcome.unwrap();
        assert!(matches!(outcome, invite_bot::actions::ActionOutcome::Done(_)), "{outcome:?}");
        assert_eq!(taken, 0, "another process took over a send whose sender was alive");
        assert!(app.smtp.received().is_empty());
        assert_eq!((slow.connections(), slow.messages()), (1, 1));
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteSent);
    }

    async fn a_server_silent_after_data_is_given_up_and_the_invitation_stays_queued(app) {
        app.seed(PEOPLE).await;
        let silent = SilentSmtp::start().await;
        let engine = engine_with_mail(&app, &silent.url, Duration::from_secs(2)).await;
        let (operator, email, acme) = (app.operator(), app.email("never@learners.example"), app.slug("acme"));
        let resend = engine.resend_invite(&operator, &email, &acme, None);
        let error = tokio::time::timeout(GUARD, resend)
            .await
            .expect("the resend gives up instead of hanging")
            .unwrap_err();
        assert!(
            matches!(error, EngineError::Action(ActionFailure::MailUnanswered { seconds: 2, .. })),
            "{error:?}"
        );
        let message = error.public_message(app.engine.prompts());
        assert!(
            message.contains("stopped answering") && message.contains("queued and will be retried"),
            "{message}"
        );
        // It went silent after taking the message, and was not asked again at once.
        assert_eq!((silent.connections(), silent.messages()), (1, 1));
        // Not shown as sent, and the audit says why it waits.
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteNeverSent);
        let reasons = audit_reasons(&app).await;
        assert!(reasons.contains(&("deferred".into(), Some("smtp_timeout".into()))), "{reasons:?}");

        // Still queued: once a server answers, the background retry sends it.
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 1);
        assert_eq!(app.smtp.received().len(), 1);
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteSent);
    }

    async fn a_retry_round_stops_at_the_first_silent_send(app) {
        app.seed(PEOPLE).await;
        // Two invitations queued behind a server that is down.
        let down = engine_with_mail(&app, &crate::smtp::closed_smtp_url(), Duration::from_secs(5)).await;
        for email in ["never@learners.example", "second@learners.example"] {
            let error = down
                .resend_invite(&app.operator(), &app.email(email), &app.slug("acme"), None)
                .await
                .unwrap_err();
            assert!(matches!(error, EngineError::Action(ActionFailure::MailQueued { .. })), "{error:?}");
        }
        // The retry meets a silent server: one wait, not one per queued email.
        let silent = SilentSmtp::start().await;
        let engine = engine_with_mail(&app, &silent.url, Duration::from_secs(2)).await;
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        let sent = tokio::time::timeout(GUARD, engine.send_invitations_due_at(later))
            .await
            .expect("the round ends instead of hanging")
            .unwrap();
        assert_eq!(sent, 0);
        assert_eq!(silent.connections(), 1);
        // Both still go out once the server answers.
        let later = later + chrono::Duration::hours(2);
        assert_eq!(app.actions.send_invitations_due_at(later).await.unwrap(), 2);
        assert_eq!(app.smtp.received().len(), 2);
    }

    async fn serve_stops_on_sigterm_while_a_send_hangs(app) {
        app.seed(PEOPLE).await;
        let silent = SilentSmtp::start().await;
        // Queue one invitation (its first try meets the silent server), and make its retry due.
        let engine = engine_with_mail(&app, &silent.url, Duration::from_secs(2)).await;
        let (operator, email, acme) = (app.operator(), app.email("never@learners.example"), app.slug("acme"));
        let queued = tokio::time::timeout(GUARD, engine.resend_invite(&operator, &email, &acme, None))
            .await
            .expect("the resend gives up instead of hanging")
            .unwrap_err();
        assert!(matches!(queued, EngineError::Action(ActionFailure::MailUnanswered { .. })), "{queued:?}");
        make_queue_due(&app).await;

        // `serve` retries it at start against the same server, with a send deadline far away.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[http]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_seconds = 1\n\n[smtp]\nurl = \"{}\"\nsend_timeout_seconds = 600\n",
                silent.url
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_invite-bot"))
            .args(["--database-url", app.database_url(), "serve", "--no-discord"])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("INVITE_BOT_CONFIG")
            .env_remove("SMTP_URL")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Read on its own thread to the end, so serve never writes into a closed pipe.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (listening, heard) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut listening = Some(listening);
            for line in stderr.lines().map_while(Result::ok) {
                if line.starts_with("listening on ") {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                }
            }
        });
        tokio::time::timeout(GUARD, heard)
            .await
            .expect("serve listens")
            .expect("serve exited before listening");
        // The retry is in flight: the server has taken the message and gone silent.
        let in_flight = async {
            while silent.messages() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(GUARD, in_flight).await.expect("serve retries the queued invitation");

        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let exited = tokio::task::spawn_blocking(move || child.wait());
        let status = match tokio::time::timeout(GUARD, exited).await {
            Ok(status) => status.unwrap().unwrap(),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("serve is still running after SIGTERM with a send in flight");
            }
        };
        assert!(status.success(), "serve exits 0 on SIGTERM: {status:?}");
        // Cut off mid-send: never shown as sent.
        assert_eq!(app.verdict("never@learners.example", "acme").await, Verdict::InviteNeverSent);
    }
}
