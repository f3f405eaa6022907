//! Members of a workspace: the learners and trainers an admin invited.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::source::SourceKind;
use super::workspace::Workspace;

/// Which tab of Users the member is listed on (`findings.j2` names the tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Learner,
    Trainer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Trainer => "trainer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "learner" => Some(Role::Learner),
            "trainer" => Some(Role::Trainer),
            _ => None,
        }
    }
}

/// The status badge shown next to the member: Invited (yellow), Active (green), Deactivated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Invited,
    Active,
    Deactivated,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Invited => "invited",
            MemberStatus::Active => "active",
            MemberStatus::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invited" => Some(MemberStatus::Invited),
            "active" => Some(MemberStatus::Active),
            "deactivated" => Some(MemberStatus::Deactivated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub workspace_id: i64,
    /// As the admin entered it.
    pub email: String,
    #[serde(skip)]
    pub email_key: String,
    pub role: Role,
    pub status: MemberStatus,
    #[serde(skip)]
    pub invited_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub activated_at: Option<DateTime<Utc>>,
    /// Who wrote this member last: the seed, the product's database, an import or a push.
    #[serde(skip)]
    pub source: SourceKind,
    /// When the bot last wrote or confirmed it.
    #[serde(skip)]
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// A member found by exact address, with the workspace it belongs to.
#[derive(Debug, Clone)]
pub struct MemberMatch {
    pub member: Member,
    pub workspace: Workspace,
}

/// A member that might be the one a mistyped address meant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberCandidate {
    pub workspace_id: i64,
    pub email: String,
    pub email_key: String,
    pub local_key: String,
    pub domain_key: String,
}

/// The address ranges a "did you mean" reads around a typed address (see `diagnosis::suggestions`).
#[derive(Debug, Clone)]
pub struct NearQuery<'a> {
    pub local: &'a str,
    pub domain: &'a str,
    /// The first half of the local part: the prefix range.
    pub local_prefix: &'a str,
    /// The local part reversed, and its last half reversed: the suffix range.
    pub local_rev: &'a str,
    pub reversed_suffix: &'a str,
    /// Most members with the same local part read.
    pub same_local_limit: i64,
    /// Most members read each way around the typed address, per range.
    pub window: i64,
}
