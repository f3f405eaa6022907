//! Amazon SES through SNS: its notifications (certificate-signed) and its suppression look-up.

pub mod lookup;
pub mod webhook;
