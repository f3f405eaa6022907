#![no_main]

use libfuzzer_sys::fuzz_target;

// The SES webhook: the SNS envelope and its event, and the SES event alone (so the fuzzer need not
// write JSON inside a JSON string to reach the mapping). No panic, bounded fields.
fuzz_target!(|body: &[u8]| {
    use invite_bot::fuzzing::{webhook_body, Provider};
    webhook_body(Provider::Ses, body);
    webhook_body(Provider::SesEvent, body);
});
