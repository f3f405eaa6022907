//! Secrets in URLs stay out of what people and logs see: the escalation webhook's token, the
//! database password.

use invite_bot::actions::ActionOutcome;
use invite_bot::config::Config;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{both_backends, postgres_admin_url, run_binary, stderr, Backend, TestApp};

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "gone@learners.example"
role = "learner"
status = "deactivated"
"#;

const SECRETS: [&str; 3] = ["PA55W0RD", "T0K3N", "S3CR3T"];

fn assert_secret_free(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} holds {secret}: {text}");
    }
}

async fn app_with_webhook(backend: Backend, url: String) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, |c: &mut Config| {
        c.escalation.webhook_url = Some(url);
        c.escalation.webhook_secret = Some(crate::escalations::SECRET.into());
        c.escalation.webhook_max_attempts = 2;
    })
    .await?;
    app.seed(PEOPLE).await;
    Some(app)
}

async fn escalate(app: &TestApp) -> invite_bot::actions::ActionDone {
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
    match outcome {
        ActionOutcome::Done(done) => done,
        other => panic!("{other:?}"),
    }
}

async fn an_unreachable_webhook_never_shows_its_token(backend: Backend) {
    // A port nobody listens on: the connection is refused, and reqwest's error names the URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://bot:PA55W0RD@127.0.0.1:{port}/hooks/T0K3N?token=S3CR3T");
    let Some(app) = app_with_webhook(backend, url).await else {
        return;
    };
    let done = escalate(&app).await;
    assert!(done.summary.contains("unreachable"), "{}", done.summary);
    assert_secret_free("the reply", &done.summary);
    assert_secret_free("the outcome", &format!("{done:?}"));
    let row = app
        .engine
        .store()
        .escalation(&done.reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.webhook_state, invite_bot::store::WebhookState::Pending);
    for table in ["audit_log", "escalations"] {
        let rows = app.dump(table).await;
        assert!(!rows.is_empty(), "{table} is empty");
        assert_secret_free(table, &rows);
    }
    assert!(app.dump("escalations").await.contains("unreachable"));
    assert_secret_free("the actions service", &format!("{:?}", app.actions));
    assert_secret_free("the config", &format!("{:?}", app.config));
}

async fn a_redirect_is_not_followed(backend: Backend) {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/stolen", elsewhere.uri())),
        )
        .mount(&desk)
        .await;
    let Some(app) = app_with_webhook(backend, format!("{}/hooks", desk.uri())).await else {
        return;
    };
    let done = escalate(&app).await;
    assert!(done.summary.contains("HTTP 307"), "{}", done.summary);
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
    assert_eq!(
        desk.received_requests().await.unwrap().len(),
        1,
        "a redirect is an answer, not a reason to ask again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_never_shows_its_token_sqlite() {
    an_unreachable_webhook_never_shows_its_token(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_never_shows_its_token_postgres() {
    an_unreachable_webhook_never_shows_its_token(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_sqlite() {
    a_redirect_is_not_followed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_postgres() {
    a_redirect_is_not_followed(Backend::Postgres).await;
}

#[test]
fn the_webhook_must_be_https_and_the_refusal_does_not_show_it() {
    let config = |url: &str| {
        Config::from_toml(
            &format!(
                "[escalation]\nwebhook_url = \"{url}\"\nwebhook_secret = \"{}\"\n",
                crate::escalations::SECRET
            ),
            std::path::Path::new("c.toml"),
        )
        .and_then(|config| config.validate().map(|()| config))
    };
    let error = config("http://desk.example/hooks/T0K3N?token=S3CR3T")
        .unwrap_err()
        .to_string();
    assert!(error.contains("https"), "{error}");
    assert_secret_free("the config error", &error);
    let good = config("https://bot:PA55W0RD@desk.example/hooks/T0K3N?token=S3CR3T").unwrap();
    assert_secret_free("the config", &format!("{good:?}"));
    config("http://127.0.0.1:9/hooks").unwrap();
}

#[test]
fn start_up_errors_do_not_show_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![
        // Not understood at all: the URL is still named, without its secrets.
        "postgres://bot:S3CR3T@db.example:notaport/x?password=S3CR3T".to_owned(),
    ];
    if let Some(admin) = postgres_admin_url() {
        // Understood and reachable, but no such database.
        let base = admin.rsplit_once('/').unwrap().0;
        urls.push(format!("{base}/no_such_database_here?password=S3CR3T"));
    }
    for url in urls {
        let output = run_binary(
            dir.path(),
            &[],
            &["--database-url", &url, "check", "jane@corp.example"],
        );
        assert!(!output.status.success());
        let error = stderr(&output);
        assert!(error.contains("database"), "{error}");
        assert_secret_free("the start-up error", &error);
    }
}

both_backends! {
    async fn a_failed_sns_confirmation_does_not_repeat_its_token(app) {
        use crate::webhooks_ses::{keys, now_text, post, sign, start, CERT_URL, TOPIC};
        let http = start(app).await;
        let aws = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&aws)
            .await;
        let mut subscription = serde_json::json!({
            "Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "T0K3N",
            "TopicArn": TOPIC, "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": format!("{}/?Action=ConfirmSubscription&Token=T0K3N", aws.uri()),
            "Timestamp": now_text(), "SigningCertURL": CERT_URL,
        });
        sign(&mut subscription, &keys().0, "1");
        let reply = post(&http, &subscription).await;
        assert_eq!(reply.status, 502, "{}", reply.body);
        assert!(reply.body.contains("cannot confirm the subscription"), "{}", reply.body);
        assert_secret_free("the answer", &reply.body);
        http.stop().await;
    }
}
