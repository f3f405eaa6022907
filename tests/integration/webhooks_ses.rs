//! Amazon SES through SNS: RSA signatures (SignatureVersion 1 and 2) made with a key and a
//! self-signed certificate generated here, pre-loaded into the certificate cache (no network).

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use chrono::{SecondsFormat, Utc};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::{pem::LineEnding, EncodePem};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::helpers::both_backends;
use crate::http_app::{events, verdict, HttpApp, MEMBERS};

pub(crate) const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:invite-bot-ses-events";
pub(crate) const CERT_URL: &str =
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem";
const EXPIRED_CERT_URL: &str =
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-old.pem";

/// RSA keys are slow to generate in a debug build: two per test process, shared.
pub(crate) fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::rngs::OsRng;
        (
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        )
    })
}

fn certificate(key: &RsaPrivateKey, validity: Validity) -> String {
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).unwrap();
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::from(7u32),
        validity,
        Name::from_str("CN=sns.amazonaws.com").unwrap(),
        spki,
        &signer,
    )
    .unwrap();
    builder
        .build::<rsa::pkcs1v15::Signature>()
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

fn valid_certificate() -> String {
    certificate(
        &keys().0,
        Validity::from_now(Duration::from_secs(86_400)).unwrap(),
    )
}

fn expired_certificate() -> String {
    let now = SystemTime::now();
    certificate(
        &keys().0,
        Validity {
            not_before: Time::try_from(now - Duration::from_secs(3 * 86_400)).unwrap(),
            not_after: Time::try_from(now - Duration::from_secs(86_400)).unwrap(),
        },
    )
}

fn configure(config: &mut invite_bot::config::Config) {
    config.providers.ses = Some(
        toml::from_str(&format!(
            "topic_arn = \"{TOPIC}\"\ncert_host_pattern = 'sns\\.[a-z0-9-]+\\.amazonaws\\.com|127\\.0\\.0\\.1'\n"
        ))
        .unwrap(),
    );
}

pub(crate) async fn start(app: crate::helpers::TestApp) -> HttpApp {
    HttpApp::start_with(app, configure, |state| {
        let ses = state.webhooks.ses.as_ref().unwrap();
        ses.certificates
            .preload(CERT_URL, &valid_certificate())
            .unwrap();
        ses.certificates
            .preload(EXPIRED_CERT_URL, &expired_certificate())
            .unwrap();
    })
    .await
}

/// The canonical string SNS signs, written from the AWS documentation independently of the bot.
fn canonical(message: &Value) -> String {
    let fields: &[&str] = if message["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    fields
        .iter()
        .filter_map(|field| {
            message[*field]
                .as_str()
                .map(|value| format!("{field}\n{value}\n"))
        })
        .collect()
}

pub(crate) fn sign(message: &mut Value, key: &RsaPrivateKey, version: &str) {
    let text = canonical(message);
    let signature = match version {
        "1" => key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(text.as_bytes())),
        _ => key.sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(text.as_bytes()),
        ),
    }
    .unwrap();
    use base64::Engine as _;
    message["SignatureVersion"] = json!(version);
    message["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
}

pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn notification(event: &Value) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": format!("sns-{}", crate::helpers::random_suffix()),
        "TopicArn": TOPIC,
        "Message": event.to_string(),
        "Timestamp": now_text(),
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    })
}

fn mail(message_id: &str) -> Value {
    json!({
        "timestamp": "2026-11-26T03:59:00.000Z", "source": "noreply@example.com",
        "messageId": message_id, "destination": ["ada@school.example"],
        "commonHeaders": {"messageId": format!("<{message_id}@eu-west-1.amazonses.com>")},
    })
}

fn bounce(message_id: &str, kind: &str, recipients: &[&str]) -> Value {
    json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind, "bounceSubType": "General", "timestamp": "2026-11-26T04:00:00.000Z",
            "feedbackId": "0100018c-feedback",
            "bouncedRecipients": recipients.iter().map(|r| json!({
                "emailAddress": r, "action": "failed", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            })).collect::<Vec<_>>(),
        },
        "mail": mail(message_id),
    })
}

pub(crate) async fn post(http: &HttpApp, message: &Value) -> crate::http_app::Reply {
    http.post(
        "/webhooks/ses",
        &[(
            "x-amz-sns-message-type",
            message["Type"].as_str().unwrap_or(""),
        )],
        message.to_string(),
    )
    .await
}

both_backends! {
    async fn signed_notifications_of_both_versions(app) {
        app.seed(MEMBERS).await;
        let http = start(app).await;
        let (key, _) = keys();

        // Version 1 (SHA1withRSA): a permanent bounce for a known and an unknown recipient.
        let mut message = notification(&bounce("msg-ada", "Permanent", &["ada@school.example", "zed@elsewhere.example"]));
        sign(&mut message, key, "1");
        let reply = post(&http, &message).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.contains("\"stored\":2"), "{}", reply.body);
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_suppressed");

        // Version 2 (SHA256withRSA), with a Subject: a delivery, found by the Message-ID header.
        let delivery = json!({
            "eventType": "Delivery", "mail": mail("ses-internal-id"),
            "delivery": {"timestamp": "2026-11-26T04:01:00.000Z", "recipients": ["bob@school.example"],
                         "smtpResponse": "250 2.6.0 Message received"},
        });
        let mut message = notification(&delivery);
        message["Subject"] = json!("Amazon SES Email Event Notification");
        sign(&mut message, key, "2");
        assert_eq!(post(&http, &message).await.status, 200);
        let stored = events(&http.app).await;
        assert!(!stored[2].2, "ses-internal-id is no invitation's id, and neither is its header here");

        // Delivery delay and a transient bounce for cyd; a complaint for bob.
        let delay = json!({
            "eventType": "DeliveryDelay", "mail": mail("msg-cyd"),
            "deliveryDelay": {"timestamp": "2026-11-26T04:02:00.000Z", "delayType": "TransientCommunicationFailure",
                              "delayedRecipients": [{"emailAddress": "cyd@school.example", "status": "4.4.1"}]},
        });
        let mut message = notification(&delay);
        sign(&mut message, key, "2");
        assert_eq!(post(&http, &message).await.status, 200);
        assert_eq!(verdict(&http.app, "cyd@school.example").await, "invite_deferred");
        let complaint = json!({
            "notificationType": "Complaint", "mail": mail("msg-bob"),
            "complaint": {"timestamp": "2026-11-26T04:03:00.000Z", "complainedRecipients": [{"emailAddress": "bob@school.example"}]},
        });
        let mut message = notification(&complaint);
        sign(&mut message, key, "1");
        assert_eq!(post(&http, &message).await.status, 200);
        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_suppressed");

        // SNS delivers the same notification again: nothing new.
        let before = http.stored().await;
        assert_eq!(post(&http, &message).await.status, 200);
        assert_eq!(http.stored().await, before);
        assert_eq!(before, (5, 3));
        http.stop().await;
    }

    async fn forged_foreign_and_stale_messages_store_nothing(app) {
        app.seed(MEMBERS).await;
        let http = start(app).await;
        let (key, other_key) = keys();
        let event = bounce("msg-ada", "Permanent", &["ada@school.example"]);

        let mut wrong_key = notification(&event);
        sign(&mut wrong_key, other_key, "2");
        let mut tampered = notification(&event);
        sign(&mut tampered, key, "2");
        tampered["Message"] = json!(bounce("msg-bob", "Permanent", &["bob@school.example"]).to_string());
        let mut stale = notification(&event);
        stale["Timestamp"] = json!((Utc::now() - chrono::Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Millis, true));
        sign(&mut stale, key, "2");
        let mut foreign_topic = notification(&event);
        foreign_topic["TopicArn"] = json!("arn:aws:sns:eu-west-1:999999999999:someone-else");
        sign(&mut foreign_topic, key, "2");
        let mut foreign_host = notification(&event);
        foreign_host["SigningCertURL"] = json!("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem");
        sign(&mut foreign_host, key, "2");
        let mut plain_http = notification(&event);
        plain_http["SigningCertURL"] = json!(CERT_URL.replace("https://", "http://"));
        sign(&mut plain_http, key, "2");
        let mut expired = notification(&event);
        expired["SigningCertURL"] = json!(EXPIRED_CERT_URL);
        sign(&mut expired, key, "2");
        let mut version_3 = notification(&event);
        sign(&mut version_3, key, "2");
        version_3["SignatureVersion"] = json!("3");
        let mut unsigned = notification(&event);
        unsigned["SignatureVersion"] = json!("1");
        unsigned["Signature"] = json!("");

        for (name, message, reason) in [
            ("wrong key", wrong_key, "does not match"),
            ("tampered", tampered, "does not match"),
            ("stale", stale, "seconds away"),
            ("foreign topic", foreign_topic, "topic"),
            ("foreign host", foreign_host, "allowed host"),
            ("plain http", plain_http, "allowed host"),
            ("expired certificate", expired, "expired"),
            ("version 3", version_3, "SignatureVersion"),
            ("unsigned", unsigned, "does not match"),
        ] {
            let reply = post(&http, &message).await;
            assert_eq!(reply.status, 401, "{name}: {}", reply.body);
            assert!(reply.body.contains(reason), "{name}: {}", reply.body);
        }
        assert_eq!(http.stored().await, (0, 0));

        let reply = http.post("/webhooks/ses", &[], "<xml/>").await;
        assert_eq!(reply.status, 400);
        assert!(reply.body.contains("not an SNS message"), "{}", reply.body);
        let mut not_ses = notification(&json!({"hello": "world"}));
        sign(&mut not_ses, key, "2");
        let reply = post(&http, &not_ses).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(reply.body.contains("not an SES event"), "{}", reply.body);
        assert_eq!(http.stored().await, (0, 0));
        http.stop().await;
    }

    async fn subscriptions_are_confirmed_for_the_topic_only(app) {
        let http = start(app).await;
        let (key, _) = keys();
        let aws = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/confirm"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<ConfirmSubscriptionResponse/>"))
            .expect(1)
            .mount(&aws)
            .await;
        let subscription = |topic: &str| json!({
            "Type": "SubscriptionConfirmation", "MessageId": "sub-1", "Token": "2336412f37fb687f5d51e6e2425",
            "TopicArn": topic, "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": format!("{}/confirm", aws.uri()), "Timestamp": now_text(),
            "SigningCertURL": CERT_URL,
        });
        let mut foreign = subscription("arn:aws:sns:eu-west-1:999999999999:someone-else");
        sign(&mut foreign, key, "1");
        assert_eq!(post(&http, &foreign).await.status, 401);
        let mut tampered = subscription(TOPIC);
        sign(&mut tampered, key, "1");
        tampered["SubscribeURL"] = json!(format!("{}/confirm?evil=1", aws.uri()));
        assert_eq!(post(&http, &tampered).await.status, 401);

        let mut genuine = subscription(TOPIC);
        sign(&mut genuine, key, "1");
        let reply = post(&http, &genuine).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        aws.verify().await;
        assert_eq!(http.stored().await, (0, 0));
        http.stop().await;
    }

    async fn only_sns_certificate_urls_are_fetched_once_each_and_the_cache_stays_bounded(app) {
        app.seed(MEMBERS).await;
        let aws = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/SimpleNotificationService-live.pem"))
            .respond_with(ResponseTemplate::new(200).set_body_string(valid_certificate()).set_delay(Duration::from_millis(200)))
            .expect(1)
            .mount(&aws)
            .await;
        let held = std::sync::Arc::new(std::sync::Mutex::new(None));
        let keep = held.clone();
        let http = HttpApp::start_with(app, configure, move |state| {
            *keep.lock().unwrap() = state.webhooks.ses.clone();
        })
        .await;
        let ses = held.lock().unwrap().clone().unwrap();
        let (key, _) = keys();
        let live_url = format!("{}/SimpleNotificationService-live.pem", aws.uri());

        // Ten messages signed with a certificate not yet held: one fetch serves them all.
        let mut replies = tokio::task::JoinSet::new();
        for i in 0..10 {
            let mut message = notification(&bounce(&format!("msg-{i}"), "Transient", &["ada@school.example"]));
            message["SigningCertURL"] = json!(live_url);
            sign(&mut message, key, "2");
            let (client, url) = (http.client.clone(), format!("{}/webhooks/ses", http.base));
            replies.spawn(async move {
                let reply = client
                    .post(url)
                    .header("x-amz-sns-message-type", "Notification")
                    .body(message.to_string())
                    .send()
                    .await
                    .unwrap();
                (reply.status().as_u16(), reply.text().await.unwrap())
            });
        }
        while let Some(reply) = replies.join_next().await {
            let (status, body) = reply.unwrap();
            assert_eq!(status, 200, "{body}");
        }
        assert_eq!(ses.certificates.len(), 1);

        // Anything but a bare SNS certificate URL is refused before any fetch, and never cached.
        let host = "https://sns.eu-west-1.amazonaws.com";
        for (name, url) in [
            ("query", format!("{live_url}?x=1")),
            ("another query", format!("{CERT_URL}?cache-buster=2")),
            ("fragment", format!("{CERT_URL}#x")),
            ("user info", CERT_URL.replace("https://", "https://user:pw@")),
            ("port", format!("{}:8443/SimpleNotificationService-test.pem", host)),
            ("not an SNS certificate", format!("{host}/cert.pem")),
            ("not a certificate", format!("{host}/SimpleNotificationService-test.txt")),
        ] {
            let mut message = notification(&bounce("msg-x", "Permanent", &["ada@school.example"]));
            message["SigningCertURL"] = json!(url);
            sign(&mut message, key, "2");
            let reply = post(&http, &message).await;
            assert_eq!(reply.status, 401, "{name}: {}", reply.body);
        }
        assert_eq!(ses.certificates.len(), 1);
        aws.verify().await;
        http.stop().await;
    }
}
