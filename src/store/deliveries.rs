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

#[derive(sqlx::FromRow)]
struct EventRow {
    event: String,
    bounce_kind: Option<String>,
    at: DateTime<Utc>,
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

pub(super) const LATEST_INVITATION: &str =
    "SELECT id, member_id, sent_at, expires_at, message_id FROM invitations \
                 WHERE member_id = $1 AND send_state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1";
pub(super) const INVITATION_EVENTS: &str =
    "SELECT event, bounce_kind, at, detail FROM delivery_events \
                 WHERE invitation_id = $1 ORDER BY at, id";
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

    /// The delivery events of one invitation, oldest first.
    pub async fn invitation_events(&self, invitation_id: i64) -> StoreResult<Vec<DeliveryEvent>> {
        let rows: Vec<EventRow> = on_backend!(self, pool => {
            sqlx::query_as(
                INVITATION_EVENTS,
            )
            .bind(invitation_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|row| {
                Ok(DeliveryEvent {
                    kind: decode_enum(
                        &row.event,
                        "delivery_events.event",
                        DeliveryEventKind::parse,
                    )?,
                    bounce: row
                        .bounce_kind
                        .as_deref()
                        .map(|b| decode_enum(b, "delivery_events.bounce_kind", BounceKind::parse))
                        .transpose()?,
                    at: row.at,
                    detail: row.detail,
                })
            })
            .collect()
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
