//! Property tests for the parsers of untrusted input: the invariants the fuzz targets in `fuzz/`
//! check (the same `invite_bot::fuzzing` functions), run on generated input in every `cargo test`.
//! A modest case count keeps the suite fast; `scripts/fuzz` explores for longer.

use invite_bot::chat::{button_reference, new_reference, BUTTON_PREFIX};
use invite_bot::domain::email::EmailAddress;
use invite_bot::fuzzing::{self, Provider};
use proptest::prelude::*;
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        // The generated cases are cheap; no need to keep regression files next to the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, a few levels deep, with the strings and numbers that parsers trip over.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1e300)),
        Just(json!(-1.0e18)),
        ".{0,40}".prop_map(Value::from),
        address_like().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Field names the providers use, so generated objects reach the mapping, and some others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "RecordType",
            "MessageID",
            "ID",
            "Type",
            "Recipient",
            "Email",
            "DeliveredAt",
            "BouncedAt",
            "Details",
            "Metadata",
            "invite_ref",
            "event",
            "email",
            "timestamp",
            "sg_event_id",
            "sg_message_id",
            "smtp-id",
            "reason",
            "type",
            "signature",
            "token",
            "event-data",
            "id",
            "recipient",
            "severity",
            "message",
            "headers",
            "message-id",
            "delivery-status",
            "user-variables",
            "eventType",
            "notificationType",
            "mail",
            "messageId",
            "bounce",
            "bounceType",
            "bouncedRecipients",
            "emailAddress",
            "delivery",
            "recipients",
            "workspace",
            "code",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z-]{1,12}",
    ]
}

/// Text that looks like what people paste for an address: wrapping, case, dots, Unicode.
fn address_like() -> impl Strategy<Value = String> {
    "[ <>a-zA-Z0-9.@,;:+_\u{e9}\u{fc}\u{130}\u{df}\u{212a}\u{3a3}\u{200b}\t-]{0,80}"
}

/// A valid-looking address with Unicode in its local part and domain, including characters whose
/// lower case is longer than they are (U+0130) or another script's (U+212A, the Kelvin sign).
fn unicode_address() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9\u{e9}\u{130}\u{212a}\u{3a3}\u{df}_+-]{1,70}",
        "[a-zA-Z0-9\u{fc}\u{e9}]{1,20}",
        "(com|de|example|xn--bcher-kva)",
    )
        .prop_map(|(local, label, tld)| format!("{local}@{label}.{tld}"))
}

/// One provider record of a known shape with every field drawn from anything, so the mapping
/// (not only the JSON reading) sees hostile values.
fn postmark_record() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Delivery", "Bounce", "SpamComplaint", "Open"]),
        any_json(),
        any_json(),
        address_like(),
        ".{0,40}",
        any_json(),
    )
        .prop_map(|(record_type, message_id, id, email, time, metadata)| {
            json!({
                "RecordType": record_type, "MessageID": message_id, "ID": id, "Type": "HardBounce",
                "Email": email, "Recipient": email, "BouncedAt": time, "DeliveredAt": time,
                "Details": "550", "Metadata": {"invite_ref": metadata},
            })
        })
}

fn sendgrid_batch() -> impl Strategy<Value = Value> {
    let event = (
        prop::sample::select(vec![
            "delivered",
            "deferred",
            "bounce",
            "dropped",
            "spamreport",
        ]),
        address_like(),
        any_json(),
        ".{0,30}",
        any_json(),
    )
        .prop_map(|(event, email, timestamp, id, invite_ref)| {
            json!({
                "event": event, "email": email, "timestamp": timestamp, "sg_event_id": id,
                "sg_message_id": format!("{id}.filter1"), "smtp-id": id, "invite_ref": invite_ref,
                "reason": "Bounced Address",
            })
        });
    prop::collection::vec(event, 0..5).prop_map(Value::from)
}

fn mailgun_payload() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["delivered", "failed", "complained", "opened"]),
        any_json(),
        address_like(),
        any_json(),
        any_json(),
    )
        .prop_map(|(event, timestamp, recipient, message_id, variables)| {
            json!({
                "signature": {"timestamp": "1", "token": "t", "signature": "00"},
                "event-data": {
                    "event": event, "id": "ev-1", "timestamp": timestamp, "recipient": recipient,
                    "severity": "permanent", "message": {"headers": {"message-id": message_id}},
                    "user-variables": {"invite_ref": variables},
                },
            })
        })
}

fn ses_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["Delivery", "Bounce", "Complaint", "DeliveryDelay", "Send"]),
        ".{0,30}",
        prop::collection::vec(address_like(), 0..4),
        ".{0,30}",
        any_json(),
    )
        .prop_map(|(kind, message_id, recipients, timestamp, tags)| {
            let listed: Vec<Value> = recipients
                .iter()
                .map(|r| json!({"emailAddress": r, "diagnosticCode": "550"}))
                .collect();
            json!({
                "eventType": kind,
                "mail": {"messageId": message_id, "commonHeaders": {"messageId": message_id},
                         "tags": {"invite_ref": tags}},
                "delivery": {"timestamp": timestamp, "recipients": recipients},
                "bounce": {"bounceType": "Permanent", "timestamp": timestamp, "bouncedRecipients": listed},
                "complaint": {"timestamp": timestamp, "complainedRecipients": listed},
                "deliveryDelay": {"timestamp": timestamp, "delayedRecipients": listed},
            })
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn address_parsing_never_panics(input in any::<String>()) {
        fuzzing::email_address(input.as_bytes());
    }

    #[test]
    fn pasted_addresses_keep_their_invariants(input in address_like()) {
        fuzzing::email_address(input.as_bytes());
    }

    /// parse(key(x)) == x, for addresses whose lower case differs from their upper case in length
    /// or script as well.
    #[test]
    fn an_address_round_trips_through_its_key(raw in unicode_address()) {
        if let Ok(address) = EmailAddress::parse(&raw) {
            let again = EmailAddress::parse(address.key()).expect("the key parses");
            prop_assert_eq!(again.key(), address.key());
            prop_assert_eq!(&again, &address);
            fuzzing::check_address(&address);
        }
    }

    /// Linear-ish: the clean-up of what is pasted around an address does a bounded amount of work
    /// per byte, so a long run of what it strips is refused or cleaned without rescanning. (Time is
    /// not asserted: the fuzz targets' timeout is where slowness shows.)
    #[test]
    fn long_wrapping_is_refused_or_cleaned(repeat in 0usize..600, unit in "( \\.|,|;|mailto:|<|>)") {
        let input = format!("{}jane@acme.com{}", unit.repeat(repeat), unit.repeat(repeat));
        fuzzing::email_address(input.as_bytes());
    }

    #[test]
    fn webhook_mapping_never_panics_on_any_json(body in any_json()) {
        let body = body.to_string();
        for provider in [Provider::Postmark, Provider::Sendgrid, Provider::Mailgun, Provider::Ses,
                         Provider::SesEvent] {
            fuzzing::webhook_body(provider, body.as_bytes());
        }
    }

    #[test]
    fn webhook_mapping_never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        for provider in [Provider::Postmark, Provider::Sendgrid, Provider::Mailgun, Provider::Ses,
                         Provider::SesEvent] {
            fuzzing::webhook_body(provider, &body);
        }
    }

    #[test]
    fn postmark_records_map_to_bounded_events(record in postmark_record()) {
        fuzzing::webhook_body(Provider::Postmark, record.to_string().as_bytes());
    }

    #[test]
    fn sendgrid_batches_map_to_bounded_events(batch in sendgrid_batch()) {
        fuzzing::webhook_body(Provider::Sendgrid, batch.to_string().as_bytes());
    }

    #[test]
    fn mailgun_events_map_to_bounded_events(payload in mailgun_payload()) {
        fuzzing::webhook_body(Provider::Mailgun, payload.to_string().as_bytes());
    }

    #[test]
    fn ses_events_map_to_bounded_events(event in ses_event()) {
        fuzzing::webhook_body(Provider::SesEvent, event.to_string().as_bytes());
        let envelope = json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": event.to_string(),
            "Timestamp": "2026-11-26T04:00:00Z", "SignatureVersion": "2", "Signature": "",
            "SigningCertURL": "",
        });
        fuzzing::webhook_body(Provider::Ses, envelope.to_string().as_bytes());
    }

    #[test]
    fn activation_bodies_never_panic(email in address_like(), workspace in ".{0,70}",
                                     code in ".{0,300}", extra in any_json()) {
        let body = json!({"email": email, "workspace": workspace, "code": code});
        fuzzing::activation_request(body.to_string().as_bytes());
        fuzzing::activation_request(extra.to_string().as_bytes());
    }

    #[test]
    fn fixture_parsing_never_panics_on_any_text(text in any::<String>()) {
        fuzzing::fixture(text.as_bytes());
    }

    /// Entries of the right shape with hostile values: relative times at the edges of the
    /// calendar, addresses, kinds.
    #[test]
    fn fixture_entries_never_panic(
        email in address_like(),
        at in prop_oneof![
            "(\\+|-|in )[0-9]{1,20} ?(s|m|h|d|w|days|weeks)( ago)?",
            "[0-9]{1,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})",
            ".{0,20}",
        ],
        event in "(delivered|bounced|deferred|spam_complaint|x)",
        bounce in "(hard|soft|x)",
        message_id in ".{0,20}",
    ) {
        let text = format!(
            "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n\
             [[member]]\nworkspace = \"acme\"\nemail = {email:?}\nrole = \"learner\"\nstatus = \"invited\"\ninvited_at = {at:?}\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = {email:?}\nsent_at = {at:?}\nexpires_at = {at:?}\nmessage_id = {message_id:?}\n\
             [[delivery_event]]\nemail = {email:?}\nevent = {event:?}\nbounce = {bounce:?}\nat = {at:?}\n\
             [[suppression]]\nemail = {email:?}\nreason = \"manual\"\nat = {at:?}\n"
        );
        fuzzing::fixture(text.as_bytes());
    }

    /// The reference parser accepts what the bot mints, and returns it whole.
    #[test]
    fn minted_button_references_are_accepted(_round in 0..8u8) {
        let reference = new_reference();
        let custom_id = format!("{BUTTON_PREFIX}{reference}");
        prop_assert_eq!(button_reference(&custom_id), Some(reference.as_str()));
        fuzzing::button_reference(custom_id.as_bytes());
    }

    /// ... and nothing but a prefix and 24 ASCII letters or digits.
    #[test]
    fn button_references_are_accepted_exactly_when_well_formed(
        custom_id in prop_oneof![
            "ib:[A-Za-z0-9]{20,28}",
            "ib:[A-Za-z0-9\u{e9}\u{130}:_ -]{24}",
            ".{0,40}",
        ]
    ) {
        fuzzing::button_reference(custom_id.as_bytes());
    }
}

/// A fuzz target: the name of its corpus folder and the check each input must pass.
type FuzzTarget = (&'static str, fn(&[u8]));

/// The fuzz targets' seed inputs (fuzz/corpus, kept minimized) pass the same checks here, so a
/// finding the fuzzer kept is replayed by every `cargo test`.
#[test]
fn the_kept_fuzz_corpus_keeps_its_invariants() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [FuzzTarget; 8] = [
        ("email_address", fuzzing::email_address),
        ("webhook_postmark", |b| {
            fuzzing::webhook_body(Provider::Postmark, b)
        }),
        ("webhook_sendgrid", |b| {
            fuzzing::webhook_body(Provider::Sendgrid, b)
        }),
        ("webhook_mailgun", |b| {
            fuzzing::webhook_body(Provider::Mailgun, b)
        }),
        ("webhook_ses", |b| {
            fuzzing::webhook_body(Provider::Ses, b);
            fuzzing::webhook_body(Provider::SesEvent, b);
        }),
        ("activation_request", fuzzing::activation_request),
        ("fixture", fuzzing::fixture),
        ("button_reference", fuzzing::button_reference),
    ];
    for (target, check) in targets {
        let dir = root.join(target);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "{target}: no corpus kept");
        for path in entries {
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&input));
            assert!(
                outcome.is_ok(),
                "{} breaks an invariant (the panic above)",
                path.display()
            );
        }
    }
}
