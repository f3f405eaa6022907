//! Postmark webhooks: HTTP Basic credentials, one record per request.

use base64::Engine as _;
use serde_json::json;

use crate::helpers::both_backends;
use crate::http_app::{events, verdict, HttpApp, MEMBERS};

fn configure(config: &mut invite_bot::config::Config) {
    config.providers.postmark = Some(
        toml::from_str(
            r#"
            webhook_username = "postmark"
            webhook_password = "correct horse battery staple"
            "#,
        )
        .unwrap(),
    );
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn good_auth() -> String {
    basic("postmark", "correct horse battery staple")
}

fn bounce(message_id: &str, email: &str, id: u64, kind: &str) -> String {
    json!({
        "RecordType": "Bounce", "ID": id, "Type": kind, "TypeCode": 1, "Name": "Hard bounce",
        "MessageID": message_id, "ServerID": 23, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email, "From": "noreply@example.com", "BouncedAt": "2026-11-26T04:00:00.123456Z",
        "DumpAvailable": true, "Inactive": true, "CanActivate": true, "Subject": "Your invitation",
    })
    .to_string()
}

both_backends! {
    async fn a_hard_bounce_changes_the_verdict(app) {
        app.seed(MEMBERS).await;
        assert_eq!(verdict(&app, "ada@school.example").await, "invite_sent");
        let http = HttpApp::start(app, configure).await;
        let auth = good_auth();
        let body = bounce("msg-ada", "Ada@School.example", 42, "HardBounce");
        let reply = http.post("/webhooks/postmark", &[("authorization", &auth)], body.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(http.stored().await, (1, 1));
        let stored = events(&http.app).await;
        assert_eq!(stored[0].0, "bounced");
        assert_eq!(stored[0].1.as_deref(), Some("hard"));
        assert!(stored[0].2, "attached to ada's invitation");

        // Postmark retries the same record: nothing new.
        let again = http.post("/webhooks/postmark", &[("authorization", &auth)], body).await;
        assert_eq!(again.status, 200);
        assert!(again.body.contains("\"duplicates\":1"), "{}", again.body);
        assert_eq!(http.stored().await, (1, 1));

        // The bounce put the address on the suppression list, which wins over the bounce itself.
        let diagnosis = http.app.check("ada@school.example", "acme").await;
        assert_eq!(diagnosis.verdict.as_str(), "invite_suppressed");
        assert!(diagnosis.findings.iter().any(|f| f.outcome.as_str() == "hard_bounce"
            && f.detail.contains("does not exist")), "{:?}", diagnosis.findings);
        http.stop().await;
    }

    async fn delivery_soft_bounce_and_complaint(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let auth = good_auth();
        let delivery = json!({
            "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": "msg-bob",
            "Recipient": "bob@school.example", "Tag": "invite", "DeliveredAt": "2026-11-26T04:01:00Z",
            "Details": "smtp;250 2.0.0 OK", "Metadata": {}
        });
        assert_eq!(http.post("/webhooks/postmark", &[("authorization", &auth)], delivery.to_string()).await.status, 200);
        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_delivered");

        let soft = bounce("msg-cyd", "cyd@school.example", 43, "SoftBounce");
        assert_eq!(http.post("/webhooks/postmark", &[("authorization", &auth)], soft).await.status, 200);
        assert_eq!(verdict(&http.app, "cyd@school.example").await, "invite_deferred");

        let complaint = json!({
            "RecordType": "SpamComplaint", "ID": 44, "Type": "SpamComplaint", "TypeCode": 512,
            "MessageID": "msg-bob", "Email": "bob@school.example", "BouncedAt": "2026-11-26T04:05:00Z",
        });
        assert_eq!(http.post("/webhooks/postmark", &[("authorization", &auth)], complaint.to_string()).await.status, 200);
        assert_eq!(verdict(&http.app, "bob@school.example").await, "invite_suppressed");

        // Opens and clicks are accepted and ignored.
        let open = json!({"RecordType": "Open", "MessageID": "msg-bob", "Recipient": "bob@school.example"});
        assert_eq!(http.post("/webhooks/postmark", &[("authorization", &auth)], open.to_string()).await.status, 200);
        assert_eq!(http.stored().await, (3, 1));
        http.stop().await;
    }

    async fn an_unknown_message_is_kept(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let body = bounce("msg-from-elsewhere", "zed@elsewhere.example", 45, "HardBounce");
        let reply = http.post("/webhooks/postmark", &[("authorization", &good_auth())], body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.contains("\"unknown_message\":1"), "{}", reply.body);
        let stored = events(&http.app).await;
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].2, "no invitation");
        assert_eq!(stored[0].3.as_deref(), Some("msg-from-elsewhere"));
        http.stop().await;
    }

    async fn an_early_event_attaches_once_the_invitation_is_recorded(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let delivery = json!({
            "RecordType": "Delivery", "MessageID": "msg-ada-2", "Recipient": "ada@school.example",
            "DeliveredAt": "2026-11-26T04:01:00Z",
        });
        let reply = http.post("/webhooks/postmark", &[("authorization", &good_auth())], delivery.to_string()).await;
        assert!(reply.body.contains("\"unknown_message\":1"), "{}", reply.body);
        // The resend's invitation is written after its delivery report arrived (in the header's
        // form, which is the same message): recording it attaches the report.
        http.app.seed(r#"
            [[invitation]]
            workspace = "acme"
            email = "ada@school.example"
            sent_at = "1 hour ago"
            message_id = "<msg-ada-2>"
        "#).await;
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_delivered");
        let store = http.app.engine.store();
        let invitation = store.latest_invitation(http.app.check("ada@school.example", "acme").await.member.unwrap().id).await.unwrap().unwrap();
        assert_eq!(invitation.message_id.as_deref(), Some("msg-ada-2"));
        assert_eq!(store.attach_early_events(invitation.id, "<msg-ada-2>").await.unwrap(), 0);
        http.stop().await;
    }

    async fn wrong_or_missing_credentials_store_nothing(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, configure).await;
        let body = bounce("msg-ada", "ada@school.example", 46, "HardBounce");
        for auth in [
            Some(basic("postmark", "wrong")),
            Some(basic("someone", "correct horse battery staple")),
            Some("Bearer abc".to_owned()),
            Some("Basic !!!".to_owned()),
            None,
        ] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let reply = http.post("/webhooks/postmark", &headers, body.clone()).await;
            assert_eq!(reply.status, 401, "{auth:?}: {}", reply.body);
        }
        assert_eq!(http.stored().await, (0, 0));
        assert_eq!(verdict(&http.app, "ada@school.example").await, "invite_sent");
        http.stop().await;
    }

    async fn malformed_records_get_a_reason(app) {
        let http = HttpApp::start(app, configure).await;
        let auth = good_auth();
        for (body, reason) in [
            ("not json".to_owned(), "not a Postmark webhook record"),
            (json!({"RecordType": "Bounce", "ID": 1, "Type": "HardBounce", "Email": "a@b.example", "BouncedAt": "2026-11-26T04:00:00Z"}).to_string(), "no MessageID"),
            (bounce("m", "not an address", 1, "HardBounce"), "not an email address"),
            (json!({"RecordType": "Delivery", "MessageID": "m", "Recipient": "a@b.example", "DeliveredAt": "yesterday"}).to_string(), "RFC 3339"),
        ] {
            let reply = http.post("/webhooks/postmark", &[("authorization", &auth)], body).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
            assert!(reply.body.contains(reason), "{reason}: {}", reply.body);
        }
        assert_eq!(http.stored().await, (0, 0));
        http.stop().await;
    }
}
