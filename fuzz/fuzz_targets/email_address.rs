#![no_main]

use libfuzzer_sys::fuzz_target;

// EmailAddress::parse: no panic, a parsed address round-trips through its key.
fuzz_target!(|input: &[u8]| invite_bot::fuzzing::email_address(input));
