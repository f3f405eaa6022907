//! The support domain's types: parsed once at the boundary, so bad states cannot be built.
//! Nothing here imports any other module of the bot.

pub mod action;
pub mod alert;
pub mod audit;
pub mod email;
pub mod invitation;
pub mod member;
pub mod permission;
pub mod product_data;
pub mod source;
pub mod verdict;
pub mod workspace;

pub use action::{Action, ButtonAction};
pub use audit::{AuditAction, AuditOutcome, AuditReason};
pub use email::EmailAddress;
pub use permission::Permission;
pub use source::SourceKind;
pub use verdict::{Severity, Verdict};
pub use workspace::{Workspace, WorkspaceSlug};
