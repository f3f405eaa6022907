//! The mail providers: for each, how its webhook proves a request is genuine and maps its events
//! (`<name>/webhook.rs`), and how to ask it live whether an address is suppressed (`<name>/lookup.rs`).
//! What all providers share lives in [`webhook`] and [`lookup`].

pub mod live;
pub mod lookup;
pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod ses;
pub mod verifiers;
pub mod webhook;

pub use live::{apply, LiveLookups};
pub use lookup::{LiveAnswer, Unanswered};
pub use verifiers::Webhooks;
pub use webhook::{CertificateCache, WebhookConfigError, WebhookError};
