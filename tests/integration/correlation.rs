//! Correlation: an invitation the bot resent itself through SMTP is found again by each provider's
//! signed events, by the reference the email carried (Postmark metadata, SendGrid custom args,
//! Mailgun user variables, SES message tags), by its Message-ID, or by the provider's queue id from
//! the SMTP 250 reply, also when the event arrives before the send is recorded.

use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{both_backends, random_suffix, TestApp};
use crate::http_app::{verdict, HttpApp};

const ADA: &str = "ada@school.example";

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[member]]
workspace = "acme"
email = "ada@school.example"
role = "learner"
status = "invited"
"#;

/// What the resent invitation email carried, as the SMTP server received it.
struct Sent {
    /// The Message-ID header without its angle brackets.
    message_id: String,
    invitation_id: i64,
    headers: crate::smtp::ReceivedMail,
}

impl Sent {
    fn header(&self, name: &str) -> String {
        self.headers
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header in:\n{}", self.headers.data))
    }
}

/// Resends ada's invitation through the in-process SMTP server.
async fn resend(app: &TestApp) -> Sent {
    assert_eq!(verdict(app, ADA).await, "invite_never_sent");
    let outcome = app
        .actions
        .resend_invite(&app.operator(), &app.email(ADA), &app.slug("acme"), None)
        .await
        .unwrap();
    assert!(
        matches!(outcome, invite_bot::actions::ActionOutcome::Done(_)),
        "{outcome:?}"
    );
    assert_eq!(verdict(app, ADA).await, "invite_sent");
    let mail = app.smtp.received().pop().expect("the invitation went out");
    let header = mail.header("Message-ID").expect("a Message-ID");
    let message_id = header
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .unwrap_or_else(|| panic!("Message-ID in angle brackets: {header}"))
        .to_owned();
    sent(app, message_id, mail).await
}

async fn sent(app: &TestApp, message_id: String, mail: crate::smtp::ReceivedMail) -> Sent {
    let invitation = app.latest_invitation(ADA, "acme").await;
    // Stored as webhooks look it up: the bare id.
    assert_eq!(invitation.message_id.as_deref(), Some(message_id.as_str()));
    Sent {
        message_id,
        invitation_id: invitation.id,
        headers: mail,
    }
}

async fn query<T>(app: &TestApp, sql: &'static str) -> Vec<T>
where
    T: Send + Unpin,
    for<'r> T:
        sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    match app.engine.store() {
        invite_bot::store::Store::Sqlite(pool, _) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
        invite_bot::store::Store::Postgres(pool, _) => {
            sqlx::query_as(sql).fetch_all(pool).await.unwrap()
        }
    }
}

/// delivery_events as (event, invitation_id, message_id).
pub async fn stored_events(app: &TestApp) -> Vec<(String, Option<i64>, Option<String>)> {
    query(
        app,
        "SELECT event, invitation_id, message_id FROM delivery_events ORDER BY id",
    )
    .await
}

async fn provider_message_id(app: &TestApp, invitation_id: i64) -> Option<String> {
    let rows: Vec<(i64, Option<String>)> =
        query(app, "SELECT id, provider_message_id FROM invitations").await;
    rows.into_iter()
        .find(|r| r.0 == invitation_id)
        .and_then(|r| r.1)
}

/// Every event stored so far is attached to the resent invitation.
async fn all_attached(app: &TestApp, sent: &Sent, count: usize) {
    let rows = stored_events(app).await;
    assert_eq!(rows.len(), count, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.1 == Some(sent.invitation_id)),
        "every event attached to invitation {}: {rows:?}",
        sent.invitation_id
    );
}

async fn has_hard_bounce(app: &TestApp) -> bool {
    let diagnosis = app.check(ADA, "acme").await;
    diagnosis
        .findings
        .iter()
        .any(|f| f.outcome.as_str() == "hard_bounce")
}

// --- Postmark: HTTP Basic; our id comes back in Metadata ---

fn postmark(config: &mut invite_bot::config::Config) {
    config.providers.postmark = Some(
        toml::from_str("webhook_username = \"postmark\"\nwebhook_password = \"pw-postmark\"")
            .unwrap(),
    );
}

async fn post_postmark(http: &HttpApp, record: &Value) -> String {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("postmark:pw-postmark")
    );
    let reply = http
        .post(
            "/webhooks/postmark",
            &[("authorization", &auth)],
            record.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

// --- SendGrid: ECDSA over timestamp + body; custom args come back as top-level fields ---

struct SendgridKeys(p256::ecdsa::SigningKey);

impl SendgridKeys {
    fn new() -> Self {
        SendgridKeys(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }

    fn configure(&self) -> impl FnOnce(&mut invite_bot::config::Config) + '_ {
        use p256::pkcs8::EncodePublicKey;
        move |config| {
            let der = self.0.verifying_key().to_public_key_der().unwrap();
            let key = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
            config.providers.sendgrid =
                Some(toml::from_str(&format!("public_key = \"{key}\"")).unwrap());
        }
    }

    async fn post(&self, http: &HttpApp, events: &Value) -> String {
        use p256::ecdsa::signature::Signer;
        let body = events.to_string();
        let timestamp = Utc::now().timestamp().to_string();
        let signature: p256::ecdsa::Signature =
            self.0.sign(format!("{timestamp}{body}").as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
        let reply = http
            .post(
                "/webhooks/sendgrid",
                &[
                    ("x-twilio-email-event-webhook-signature", &signature),
                    ("x-twilio-email-event-webhook-timestamp", &timestamp),
                ],
                body,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }
}

// --- Mailgun: HMAC of timestamp + token in the body; variables come back as user-variables ---

const MAILGUN_KEY: &str = "key-correlation-0123456789";

fn mailgun(config: &mut invite_bot::config::Config) {
    config.providers.mailgun =
        Some(toml::from_str(&format!("signing_key = \"{MAILGUN_KEY}\"")).unwrap());
}

async fn post_mailgun(http: &HttpApp, data: &Value) -> String {
    use hmac::{Hmac, Mac};
    let token = random_suffix() + &random_suffix();
    let timestamp = Utc::now().timestamp().to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let body = json!({
        "signature": {"timestamp": timestamp, "token": token,
                      "signature": hex::encode(mac.finalize().into_bytes())},
        "event-data": data,
    });
    let reply = http.post("/webhooks/mailgun", &[], body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

// --- SES through SNS: RSA-signed notifications; tags come back in mail.tags ---

async fn post_ses(http: &HttpApp, event: &Value) -> String {
    use crate::webhooks_ses::{keys, now_text, sign, CERT_URL, TOPIC};
    let mut message = json!({
        "Type": "Notification",
        "MessageId": format!("sns-{}", random_suffix()),
        "TopicArn": TOPIC,
        "Message": event.to_string(),
        "Timestamp": now_text(),
        "SigningCertURL": CERT_URL,
    });
    sign(&mut message, &keys().0, "2");
    let reply = crate::webhooks_ses::post(http, &message).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn ses_mail(ses_id: &str, tags: Option<&str>) -> Value {
    let mut mail = json!({
        "timestamp": "2026-11-26T03:59:00.000Z", "source": "noreply@example.com",
        "messageId": ses_id, "destination": [ADA],
        // SES replaces the Message-ID header with its own.
        "commonHeaders": {"messageId": format!("<{ses_id}@eu-west-1.amazonses.com>")},
    });
    if let Some(tag) = tags {
        mail["tags"] = json!({"ses:configuration-set": ["invite-bot"], "invite_ref": [tag]});
    }
    mail
}

fn ses_delivery(mail: Value) -> Value {
    json!({
        "eventType": "Delivery", "mail": mail,
        "delivery": {"timestamp": "2026-11-26T04:01:00.000Z", "recipients": [ADA],
                     "smtpResponse": "250 2.6.0 Message received"},
    })
}

fn ses_bounce(mail: Value) -> Value {
    json!({
        "eventType": "Bounce", "mail": mail,
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "timestamp": "2026-11-26T04:02:00.000Z", "feedbackId": "0100018c-feedback",
                   "bouncedRecipients": [{"emailAddress": ADA, "action": "failed", "status": "5.1.1",
                                          "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
    })
}

const SES_QUEUE_ID: &str = "0100018c3e7a9b2f-4d1c2b3a-5e6f-4a7b-8c9d-0e1f2a3b4c5d-000000";

both_backends! {
    async fn postmark_events_find_a_resent_invitation_by_its_metadata(app) {
        app.seed(PEOPLE).await;
        let http = HttpApp::start(app, postmark).await;
        let sent = resend(&http.app).await;
        let reference = sent.header("X-PM-Metadata-invite_ref");
        assert_eq!(reference, sent.message_id);

        // Postmark reports under its own MessageID, with the metadata the email was sent with.
        let postmark_id = "b7bc2f4a-e38e-4336-af7d-e6c392c2f817";
        let delivery = json!({
            "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
            "MessageID": postmark_id, "Recipient": ADA, "DeliveredAt": "2026-11-26T04:01:00Z",
            "Details": "smtp;250 2.0.0 OK", "Metadata": {"invite_ref": reference},
        });
        let body = post_postmark(&http, &delivery).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_delivered");

        let bounce = json!({
            "RecordType": "Bounce", "ID": 4323372036854775807u64, "Type": "HardBounce", "TypeCode": 1,
            "MessageID": postmark_id, "Email": ADA, "BouncedAt": "2026-11-26T04:02:00Z",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Metadata": {"invite_ref": reference},
        });
        post_postmark(&http, &bounce).await;
        // The hard bounce also suppressed the address, which the verdict names first.
        assert_eq!(verdict(&http.app, ADA).await, "invite_suppressed");
        assert!(has_hard_bounce(&http.app).await);
        all_attached(&http.app, &sent, 2).await;
        let rows = stored_events(&http.app).await;
        assert!(rows.iter().all(|r| r.2.as_deref() == Some(sent.message_id.as_str())), "{rows:?}");
        http.stop().await;
    }

    async fn sendgrid_events_find_a_resent_invitation_by_custom_args_or_queue_id(app) {
        app.seed(PEOPLE).await;
        app.smtp.set_accept_text("2.0.0 Ok: queued as 9kzyCa2WTZ2b8CcR1Bn8Hg");
        let keys = SendgridKeys::new();
        let http = HttpApp::start(app, keys.configure()).await;
        let sent = resend(&http.app).await;
        let smtpapi: Value = serde_json::from_str(&sent.header("X-SMTPAPI")).unwrap();
        let reference = smtpapi["unique_args"]["invite_ref"].as_str().unwrap().to_owned();
        assert_eq!(reference, sent.message_id);
        assert_eq!(
            provider_message_id(&http.app, sent.invitation_id).await.as_deref(),
            Some("9kzyCa2WTZ2b8CcR1Bn8Hg")
        );

        // By the custom arg (with an sg_message_id SendGrid gave another send).
        let delivered = json!([{
            "email": ADA, "timestamp": 1_795_000_000, "event": "delivered",
            "sg_event_id": format!("sg-{}", random_suffix()),
            "sg_message_id": "otherQueueId000.filterdrecv-5bd4b6dd4-abcde-1-5F2A-3.0",
            "response": "250 OK", "invite_ref": reference,
        }]);
        let body = keys.post(&http, &delivered).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_delivered");

        // By the queue id alone: sg_message_id starts with the X-Message-Id SendGrid's 250 named.
        let bounce = json!([{
            "email": ADA, "timestamp": 1_795_000_100, "event": "bounce", "type": "bounce",
            "sg_event_id": format!("sg-{}", random_suffix()),
            "sg_message_id": "9kzyCa2WTZ2b8CcR1Bn8Hg.filterdrecv-5bd4b6dd4-abcde-1-5F2A-3.0",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
            "status": "5.1.1",
        }]);
        let body = keys.post(&http, &bounce).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_suppressed");
        assert!(has_hard_bounce(&http.app).await);
        all_attached(&http.app, &sent, 2).await;
        http.stop().await;
    }

    async fn mailgun_events_find_a_resent_invitation_by_user_variables_or_message_id(app) {
        app.seed(PEOPLE).await;
        let http = HttpApp::start(app, mailgun).await;
        let sent = resend(&http.app).await;
        let variables: Value = serde_json::from_str(&sent.header("X-Mailgun-Variables")).unwrap();
        assert_eq!(variables["invite_ref"].as_str(), Some(sent.message_id.as_str()));

        // By the user variables, whatever the Message-ID header became on the way.
        let delivered = json!({
            "event": "delivered", "id": format!("ev-{}", random_suffix()), "timestamp": 1_795_000_000.25,
            "recipient": ADA, "log-level": "info",
            "message": {"headers": {"message-id": "<20261126040100.1.ABCDEF@mg.example.com>", "to": ADA}},
            "delivery-status": {"code": 250, "message": "OK", "description": ""},
            "user-variables": variables,
        });
        let body = post_mailgun(&http, &delivered).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_delivered");

        // By the Message-ID header alone, as the email carried it (in angle brackets).
        let failed = json!({
            "event": "failed", "severity": "permanent", "id": format!("ev-{}", random_suffix()),
            "timestamp": 1_795_000_100.5, "recipient": ADA, "log-level": "error",
            "message": {"headers": {"message-id": format!("<{}>", sent.message_id), "to": ADA}},
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist", "description": ""},
        });
        let body = post_mailgun(&http, &failed).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_suppressed");
        assert!(has_hard_bounce(&http.app).await);
        all_attached(&http.app, &sent, 2).await;
        http.stop().await;
    }

    async fn ses_events_find_a_resent_invitation_by_its_tags(app) {
        app.seed(PEOPLE).await;
        let http = crate::webhooks_ses::start(app).await;
        let sent = resend(&http.app).await;
        let tags = sent.header("X-SES-MESSAGE-TAGS");
        let tag = tags.strip_prefix("invite_ref=").unwrap_or_else(|| panic!("{tags}"));
        assert!(tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{tag}");

        // The SMTP server named no queue id here: the tag alone finds the invitation.
        let body = post_ses(&http, &ses_delivery(ses_mail("0100018c-unknown-000000", Some(tag)))).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert_eq!(verdict(&http.app, ADA).await, "invite_delivered");
        post_ses(&http, &ses_bounce(ses_mail("0100018c-unknown-000000", Some(tag)))).await;
        assert_eq!(verdict(&http.app, ADA).await, "invite_suppressed");
        assert!(has_hard_bounce(&http.app).await);
        all_attached(&http.app, &sent, 2).await;
        let rows = stored_events(&http.app).await;
        assert!(rows.iter().all(|r| r.2.as_deref() == Some(sent.message_id.as_str())), "{rows:?}");
        http.stop().await;
    }

    async fn an_ses_event_that_beats_the_send_record_attaches_by_queue_id(app) {
        app.seed(PEOPLE).await;
        // SES names its message id in the 250: `Ok <id>`.
        app.smtp.set_accept_text(&format!("Ok {SES_QUEUE_ID}"));
        let http = crate::webhooks_ses::start(app).await;
        let member = http.app.check(ADA, "acme").await.member.unwrap();
        // What resend commits before it sends; the send itself happens after the event below.
        let now = Utc::now();
        let start = http.app.engine.store().begin_resend(&invite_bot::store::NewResend {
            member_id: member.id,
            recipient: ADA,
            idempotency_key: None,
            actor_id: "operator",
            actor_name: "local operator",
            reference: "RSD-EARLY1",
            message_id: "<early.0123@invite-bot>",
            now,
            expires_at: now + chrono::Duration::days(7),
            limits: http.app.actions.settings().resend_limits,
        }).await.unwrap();
        assert!(matches!(start, invite_bot::store::ResendStart::Started { .. }));

        // An event with only SES's id (classic notifications carry no tags) arrives first.
        let body = post_ses(&http, &ses_delivery(ses_mail(SES_QUEUE_ID, None))).await;
        assert!(body.contains("\"unknown_message\":1"), "{body}");

        // The send: SES's 250 names the id, recording the send attaches the waiting event.
        assert_eq!(http.app.actions.send_due_invitations().await.unwrap(), 1);
        let mail = http.app.smtp.received().pop().unwrap();
        assert_eq!(mail.header("Message-ID").as_deref(), Some("<early.0123@invite-bot>"));
        let sent = sent(&http.app, "early.0123@invite-bot".into(), mail).await;
        assert_eq!(provider_message_id(&http.app, sent.invitation_id).await.as_deref(), Some(SES_QUEUE_ID));
        assert_eq!(verdict(&http.app, ADA).await, "invite_delivered");
        all_attached(&http.app, &sent, 1).await;

        // A later event with only the queue id attaches at once.
        let body = post_ses(&http, &ses_bounce(ses_mail(SES_QUEUE_ID, None))).await;
        assert!(body.contains("\"unknown_message\":0"), "{body}");
        assert!(has_hard_bounce(&http.app).await);
        all_attached(&http.app, &sent, 2).await;
        http.stop().await;
    }
}
