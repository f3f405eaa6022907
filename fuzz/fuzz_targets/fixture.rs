#![no_main]

use libfuzzer_sys::fuzz_target;

// The TOML seed fixture parser: no panic; an accepted fixture holds parsed types only.
fuzz_target!(|text: &[u8]| invite_bot::fuzzing::fixture(text));
