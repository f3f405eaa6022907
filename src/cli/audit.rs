//! `invite-bot audit [--email A] [--workspace W] [--since WHEN] [--limit N]`: read the audit log.

use chrono::Utc;

use crate::app::startup;
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::error::UserError;
use crate::store::AuditFilter;

use super::operator::parse_workspace;
use super::output::{print_pretty_json, words};
use super::{Failure, Format};

pub(super) async fn audit(
    config: &Config,
    email: Option<&str>,
    workspace: Option<&str>,
    since: Option<String>,
    limit: i64,
    format: Format,
) -> Result<(), Failure> {
    let email = email
        .map(EmailAddress::parse)
        .transpose()
        .map_err(UserError::from)?;
    let workspace = parse_workspace(workspace)?;
    let since = since
        .map(|s| crate::fixture::parse_when(&toml::Value::String(s), Utc::now()))
        .transpose()
        .map_err(|e| Failure::bad_input(format!("--since: {e}")))?;
    let actions = startup::build(config).await?;
    let engine = actions.engine();
    let entries = actions
        .read_audit(&AuditFilter {
            email_key: email.map(|e| e.key().to_owned()),
            workspace: workspace.map(|w| w.as_str().to_owned()),
            since,
            limit: limit.max(1),
        })
        .await;
    engine.store().close().await;
    let entries = entries?;
    match format {
        Format::Json => print_pretty_json(&entries)?,
        Format::Text => {
            for entry in &entries {
                let facts = serde_json::to_value(entry)
                    .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
                println!("{}", words(engine.prompts(), "audit_entry", &facts)?);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use crate::domain::{AuditAction, AuditOutcome, AuditReason};
    use crate::prompts::Prompts;
    use crate::store::AuditEntry;

    use super::*;

    fn entry(reason: Option<AuditReason>, reference: Option<&str>) -> AuditEntry {
        AuditEntry {
            at: Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
                + chrono::Duration::milliseconds(890),
            actor_id: "local".into(),
            actor_name: "local operator".into(),
            action: AuditAction::ResendInvite,
            workspace: None,
            email: Some("jo@learners.example".into()),
            outcome: AuditOutcome::Refused,
            reason,
            reference: reference.map(str::to_owned),
            detail: None,
        }
    }

    /// The columns the audit printed before its words moved to `cli.j2`, which scripts may cut.
    fn columns(entry: &AuditEntry) -> String {
        format!(
            "{}  {:<24} {:<22} {:<16} {:<30} {}{}{}",
            entry.at.format("%Y-%m-%d %H:%M:%S"),
            entry.actor_name,
            entry.action,
            entry.workspace.as_deref().unwrap_or("-"),
            entry.email.as_deref().unwrap_or("-"),
            entry.outcome,
            entry.reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            entry
                .reference
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default(),
        )
    }

    #[test]
    fn an_audit_line_keeps_its_columns() {
        let prompts = Prompts::builtin().unwrap();
        for entry in [
            entry(None, None),
            entry(Some(AuditReason::RateLimited), None),
            entry(Some(AuditReason::RateLimited), Some("RSD-1234")),
        ] {
            let facts = serde_json::to_value(&entry).unwrap();
            let line = words(&prompts, "audit_entry", &facts).unwrap();
            assert_eq!(line, columns(&entry));
        }
    }
}
