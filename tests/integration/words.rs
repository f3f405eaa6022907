//! Every word a person reads comes from `prompts/`: an edited copy of it, named by `prompts_dir`,
//! changes what the checks and the actions say, with no code involved.

use invite_bot::actions::ActionOutcome;
use invite_bot::config::{Config, ProvidersConfig};
use invite_bot::domain::email::EmailAddress;
use invite_bot::error::{ActionFailure, EngineError, UserError};
use invite_bot::providers::LiveLookups;
use invite_bot::summary::{render_text, Summary};
use secrecy::ExposeSecret;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{both_backends, Backend, TestApp};
use crate::http_app::HttpApp;

const FIXTURE: &str = include_str!("fixtures/verdicts.toml");

/// The built-in templates copied to a fresh directory (kept until the test removes it), with
/// `edits` made: (file, words, replacement), each words found in its file.
fn edited_prompts(edits: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    for (name, text) in invite_bot::prompts::builtin_files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for (file, from, to) in edits {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} no longer says {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }
    dir
}

/// The built-in templates with a few words translated into Dutch.
fn translated_prompts() -> std::path::PathBuf {
    edited_prompts(&[
        ("time.j2", "}} ago", "}} geleden"),
        (
            "time.j2",
            r#"{{ n }} day{{ "s" if n != 1 }}"#,
            r#"{{ n }} dag{{ "en" if n != 1 }}"#,
        ),
        (
            "findings.j2",
            "Its activation link expired",
            "De activeringslink verliep",
        ),
        ("summary.j2", "Delivery", "Bezorging"),
        (
            "verdicts/invite_expired.j2",
            "Invitation expired",
            "Uitnodiging verlopen",
        ),
        ("verdicts/already_active.j2", "Already active", "Al actief"),
        (
            "actions.j2",
            "is not offered here",
            "wordt hier niet aangeboden",
        ),
        ("reply.txt.j2", "Next steps:", "Volgende stappen:"),
    ])
}

both_backends! {
    async fn an_edited_copy_of_the_prompts_is_what_the_bot_says(app) with |c: &mut Config| c.prompts_dir = Some(translated_prompts()); {
        app.seed(FIXTURE).await;
        let diagnosis = app.check("expired@corp.example", "acme").await;
        let summary = Summary::for_diagnosis(&diagnosis, app.engine.prompts()).unwrap();
        assert_eq!(summary.title, "Uitnodiging verlopen");
        assert!(
            // The number of days is the fixture's business; the words are the template's.
            summary.fields.iter().any(|f| f.name == "Bezorging"
                && f.value.starts_with("De activeringslink verliep ")
                && f.value.ends_with(" dagen geleden.")),
            "{:?}",
            summary.fields
        );
        let text = render_text(&diagnosis, app.engine.prompts()).unwrap();
        assert!(text.contains("was sent ") && text.contains(" dagen geleden;"), "{text}");
        assert!(text.contains("Volgende stappen:"), "{text}");

        let outcome = app
            .actions
            .resend_invite(&app.operator(), &app.email("active@corp.example"), &app.slug("acme"), None)
            .await
            .unwrap();
        let refusal = match outcome {
            ActionOutcome::Refused(refusal) => refusal,
            ActionOutcome::Done(done) => panic!("done: {done:?}"),
        };
        assert!(
            refusal.message.starts_with("Resending the invitation wordt hier niet aangeboden: al actief."),
            "{}",
            refusal.message
        );
        std::fs::remove_dir_all(app.config.prompts_dir.as_ref().unwrap()).unwrap();
    }
}

/// Members for the words that moved out of the code: one learner to check, resend to and escalate,
/// one trainer to activate.
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
email = "cyd@trainers.example"
role = "trainer"
status = "invited"
"#;

/// A copy of the prompts with one word changed in each text that used to be built in code: the
/// tab a member is listed on, a live look-up left unanswered, the escalation's lines and its
/// webhook failure, the errors a person is told, and every answer of `/api/activate`.
fn moved_words() -> std::path::PathBuf {
    edited_prompts(&[
        (
            "findings.j2",
            "{% else %}Learners{% endif %}",
            "{% else %}Cursisten{% endif %}",
        ),
        (
            "findings.j2",
            "answered HTTP {{ f.status }}",
            "antwoordde HTTP {{ f.status }}",
        ),
        (
            "actions.j2",
            "{{ f.action }} by {{ f.actor }} at",
            "{{ f.action }} door {{ f.actor }} om",
        ),
        (
            "actions.j2",
            r#"{% if e.failure == "http_status" %}HTTP {{ e.status }}"#,
            r#"{% if e.failure == "http_status" %}HTTP-status {{ e.status }}"#,
        ),
        (
            "errors.j2",
            "There is no workspace",
            "Er is geen werkruimte",
        ),
        (
            "errors.j2",
            "That is not a valid email address:",
            "Dat is geen geldig e-mailadres:",
        ),
        (
            "errors.j2",
            "the address has no `@`",
            "het adres heeft geen `@`",
        ),
        (
            "errors.j2",
            "The mail server is not accepting mail right now",
            "De mailserver neemt nu geen mail aan",
        ),
        (
            "errors.j2",
            "The workspace database is",
            "De database van de werkruimte is",
        ),
        ("api.j2", "The account is active", "Het account is actief"),
        (
            "api.j2",
            "This code is not valid for this address",
            "Deze code geldt niet voor dit adres",
        ),
        ("api.j2", "Too many attempts.", "Te veel pogingen."),
        (
            "api.j2",
            "The request is larger than",
            "Het verzoek is groter dan",
        ),
        ("api.j2", "code: expected", "code: verwacht"),
    ])
}

async fn every_moved_word_comes_from_the_prompts(backend: Backend) {
    let desk = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&desk)
        .await;
    let postmark = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&postmark)
        .await;
    let webhook_url = format!("{}/escalations", desk.uri());
    let Some(app) = TestApp::spawn_with(backend, |c: &mut Config| {
        c.prompts_dir = Some(moved_words());
        c.escalation.webhook_url = Some(webhook_url);
        c.escalation.webhook_secret = Some(crate::escalations::SECRET.into());
        c.escalation.webhook_max_attempts = 1;
    })
    .await
    else {
        return;
    };
    app.seed(PEOPLE).await;
    let prompts = app.engine.prompts();

    // The tab a member is listed on, and what a provider that did not answer answered.
    let providers: ProvidersConfig = toml::from_str(&format!(
        "[postmark]\nwebhook_username = \"u\"\nwebhook_password = \"p\"\napi_token = \"t\"\napi_base = \"{}\"\n",
        postmark.uri()
    ))
    .unwrap();
    let engine = app
        .engine
        .clone()
        .with_lookups(LiveLookups::from_config(&providers).unwrap());
    let diagnosis = engine
        .check(
            &app.email("never@learners.example"),
            Some(&app.slug("acme")),
        )
        .await
        .unwrap()
        .remove(0);
    let detail = |outcome: &str| {
        diagnosis
            .findings
            .iter()
            .find(|f| f.outcome.as_str() == outcome)
            .map(|f| f.detail.clone())
            .unwrap_or_else(|| panic!("no {outcome} finding in {:?}", diagnosis.findings))
    };
    assert!(
        detail("found").contains("on the Cursisten tab"),
        "{}",
        detail("found")
    );
    assert!(
        detail("live_unanswered").contains("but antwoordde HTTP 503;"),
        "{}",
        detail("live_unanswered")
    );

    // The escalation: the lines of what was already done, and why the desk did not take it.
    let resent = app
        .actions
        .resend_invite(
            &app.operator(),
            &app.email("never@learners.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    assert!(resent.is_done(), "{resent:?}");
    let outcome = app
        .actions
        .escalate(
            &app.operator(),
            &app.email("never@learners.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    let ActionOutcome::Done(done) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        done.summary.contains("did not answer (HTTP-status 503)"),
        "{}",
        done.summary
    );
    let taken = &done.escalation.as_ref().unwrap().actions_taken;
    assert!(
        taken[0].starts_with("resend_invite door local operator om "),
        "{taken:?}"
    );

    // What a person is told when a request cannot be done.
    let error = app
        .engine
        .check(
            &app.email("never@learners.example"),
            Some(&app.slug("ghost")),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.public_message(prompts),
        "Er is geen werkruimte `ghost`."
    );
    let error = UserError::from(EmailAddress::parse("never.learners.example").unwrap_err());
    assert!(
        error
            .public_message(prompts)
            .starts_with("Dat is geen geldig e-mailadres: het adres heeft geen `@`"),
        "{}",
        error.public_message(prompts)
    );
    let error = EngineError::from(ActionFailure::MailQueued {
        reference: "RSD-1".into(),
        detail: "421 busy".into(),
    });
    assert!(
        error
            .public_message(prompts)
            .starts_with("De mailserver neemt nu geen mail aan (421 busy)."),
        "{}",
        error.public_message(prompts)
    );

    // Every answer of `/api/activate`, the per-client throttle's included.
    let issued = app
        .actions
        .issue_activation_code(
            &app.operator(),
            &app.email("cyd@trainers.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    let ActionOutcome::Done(issued) = issued else {
        panic!("{issued:?}")
    };
    let code = issued
        .activation_code
        .unwrap()
        .code
        .expose_secret()
        .to_owned();
    let http = HttpApp::start(app, |_| {}).await;
    let activate = |body: String| {
        let http = &http;
        async move {
            let reply = http.post("/api/activate", &[], body).await;
            let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            (reply.status, body["message"].as_str().unwrap().to_owned())
        }
    };
    let request = |email: &str, code: &str| {
        json!({ "email": email, "workspace": "acme", "code": code }).to_string()
    };
    let (status, message) = activate(request("cyd@trainers.example", &code)).await;
    assert_eq!(
        (status, message.starts_with("Het account is actief")),
        (200, true),
        "{message}"
    );
    let (status, message) = activate(request("cyd@trainers.example", &code)).await;
    assert_eq!(
        (
            status,
            message.starts_with("Deze code geldt niet voor dit adres")
        ),
        (422, true),
        "{message}"
    );
    let (status, message) = activate(request("cyd.trainers.example", &code)).await;
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "email: het adres heeft geen `@`: it should look like name@example.com"
        )
    );
    let (status, message) = activate(request("cyd@trainers.example", "")).await;
    assert_eq!(
        (status, message.starts_with("code: verwacht")),
        (400, true),
        "{message}"
    );
    let (status, message) = activate("x".repeat(10 * 1024)).await;
    assert_eq!(
        (status, message.as_str()),
        (413, "Het verzoek is groter dan 8192 bytes.")
    );
    // Malformed requests are never looked at, but each counts against the client all the same.
    let mut answer = (0, String::new());
    for _ in 0..40 {
        answer = activate("{}".into()).await;
        if answer.0 == 429 {
            break;
        }
    }
    assert_eq!(answer.0, 429, "{answer:?}");
    assert!(answer.1.starts_with("Te veel pogingen. "), "{answer:?}");

    // The database gone: the person is told so, in the copy's words too.
    http.app.engine.store().close().await;
    let error = http
        .app
        .engine
        .check(&http.app.email("never@learners.example"), None)
        .await
        .unwrap_err();
    let message = error.public_message(http.app.engine.prompts());
    assert!(
        message.starts_with("De database van de werkruimte is not reachable"),
        "{message}"
    );
    std::fs::remove_dir_all(http.app.config.prompts_dir.as_ref().unwrap()).unwrap();
    http.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_moved_word_comes_from_the_prompts_on_sqlite() {
    every_moved_word_comes_from_the_prompts(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_moved_word_comes_from_the_prompts_on_postgres() {
    every_moved_word_comes_from_the_prompts(Backend::Postgres).await;
}
