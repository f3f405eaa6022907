#![no_main]

use libfuzzer_sys::fuzz_target;

// A button custom_id: accepted exactly when it is the prefix and 24 ASCII letters or digits.
fuzz_target!(|custom_id: &[u8]| invite_bot::fuzzing::button_reference(custom_id));
