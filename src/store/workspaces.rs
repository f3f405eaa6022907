//! Workspaces table.

use super::{on_backend, Store, StoreError, StoreResult};
use crate::domain::workspace::{Workspace, WorkspaceSlug};

#[derive(sqlx::FromRow)]
struct WorkspaceRow {
    id: i64,
    slug: String,
    name: String,
}

impl TryFrom<WorkspaceRow> for Workspace {
    type Error = StoreError;
    fn try_from(row: WorkspaceRow) -> StoreResult<Self> {
        Ok(Workspace {
            id: row.id,
            slug: WorkspaceSlug::parse(&row.slug)
                .map_err(|_| StoreError::Corrupt(format!("workspaces.slug = {:?}", row.slug)))?,
            name: row.name,
        })
    }
}

impl Store {
    pub async fn find_workspace(&self, slug: &WorkspaceSlug) -> StoreResult<Option<Workspace>> {
        let row: Option<WorkspaceRow> = on_backend!(self, pool => {
            sqlx::query_as("SELECT id, slug, name FROM workspaces WHERE slug = $1")
                .bind(slug.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(Workspace::try_from).transpose()
    }

    /// Workspaces whose slug or name starts with `prefix`, for autocompletion; at most `limit`.
    pub async fn list_workspaces(&self, prefix: &str, limit: i64) -> StoreResult<Vec<Workspace>> {
        let pattern = format!("{}%", prefix.to_lowercase().replace(['%', '_', '\\'], ""));
        let rows: Vec<WorkspaceRow> = on_backend!(self, pool => {
            sqlx::query_as(
                "SELECT id, slug, name FROM workspaces \
                 WHERE slug LIKE $1 OR LOWER(name) LIKE $1 ORDER BY slug LIMIT $2",
            )
            .bind(&pattern)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(Workspace::try_from).collect()
    }
}
