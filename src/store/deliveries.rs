//! Invitations, delivery events and suppressions: what happened to the emails after they left.

use chrono::{DateTime, Utc};

use super::{decode_enum, on_backend, Store, StoreResult};
use crate::delivery::{
    BounceKind, DeliveryEvent, DeliveryEventKind, Invitation, Suppression, SuppressionReason,
};

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: i64,
    member_id: i64,
    sent_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    message_id: Option<String>,
}

impl From<InvitationRow> for Invitation {
    fn from(row: InvitationRow) -> Self {
        Invitation {
            id: row.id,
            member_id: row.member_id,
            sent_at: row.sent_at,
            expires_at: row.expires_at,
            message_id: row.message_id,
        }
    }
}

/// The latest invitation joined with its events: one row per event, or one row without an event.
#[derive(sqlx::FromRow)]
struct InvitationEventRow {
    id: i64,
    member_id: i64,
    sent_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    message_id: Option<String>,
    event: Option<String>,
    bounce_kind: Option<String>,
    at: Option<DateTime<Utc>>,
    detail: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SuppressionRow {
    reason: String,
    at: DateTime<Utc>,
}

/// Other recipients at one domain whose mail recently failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct DomainTrouble {
    /// Distinct recipients with a bounce, deferral or complaint in the window.
    pub recipients: i64,
    pub bounced: i64,
    pub deferred: i64,
    pub complained: i64,
}

pub(super) const LATEST_INVITATION_WITH_EVENTS: &str =
    "SELECT i.id, i.member_id, i.sent_at, i.expires_at, \
     i.message_id, e.event, e.bounce_kind, e.at, e.detail \
     FROM (SELECT id, member_id, sent_at, expires_at, message_id FROM invitations \
           WHERE member_id = $1 AND send_state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1) i \
     LEFT JOIN delivery_events e ON e.invitation_id = i.id ORDER BY e.at, e.id";
pub(super) const LATEST_INVITATION: &str =
    "SELECT id, member_id, sent_at, expires_at, message_id FROM invitations \
                 WHERE member_id = $1 AND send_state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1";
pub(super) const SUPPRESSIONS: &str =
    "SELECT reason, at FROM suppressions WHERE email_key = $1 ORDER BY at DESC";
pub(super) const DOMAIN_TROUBLE: &str = "SELECT COUNT(DISTINCT recipient_key) AS recipients, \
                        COUNT(DISTINCT CASE WHEN event = 'bounced' THEN recipient_key END) AS bounced, \
                        COUNT(DISTINCT CASE WHEN event = 'deferred' THEN recipient_key END) AS deferred, \
                        COUNT(DISTINCT CASE WHEN event = 'spam_complaint' THEN recipient_key END) AS complained \
                 FROM delivery_events \
                 WHERE recipient_domain = $1 AND at >= $2 AND recipient_key <> $3 \
                   AND event <> 'delivered'";

impl Store {
    /// The member's most recent invitation email, if any was ever sent.
    pub async fn latest_invitation(&self, member_id: i64) -> StoreResult<Option<Invitation>> {
        let row: Option<InvitationRow> = on_backend!(self, pool => {
            sqlx::query_as(
                LATEST_INVITATION,
            )
            .bind(member_id)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Invitation::from))
    }

    /// The member's latest sent invitation with its delivery events (oldest first), in one query.
    pub async fn latest_invitation_with_events(
        &self,
        member_id: i64,
    ) -> StoreResult<Option<(Invitation, Vec<DeliveryEvent>)>> {
        let rows: Vec<InvitationEventRow> = on_backend!(self, pool => {
            sqlx::query_as(LATEST_INVITATION_WITH_EVENTS)
                .bind(member_id)
                .fetch_all(pool)
                .await?
        });
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let invitation = Invitation {
            id: first.id,
            member_id: first.member_id,
            sent_at: first.sent_at,
            expires_at: first.expires_at,
            message_id: first.message_id.clone(),
        };
        let events = rows
            .into_iter()
            .filter_map(|row| Some((row.event?, row.bounce_kind, row.at?, row.detail)))
            .map(|(event, bounce, at, detail)| {
                Ok(DeliveryEvent {
                    kind: decode_enum(&event, "delivery_events.event", DeliveryEventKind::parse)?,
                    bounce: bounce
                        .as_deref()
                        .map(|b| decode_enum(b, "delivery_events.bounce_kind", BounceKind::parse))
                        .transpose()?,
                    at,
                    detail,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((invitation, events)))
    }

    /// Why this address is on the suppression list, most recent first (empty when it is not).
    pub async fn suppressions(&self, email_key: &str) -> StoreResult<Vec<Suppression>> {
        let rows: Vec<SuppressionRow> = on_backend!(self, pool => {
            sqlx::query_as(
                SUPPRESSIONS,
            )
            .bind(email_key)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(Suppression {
                    reason: decode_enum(
                        &row.reason,
                        "suppressions.reason",
                        SuppressionReason::parse,
                    )?,
                    at: row.at,
                })
            })
            .collect()
    }

    /// Recipients at `domain`, other than `except_key`, whose mail bounced, was deferred or drew a
    /// complaint since `since`.
    pub async fn domain_trouble(
        &self,
        domain: &str,
        except_key: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<DomainTrouble> {
        let trouble = on_backend!(self, pool => {
            sqlx::query_as(
                DOMAIN_TROUBLE,
            )
            .bind(domain)
            .bind(since)
            .bind(except_key)
            .fetch_one(pool)
            .await?
        });
        Ok(trouble)
    }
}
