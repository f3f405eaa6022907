#![no_main]

use libfuzzer_sys::fuzz_target;

// The Sendgrid webhook body -> delivery events mapping (after authentication): no panic, bounded fields.
fuzz_target!(|body: &[u8]| {
    invite_bot::fuzzing::webhook_body(invite_bot::fuzzing::Provider::Sendgrid, body)
});
