//! `[actions] backend = "product"`: resend and activation codes asked of the product's own API,
//! against a small product (axum) in the test that verifies the Standard Webhooks signature with the
//! `standardwebhooks` crate, honours idempotency keys (one email or code per key, a repeated key
//! gets the first answer), and can be told to be slow, to fail with 500 once, to hang past the
//! bot's deadline, to refuse with 409/422, or to answer garbage. Every test runs on both backends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use invite_bot::actions::{ActionOutcome, Actions, Actor, IssuedForm, RefusalReason};
use invite_bot::chat::{Chat, ChatUser, PressOutcome};
use invite_bot::config::{ActionsBackend, Config, GrantConfig};
use invite_bot::domain::Permission;
use invite_bot::error::EngineError;
use secrecy::ExposeSecret;

use crate::helpers::{Backend, CapturedLogs, TestApp};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ADMIN_ROLE: &str = "8000";
const EMAIL: &str = "never@learners.example";

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
email = "active@learners.example"
role = "learner"
status = "active"
"#;

/// What the test product does with the next requests.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Normal,
    /// Codes come as `{activation_url}` (a product that only has links).
    LinksOnly,
    /// Answers after this long.
    Slow(Duration),
    /// Does the action, then answers 500 once; normal afterwards.
    FailOnce,
    /// Does the action, then never answers in time.
    Hang,
    /// Refuses with this status and message.
    Refuse(u16, &'static str),
    /// Answers 200 with something that is not JSON (holding what looks like a code).
    Garbage,
}

#[derive(Debug)]
struct ProductState {
    mode: Mode,
    secret: &'static str,
    failed_once: bool,
    /// The first answer per idempotency key.
    answers: HashMap<String, (u16, String)>,
    /// Emails sent and codes issued: the effects, one per key at most.
    effects: u32,
    requests: u32,
    bad_signatures: u32,
    /// Every (webhook-id, body idempotency_key) seen.
    keys: Vec<(String, String)>,
    codes: Vec<String>,
}

#[derive(Clone)]
struct Product {
    url: String,
    state: Arc<Mutex<ProductState>>,
}

impl Product {
    async fn start(secret: &'static str) -> Product {
        let state = Arc::new(Mutex::new(ProductState {
            mode: Mode::Normal,
            secret,
            failed_once: false,
            answers: HashMap::new(),
            effects: 0,
            requests: 0,
            bad_signatures: 0,
            keys: Vec::new(),
            codes: Vec::new(),
        }));
        let router = axum::Router::new()
            .route("/product/invitations/resend", post(handle))
            .route("/product/activation-codes", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/product", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Product { url, state }
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn effects(&self) -> u32 {
        self.state.lock().unwrap().effects
    }

    fn requests(&self) -> u32 {
        self.state.lock().unwrap().requests
    }

    fn bad_signatures(&self) -> u32 {
        self.state.lock().unwrap().bad_signatures
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().keys.clone()
    }

    fn codes(&self) -> Vec<String> {
        self.state.lock().unwrap().codes.clone()
    }
}

async fn handle(
    State(state): State<Arc<Mutex<ProductState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mode, verified) = {
        let mut s = state.lock().unwrap();
        s.requests += 1;
        // The documented scheme, checked by the reference library.
        let verified = standardwebhooks::Webhook::new(s.secret)
            .unwrap()
            .verify(&body, &headers)
            .is_ok();
        if !verified {
            s.bad_signatures += 1;
        }
        (s.mode.clone(), verified)
    };
    if !verified {
        return (StatusCode::UNAUTHORIZED, r#"{"message":"bad signature"}"#).into_response();
    }
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let key = request["idempotency_key"].as_str().unwrap().to_owned();
    let webhook_id = headers["webhook-id"].to_str().unwrap().to_owned();
    let resend = uri.path().ends_with("/invitations/resend");
    if let Mode::Refuse(status, message) = mode {
        let body = serde_json::json!({ "message": message }).to_string();
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    let (status, answer) = {
        let mut s = state.lock().unwrap();
        s.keys.push((webhook_id, key.clone()));
        if let Some(answer) = s.answers.get(&key) {
            answer.clone()
        } else {
            s.effects += 1;
            let n = s.effects;
            let answer = if resend {
                serde_json::json!({
                    "sent_at": chrono::Utc::now().to_rfc3339(),
                    "expires_at": (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339(),
                    "message_id": format!("<product-{n}@mail.product.example>"),
                })
            } else {
                let code = format!("PRD{n}{}", invite_bot::random::symbols(8));
                s.codes.push(code.clone());
                if mode == Mode::LinksOnly {
                    serde_json::json!({
                        "activation_url": format!("https://app.product.example/activate?token={code}"),
                    })
                } else {
                    serde_json::json!({
                        "code": code,
                        "expires_at": (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339(),
                    })
                }
            };
            let answer = (200, answer.to_string());
            s.answers.insert(key.clone(), answer.clone());
            answer
        }
    };
    match mode {
        Mode::Slow(wait) => tokio::time::sleep(wait).await,
        Mode::FailOnce => {
            let first = {
                let mut s = state.lock().unwrap();
                !std::mem::replace(&mut s.failed_once, true)
            };
            if first {
                return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
            }
        }
        Mode::Hang => tokio::time::sleep(Duration::from_secs(5)).await,
        Mode::Garbage => {
            let code = state
                .lock()
                .unwrap()
                .codes
                .last()
                .cloned()
                .unwrap_or_default();
            return (StatusCode::OK, format!("<html>{code}")).into_response();
        }
        _ => {}
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        answer,
    )
        .into_response()
}

/// A bot whose actions go to `product`, with short deadlines so the suite stays quick.
async fn spawn(backend: Backend, product: &Product, secret: &str) -> Option<TestApp> {
    let url = product.url.clone();
    let secret = secret.to_owned();
    let app = TestApp::spawn_with(backend, move |config: &mut Config| {
        config.actions.backend = ActionsBackend::Product;
        config.actions.product.base_url = Some(url);
        config.actions.product.secret = Some(secret.into());
        config.actions.product.timeout_ms = 400;
        config.actions.product.max_attempts = 3;
        config.actions.product.retry_base_ms = 10;
        config.permissions.grant = vec![GrantConfig {
            roles: vec![ADMIN_ROLE.into()],
            allow: vec![
                Permission::Check,
                Permission::ResendInvite,
                Permission::IssueActivationCode,
            ],
            ..Default::default()
        }];
    })
    .await?;
    app.seed(PEOPLE).await;
    Some(app)
}

fn chat_admin(chat: &Chat) -> Actor {
    chat.actor(&ChatUser {
        id: "333".into(),
        name: "admin".into(),
        roles: vec![ADMIN_ROLE.into()],
    })
}

/// The `custom_id` of the button labelled `label` in a fresh check of EMAIL.
async fn button(chat: &Chat, admin: &Actor, label: &str) -> String {
    let reply = chat.invite_check(admin, EMAIL, Some("acme")).await;
    let button = reply
        .buttons
        .iter()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no {label:?} button in {:?}", reply.buttons));
    format!("ib:{}", button.reference)
}

async fn resend(
    app: &TestApp,
    actions: &Actions,
    key: Option<&str>,
) -> Result<ActionOutcome, EngineError> {
    actions
        .resend_invite(&app.operator(), &app.email(EMAIL), &app.slug("acme"), key)
        .await
}

async fn code(app: &TestApp, key: Option<&str>) -> Result<ActionOutcome, EngineError> {
    app.actions
        .issue_activation_code(&app.operator(), &app.email(EMAIL), &app.slug("acme"), key)
        .await
}

fn message(app: &TestApp, error: &EngineError) -> String {
    error.public_message(app.engine.prompts())
}

/// Every table of the database, as text, for "the code is nowhere".
async fn every_table(app: &TestApp) -> String {
    let tables: Vec<String> = match app.engine.store() {
        invite_bot::store::Store::Sqlite(pool, _) => {
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        invite_bot::store::Store::Postgres(pool, _) => sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    assert!(tables.iter().any(|t| t == "product_calls"), "{tables:?}");
    let mut all = String::new();
    for table in tables {
        all.push_str(&app.dump(&table).await);
        all.push('\n');
    }
    all
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
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
    a_resend_is_done_by_the_product_and_its_events_attach,
    provider_events_for_the_products_message_reach_the_check,
    an_activation_code_comes_from_the_product_in_either_form,
    a_500_is_retried_with_the_same_key,
    no_answer_is_told_as_unknown_and_pressing_again_is_safe,
    a_refusal_is_not_retried_and_its_message_is_passed_on_escaped,
    garbage_is_an_operational_error_with_a_reference,
    fifty_presses_at_once_make_one_call,
    two_instances_send_one_resend,
    the_signature_is_the_documented_scheme,
    everything_around_the_call_stays_the_bots,
);

async fn a_resend_is_done_by_the_product_and_its_events_attach(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    let ActionOutcome::Done(done) = resend(&app, &app.actions, None).await.unwrap() else {
        panic!("not done")
    };
    assert!(done.reference.starts_with("RSD-"));
    assert!(done.summary.contains("by the product"), "{}", done.summary);
    assert_eq!(product.effects(), 1);
    // The bot sent no email of its own.
    assert!(app.smtp.received().is_empty());
    // The product's message id is stored where provider events attach: the verdict now sees a
    // fresh invitation, as after a built-in resend.
    let invitations = app.dump("invitations").await;
    assert!(
        invitations.contains("product-1@mail.product.example"),
        "{invitations}"
    );
    assert!(
        !invitations.contains("<product-1"),
        "stored without brackets: {invitations}"
    );
    assert_eq!(
        app.verdict(EMAIL, "acme").await,
        invite_bot::diagnosis::Verdict::InviteSent
    );
    let rows = app.audit_rows(EMAIL).await;
    assert!(
        rows.contains(&("resend_invite".into(), "done".into(), None)),
        "{rows:?}"
    );
}

/// The product's resend as a provider reports it: Mailgun's signed events name the email by the
/// Message-ID the product returned as `message_id`, attach to that invitation, and the next check
/// says delivered, then (a hard bounce) suppressed with the bounce among its findings.
async fn provider_events_for_the_products_message_reach_the_check(backend: Backend) {
    use crate::http_app::{verdict, HttpApp};
    use crate::webhooks_mailgun::{event, signed, SIGNING_KEY};

    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    assert!(resend(&app, &app.actions, None).await.unwrap().is_done());
    // The test product's first email; a provider's header carries it in angle brackets.
    let (message_id, header) = (
        "product-1@mail.product.example",
        "<product-1@mail.product.example>",
    );
    let invitation = app.latest_invitation(EMAIL, "acme").await;
    assert_eq!(invitation.message_id.as_deref(), Some(message_id));
    let http = HttpApp::start(app, crate::webhooks_mailgun::configure).await;
    let post = |data: serde_json::Value| {
        let body = signed(&data, SIGNING_KEY, chrono::Utc::now().timestamp());
        let http = &http;
        async move {
            let reply = http.post("/webhooks/mailgun", &[], body).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(
                reply.body.contains("\"unknown_message\":0"),
                "{}",
                reply.body
            );
        }
    };

    post(event("delivered", None, EMAIL, header)).await;
    assert_eq!(verdict(&http.app, EMAIL).await, "invite_delivered");
    post(event("failed", Some("permanent"), EMAIL, header)).await;
    // The hard bounce also suppressed the address, which the verdict names first.
    assert_eq!(verdict(&http.app, EMAIL).await, "invite_suppressed");
    let diagnosis = http.app.check(EMAIL, "acme").await;
    assert!(
        diagnosis
            .findings
            .iter()
            .any(|f| f.outcome.as_str() == "hard_bounce"),
        "{:?}",
        diagnosis.findings
    );
    // Both attached to the product's invitation, by its message id.
    let stored = crate::correlation::stored_events(&http.app).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(
        stored.iter().all(
            |(_, invitation_id, id)| *invitation_id == Some(invitation.id)
                && id.as_deref() == Some(message_id)
        ),
        "{stored:?} vs invitation {}",
        invitation.id
    );
    assert_eq!(product.effects(), 1);
    http.stop().await;
}

async fn an_activation_code_comes_from_the_product_in_either_form(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    let chat = Chat::new(app.actions.clone(), &app.config);
    let admin = chat_admin(&chat);
    let id = button(&chat, &admin, "Issue activation code").await;
    let outcome = chat.press(&admin, &id).await;
    let code = product.codes()[0].clone();
    assert!(outcome.reply.ephemeral);
    assert!(outcome.reply.text.contains(&code), "{}", outcome.reply.text);
    assert!(outcome.reply.text.contains("from the product"));
    assert!(!outcome.finished.as_deref().unwrap().contains(&code));

    // A product that only has links: the link is shown, once, with the warning.
    product.set(Mode::LinksOnly);
    let ActionOutcome::Done(done) = code_after_reissue_window(&app).await else {
        panic!("not done")
    };
    let issued = done.activation_code.unwrap();
    assert_eq!(issued.form, IssuedForm::ProductLink);
    assert!(issued.expires_at.is_none());
    assert!(issued
        .code
        .expose_secret()
        .starts_with("https://app.product.example/activate?token=PRD2"));
    assert_eq!(product.effects(), 2);
    let rows = app.audit_rows(EMAIL).await;
    let done_rows = rows
        .iter()
        .filter(|(action, outcome, _)| action == "issue_activation_code" && outcome == "done")
        .count();
    assert_eq!(done_rows, 2, "{rows:?}");
}

/// A second code, once the reissue guard (a code issued moments ago is not replaced) has passed:
/// the guard is the bot's, whichever backend issues.
async fn code_after_reissue_window(app: &TestApp) -> ActionOutcome {
    let refused = code(app, None).await.unwrap();
    let ActionOutcome::Refused(refusal) = refused else {
        panic!("a second code moments after the first was issued")
    };
    assert_eq!(refusal.reason, RefusalReason::AlreadyDone);
    // Move the first request back in time, past the window.
    let sql = "UPDATE action_requests SET created_at = created_at - INTERVAL '2 minutes'";
    match app.engine.store() {
        invite_bot::store::Store::Postgres(pool, _) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        invite_bot::store::Store::Sqlite(pool, _) => {
            let rows: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
                sqlx::query_as("SELECT id, created_at FROM action_requests")
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for (id, at) in rows {
                sqlx::query("UPDATE action_requests SET created_at = $1 WHERE id = $2")
                    .bind(at - chrono::Duration::minutes(2))
                    .bind(id)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }
    code(app, None).await.unwrap()
}

async fn a_500_is_retried_with_the_same_key(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    product.set(Mode::FailOnce);
    let outcome = resend(&app, &app.actions, None).await.unwrap();
    assert!(outcome.is_done(), "{outcome:?}");
    assert_eq!(product.requests(), 2);
    // The product did it on the first try and answered 500: the retry carried the same key, so
    // it sent one email.
    assert_eq!(product.effects(), 1);
    let keys = product.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[0].0, keys[0].1, "webhook-id is the idempotency key");
}

async fn no_answer_is_told_as_unknown_and_pressing_again_is_safe(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    let chat = Chat::new(app.actions.clone(), &app.config);
    let admin = chat_admin(&chat);
    let id = button(&chat, &admin, "Resend invite").await;
    product.set(Mode::Hang);
    let outcome = chat.press(&admin, &id).await;
    let text = &outcome.reply.text;
    assert!(
        text.contains("may have been sent; pressing again is safe"),
        "{text}"
    );
    assert!(outcome.finished.is_none());
    assert_eq!(product.requests(), 3, "bounded: max_attempts");
    assert_eq!(product.effects(), 1);
    let rows = app.audit_rows(EMAIL).await;
    assert!(
        rows.contains(&(
            "resend_invite".into(),
            "unknown".into(),
            Some("product_unanswered".into())
        )),
        "{rows:?}"
    );
    assert!(!rows
        .iter()
        .any(|(_, outcome, _)| outcome == "failed" || outcome == "done"));

    // Pressed again once the product answers: the same key, so still one email, now recorded.
    product.set(Mode::Normal);
    let again = chat.press(&admin, &id).await;
    assert!(again.finished.is_some(), "{}", again.reply.text);
    assert_eq!(product.effects(), 1);
    let keys: std::collections::BTreeSet<String> =
        product.keys().into_iter().map(|(id, _)| id).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // And a third press is told it was done; nothing is asked.
    let requests = product.requests();
    let third = chat.press(&admin, &id).await;
    assert!(
        third.reply.text.contains("already done"),
        "{}",
        third.reply.text
    );
    assert_eq!(product.requests(), requests);
}

async fn a_refusal_is_not_retried_and_its_message_is_passed_on_escaped(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    for status in [409u16, 422] {
        let before = product.requests();
        product.set(Mode::Refuse(
            status,
            "Seat **limit** reached\nfor @everyone <@&123> — ask https://evil.example",
        ));
        let chat = Chat::new(app.actions.clone(), &app.config);
        let admin = chat_admin(&chat);
        let id = button(&chat, &admin, "Resend invite").await;
        let outcome = chat.press(&admin, &id).await;
        assert_eq!(product.requests(), before + 1, "a {status} is not retried");
        let text = &outcome.reply.text;
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        assert!(
            text.contains("Seat **limit** reached for @everyone"),
            "one line: {text}"
        );
        // The Discord edge escapes it like every text it shows: no markdown, no mention, no link.
        let shown = invite_bot::discord::render::content(&outcome.reply);
        assert!(shown.contains(r"Seat \*\*limit\*\* reached"), "{shown}");
        assert!(
            !shown.contains("@everyone") && shown.contains("@\u{200B}everyone"),
            "{shown}"
        );
        assert!(!shown.contains("https://evil"), "{shown}");
        assert!(outcome.finished.is_none());
    }
    let long = Box::leak("x".repeat(5000).into_boxed_str());
    product.set(Mode::Refuse(422, long));
    let error = resend(&app, &app.actions, None).await.unwrap_err();
    let said = message(&app, &error);
    assert!(said.len() < 600, "length-limited: {} chars", said.len());
    let rows = app.audit_rows(EMAIL).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.1 == "failed" && r.2.as_deref() == Some("product_refused"))
            .count(),
        3,
        "{rows:?}"
    );
    assert_eq!(product.effects(), 0);
    // A refusal does not count against the limits: the product answering again is enough.
    product.set(Mode::Normal);
    assert!(resend(&app, &app.actions, None).await.unwrap().is_done());
}

async fn garbage_is_an_operational_error_with_a_reference(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    product.set(Mode::Garbage);
    let error = code(&app, None).await.unwrap_err();
    let said = message(&app, &error);
    assert!(said.contains("could not be read"), "{said}");
    assert!(said.contains("(ref ACT-"), "{said}");
    assert_eq!(product.requests(), 1, "an answer is not retried");
    let code = &product.codes()[0];
    assert!(!said.contains(code.as_str()));
    let rows = app.audit_rows(EMAIL).await;
    assert!(rows.contains(&(
        "issue_activation_code".into(),
        "unknown".into(),
        Some("product_garbled".into())
    )));
    assert!(!every_table(&app).await.contains(code.as_str()));
}

async fn fifty_presses_at_once_make_one_call(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    product.set(Mode::Slow(Duration::from_millis(100)));
    // Fifty presses of one button through the chat flow.
    let chat = Chat::new(app.actions.clone(), &app.config);
    let admin = chat_admin(&chat);
    let id = button(&chat, &admin, "Issue activation code").await;
    let mut presses = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (chat, admin, id) = (chat.clone(), admin.clone(), id.clone());
        presses.spawn(async move { chat.press(&admin, &id).await });
    }
    let presses: Vec<PressOutcome> = presses.join_all().await;
    assert_eq!(presses.iter().filter(|p| p.finished.is_some()).count(), 1);
    assert_eq!(product.effects(), 1);
    assert_eq!(product.requests(), 1);

    // Fifty calls with one idempotency key straight into the actions (two replicas' chat layers
    // would both get past their own button claim): the product is asked once.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (actions, actor) = (app.actions.clone(), app.operator());
        let (email, acme) = (app.email(EMAIL), app.slug("acme"));
        calls.spawn(async move {
            actions
                .resend_invite(&actor, &email, &acme, Some("press-fifty"))
                .await
        });
    }
    let outcomes = calls.join_all().await;
    let done = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ActionOutcome::Done(_))))
        .count();
    assert_eq!(done, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
    assert_eq!(product.effects(), 2);
    assert_eq!(product.requests(), 2);
}

async fn two_instances_send_one_resend(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    product.set(Mode::Slow(Duration::from_millis(200)));
    let second = app.second_instance().await;
    // The same press reaching both, and two different presses: one resend either way.
    let (a, b, c, d) = tokio::join!(
        resend(&app, &app.actions, Some("press-1")),
        resend(&app, &second, Some("press-1")),
        resend(&app, &app.actions, None),
        resend(&app, &second, None),
    );
    let done = [&a, &b, &c, &d]
        .iter()
        .filter(|o| matches!(o, Ok(ActionOutcome::Done(_))))
        .count();
    assert_eq!(done, 1, "{a:?} {b:?} {c:?} {d:?}");
    assert_eq!(product.effects(), 1);
    assert_eq!(product.requests(), 1);
}

async fn the_signature_is_the_documented_scheme(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    assert!(resend(&app, &app.actions, None).await.unwrap().is_done());
    assert_eq!(product.bad_signatures(), 0);

    // A bot with another secret is refused by the same check: the verification is real.
    let stranger = Product::start(SECRET).await;
    let Some(other) = spawn(backend, &stranger, OTHER_SECRET).await else {
        return;
    };
    let error = resend(&other, &other.actions, None).await.unwrap_err();
    assert!(message(&other, &error).contains("HTTP 401"));
    assert_eq!(stranger.bad_signatures(), 1);
    assert_eq!(stranger.effects(), 0);
}

async fn everything_around_the_call_stays_the_bots(backend: Backend) {
    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    // Permission at press time.
    let nobody = app.chat_user("999", &[]);
    let refused = app
        .actions
        .resend_invite(&nobody, &app.email(EMAIL), &app.slug("acme"), None)
        .await
        .unwrap();
    let ActionOutcome::Refused(refusal) = refused else {
        panic!("allowed")
    };
    assert_eq!(refusal.reason, RefusalReason::Forbidden);
    // The verdict: an active member is offered no resend, whoever would do it.
    let refused = app
        .actions
        .resend_invite(
            &app.operator(),
            &app.email("active@learners.example"),
            &app.slug("acme"),
            None,
        )
        .await
        .unwrap();
    let ActionOutcome::Refused(refusal) = refused else {
        panic!("offered")
    };
    assert_eq!(refusal.reason, RefusalReason::NotOffered);
    // The rate limit: a second resend right after the first is refused before any call.
    assert!(resend(&app, &app.actions, None).await.unwrap().is_done());
    let ActionOutcome::Refused(refusal) = resend(&app, &app.actions, None).await.unwrap() else {
        panic!("a second resend at once")
    };
    assert_eq!(refusal.reason, RefusalReason::RateLimited);
    assert_eq!(product.requests(), 1);
    let rows = app.audit_rows(EMAIL).await;
    assert!(
        rows.iter().filter(|r| r.1 == "refused").count() >= 2,
        "{rows:?}"
    );
}

/// The codes and links the product returns are shown to the admin and found nowhere else: not in
/// the logs (everything, at TRACE), the audit rows, or any table.
async fn codes_stay_out_of_logs_audit_and_database(backend: Backend) {
    let (logs, _guard) = CapturedLogs::start();

    let product = Product::start(SECRET).await;
    let Some(app) = spawn(backend, &product, SECRET).await else {
        return;
    };
    let chat = Chat::new(app.actions.clone(), &app.config);
    let admin = chat_admin(&chat);
    let id = button(&chat, &admin, "Issue activation code").await;
    let shown = chat.press(&admin, &id).await.reply.text;
    // A link too.
    product.set(Mode::LinksOnly);
    let link = code_after_reissue_window(&app).await;
    assert!(link.is_done());
    let codes = product.codes();
    assert_eq!(codes.len(), 2);
    assert!(shown.contains(&codes[0]));

    let logged = logs.text();
    assert!(
        logged.contains("activation code issued by the product"),
        "logs are captured"
    );
    let audit = format!(
        "{:?}",
        app.actions
            .read_audit(&invite_bot::store::AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
    );
    let database = every_table(&app).await;
    for code in &codes {
        assert!(!logged.contains(code.as_str()), "{code} logged");
        assert!(!audit.contains(code.as_str()), "{code} audited");
        assert!(!database.contains(code.as_str()), "{code} stored");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn codes_stay_out_of_logs_audit_and_database_on_sqlite() {
    codes_stay_out_of_logs_audit_and_database(Backend::Sqlite).await;
}

#[tokio::test(flavor = "current_thread")]
async fn codes_stay_out_of_logs_audit_and_database_on_postgres() {
    codes_stay_out_of_logs_audit_and_database(Backend::Postgres).await;
}

#[test]
fn the_product_backend_is_checked_at_start_up() {
    let no_env = |_: &str| None;
    let load = |toml: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), &no_env)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert!(load("").is_ok(), "builtin is the default and needs nothing");
    let cases = [
        ("[actions]\nbackend = \"product\"\n", "actions.product.base_url: is required"),
        (
            "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"http://product.example/api\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n",
            "actions.product.base_url: must be an https:// URL",
        ),
        (
            "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\n",
            "actions.product.secret: is required",
        ),
        (
            "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\nsecret = \"hunter2\"\n",
            "actions.product.secret: must start with whsec_",
        ),
        (
            "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\ntimeout_ms = 0\n",
            "actions.product.timeout_ms: must be at least 1",
        ),
        (
            "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\nmax_attempts = 0\n",
            "actions.product.max_attempts: must be between 1 and 10",
        ),
        ("[actions]\nbackend = \"carrier-pigeon\"\n", "unknown variant"),
        ("[actions.product]\nbase_urll = \"x\"\n", "unknown field"),
    ];
    for (toml, expected) in cases {
        let error = load(toml).unwrap_err();
        assert!(error.contains(expected), "{toml}: {error}");
        assert!(
            !error.contains("C2FVsBQ") && !error.contains("hunter2"),
            "{error}"
        );
    }
    assert!(load(
        "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n"
    )
    .is_ok());
    // The secret may come from the environment, like every other secret.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[actions]\nbackend = \"product\"\n[actions.product]\nbase_url = \"https://product.example/api\"\n",
    )
    .unwrap();
    let env = |key: &str| (key == "INVITE_BOT_PRODUCT_SECRET").then(|| SECRET.to_owned());
    let config = Config::load(Some(&path), &env).unwrap();
    assert!(!format!("{config:?}").contains("C2FVsBQ"));
}

/// The OpenAPI document describes `/api/activate` (built-in) and, under `webhooks`, the two routes
/// the product implements, with a note on every field of their bodies and answers.
#[test]
fn the_contract_is_in_the_openapi_document() {
    let doc: serde_json::Value =
        serde_json::from_str(invite_bot::http::openapi::document()).unwrap();
    assert!(doc["paths"]["/api/activate"]["post"].is_object());
    for route in ["/invitations/resend", "/activation-codes"] {
        let operation = &doc["webhooks"][route]["post"];
        assert_eq!(operation["tags"][0], "product contract", "{route}");
        let headers: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        assert!(doc["paths"].get(route).is_none(), "not served by the bot");
    }
    let schemas = &doc["components"]["schemas"];
    for (schema, fields) in [
        (
            "ProductActionRequest",
            &["workspace", "email", "idempotency_key"][..],
        ),
        ("ResendAnswer", &["sent_at", "expires_at", "message_id"][..]),
        ("RequestedBy", &["id", "name"][..]),
    ] {
        for field in fields {
            let described = schemas[schema]["properties"][field]["description"].as_str();
            assert!(described.is_some_and(|d| !d.is_empty()), "{schema}.{field}");
        }
    }
    let text = doc.to_string();
    assert!(
        text.contains("activation_url"),
        "the link form is documented"
    );
}
