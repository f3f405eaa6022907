//! Writes a checked [`Fixture`] in one transaction: either all of it lands or none of it does.

use std::collections::{HashMap, HashSet};

use chrono::Duration;

use super::webhook_events::ATTACH_EARLY_EVENTS;
use super::{on_backend, Store, StoreError};
use crate::fixture::{Fixture, FixtureError, SeedReport};

/// Why a fixture did not land: the file's fault, or the database's.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SeedError {
    fn from(error: sqlx::Error) -> Self {
        SeedError::Store(error.into())
    }
}

impl Store {
    /// Upserts the fixture. Loading the same fixture twice changes nothing but relative times.
    /// Repeated entries must agree ([`Fixture::check_repeats`]) and land once; the report counts
    /// rows written, not entries read.
    pub async fn load_fixture(
        &self,
        fixture: &Fixture,
        invitation_ttl: Duration,
    ) -> Result<SeedReport, SeedError> {
        fixture.check_repeats()?;
        let _turn = self.write_turn().await;
        let mut report = SeedReport::default();
        let seeded_at = chrono::Utc::now();
        on_backend!(self, pool => {
            let mut tx = pool.begin().await?;

            let mut workspace_ids: HashMap<&str, i64> = HashMap::new();
            for workspace in &fixture.workspaces {
                if workspace_ids.contains_key(workspace.slug.as_str()) {
                    continue;
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO workspaces (slug, name) VALUES ($1, $2) \
                     ON CONFLICT (slug) DO UPDATE SET name = excluded.name RETURNING id",
                )
                .bind(workspace.slug.as_str())
                .bind(&workspace.name)
                .fetch_one(&mut *tx)
                .await?;
                workspace_ids.insert(workspace.slug.as_str(), id);
                report.workspaces += 1;
            }

            let mut member_ids: HashMap<(&str, &str), i64> = HashMap::new();
            for (i, member) in fixture.members.iter().enumerate() {
                let slug = member.workspace.as_str();
                if member_ids.contains_key(&(slug, member.email.key())) {
                    continue;
                }
                let workspace_id = match workspace_ids.get(slug) {
                    Some(id) => *id,
                    None => {
                        let found: Option<i64> =
                            sqlx::query_scalar("SELECT id FROM workspaces WHERE slug = $1")
                                .bind(slug)
                                .fetch_optional(&mut *tx)
                                .await?;
                        found.ok_or_else(|| FixtureError::entry("member", i, "workspace",
                            format!("no workspace `{slug}` in the fixture or the database")))?
                    }
                };
                let email = &member.email;
                let local_rev: String = email.local_part().chars().rev().collect();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, \
                         local_rev, role, status, invited_at, activated_at, source, refreshed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'fixtures', $11) \
                     ON CONFLICT (email_key, workspace_id) DO UPDATE SET email = excluded.email, \
                         role = excluded.role, status = excluded.status, \
                         invited_at = excluded.invited_at, activated_at = excluded.activated_at, \
                         source = 'fixtures', source_updated_at = NULL, \
                         refreshed_at = excluded.refreshed_at, removed_at = NULL, seen_run = NULL \
                     RETURNING id",
                )
                .bind(workspace_id)
                .bind(email.as_entered())
                .bind(email.key())
                .bind(email.local_part())
                .bind(email.domain())
                .bind(&local_rev)
                .bind(member.role.as_str())
                .bind(member.status.as_str())
                .bind(member.invited_at)
                .bind(member.activated_at)
                .bind(seeded_at)
                .fetch_one(&mut *tx)
                .await?;
                member_ids.insert((slug, email.key()), id);
                report.members += 1;
            }

            let mut invitations_per_member: HashMap<i64, usize> = HashMap::new();
            let mut message_ids: HashSet<&str> = HashSet::new();
            for (i, invitation) in fixture.invitations.iter().enumerate() {
                if let Some(message_id) = invitation.message_id.as_deref() {
                    if !message_ids.insert(message_id) {
                        continue;
                    }
                }
                let slug = invitation.workspace.as_str();
                let key = invitation.email.key();
                let member_id = match member_ids.get(&(slug, key)) {
                    Some(id) => *id,
                    None => {
                        let found: Option<i64> = sqlx::query_scalar(
                            "SELECT m.id FROM members m JOIN workspaces w ON w.id = m.workspace_id \
                             WHERE w.slug = $1 AND m.email_key = $2",
                        )
                        .bind(slug)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                        found.ok_or_else(|| FixtureError::entry("invitation", i, "email",
                            format!("{key} is not a member of `{slug}` in the fixture or the database")))?
                    }
                };
                let ordinal = invitations_per_member.entry(member_id).or_default();
                *ordinal += 1;
                // A stable id keeps re-seeding idempotent when the fixture gives none.
                let message_id = invitation
                    .message_id
                    .clone()
                    .unwrap_or_else(|| format!("seed.{slug}.{key}.{ordinal}"));
                let expires_at = invitation
                    .expires_at
                    .unwrap_or(invitation.sent_at + invitation_ttl);
                // A message id already stored for another member's invitation is that invitation:
                // taking it over would silently move its delivery history to this member.
                let written: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO invitations (member_id, sent_at, expires_at, message_id) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (message_id) DO UPDATE SET \
                         sent_at = excluded.sent_at, expires_at = excluded.expires_at \
                     WHERE invitations.member_id = excluded.member_id \
                     RETURNING id",
                )
                .bind(member_id)
                .bind(invitation.sent_at)
                .bind(expires_at)
                .bind(&message_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(invitation_id) = written else {
                    return Err(FixtureError::entry("invitation", i, "message_id",
                        format!("message id {message_id:?} belongs to another member's invitation in the database")).into());
                };
                // Provider events that arrived before the invitation was known are its history.
                sqlx::query(ATTACH_EARLY_EVENTS)
                    .bind(invitation_id)
                    .bind(&message_id)
                    .bind(&message_id)
                    .execute(&mut *tx)
                    .await?;
                report.invitations += 1;
            }

            let mut events_per_key: HashMap<String, usize> = HashMap::new();
            for (i, event) in fixture.delivery_events.iter().enumerate() {
                let key = event.email.key();
                let found: Option<(i64, Option<String>)> = match &event.message_id {
                    Some(message_id) => sqlx::query_as(
                        "SELECT id, message_id FROM invitations WHERE message_id = $1",
                    )
                    .bind(message_id)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => sqlx::query_as(
                        "SELECT i.id, i.message_id FROM invitations i \
                         JOIN members m ON m.id = i.member_id \
                         WHERE m.email_key = $1 ORDER BY i.sent_at DESC, i.id DESC LIMIT 1",
                    )
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?,
                };
                let (invitation_id, message_id) = match (found, &event.message_id) {
                    (Some(found), _) => found,
                    (None, Some(message_id)) => {
                        return Err(FixtureError::entry("delivery_event", i, "message_id",
                            format!("no invitation has message id {message_id:?}")).into())
                    }
                    (None, None) => {
                        return Err(FixtureError::entry("delivery_event", i, "email",
                            format!("no invitation was sent to {key}; add an [[invitation]] first")).into())
                    }
                };
                let message = message_id.unwrap_or_else(|| invitation_id.to_string());
                let base_key = format!("seed:{message}:{key}:{}", event.event.as_str());
                let ordinal = events_per_key.entry(base_key.clone()).or_default();
                *ordinal += 1;
                sqlx::query(
                    "INSERT INTO delivery_events (event_key, invitation_id, message_id, recipient_key, \
                         recipient_domain, event, bounce_kind, at, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (event_key) DO UPDATE SET invitation_id = excluded.invitation_id, \
                         bounce_kind = excluded.bounce_kind, at = excluded.at, detail = excluded.detail",
                )
                .bind(format!("{base_key}:{ordinal}"))
                .bind(invitation_id)
                .bind(&message)
                .bind(key)
                .bind(event.email.domain())
                .bind(event.event.as_str())
                .bind(event.bounce.map(|b| b.as_str()))
                .bind(event.at)
                .bind(&event.detail)
                .execute(&mut *tx)
                .await?;
                report.delivery_events += 1;
            }

            let mut suppressed: HashSet<(&str, &str)> = HashSet::new();
            for suppression in &fixture.suppressions {
                if !suppressed.insert((suppression.email.key(), suppression.reason.as_str())) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO suppressions (email_key, reason, at) VALUES ($1, $2, $3) \
                     ON CONFLICT (email_key, reason) DO UPDATE SET at = excluded.at",
                )
                .bind(suppression.email.key())
                .bind(suppression.reason.as_str())
                .bind(suppression.at)
                .execute(&mut *tx)
                .await?;
                report.suppressions += 1;
            }

            tx.commit().await?;
        });
        Ok(report)
    }
}
