//! PostgreSQL's way to apply a batch of the product's members: every row of the batch in one
//! statement (`UNNEST` of one array per column) instead of one round trip per row, with the same
//! rules as the row-by-row path in `ingest.rs` (newer rows win; rows a sync returned unchanged are
//! confirmed, not rewritten). A first sync of a million members is a few hundred such statements.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

use crate::domain::product_data::MemberRecord;
use crate::domain::source::SourceKind;

/// Writes a member unless the bot's copy is as new or newer (`source_updated_at`); fixtures
/// (no `source_updated_at`) always give way to the product.
const UPSERT_MEMBER: &str = "INSERT INTO members (workspace_id, email, email_key, local_key, \
         domain_key, local_rev, role, status, invited_at, activated_at, source, source_updated_at, \
         refreshed_at, removed_at, seen_run) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (email_key, workspace_id) DO UPDATE SET email = excluded.email, \
         role = excluded.role, status = excluded.status, invited_at = excluded.invited_at, \
         activated_at = excluded.activated_at, source = excluded.source, \
         source_updated_at = excluded.source_updated_at, refreshed_at = excluded.refreshed_at, \
         removed_at = excluded.removed_at, seen_run = excluded.seen_run \
     WHERE members.source_updated_at IS NULL \
         OR members.source_updated_at < excluded.source_updated_at";

/// A row a sync returned unchanged is still in the product: it is confirmed, not rewritten.
const CONFIRM_MEMBER: &str = "UPDATE members SET seen_run = $1, refreshed_at = $2 \
     WHERE workspace_id = $3 AND email_key = $4";

/// Writes a batch of members (one per member, with its workspace id) in the caller's transaction;
/// returns how many were written (the rest were no newer than the bot's copy).
pub(super) trait WriteMembers {
    fn write_members(
        &mut self,
        source: SourceKind,
        rows: &[(&MemberRecord, i64)],
        run: Option<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

impl WriteMembers for SqliteConnection {
    async fn write_members(
        &mut self,
        source: SourceKind,
        rows: &[(&MemberRecord, i64)],
        run: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        let mut written = 0;
        for (row, workspace_id) in rows {
            let email = &row.email;
            let local_rev: String = email.local_part().chars().rev().collect();
            let affected = sqlx::query(UPSERT_MEMBER)
                .bind(workspace_id)
                .bind(email.as_entered())
                .bind(email.key())
                .bind(email.local_part())
                .bind(email.domain())
                .bind(&local_rev)
                .bind(row.role.as_str())
                .bind(row.status.as_str())
                .bind(row.invited_at)
                .bind(row.activated_at)
                .bind(source.as_str())
                .bind(row.updated_at)
                .bind(now)
                .bind(row.deleted.then_some(now))
                .bind(run)
                .execute(&mut *self)
                .await?
                .rows_affected();
            if affected > 0 {
                written += 1;
            } else if let Some(run) = run {
                // Still in the product: confirmed, not rewritten.
                sqlx::query(CONFIRM_MEMBER)
                    .bind(run)
                    .bind(now)
                    .bind(workspace_id)
                    .bind(email.key())
                    .execute(&mut *self)
                    .await?;
            }
        }
        Ok(written)
    }
}

impl WriteMembers for PgConnection {
    async fn write_members(
        &mut self,
        source: SourceKind,
        rows: &[(&MemberRecord, i64)],
        run: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        upsert_members(self, source, rows, run, now).await
    }
}

/// Inserts or replaces the batch's members (unless the bot's copy is as new or newer) and confirms
/// the unchanged ones for the run; returns how many were written.
const UPSERT_MEMBERS: &str = "WITH input AS ( \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], \
             $11::timestamptz[], $12::bool[]) \
         AS t(workspace_id, email, email_key, local_key, domain_key, local_rev, role, status, \
             invited_at, activated_at, source_updated_at, deleted)), \
     written AS ( \
         INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, local_rev, \
             role, status, invited_at, activated_at, source, source_updated_at, refreshed_at, \
             removed_at, seen_run) \
         SELECT workspace_id, email, email_key, local_key, domain_key, local_rev, role, status, \
             invited_at, activated_at, $13, source_updated_at, $14, \
             CASE WHEN deleted THEN $14::timestamptz END, $15 FROM input \
         ON CONFLICT (email_key, workspace_id) DO UPDATE SET email = excluded.email, \
             role = excluded.role, status = excluded.status, invited_at = excluded.invited_at, \
             activated_at = excluded.activated_at, source = excluded.source, \
             source_updated_at = excluded.source_updated_at, refreshed_at = excluded.refreshed_at, \
             removed_at = excluded.removed_at, seen_run = excluded.seen_run \
         WHERE members.source_updated_at IS NULL \
             OR members.source_updated_at < excluded.source_updated_at \
         RETURNING workspace_id, email_key), \
     confirmed AS ( \
         UPDATE members m SET seen_run = $15, refreshed_at = $14 FROM input i \
         WHERE $15::bigint IS NOT NULL AND m.workspace_id = i.workspace_id \
             AND m.email_key = i.email_key \
             AND NOT EXISTS (SELECT 1 FROM written w \
                 WHERE w.workspace_id = i.workspace_id AND w.email_key = i.email_key) \
         RETURNING 1) \
     SELECT COUNT(*) FROM written";

/// Applies `rows` (one per member, newest kept) with their workspace ids, in `tx`.
async fn upsert_members(
    tx: &mut PgConnection,
    source: SourceKind,
    rows: &[(&MemberRecord, i64)],
    run: Option<i64>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut workspace_ids = Vec::with_capacity(rows.len());
    let mut emails = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    let mut locals = Vec::with_capacity(rows.len());
    let mut domains = Vec::with_capacity(rows.len());
    let mut locals_rev = Vec::with_capacity(rows.len());
    let mut roles = Vec::with_capacity(rows.len());
    let mut statuses = Vec::with_capacity(rows.len());
    let mut invited = Vec::with_capacity(rows.len());
    let mut activated = Vec::with_capacity(rows.len());
    let mut updated = Vec::with_capacity(rows.len());
    let mut deleted = Vec::with_capacity(rows.len());
    for (row, workspace_id) in rows {
        let email = &row.email;
        workspace_ids.push(*workspace_id);
        emails.push(email.as_entered().to_owned());
        keys.push(email.key().to_owned());
        locals.push(email.local_part().to_owned());
        domains.push(email.domain().to_owned());
        locals_rev.push(email.local_part().chars().rev().collect::<String>());
        roles.push(row.role.as_str());
        statuses.push(row.status.as_str());
        invited.push(row.invited_at);
        activated.push(row.activated_at);
        updated.push(row.updated_at);
        deleted.push(row.deleted);
    }
    let written: i64 = sqlx::query_scalar(UPSERT_MEMBERS)
        .bind(workspace_ids)
        .bind(emails)
        .bind(keys)
        .bind(locals)
        .bind(domains)
        .bind(locals_rev)
        .bind(roles)
        .bind(statuses)
        .bind(invited)
        .bind(activated)
        .bind(updated)
        .bind(deleted)
        .bind(source.as_str())
        .bind(now)
        .bind(run)
        .fetch_one(&mut *tx)
        .await?;
    Ok(written as u64)
}
