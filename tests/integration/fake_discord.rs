//! The fake Discord lives in the library (`invite_bot::fake_discord`) so `bench --discord` uses the
//! same one; the tests keep importing it from here.

pub use invite_bot::fake_discord::*;
