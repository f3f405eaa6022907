//! The parsers that read untrusted bytes, each run the way the bot runs it, with the invariants it
//! must keep checked by panicking. The cargo-fuzz targets in `fuzz/` and the property tests in
//! `tests/integration/properties.rs` call these same functions, so a finding of one is a failing
//! case of the other. No network, no database, no clock: everything here is pure.
//!
//! Every function takes whatever bytes it is given and must return normally; a panic is a finding.

use chrono::{DateTime, Utc};

use crate::chat::BUTTON_PREFIX;
use crate::domain::email::{EmailAddress, EmailError};
use crate::domain::workspace::WorkspaceSlug;
use crate::providers::webhook::{
    WebhookError, MAX_DETAIL_CHARS, MAX_EVENT_KEY_BYTES, MAX_MESSAGE_ID_BYTES,
};
use crate::store::WebhookBatch;

/// The longest address (RFC 5321), which a parsed address's key never exceeds.
const MAX_KEY_BYTES: usize = 254;

/// Error text is shown to people and returned to callers: it may quote the input, but never much
/// more of it than the parser reads.
const MAX_ERROR_CHARS: usize = 2 * 1024 + 200;

/// `EmailAddress::parse`: never panics; an accepted address has a bounded key that parses back to
/// itself, and what was entered parses to the same address.
pub fn email_address(input: &[u8]) {
    let input = String::from_utf8_lossy(input);
    match EmailAddress::parse(&input) {
        Ok(address) => check_address(&address),
        Err(error) => check_email_error(&error),
    }
}

/// The invariants of one parsed address.
pub fn check_address(address: &EmailAddress) {
    let key = address.key();
    assert!(key.len() <= MAX_KEY_BYTES, "key of {} bytes", key.len());
    assert_eq!(
        format!("{}@{}", address.local_part(), address.domain()),
        key,
        "local part and domain make the key"
    );
    assert!(address.domain().is_ascii(), "the domain is punycode");
    let again = EmailAddress::parse(key)
        .unwrap_or_else(|e| panic!("the key {key:?} does not parse back: {e}"));
    assert_eq!(again.key(), key, "the key is its own key");
    let entered = EmailAddress::parse(address.as_entered()).unwrap_or_else(|e| {
        panic!(
            "what was entered, {:?}, does not parse again: {e}",
            address.as_entered()
        )
    });
    assert_eq!(entered.key(), key, "what was entered keeps its key");
    assert!(address
        .masked()
        .ends_with(&format!("***@{}", address.domain())));
}

fn check_email_error(error: &EmailError) {
    let text = error.to_string();
    assert!(
        text.chars().count() <= MAX_ERROR_CHARS,
        "an error of {} characters",
        text.chars().count()
    );
    // The text is echoed to the person who typed the address: nothing in it may hide or reorder.
    assert!(
        !text.chars().any(|c| c.is_control()),
        "a control character echoed: {text:?}"
    );
}

/// A provider whose webhook body is mapped to delivery events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    Sendgrid,
    Mailgun,
    /// The SNS envelope, and the SES event it carries.
    Ses,
    /// The SES event alone (an SNS notification's `Message`), so the fuzzer reaches the mapping
    /// without having to write JSON inside a JSON string.
    SesEvent,
}

/// A provider's body -> events mapping (the step after authentication): never panics, and every
/// event it returns has bounded fields and a recipient that is a parsed address.
pub fn webhook_body(provider: Provider, body: &[u8]) {
    use crate::providers::{mailgun, postmark, sendgrid, ses};
    let mapped = match provider {
        Provider::Postmark => postmark::webhook::events(body),
        Provider::Sendgrid => sendgrid::webhook::events(body),
        Provider::Mailgun => mailgun::webhook::events(body),
        Provider::Ses => ses::webhook::events(body),
        Provider::SesEvent => match std::str::from_utf8(body) {
            Ok(text) => ses::webhook::ses_event(text),
            Err(_) => return,
        },
    };
    match mapped {
        Ok(batch) => check_batch(&batch, body.len()),
        // The mapping only ever calls a body malformed: authentication is not its business.
        Err(error) => assert!(
            matches!(
                error,
                WebhookError::Malformed(_) | WebhookError::Unauthorized(_)
            ),
            "{error:?}"
        ),
    }
}

fn check_batch(batch: &WebhookBatch, body_len: usize) {
    // Each event needs some bytes of its own in the body (SES repeats its shared fields per
    // recipient, but each recipient is at least `""`).
    assert!(
        batch.events.len() <= body_len,
        "{} events from {body_len} bytes",
        batch.events.len()
    );
    for event in &batch.events {
        assert!(!event.event_key.is_empty(), "an empty event key");
        assert!(
            event.event_key.len() <= MAX_EVENT_KEY_BYTES,
            "an event key of {} bytes",
            event.event_key.len()
        );
        for id in &event.message_ids {
            assert!(!id.is_empty(), "an empty message id");
            assert!(
                id.len() <= MAX_MESSAGE_ID_BYTES,
                "a message id of {} bytes",
                id.len()
            );
        }
        if let Some(detail) = &event.detail {
            assert!(!detail.trim().is_empty(), "an empty detail");
            assert!(
                detail.chars().count() <= MAX_DETAIL_CHARS,
                "a detail of {} characters",
                detail.chars().count()
            );
        }
        check_address(&event.recipient);
    }
    for suppression in &batch.suppressions {
        check_address(&suppression.recipient);
        assert!(
            batch
                .events
                .iter()
                .any(|e| e.recipient == suppression.recipient),
            "a suppression without an event for its address"
        );
    }
}

/// The `/api/activate` body as the route reads it (JSON of [`crate::http::activate::ActivateRequest`],
/// then its fields): never panics; what it accepts is bounded and parsed.
pub fn activation_request(body: &[u8]) {
    use crate::http::activate::{ActivateRequest, RequestError, MAX_CODE_BYTES};
    // What axum's `Json` extractor does with the body.
    let Ok(request) = serde_json::from_slice::<ActivateRequest>(body) else {
        return;
    };
    match request.read() {
        Ok(redemption) => {
            check_address(&redemption.email);
            assert!(!redemption.code.trim().is_empty(), "an empty code accepted");
            assert!(
                redemption.code.len() <= MAX_CODE_BYTES,
                "a long code accepted"
            );
            if let Some(workspace) = &redemption.workspace {
                let again = WorkspaceSlug::parse(workspace.as_str())
                    .unwrap_or_else(|e| panic!("the slug {workspace:?} does not parse back: {e}"));
                assert_eq!(again.as_str(), workspace.as_str());
            }
        }
        Err(RequestError::Email(error)) => check_email_error(&error),
        Err(RequestError::Code) => {}
    }
}

/// The moment relative fixture times are read against, fixed so a finding reproduces.
fn fixture_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time")
}

/// `Fixture::parse` on any text: never panics; an accepted fixture holds parsed types only and
/// passes its own repeat check again.
pub fn fixture(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(fixture) = crate::fixture::Fixture::parse(text, "fuzz.toml", fixture_now()) else {
        return;
    };
    assert!(fixture.check_repeats().is_ok());
    for member in &fixture.members {
        check_address(&member.email);
    }
    for invitation in &fixture.invitations {
        check_address(&invitation.email);
        if let Some(id) = &invitation.message_id {
            assert!(!id.is_empty() && id.trim() == id, "message id {id:?}");
        }
        if let Some(expires_at) = invitation.expires_at {
            assert!(
                expires_at >= invitation.sent_at,
                "expires before it was sent"
            );
        }
    }
    for event in &fixture.delivery_events {
        check_address(&event.email);
        assert_eq!(
            event.bounce.is_some(),
            event.event == crate::domain::invitation::DeliveryEventKind::Bounced,
            "a bounce kind exactly on bounces"
        );
    }
}

/// The button custom id parser: it accepts exactly a prefix and 24 ASCII letters or digits, and
/// what it returns is that reference.
pub fn button_reference(custom_id: &[u8]) {
    let custom_id = String::from_utf8_lossy(custom_id);
    let parsed = crate::chat::button_reference(&custom_id);
    let well_formed = custom_id.strip_prefix(BUTTON_PREFIX).filter(|reference| {
        reference.len() == 24 && reference.chars().all(|c| c.is_ascii_alphanumeric())
    });
    assert_eq!(parsed, well_formed, "{custom_id:?}");
}
