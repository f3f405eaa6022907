//! Mailgun: its webhook (HMAC-signed, single-use tokens) and its suppression look-up.

pub mod lookup;
pub mod webhook;
