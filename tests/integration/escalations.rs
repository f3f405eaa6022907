//! Escalation to human support (a real HTTP webhook via wiremock), the audit trail, and secrets kept
//! out of logs and audit rows.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use invite_bot::actions::{ActionOutcome, RefusalReason};
use invite_bot::config::Config;
use invite_bot::store::{AuditFilter, WebhookState};
use secrecy::ExposeSecret;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Backend, CapturedLogs, TestApp};

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
email = "gone@learners.example"
role = "learner"
status = "deactivated"
"#;

async fn app_with_webhook(backend: Backend, server: &MockServer) -> Option<TestApp> {
    let url = format!("{}/escalations", server.uri());
    TestApp::spawn_with(backend, |c: &mut Config| {
        c.escalation.webhook_url = Some(url);
        c.escalation.webhook_secret = Some(SECRET.into());
        c.escalation.webhook_max_attempts = 3;
    })
    .await
}

/// A Standard Webhooks secret: `whsec_` + base64 of 32 bytes.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7t/BzD1tWRs=";

/// Checks the Standard Webhooks headers by hand (HMAC-SHA256 of `id.timestamp.body` with the
/// secret's key, base64) and with the `standardwebhooks` crate a desk would use; returns the id.
fn verify_signature(request: &wiremock::Request) -> String {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    assert_eq!(
        signature,
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        )
    );
    standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&request.body, &request.headers)
        .expect("a Standard Webhooks library accepts it");
    assert!(request.headers.get("x-invite-bot-signature").is_none());
    id
}

async fn escalation_is_delivered_signed_with_everything_known(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/escalations"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let Some(app) = app_with_webhook(backend, &server).await else {
        return;
    };
    app.seed(PEOPLE).await;
    let (email, acme) = (app.email("never@learners.example"), app.slug("acme"));
    // An action already taken, which the escalation must carry.
    assert!(app
        .actions
        .resend_invite(&app.operator(), &email, &acme, None)
        .await
        .unwrap()
        .is_done());

    let outcome = app
        .actions
        .escalate(&app.operator(), &email, &acme, Some("asked twice already"))
        .await
        .unwrap();
    let ActionOutcome::Done(done) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(done.reference.starts_with("ESC-"));
    assert!(
        done.summary.contains("The support desk received it"),
        "{}",
        done.summary
    );
    let escalation = done.escalation.unwrap();
    assert_eq!(escalation.diagnosis["verdict"], "invite_sent");
    assert_eq!(escalation.actions_taken.len(), 1);
    assert!(escalation.actions_taken[0].starts_with("resend_invite by local operator"));

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(verify_signature(&requests[0]), done.reference);
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["reference"], done.reference.as_str());
    assert_eq!(body["email"], "never@learners.example");
    assert_eq!(body["workspace"], "acme");
    assert_eq!(body["note"], "asked twice already");
    assert_eq!(body["diagnosis"]["verdict"], "invite_sent");
    assert!(body["diagnosis"]["findings"].as_array().unwrap().len() >= 3);
    assert_eq!(body["actions_taken"].as_array().unwrap().len(), 1);

    // Twice within the hour: linked to the open one, not duplicated.
    let again = app
        .actions
        .escalate(&app.operator(), &email, &acme, None)
        .await
        .unwrap();
    let ActionOutcome::Refused(refusal) = again else {
        panic!("{again:?}")
    };
    assert_eq!(refusal.reason, RefusalReason::AlreadyDone);
    assert!(
        refusal.message.contains(&done.reference),
        "{}",
        refusal.message
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

async fn a_failing_webhook_never_loses_the_escalation(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let Some(app) = app_with_webhook(backend, &server).await else {
        return;
    };
    app.seed(PEOPLE).await;
    let outcome = app
        .actions
        .escalate(
            &app.operator(),
            &app.email("gone@learners.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    let ActionOutcome::Done(done) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        done.summary.contains("did not answer (HTTP 503)")
            && done.summary.contains("will be retried"),
        "{}",
        done.summary
    );
    let attempts = server.received_requests().await.unwrap();
    assert_eq!(attempts.len(), 3, "retried with backoff, then gave up");
    // Every attempt is signed afresh under the same id, so the desk can tell a retry.
    for attempt in &attempts {
        assert_eq!(verify_signature(attempt), done.reference);
    }
    let row = app
        .engine
        .store()
        .escalation(&done.reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.webhook_state, WebhookState::Pending);
    assert_eq!(row.webhook_attempts, 3);

    // Not due yet; then due, delivered once.
    assert_eq!(app.actions.deliver_due_escalations().await.unwrap(), 0);
    let later = chrono::Utc::now() + chrono::Duration::minutes(10);
    assert_eq!(
        app.actions.deliver_escalations_due_at(later).await.unwrap(),
        1
    );
    assert_eq!(
        app.actions.deliver_escalations_due_at(later).await.unwrap(),
        0
    );
    assert_eq!(
        app.engine
            .store()
            .escalation(&done.reference)
            .await
            .unwrap()
            .unwrap()
            .webhook_state,
        WebhookState::Delivered
    );
    // The later round's delivery carries the same id as the first round's attempts.
    let attempts = server.received_requests().await.unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(verify_signature(&attempts[3]), done.reference);
}

async fn a_webhook_that_rejects_is_not_hammered(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let Some(app) = app_with_webhook(backend, &server).await else {
        return;
    };
    app.seed(PEOPLE).await;
    let outcome = app
        .actions
        .escalate(
            &app.operator(),
            &app.email("gone@learners.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    let ActionOutcome::Done(done) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(done.summary.contains("HTTP 401"), "{}", done.summary);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "a 4xx is not retried within the round"
    );
}

#[tokio::test]
async fn escalation_is_delivered_signed_on_sqlite() {
    escalation_is_delivered_signed_with_everything_known(Backend::Sqlite).await;
}

#[tokio::test]
async fn escalation_is_delivered_signed_on_postgres() {
    escalation_is_delivered_signed_with_everything_known(Backend::Postgres).await;
}

#[tokio::test]
async fn a_failing_webhook_never_loses_the_escalation_on_sqlite() {
    a_failing_webhook_never_loses_the_escalation(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failing_webhook_never_loses_the_escalation_on_postgres() {
    a_failing_webhook_never_loses_the_escalation(Backend::Postgres).await;
}

#[tokio::test]
async fn a_webhook_that_rejects_is_not_hammered_on_sqlite() {
    a_webhook_that_rejects_is_not_hammered(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_webhook_that_rejects_is_not_hammered_on_postgres() {
    a_webhook_that_rejects_is_not_hammered(Backend::Postgres).await;
}

#[tokio::test(flavor = "current_thread")]
async fn codes_tokens_and_addresses_stay_out_of_logs_and_audit() {
    let (logs, _guard) = CapturedLogs::start();

    let app = TestApp::spawn_with(Backend::Sqlite, |_| {}).await.unwrap();
    app.seed(PEOPLE).await;
    let (email, acme) = (app.email("never@learners.example"), app.slug("acme"));
    assert!(app
        .actions
        .resend_invite(&app.operator(), &email, &acme, None)
        .await
        .unwrap()
        .is_done());
    let token = app.smtp.received()[0].token();
    let ActionOutcome::Done(done) = app
        .actions
        .issue_activation_code(&app.operator(), &email, &acme, None)
        .await
        .unwrap()
    else {
        panic!("no code")
    };
    let code = done
        .activation_code
        .unwrap()
        .code
        .expose_secret()
        .to_owned();
    app.actions
        .redeem(&app.operator(), &email, &acme, "WRON-GCOD-EE")
        .await
        .unwrap();
    app.actions
        .redeem(&app.operator(), &email, &acme, &code)
        .await
        .unwrap();

    let text = logs.text();
    assert!(
        text.contains("invitation sent") && text.contains("activation code issued"),
        "logs were captured:\n{text}"
    );
    for secret in [
        token.as_str(),
        code.as_str(),
        &code.replace('-', ""),
        "WRONGCODEE",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the logs:\n{text}"
        );
    }
    for line in text.lines().filter(|l| l.contains(" INFO ")) {
        assert!(
            !line.contains("never@learners.example"),
            "unmasked address at info level: {line}"
        );
    }
    assert!(
        text.contains("n***@learners.example"),
        "addresses are logged masked"
    );

    let audit = app
        .actions
        .read_audit(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let audit_text = format!("{audit:?}");
    for secret in [token.as_str(), code.as_str(), &code.replace('-', "")] {
        assert!(
            !audit_text.contains(secret),
            "{secret} leaked into the audit log"
        );
    }
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("resend_invite", "done"),
            ("issue_activation_code", "done"),
            ("redeem", "rejected"),
            ("redeem", "activated")
        ]
    );
}
