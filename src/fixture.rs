//! Seed fixtures: a TOML description of workspaces, members, invitations, delivery events and
//! suppressions, loaded by `invite-bot seed FILE`.
//!
//! A fixture is parsed and checked whole before anything is written, and written in one transaction,
//! so a bad fixture leaves the database as it was. Times may be absolute (RFC 3339 or a TOML date-time)
//! or relative to the moment of seeding (`"now"`, `"3 days ago"`, `"in 2 hours"`, `"-90m"`, `"+7d"`),
//! which keeps demo data meaningful whenever it is loaded.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::domain::email::EmailAddress;
use crate::domain::invitation::{BounceKind, DeliveryEventKind, SuppressionReason};
use crate::domain::member::{MemberStatus, Role};
use crate::domain::workspace::WorkspaceSlug;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{entry}, field `{field}`: {reason}")]
    Entry {
        entry: String,
        field: &'static str,
        reason: String,
    },
    /// Two entries for the same thing that disagree: which one would land is not the file's call.
    #[error("{first} and {second}: {reason}")]
    Conflict {
        first: String,
        second: String,
        reason: String,
    },
}

impl FixtureError {
    pub(crate) fn entry(
        entry: &str,
        index: usize,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        FixtureError::Entry {
            entry: format!("[[{entry}]] #{}", index + 1),
            field,
            reason: reason.into(),
        }
    }

    fn conflict(entry: &str, first: usize, second: usize, reason: String) -> Self {
        FixtureError::Conflict {
            first: format!("[[{entry}]] #{}", first + 1),
            second: format!("[[{entry}]] #{}", second + 1),
            reason,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub workspaces: Vec<FixtureWorkspace>,
    pub members: Vec<FixtureMember>,
    pub invitations: Vec<FixtureInvitation>,
    pub delivery_events: Vec<FixtureDeliveryEvent>,
    pub suppressions: Vec<FixtureSuppression>,
}

#[derive(Debug, Clone)]
pub struct FixtureWorkspace {
    pub slug: WorkspaceSlug,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct FixtureMember {
    pub workspace: WorkspaceSlug,
    pub email: EmailAddress,
    pub role: Role,
    pub status: MemberStatus,
    pub invited_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct FixtureInvitation {
    pub workspace: WorkspaceSlug,
    pub email: EmailAddress,
    pub sent_at: DateTime<Utc>,
    /// When absent, the configured invitation lifetime after `sent_at`.
    pub expires_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FixtureDeliveryEvent {
    pub email: EmailAddress,
    /// When absent, the event belongs to that address's latest invitation.
    pub message_id: Option<String>,
    pub event: DeliveryEventKind,
    pub bounce: Option<BounceKind>,
    pub at: DateTime<Utc>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FixtureSuppression {
    pub email: EmailAddress,
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
}

/// What a seed wrote (inserted or updated), by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    pub workspaces: usize,
    pub members: usize,
    pub invitations: usize,
    pub delivery_events: usize,
    pub suppressions: usize,
}

// The raw TOML shapes. Every field is text so that a wrong value is reported with its entry and field
// rather than as a bare type error.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    #[serde(default)]
    workspace: Vec<RawWorkspace>,
    #[serde(default)]
    member: Vec<RawMember>,
    #[serde(default)]
    invitation: Vec<RawInvitation>,
    #[serde(default)]
    delivery_event: Vec<RawDeliveryEvent>,
    #[serde(default)]
    suppression: Vec<RawSuppression>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    slug: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    workspace: String,
    email: String,
    role: String,
    status: String,
    invited_at: Option<toml::Value>,
    activated_at: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvitation {
    workspace: String,
    email: String,
    sent_at: toml::Value,
    expires_at: Option<toml::Value>,
    message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeliveryEvent {
    email: String,
    message_id: Option<String>,
    event: String,
    bounce: Option<String>,
    at: toml::Value,
    detail: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppression {
    email: String,
    reason: String,
    at: toml::Value,
}

impl Fixture {
    /// Parses and checks a whole fixture; `file` names it in errors, `now` anchors relative times.
    pub fn parse(text: &str, file: &str, now: DateTime<Utc>) -> Result<Self, FixtureError> {
        let raw: RawFixture = toml::from_str(text).map_err(|e| FixtureError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;

        let workspaces = raw
            .workspace
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let err =
                    |field, reason: String| FixtureError::entry("workspace", i, field, reason);
                let slug = WorkspaceSlug::parse(&w.slug).map_err(|e| err("slug", e.to_string()))?;
                if w.name.trim().is_empty() {
                    return Err(err("name", "must not be empty".into()));
                }
                Ok(FixtureWorkspace {
                    slug,
                    name: w.name.trim().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let members = raw
            .member
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let err = |field, reason: String| FixtureError::entry("member", i, field, reason);
                Ok::<_, FixtureError>(FixtureMember {
                    workspace: WorkspaceSlug::parse(&m.workspace)
                        .map_err(|e| err("workspace", e.to_string()))?,
                    email: EmailAddress::parse(&m.email)
                        .map_err(|e| err("email", e.to_string()))?,
                    role: Role::parse(&m.role).ok_or_else(|| {
                        err(
                            "role",
                            format!("expected learner or trainer, got {:?}", m.role),
                        )
                    })?,
                    status: MemberStatus::parse(&m.status).ok_or_else(|| {
                        err(
                            "status",
                            format!(
                                "expected invited, active or deactivated, got {:?}",
                                m.status
                            ),
                        )
                    })?,
                    invited_at: m
                        .invited_at
                        .map(|v| parse_when(&v, now).map_err(|e| err("invited_at", e)))
                        .transpose()?,
                    activated_at: m
                        .activated_at
                        .map(|v| parse_when(&v, now).map_err(|e| err("activated_at", e)))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let invitations = raw
            .invitation
            .into_iter()
            .enumerate()
            .map(|(i, inv)| {
                let err =
                    |field, reason: String| FixtureError::entry("invitation", i, field, reason);
                let sent_at = parse_when(&inv.sent_at, now).map_err(|e| err("sent_at", e))?;
                let expires_at = inv
                    .expires_at
                    .map(|v| parse_when(&v, now).map_err(|e| err("expires_at", e)))
                    .transpose()?;
                if expires_at.is_some_and(|expires| expires < sent_at) {
                    return Err(err("expires_at", "is before sent_at".into()));
                }
                Ok(FixtureInvitation {
                    workspace: WorkspaceSlug::parse(&inv.workspace)
                        .map_err(|e| err("workspace", e.to_string()))?,
                    email: EmailAddress::parse(&inv.email)
                        .map_err(|e| err("email", e.to_string()))?,
                    sent_at,
                    expires_at,
                    message_id: message_id(inv.message_id).map_err(|e| err("message_id", e))?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let delivery_events = raw
            .delivery_event
            .into_iter()
            .enumerate()
            .map(|(i, ev)| {
                let err =
                    |field, reason: String| FixtureError::entry("delivery_event", i, field, reason);
                let event = DeliveryEventKind::parse(&ev.event).ok_or_else(|| {
                    err(
                        "event",
                        format!(
                            "expected delivered, deferred, bounced or spam_complaint, got {:?}",
                            ev.event
                        ),
                    )
                })?;
                let bounce = match (event, ev.bounce.as_deref()) {
                    (DeliveryEventKind::Bounced, Some(kind)) => {
                        Some(BounceKind::parse(kind).ok_or_else(|| {
                            err("bounce", format!("expected hard or soft, got {kind:?}"))
                        })?)
                    }
                    (DeliveryEventKind::Bounced, None) => {
                        return Err(err(
                            "bounce",
                            "a bounced event needs bounce = \"hard\" or \"soft\"".into(),
                        ))
                    }
                    (_, Some(_)) => {
                        return Err(err(
                            "bounce",
                            "only a bounced event has a bounce kind".into(),
                        ))
                    }
                    (_, None) => None,
                };
                Ok(FixtureDeliveryEvent {
                    email: EmailAddress::parse(&ev.email)
                        .map_err(|e| err("email", e.to_string()))?,
                    message_id: message_id(ev.message_id).map_err(|e| err("message_id", e))?,
                    event,
                    bounce,
                    at: parse_when(&ev.at, now).map_err(|e| err("at", e))?,
                    detail: ev.detail.filter(|d| !d.trim().is_empty()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let suppressions = raw
            .suppression
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let err = |field, reason: String| FixtureError::entry("suppression", i, field, reason);
                Ok::<_, FixtureError>(FixtureSuppression {
                    email: EmailAddress::parse(&s.email).map_err(|e| err("email", e.to_string()))?,
                    reason: SuppressionReason::parse(&s.reason).ok_or_else(|| {
                        err(
                            "reason",
                            format!(
                                "expected hard_bounce, spam_complaint, unsubscribe or manual, got {:?}",
                                s.reason
                            ),
                        )
                    })?,
                    at: parse_when(&s.at, now).map_err(|e| err("at", e))?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let fixture = Fixture {
            workspaces,
            members,
            invitations,
            delivery_events,
            suppressions,
        };
        fixture.check_repeats()?;
        Ok(fixture)
    }

    /// Entries naming the same workspace, member, invitation (by message id) or suppression must
    /// agree. An exact repeat is harmless and lands once; one that differs would silently land as
    /// whichever came last, so it is an error naming both entries and what differs.
    pub fn check_repeats(&self) -> Result<(), FixtureError> {
        let mut workspaces: HashMap<&str, usize> = HashMap::new();
        for (i, workspace) in self.workspaces.iter().enumerate() {
            let slug = workspace.slug.as_str();
            let Some(&first) = workspaces.get(slug) else {
                workspaces.insert(slug, i);
                continue;
            };
            let earlier = &self.workspaces[first];
            if earlier.name != workspace.name {
                return Err(FixtureError::conflict(
                    "workspace",
                    first,
                    i,
                    format!(
                        "workspace `{slug}` twice with different names ({:?}, then {:?})",
                        earlier.name, workspace.name
                    ),
                ));
            }
        }

        let mut members: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, member) in self.members.iter().enumerate() {
            let key = (member.workspace.as_str(), member.email.key());
            let Some(&first) = members.get(&key) else {
                members.insert(key, i);
                continue;
            };
            let earlier = &self.members[first];
            let differs = differences([
                (
                    "role",
                    earlier.role.as_str().into(),
                    member.role.as_str().into(),
                ),
                (
                    "status",
                    earlier.status.as_str().into(),
                    member.status.as_str().into(),
                ),
                (
                    "email",
                    earlier.email.as_entered().into(),
                    member.email.as_entered().into(),
                ),
                (
                    "invited_at",
                    when(earlier.invited_at),
                    when(member.invited_at),
                ),
                (
                    "activated_at",
                    when(earlier.activated_at),
                    when(member.activated_at),
                ),
            ]);
            if let Some(differs) = differs {
                return Err(FixtureError::conflict(
                    "member",
                    first,
                    i,
                    format!(
                        "{} in `{}` twice with different {differs}",
                        member.email.key(),
                        key.0
                    ),
                ));
            }
        }

        let mut invitations: HashMap<&str, usize> = HashMap::new();
        for (i, invitation) in self.invitations.iter().enumerate() {
            let Some(message_id) = invitation.message_id.as_deref() else {
                continue;
            };
            let Some(&first) = invitations.get(message_id) else {
                invitations.insert(message_id, i);
                continue;
            };
            let earlier = &self.invitations[first];
            let differs = differences([
                (
                    "workspace",
                    earlier.workspace.as_str().into(),
                    invitation.workspace.as_str().into(),
                ),
                (
                    "email",
                    earlier.email.key().into(),
                    invitation.email.key().into(),
                ),
                (
                    "sent_at",
                    when(Some(earlier.sent_at)),
                    when(Some(invitation.sent_at)),
                ),
                (
                    "expires_at",
                    when(earlier.expires_at),
                    when(invitation.expires_at),
                ),
            ]);
            if let Some(differs) = differs {
                return Err(FixtureError::conflict(
                    "invitation",
                    first,
                    i,
                    format!(
                        "two invitations with message id {message_id:?} and different {differs}"
                    ),
                ));
            }
        }

        let mut suppressions: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, suppression) in self.suppressions.iter().enumerate() {
            let key = (suppression.email.key(), suppression.reason.as_str());
            let Some(&first) = suppressions.get(&key) else {
                suppressions.insert(key, i);
                continue;
            };
            let earlier = &self.suppressions[first];
            if earlier.at != suppression.at {
                return Err(FixtureError::conflict(
                    "suppression",
                    first,
                    i,
                    format!(
                        "{} suppressed for {} twice with different at ({}, then {})",
                        key.0,
                        key.1,
                        when(Some(earlier.at)),
                        when(Some(suppression.at))
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// "role (learner, then trainer)" for each field whose two values differ, or `None`.
fn differences<const N: usize>(fields: [(&str, String, String); N]) -> Option<String> {
    let differing: Vec<String> = fields
        .into_iter()
        .filter(|(_, earlier, later)| earlier != later)
        .map(|(field, earlier, later)| format!("{field} ({earlier}, then {later})"))
        .collect();
    (!differing.is_empty()).then(|| differing.join(" and "))
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "none".to_owned(), |at| at.to_rfc3339())
}

/// A message id in the form the store keeps (`<a@b>` and `a@b` are one message).
fn message_id(value: Option<String>) -> Result<Option<String>, String> {
    non_empty(value.map(|v| crate::domain::invitation::canonical_message_id(&v)))
}

fn non_empty(value: Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.trim().is_empty() => Err("must not be empty when given".into()),
        other => Ok(other.map(|v| v.trim().to_owned())),
    }
}

/// Reads a time: a TOML date-time, an RFC 3339 string, or a time relative to `now`.
pub fn parse_when(value: &toml::Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = match value {
        toml::Value::Datetime(dt) => dt.to_string(),
        toml::Value::String(s) => s.trim().to_owned(),
        other => return Err(format!("expected a time, got {}", other.type_str())),
    };
    if let Ok(absolute) = DateTime::parse_from_rfc3339(&text) {
        return Ok(absolute.with_timezone(&Utc));
    }
    parse_relative(&text, now).ok_or_else(|| {
        format!(
            "{text:?} is not a time: use RFC 3339 (2026-11-20T09:30:00Z), \"now\", \"3 days ago\", \
             \"in 2 hours\", \"-90m\" or \"+7d\""
        )
    })
}

fn parse_relative(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.to_ascii_lowercase();
    if text == "now" {
        return Some(now);
    }
    let (sign, body) = if let Some(rest) = text.strip_suffix(" ago") {
        (-1, rest.trim().to_owned())
    } else if let Some(rest) = text.strip_prefix("in ") {
        (1, rest.trim().to_owned())
    } else if let Some(rest) = text.strip_prefix('-') {
        (-1, rest.trim().to_owned())
    } else if let Some(rest) = text.strip_prefix('+') {
        (1, rest.trim().to_owned())
    } else {
        return None;
    };
    let split = body.find(|c: char| !c.is_ascii_digit())?;
    let amount: i64 = body[..split].parse().ok()?;
    let unit = body[split..].trim();
    let step = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => Duration::seconds(1),
        "m" | "min" | "mins" | "minute" | "minutes" => Duration::minutes(1),
        "h" | "hour" | "hours" => Duration::hours(1),
        "d" | "day" | "days" => Duration::days(1),
        "w" | "week" | "weeks" => Duration::weeks(1),
        _ => return None,
    };
    let offset = step.checked_mul(i32::try_from(amount).ok()?)?;
    if sign < 0 {
        now.checked_sub_signed(offset)
    } else {
        now.checked_add_signed(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn reads_relative_and_absolute_times() {
        let when = |s: &str| parse_when(&toml::Value::String(s.into()), now());
        assert_eq!(when("now").unwrap(), now());
        assert_eq!(when("3 days ago").unwrap(), now() - Duration::days(3));
        assert_eq!(when("in 2 hours").unwrap(), now() + Duration::hours(2));
        assert_eq!(when("-90m").unwrap(), now() - Duration::minutes(90));
        assert_eq!(when("+7d").unwrap(), now() + Duration::days(7));
        assert_eq!(
            when("2026-11-20T09:30:00Z").unwrap(),
            DateTime::parse_from_rfc3339("2026-11-20T09:30:00Z").unwrap()
        );
        assert!(when("yesterday")
            .unwrap_err()
            .contains("\"yesterday\" is not a time"));
        assert!(when("99999999999 days ago").is_err());
    }

    #[test]
    fn names_the_entry_and_field_of_a_mistake() {
        let text = r#"
            [[workspace]]
            slug = "acme"
            name = "Acme"
            [[member]]
            workspace = "acme"
            email = "ok@acme.com"
            role = "learner"
            status = "invited"
            [[member]]
            workspace = "acme"
            email = "bad@acme.com"
            role = "admin"
            status = "invited"
        "#;
        let err = Fixture::parse(text, "f.toml", now())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "[[member]] #2, field `role`: expected learner or trainer, got \"admin\""
        );
    }

    const ACME: &str = "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n";

    fn member(email: &str, role: &str, status: &str) -> String {
        format!(
            "[[member]]\nworkspace = \"acme\"\nemail = \"{email}\"\nrole = \"{role}\"\nstatus = \"{status}\"\n"
        )
    }

    fn invitation(email: &str, sent_at: &str, message_id: &str) -> String {
        format!(
            "[[invitation]]\nworkspace = \"acme\"\nemail = \"{email}\"\nsent_at = \"{sent_at}\"\nmessage_id = \"{message_id}\"\n"
        )
    }

    fn conflict(text: &str) -> String {
        match Fixture::parse(text, "f.toml", now()) {
            Err(error @ FixtureError::Conflict { .. }) => error.to_string(),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    #[test]
    fn conflicting_repeats_are_errors_naming_both_entries() {
        let text = [
            ACME.to_owned(),
            member("a@acme.com", "learner", "invited"),
            member("b@acme.com", "learner", "invited"),
            member("a@acme.com", "trainer", "invited"),
        ]
        .concat();
        assert_eq!(
            conflict(&text),
            "[[member]] #1 and [[member]] #3: a@acme.com in `acme` twice with different role \
             (learner, then trainer)"
        );
        let text = [
            ACME.to_owned(),
            member("a@acme.com", "learner", "invited"),
            member("A@Acme.com", "learner", "active"),
        ]
        .concat();
        assert_eq!(
            conflict(&text),
            "[[member]] #1 and [[member]] #2: a@acme.com in `acme` twice with different status \
             (invited, then active) and email (a@acme.com, then A@Acme.com)"
        );

        let text = format!("{ACME}[[workspace]]\nslug = \"globex\"\nname = \"G\"\n[[workspace]]\nslug = \"acme\"\nname = \"Acme Academy\"\n");
        assert_eq!(
            conflict(&text),
            "[[workspace]] #1 and [[workspace]] #3: workspace `acme` twice with different names \
             (\"Acme\", then \"Acme Academy\")"
        );

        let text = [
            ACME.to_owned(),
            member("a@acme.com", "learner", "invited"),
            member("b@acme.com", "learner", "invited"),
            invitation("a@acme.com", "2 days ago", "m-1"),
            invitation("b@acme.com", "2 days ago", "m-1"),
        ]
        .concat();
        assert_eq!(
            conflict(&text),
            "[[invitation]] #1 and [[invitation]] #2: two invitations with message id \"m-1\" and \
             different email (a@acme.com, then b@acme.com)"
        );

        let text = "[[suppression]]\nemail = \"a@acme.com\"\nreason = \"manual\"\nat = \"now\"\n\
                    [[suppression]]\nemail = \"a@acme.com\"\nreason = \"manual\"\nat = \"1 day ago\"\n";
        assert!(
            conflict(text).starts_with("[[suppression]] #1 and [[suppression]] #2: a@acme.com"),
            "{}",
            conflict(text)
        );
    }

    #[test]
    fn exact_repeats_are_harmless() {
        let text = [
            ACME.to_owned(),
            ACME.to_owned(),
            member("a@acme.com", "learner", "invited"),
            member("a@acme.com", "learner", "invited"),
            invitation("a@acme.com", "2 days ago", "m-1"),
            invitation("a@acme.com", "2 days ago", "m-1"),
            "[[suppression]]\nemail = \"a@acme.com\"\nreason = \"manual\"\nat = \"now\"\n"
                .repeat(2),
        ]
        .concat();
        let fixture = Fixture::parse(&text, "f.toml", now()).unwrap();
        assert_eq!(
            fixture.members.len(),
            2,
            "kept as read; the loader writes them once"
        );
        // The same member in two workspaces, or one address suppressed for two reasons, is no repeat.
        let text = format!(
            "{ACME}[[workspace]]\nslug = \"globex\"\nname = \"G\"\n{}{}",
            member("a@acme.com", "learner", "invited"),
            member("a@acme.com", "trainer", "active").replace("\"acme\"", "\"globex\"")
        );
        Fixture::parse(&text, "f.toml", now()).unwrap();
    }

    #[test]
    fn reports_unknown_fields_with_the_file() {
        let err = Fixture::parse(
            "[[workspace]]\nslug = \"a\"\nnmae = \"x\"\n",
            "f.toml",
            now(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("f.toml: "), "{err}");
        assert!(err.contains("nmae"), "{err}");
    }
}
