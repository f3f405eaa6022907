#![no_main]

use libfuzzer_sys::fuzz_target;

// The /api/activate body: JSON, then its fields parsed once; no panic, what is accepted is bounded.
fuzz_target!(|body: &[u8]| invite_bot::fuzzing::activation_request(body));
