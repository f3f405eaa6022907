//! Members table: exact look-ups by normalized address and the index-backed candidate look-ups that
//! suggestions are built from.

use chrono::{DateTime, Utc};

use super::{decode_enum, on_backend, prefix_upper_bound, Store, StoreError, StoreResult};
use crate::domain::member::{Member, MemberCandidate, MemberMatch, MemberStatus, NearQuery, Role};
use crate::domain::source::SourceKind;
use crate::domain::workspace::{Workspace, WorkspaceSlug};

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: i64,
    workspace_id: i64,
    email: String,
    email_key: String,
    role: String,
    status: String,
    invited_at: Option<DateTime<Utc>>,
    activated_at: Option<DateTime<Utc>>,
    source: String,
    refreshed_at: Option<DateTime<Utc>>,
    workspace_slug: String,
    workspace_name: String,
}

impl TryFrom<MemberRow> for MemberMatch {
    type Error = StoreError;
    fn try_from(row: MemberRow) -> StoreResult<Self> {
        let slug = WorkspaceSlug::parse(&row.workspace_slug).map_err(|_| {
            StoreError::Corrupt(format!("workspaces.slug = {:?}", row.workspace_slug))
        })?;
        Ok(MemberMatch {
            member: Member {
                id: row.id,
                workspace_id: row.workspace_id,
                email: row.email,
                email_key: row.email_key,
                role: decode_enum(&row.role, "members.role", Role::parse)?,
                status: decode_enum(&row.status, "members.status", MemberStatus::parse)?,
                invited_at: row.invited_at,
                activated_at: row.activated_at,
                source: decode_enum(&row.source, "members.source", SourceKind::parse)?,
                refreshed_at: row.refreshed_at,
            },
            workspace: Workspace {
                id: row.workspace_id,
                slug,
                name: row.workspace_name,
            },
        })
    }
}

/// A member query with its workspace, completed by a literal WHERE clause (queries stay `&'static str`).
macro_rules! select_members {
    ($tail:literal) => {
        concat!(
            "SELECT m.id, m.workspace_id, m.email, m.email_key, m.role, m.status, m.invited_at, \
             m.activated_at, m.source, m.refreshed_at, w.slug AS workspace_slug, w.name AS workspace_name \
             FROM members m JOIN workspaces w ON w.id = m.workspace_id ",
            $tail
        )
    };
}

/// A member of workspace `$1` by normalized address `$2`.
pub const MEMBER_IN_WORKSPACE: &str =
    select_members!("WHERE m.workspace_id = $1 AND m.email_key = $2 AND m.removed_at IS NULL");
/// A member of the workspace with slug `$1` by normalized address `$2`.
pub const MEMBER_BY_SLUG: &str =
    select_members!("WHERE w.slug = $1 AND m.email_key = $2 AND m.removed_at IS NULL");
/// Every membership of normalized address `$1`.
/// (Members the product deleted, or a full sync no longer returned, are out of every look-up.)
pub const MEMBERSHIPS: &str =
    select_members!("WHERE m.email_key = $1 AND m.removed_at IS NULL ORDER BY w.slug");

/// Every candidate range in one round trip (each branch an index range with its own LIMIT):
/// members with the same local part at any domain (`$1`, at most `$2`), and members at the same
/// domain (`$3`) nearest to the typed local part in sort order, both ways, within the range that
/// shares its first half (`$4`..`$5`), and nearest to its reverse (`$6`), within the range that
/// shares its last half (`$7`..`$8`), at most `$9` each way. A window centred on the typed
/// address holds the intended member even where the whole range is too wide to read (a common
/// first name at gmail.com), because the keys between the two share the longer intact part.
/// (Each branch sits in a subquery: SQLite allows ORDER BY/LIMIT only there in a compound select.)
pub const CANDIDATES_NEAR: &str =
    "SELECT * FROM (SELECT workspace_id, email, email_key, local_key, domain_key FROM members \
      WHERE local_key = $1 AND removed_at IS NULL ORDER BY email_key LIMIT $2) AS same_local \
     UNION ALL SELECT * FROM (SELECT workspace_id, email, email_key, local_key, domain_key FROM members \
      WHERE domain_key = $3 AND local_key >= $1 AND local_key >= $4 AND local_key < $5 AND removed_at IS NULL \
      ORDER BY local_key LIMIT $9) AS prefix_up \
     UNION ALL SELECT * FROM (SELECT workspace_id, email, email_key, local_key, domain_key FROM members \
      WHERE domain_key = $3 AND local_key < $1 AND local_key >= $4 AND local_key < $5 AND removed_at IS NULL \
      ORDER BY local_key DESC LIMIT $9) AS prefix_down \
     UNION ALL SELECT * FROM (SELECT workspace_id, email, email_key, local_key, domain_key FROM members \
      WHERE domain_key = $3 AND local_rev >= $6 AND local_rev >= $7 AND local_rev < $8 AND removed_at IS NULL \
      ORDER BY local_rev LIMIT $9) AS suffix_up \
     UNION ALL SELECT * FROM (SELECT workspace_id, email, email_key, local_key, domain_key FROM members \
      WHERE domain_key = $3 AND local_rev < $6 AND local_rev >= $7 AND local_rev < $8 AND removed_at IS NULL \
      ORDER BY local_rev DESC LIMIT $9) AS suffix_down";

impl Store {
    /// All candidates a suggestion is picked from, in one round trip (see [`CANDIDATES_NEAR`]).
    pub async fn candidates_near(&self, near: &NearQuery<'_>) -> StoreResult<Vec<MemberCandidate>> {
        let prefix_upper = prefix_upper_bound(near.local_prefix);
        let suffix_upper = prefix_upper_bound(near.reversed_suffix);
        let rows = on_backend!(self, pool => {
            sqlx::query_as(CANDIDATES_NEAR)
                .bind(near.local)
                .bind(near.same_local_limit)
                .bind(near.domain)
                .bind(near.local_prefix)
                .bind(&prefix_upper)
                .bind(near.local_rev)
                .bind(near.reversed_suffix)
                .bind(&suffix_upper)
                .bind(near.window)
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// The member with exactly this address key in one workspace (unique index probe).
    pub async fn member_in_workspace(
        &self,
        workspace_id: i64,
        email_key: &str,
    ) -> StoreResult<Option<MemberMatch>> {
        let row: Option<MemberRow> = on_backend!(self, pool => {
            sqlx::query_as(MEMBER_IN_WORKSPACE).bind(workspace_id).bind(email_key).fetch_optional(pool).await?
        });
        row.map(MemberMatch::try_from).transpose()
    }

    /// The member with exactly this address key in the workspace named `slug`, in one query.
    pub async fn member_in_workspace_named(
        &self,
        slug: &WorkspaceSlug,
        email_key: &str,
    ) -> StoreResult<Option<MemberMatch>> {
        let row: Option<MemberRow> = on_backend!(self, pool => {
            sqlx::query_as(MEMBER_BY_SLUG)
                .bind(slug.as_str())
                .bind(email_key)
                .fetch_optional(pool)
                .await?
        });
        row.map(MemberMatch::try_from).transpose()
    }

    /// Every membership of this address key, across workspaces (index probe on the key).
    pub async fn memberships(&self, email_key: &str) -> StoreResult<Vec<MemberMatch>> {
        let rows: Vec<MemberRow> = on_backend!(self, pool => {
            sqlx::query_as(MEMBERSHIPS).bind(email_key).fetch_all(pool).await?
        });
        rows.into_iter().map(MemberMatch::try_from).collect()
    }
}
