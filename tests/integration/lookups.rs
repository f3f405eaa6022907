//! Live suppression look-ups against local stand-ins for the providers' APIs (wiremock): answers,
//! "not listed", timeouts and server errors, and what the check says about each.

use std::time::{Duration, Instant};

use invite_bot::config::ProvidersConfig;
use invite_bot::diagnosis::Diagnosis;
use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::workspace::WorkspaceSlug;
use invite_bot::providers::LiveLookups;
use serde_json::json;
use wiremock::matchers::{header, header_regex, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{both_backends, TestApp};
use crate::http_app::MEMBERS;

async fn check_with(app: &TestApp, providers: &str, email: &str) -> Diagnosis {
    let config: ProvidersConfig = toml::from_str(providers).unwrap();
    let engine = app
        .engine
        .clone()
        .with_lookups(LiveLookups::from_config(&config).expect("a provider with an API key"));
    let email = EmailAddress::parse(email).unwrap();
    let mut diagnoses = engine
        .check(&email, Some(&WorkspaceSlug::parse("acme").unwrap()))
        .await
        .unwrap();
    diagnoses.remove(0)
}

fn finding<'a>(diagnosis: &'a Diagnosis, outcome: &str) -> Option<&'a str> {
    diagnosis
        .findings
        .iter()
        .find(|f| f.outcome.as_str() == outcome)
        .map(|f| f.detail.as_str())
}

fn postmark(base: &str) -> String {
    format!(
        "[postmark]\nwebhook_username = \"u\"\nwebhook_password = \"p\"\napi_token = \"pm-token\"\napi_base = \"{base}\"\n"
    )
}

both_backends! {
    async fn postmark_says_suppressed_and_the_verdict_names_it(app) {
        app.seed(MEMBERS).await;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/message-streams/outbound/suppressions/dump"))
            .and(query_param("EmailAddress", "ada@school.example"))
            .and(header("X-Postmark-Server-Token", "pm-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Suppressions": [
                {"EmailAddress": "ada@school.example", "SuppressionReason": "HardBounce",
                 "Origin": "Recipient", "CreatedAt": "2026-11-20T10:00:00Z"}
            ]})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/message-streams/outbound/suppressions/dump"))
            .and(query_param("EmailAddress", "bob@school.example"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Suppressions": []})))
            .mount(&server)
            .await;

        // Stored data alone: nothing wrong yet.
        assert_eq!(app.check("ada@school.example", "acme").await.verdict.as_str(), "invite_sent");
        let ada = check_with(&app, &postmark(&server.uri()), "ada@school.example").await;
        assert_eq!(ada.verdict.as_str(), "invite_suppressed");
        let detail = finding(&ada, "live_suppressed").expect("a live finding");
        assert!(detail.contains("Postmark") && detail.contains("hard bounce"), "{detail}");

        let bob = check_with(&app, &postmark(&server.uri()), "bob@school.example").await;
        assert_eq!(bob.verdict.as_str(), "invite_sent");
        assert!(finding(&bob, "live_clear").unwrap().contains("Postmark does not have"));
    }

    async fn sendgrid_mailgun_and_ses_lists(app) {
        app.seed(MEMBERS).await;
        let server = MockServer::start().await;
        for list in ["bounces", "invalid_emails"] {
            Mock::given(method("GET"))
                .and(path(format!("/v3/suppression/{list}/ada@school.example")))
                .and(header("authorization", "Bearer SG.key"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/v3/suppression/spam_reports/ada@school.example"))
            .and(header("authorization", "Bearer SG.key"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([
                {"created": 1_795_000_000, "email": "ada@school.example"}
            ])))
            .mount(&server)
            .await;
        let sendgrid = format!("[sendgrid]\npublic_key = \"{}\"\napi_key = \"SG.key\"\napi_base = \"{}\"\n", test_p256_key(), server.uri());
        let ada = check_with(&app, &sendgrid, "ada@school.example").await;
        assert_eq!(ada.verdict.as_str(), "invite_suppressed");
        assert!(finding(&ada, "live_suppressed").unwrap().contains("SendGrid"));
        assert!(finding(&ada, "live_suppressed").unwrap().contains("spam complaint"));

        // Mailgun: 404 means "not in this table"; basic auth with user `api`.
        Mock::given(method("GET"))
            .and(path_regex(r"^/v3/mg\.example\.com/(bounces|complaints)/bob@school\.example$"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Address not found"})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v3/mg.example.com/unsubscribes/bob@school.example"))
            .and(header("authorization", "Basic YXBpOm1nLWtleQ=="))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "address": "bob@school.example", "tags": ["*"], "created_at": "Fri, 20 Nov 2026 11:02:55 UTC"
            })))
            .mount(&server)
            .await;
        let mailgun = format!("[mailgun]\nsigning_key = \"k\"\napi_key = \"mg-key\"\ndomain = \"mg.example.com\"\napi_base = \"{}\"\n", server.uri());
        let bob = check_with(&app, &mailgun, "bob@school.example").await;
        assert_eq!(bob.verdict.as_str(), "invite_suppressed");
        let detail = finding(&bob, "live_suppressed").unwrap();
        assert!(detail.contains("Mailgun") && detail.contains("unsubscribe"), "{detail}");

        // SES: a SigV4-signed GetSuppressedDestination.
        Mock::given(method("GET"))
            .and(path_regex(r"^/v2/email/suppression/addresses/cyd(%40|@)school\.example$"))
            .and(header_regex(
                "authorization",
                r"^AWS4-HMAC-SHA256 Credential=AKIDTEST/\d{8}/eu-west-1/ses/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$",
            ))
            .and(header_regex("x-amz-date", r"^\d{8}T\d{6}Z$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"SuppressedDestination": {
                "EmailAddress": "cyd@school.example", "Reason": "BOUNCE", "LastUpdateTime": 1_795_000_000
            }})))
            .mount(&server)
            .await;
        let ses = format!(
            "[ses]\ntopic_arn = \"arn:aws:sns:eu-west-1:1:t\"\nregion = \"eu-west-1\"\naccess_key_id = \"AKIDTEST\"\nsecret_access_key = \"secret\"\napi_base = \"{}\"\n",
            server.uri()
        );
        let cyd = check_with(&app, &ses, "cyd@school.example").await;
        assert_eq!(cyd.verdict.as_str(), "invite_suppressed");
        assert!(finding(&cyd, "live_suppressed").unwrap().contains("Amazon SES"));
    }

    async fn a_slow_provider_does_not_hold_the_reply(app) {
        app.seed(MEMBERS).await;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"Suppressions": [{"EmailAddress": "ada@school.example", "SuppressionReason": "HardBounce"}]}))
                    .set_delay(Duration::from_secs(4)),
            )
            .mount(&server)
            .await;
        let config = format!("lookup_timeout_ms = 300\n{}", postmark(&server.uri()));
        let started = Instant::now();
        let ada = check_with(&app, &config, "ada@school.example").await;
        // Well below the provider's 4 s: the look-up was abandoned at its timeout.
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(ada.verdict.as_str(), "invite_sent", "stored data decides");
        let detail = finding(&ada, "live_unanswered").expect("the check says Postmark did not answer");
        assert!(detail.contains("Postmark") && detail.contains("did not answer in time"), "{detail}");
        assert!(detail.contains("stored delivery data"), "{detail}");
    }

    async fn one_check_in_many_workspaces_asks_once(app) {
        app.seed(MEMBERS).await;
        app.seed(r#"
            [[workspace]]
            slug = "beta"
            name = "Beta"
            [[member]]
            workspace = "beta"
            email = "ada@school.example"
            role = "learner"
            status = "invited"
        "#).await;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(4)))
            .mount(&server)
            .await;
        let config: ProvidersConfig =
            toml::from_str(&format!("lookup_timeout_ms = 300\n{}", postmark(&server.uri()))).unwrap();
        let engine = app.engine.clone().with_lookups(LiveLookups::from_config(&config).unwrap());
        let started = Instant::now();
        let diagnoses = engine
            .check(&EmailAddress::parse("ada@school.example").unwrap(), None)
            .await
            .unwrap();
        assert_eq!(diagnoses.len(), 2);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        for diagnosis in &diagnoses {
            assert!(finding(diagnosis, "live_unanswered").is_some());
        }
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    async fn a_failing_provider_is_reported_and_others_still_count(app) {
        app.seed(MEMBERS).await;
        // A stored suppression, so the verdict is known without any provider.
        app.seed("[[suppression]]\nemail = \"bob@school.example\"\nreason = \"manual\"\nat = \"1 day ago\"\n").await;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v3/suppression/"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/message-streams/outbound/suppressions/dump"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
            .mount(&server)
            .await;
        let config = format!(
            "{}\n[sendgrid]\npublic_key = \"{}\"\napi_key = \"SG.key\"\napi_base = \"{}\"\n",
            postmark(&server.uri()),
            test_p256_key(),
            server.uri()
        );
        let bob = check_with(&app, &config, "bob@school.example").await;
        assert_eq!(bob.verdict.as_str(), "invite_suppressed");
        let unanswered: Vec<&str> = bob
            .findings
            .iter()
            .filter(|f| f.outcome.as_str() == "live_unanswered")
            .map(|f| f.detail.as_str())
            .collect();
        assert_eq!(unanswered.len(), 2, "{unanswered:?}");
        assert!(unanswered[0].contains("Postmark") && unanswered[0].contains("not the expected JSON"), "{unanswered:?}");
        assert!(unanswered[1].contains("SendGrid") && unanswered[1].contains("answered HTTP 503"), "{unanswered:?}");
        assert!(invite_bot::metrics::counter_value(
            "invite_bot_suppression_lookups_total",
            &[("provider", "SendGrid"), ("outcome", "error")]
        ) >= 1);
    }
}

/// Any valid P-256 public key: the SendGrid section needs one even when only look-ups are tested.
fn test_p256_key() -> String {
    use base64::Engine as _;
    use p256::pkcs8::EncodePublicKey;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    base64::engine::general_purpose::STANDARD
        .encode(key.verifying_key().to_public_key_der().unwrap().as_bytes())
}

#[test]
fn no_api_key_means_no_lookups() {
    let config: ProvidersConfig =
        toml::from_str("[postmark]\nwebhook_username = \"u\"\nwebhook_password = \"p\"\n").unwrap();
    assert!(LiveLookups::from_config(&config).is_none());
}
