//! Invitations, delivery events and suppressions: what happened to the emails after they left.

use chrono::{DateTime, Utc};

use super::{decode_enum, on_backend, Store, StoreError, StoreResult};
use crate::domain::invitation::{
    BounceKind, DeliveryEvent, DeliveryEventKind, DomainTrouble, Invitation, Suppression,
    SuppressionReason,
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

/// One row of [`DELIVERY_FACTS`]: `kind` says which branch produced it and so which columns are set.
#[derive(sqlx::FromRow)]
struct DeliveryFactRow {
    kind: String,
    id: Option<i64>,
    member_id: Option<i64>,
    sent_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    message_id: Option<String>,
    label: Option<String>,
    bounce_kind: Option<String>,
    at: Option<DateTime<Utc>>,
    detail: Option<String>,
    event_id: Option<i64>,
    recipients: Option<i64>,
    bounced: Option<i64>,
    deferred: Option<i64>,
    complained: Option<i64>,
}

pub(super) const LATEST_INVITATION: &str =
    "SELECT id, member_id, sent_at, expires_at, message_id FROM invitations \
                 WHERE member_id = $1 AND send_state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1";

/// Everything the delivery check reads, in one round trip: the latest sent invitation with its events
/// (`$1` member, one `invitation` row without an event when it has none), the address's suppressions
/// (`$2`), and, when `$3` is true, the trouble at its domain (`$4`) since `$5`, other than the address
/// itself. Each branch is an index range; NULLs are typed so both databases agree on the columns.
/// (The domain branch is an aggregate: when `$3` is false it still yields one row, of zeros, which
/// costs nothing because both planners test a parameter-only condition once, before any read.)
pub const DELIVERY_FACTS: &str = concat!(
    "SELECT CASE WHEN e.id IS NULL THEN 'invitation' ELSE 'event' END AS kind, \
       i.id, i.member_id, i.sent_at, i.expires_at, i.message_id, \
       e.event AS label, e.bounce_kind, e.at, e.detail, e.id AS event_id, \
       CAST(NULL AS BIGINT) AS recipients, CAST(NULL AS BIGINT) AS bounced, \
       CAST(NULL AS BIGINT) AS deferred, CAST(NULL AS BIGINT) AS complained \
     FROM (SELECT id, member_id, sent_at, expires_at, message_id FROM invitations \
           WHERE member_id = $1 AND send_state = 'sent' ORDER BY sent_at DESC, id DESC LIMIT 1) i \
     LEFT JOIN delivery_events e ON e.invitation_id = i.id ",
    "UNION ALL SELECT 'suppression', CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
       CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TEXT), \
       reason, CAST(NULL AS TEXT), at, CAST(NULL AS TEXT), CAST(NULL AS BIGINT), \
       CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) \
     FROM suppressions WHERE email_key = $2 ",
    "UNION ALL SELECT 'domain', CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), \
       CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TEXT), \
       CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TIMESTAMPTZ), CAST(NULL AS TEXT), \
       CAST(NULL AS BIGINT), \
       COUNT(DISTINCT recipient_key), \
       COUNT(DISTINCT CASE WHEN event = 'bounced' THEN recipient_key END), \
       COUNT(DISTINCT CASE WHEN event = 'deferred' THEN recipient_key END), \
       COUNT(DISTINCT CASE WHEN event = 'spam_complaint' THEN recipient_key END) \
     FROM delivery_events \
     WHERE $3 AND recipient_domain = $4 AND at >= $5 AND recipient_key <> $2 \
       AND event <> 'delivered'"
);

/// What [`Store::delivery_facts`] found about one member's invitation email.
#[derive(Debug, Clone, Default)]
pub struct DeliveryRecord {
    /// The latest sent invitation and its events, oldest first.
    pub latest: Option<(Invitation, Vec<DeliveryEvent>)>,
    /// Why the address is suppressed, most recent first (empty when it is not).
    pub suppressions: Vec<Suppression>,
    /// Trouble at the address's domain; `None` when it was not asked for.
    pub domain_trouble: Option<DomainTrouble>,
}

/// Where to look for trouble at the address's domain.
#[derive(Debug, Clone, Copy)]
pub struct DomainWindow<'a> {
    pub domain: &'a str,
    pub since: DateTime<Utc>,
}

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

    /// The latest invitation with its events, the suppressions, and (when `domain` is given) the
    /// trouble at the domain, for the member `member_id` with address key `email_key`: one query.
    pub async fn delivery_facts(
        &self,
        member_id: i64,
        email_key: &str,
        domain: Option<DomainWindow<'_>>,
    ) -> StoreResult<DeliveryRecord> {
        let (check_domain, domain_name, since) = match domain {
            Some(window) => (true, window.domain, window.since),
            None => (false, "", DateTime::<Utc>::UNIX_EPOCH),
        };
        let rows: Vec<DeliveryFactRow> = on_backend!(self, pool => {
            sqlx::query_as(DELIVERY_FACTS)
                .bind(member_id)
                .bind(email_key)
                .bind(check_domain)
                .bind(domain_name)
                .bind(since)
                .fetch_all(pool)
                .await?
        });
        let mut record = DeliveryRecord::default();
        let mut events = Vec::new();
        for row in rows {
            match row.kind.as_str() {
                "invitation" | "event" => {
                    if record.latest.is_none() {
                        let missing =
                            |column| StoreError::Corrupt(format!("invitations.{column} is NULL"));
                        let invitation = Invitation {
                            id: row.id.ok_or_else(|| missing("id"))?,
                            member_id: row.member_id.ok_or_else(|| missing("member_id"))?,
                            sent_at: row.sent_at.ok_or_else(|| missing("sent_at"))?,
                            expires_at: row.expires_at.ok_or_else(|| missing("expires_at"))?,
                            message_id: row.message_id.clone(),
                        };
                        record.latest = Some((invitation, Vec::new()));
                    }
                    if let (Some(event), Some(at)) = (row.label, row.at) {
                        let kind =
                            decode_enum(&event, "delivery_events.event", DeliveryEventKind::parse)?;
                        let bounce = row
                            .bounce_kind
                            .as_deref()
                            .map(|b| {
                                decode_enum(b, "delivery_events.bounce_kind", BounceKind::parse)
                            })
                            .transpose()?;
                        let event = DeliveryEvent {
                            kind,
                            bounce,
                            at,
                            detail: row.detail,
                        };
                        events.push((row.event_id.unwrap_or_default(), event));
                    }
                }
                "suppression" => {
                    if let (Some(reason), Some(at)) = (row.label, row.at) {
                        let reason =
                            decode_enum(&reason, "suppressions.reason", SuppressionReason::parse)?;
                        record.suppressions.push(Suppression { reason, at });
                    }
                }
                "domain" if check_domain => {
                    record.domain_trouble = Some(DomainTrouble {
                        recipients: row.recipients.unwrap_or(0),
                        bounced: row.bounced.unwrap_or(0),
                        deferred: row.deferred.unwrap_or(0),
                        complained: row.complained.unwrap_or(0),
                    });
                }
                _ => {}
            }
        }
        // A compound select has one ORDER BY for all its branches; each list is ordered here instead.
        events.sort_by(|(a_id, a), (b_id, b)| a.at.cmp(&b.at).then(a_id.cmp(b_id)));
        if let Some((_, list)) = &mut record.latest {
            *list = events.into_iter().map(|(_, event)| event).collect();
        }
        record.suppressions.sort_by_key(|s| std::cmp::Reverse(s.at));
        if check_domain && record.domain_trouble.is_none() {
            record.domain_trouble = Some(DomainTrouble::default());
        }
        Ok(record)
    }
}
