//! SendGrid: its Event Webhook (ECDSA-signed) and its suppression look-up.

pub mod lookup;
pub mod webhook;
