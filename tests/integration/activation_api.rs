//! `POST /api/activate` over real HTTP.

use axum::extract::FromRef;
use invite_bot::actions::Actions;
use serde_json::{json, Value};

use crate::helpers::{both_backends, TestApp};

#[derive(Clone)]
struct State(Actions);

impl FromRef<State> for Actions {
    fn from_ref(state: &State) -> Actions {
        state.0.clone()
    }
}

/// Serves the route on 127.0.0.1 and returns its base URL.
async fn serve(app: &TestApp) -> String {
    let state = State(app.actions.clone());
    let router = invite_bot::http::activate::router(state.clone()).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

async fn post(base: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/activate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme"
[[member]]
workspace = "acme"
email = "jo@learners.example"
role = "learner"
status = "invited"
"#;

both_backends! {
    async fn a_code_activates_over_http_once(app) {
        app.seed(PEOPLE).await;
        let outcome = app.actions.issue_activation_code(&app.operator(), &app.email("jo@learners.example"), &app.slug("acme"), None).await.unwrap();
        let invite_bot::actions::ActionOutcome::Done(done) = outcome else { panic!() };
        let code = secrecy::ExposeSecret::expose_secret(&done.activation_code.unwrap().code).to_owned();
        let base = serve(&app).await;

        let (status, body) = post(&base, json!({"email": "Jo@Learners.example", "workspace": "acme", "code": code})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["activated"], true);
        assert_eq!(app.verdict("jo@learners.example", "acme").await, invite_bot::diagnosis::Verdict::AlreadyActive);

        // Used, wrong, unknown address, unknown workspace: one indistinguishable answer.
        let mut answers = Vec::new();
        for request in [
            json!({"email": "jo@learners.example", "workspace": "acme", "code": code}),
            json!({"email": "jo@learners.example", "workspace": "acme", "code": "AAAA-BBBB-CC"}),
            json!({"email": "nobody@learners.example", "workspace": "acme", "code": code}),
            json!({"email": "jo@learners.example", "workspace": "ghost", "code": code}),
            json!({"email": "jo@learners.example", "workspace": "Not A Slug", "code": code}),
        ] {
            answers.push(post(&base, request).await);
        }
        for answer in &answers {
            assert_eq!(answer, &answers[0]);
        }
        assert_eq!(answers[0].0, 422);
        assert_eq!(answers[0].1["error"], "invalid_code");
    }

    async fn malformed_requests_are_told_what_is_wrong(app) {
        let base = serve(&app).await;
        let (status, body) = post(&base, json!({"email": "not-an-address", "workspace": "acme", "code": "x"})).await;
        assert_eq!(status, 400);
        assert!(body["message"].as_str().unwrap().contains("no `@`"), "{body}");
        let (status, _) = post(&base, json!({"email": "jo@learners.example"})).await;
        assert_eq!(status, 400);
        let (status, _) = post(&base, json!({"email": "jo@learners.example", "workspace": "acme", "code": ""})).await;
        assert_eq!(status, 400);
    }
}
