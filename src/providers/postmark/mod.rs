//! Postmark: its webhook (Basic auth over the raw body) and its suppression look-up.

pub mod lookup;
pub mod webhook;
