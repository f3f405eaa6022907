#![no_main]

use libfuzzer_sys::fuzz_target;

// The Postmark webhook body -> delivery events mapping (after authentication): no panic, bounded fields.
fuzz_target!(|body: &[u8]| {
    invite_bot::fuzzing::webhook_body(invite_bot::fuzzing::Provider::Postmark, body)
});
