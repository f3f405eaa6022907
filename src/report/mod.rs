//! The workspace report: every member of one workspace by state (the verdict a check would give,
//! with "delivered" split by age into waiting and stale), the company domains with the most
//! failures, and the members that need action with the next step for each. Edges (Discord, the
//! CLI) call [`Reports`]; the counting is one aggregate statement in `store/report.rs`.
//!
//! [`bulk`] resends to every eligible member, one by one, through the ordinary resend action.

pub mod bulk;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use crate::actions::{Actions, Actor};
use crate::config::Config;
use crate::diagnosis::Verdict;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::Permission;
use crate::error::{EngineError, UserError};
use crate::store::{NeedingActionRow, ReportCountRow};

/// Where a member stands, in the report's terms: the verdict of a check, with a delivered
/// invitation split by its age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Invited, and no invitation email was ever sent.
    NeverSent,
    /// Sent and not accepted yet: no word from the provider, or delivered recently.
    Waiting,
    /// The provider is still trying (deferred, or a soft bounce).
    Deferred,
    /// Delivered, and not accepted `stale_invite_days` after it was sent.
    Stale,
    Bounced,
    Suppressed,
    SpamComplaint,
    /// The latest invitation expired unaccepted.
    Expired,
    Active,
    Deactivated,
}

impl MemberState {
    pub const ALL: [MemberState; 10] = [
        MemberState::NeverSent,
        MemberState::Waiting,
        MemberState::Deferred,
        MemberState::Stale,
        MemberState::Bounced,
        MemberState::Suppressed,
        MemberState::SpamComplaint,
        MemberState::Expired,
        MemberState::Active,
        MemberState::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::NeverSent => "never_sent",
            MemberState::Waiting => "waiting",
            MemberState::Deferred => "deferred",
            MemberState::Stale => "stale",
            MemberState::Bounced => "bounced",
            MemberState::Suppressed => "suppressed",
            MemberState::SpamComplaint => "spam_complaint",
            MemberState::Expired => "expired",
            MemberState::Active => "active",
            MemberState::Deactivated => "deactivated",
        }
    }

    /// The state of a member whose check says `verdict`; `stale` when a delivered invitation is
    /// older than the stale limit. `None` for `not_registered`, which no member has.
    pub fn of(verdict: Verdict, stale: bool) -> Option<MemberState> {
        Some(match verdict {
            Verdict::NotRegistered => return None,
            Verdict::AlreadyActive => MemberState::Active,
            Verdict::Deactivated => MemberState::Deactivated,
            Verdict::InviteSuppressed => MemberState::Suppressed,
            Verdict::InviteBounced => MemberState::Bounced,
            Verdict::InviteMarkedSpam => MemberState::SpamComplaint,
            Verdict::InviteNeverSent => MemberState::NeverSent,
            Verdict::InviteExpired => MemberState::Expired,
            Verdict::InviteDeferred => MemberState::Deferred,
            Verdict::InviteDelivered if stale => MemberState::Stale,
            Verdict::InviteDelivered | Verdict::InviteSent => MemberState::Waiting,
        })
    }

    /// Someone has to do something for this member (the CSV lists them). Waiting and deferred
    /// members are left to time; active and deactivated ones have no invitation problem.
    pub fn needs_action(self) -> bool {
        matches!(
            self,
            MemberState::NeverSent
                | MemberState::Stale
                | MemberState::Bounced
                | MemberState::Suppressed
                | MemberState::SpamComplaint
                | MemberState::Expired
        )
    }

    /// A resend can help (the bulk resend's members): the verdict offers one and nothing about
    /// the address stands in its way.
    pub fn resend_helps(self) -> bool {
        matches!(
            self,
            MemberState::NeverSent | MemberState::Stale | MemberState::Expired
        )
    }

    /// The address itself failed: these count towards the domains with the most failures.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MemberState::Bounced | MemberState::Suppressed | MemberState::SpamComplaint
        )
    }
}

/// The knobs of the report, from `[report]`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    pub stale_after: Duration,
    pub stale_invite_days: u32,
    pub top_domains: usize,
    pub max_csv_rows: u32,
    pub bulk: bulk::BulkSettings,
}

impl From<&Config> for ReportSettings {
    fn from(config: &Config) -> Self {
        let report = &config.report;
        ReportSettings {
            stale_after: Duration::days(i64::from(report.stale_invite_days)),
            stale_invite_days: report.stale_invite_days,
            top_domains: report.top_domains,
            max_csv_rows: report.max_csv_rows,
            bulk: bulk::BulkSettings::from(config),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateCount {
    pub state: MemberState,
    pub members: i64,
    pub needs_action: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainFailures {
    pub domain: String,
    /// Members at the domain that bounced, are suppressed or complained.
    pub members: i64,
}

/// The report of one workspace at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceReport {
    pub workspace: String,
    pub workspace_name: String,
    #[serde(skip)]
    pub workspace_id: i64,
    pub generated_at: DateTime<Utc>,
    pub stale_invite_days: u32,
    pub members: i64,
    /// Every state, in [`MemberState::ALL`] order, zeros included.
    pub states: Vec<StateCount>,
    pub top_domains: Vec<DomainFailures>,
    pub needing_action: i64,
    pub eligible_for_resend: i64,
}

/// One member that needs action: a row of the CSV.
#[derive(Debug, Clone, Serialize)]
pub struct MemberNeedingAction {
    #[serde(skip)]
    pub member_id: i64,
    pub email: String,
    pub state: MemberState,
    pub verdict: Verdict,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The counts per state and the top failing domains, from the store's groups.
pub fn summarize(
    rows: &[ReportCountRow],
    top: usize,
) -> Result<(Vec<StateCount>, Vec<DomainFailures>), EngineError> {
    let mut states: HashMap<MemberState, i64> = HashMap::new();
    let mut domains: HashMap<&str, i64> = HashMap::new();
    for row in rows {
        let state = Verdict::parse(&row.verdict)
            .and_then(|verdict| MemberState::of(verdict, row.stale))
            .ok_or_else(|| {
                EngineError::Internal(format!("report: unknown verdict {:?}", row.verdict).into())
            })?;
        *states.entry(state).or_default() += row.members;
        if let (true, Some(domain)) = (state.is_failure(), row.domain.as_deref()) {
            *domains.entry(domain).or_default() += row.members;
        }
    }
    let states = MemberState::ALL
        .into_iter()
        .map(|state| StateCount {
            state,
            members: states.get(&state).copied().unwrap_or(0),
            needs_action: state.needs_action(),
        })
        .collect();
    let mut domains: Vec<DomainFailures> = domains
        .into_iter()
        .map(|(domain, members)| DomainFailures {
            domain: domain.to_owned(),
            members,
        })
        .collect();
    // Most failures first; equal counts by name, so the answer does not change between runs.
    domains.sort_by(|a, b| b.members.cmp(&a.members).then(a.domain.cmp(&b.domain)));
    domains.truncate(top);
    Ok((states, domains))
}

/// The report service: authorizes, counts, lists. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reports {
    actions: Actions,
    settings: Arc<ReportSettings>,
}

impl Reports {
    pub fn new(actions: Actions, config: &Config) -> Self {
        Reports {
            actions,
            settings: Arc::new(ReportSettings::from(config)),
        }
    }

    /// With `settings` as given instead of from `[report]`: a test's seam, for bounds shorter
    /// than the config allows (a run's time bound is whole minutes there). Not for the bot.
    #[doc(hidden)]
    pub fn with_settings(actions: Actions, settings: ReportSettings) -> Self {
        Reports {
            actions,
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &ReportSettings {
        &self.settings
    }

    pub fn actions(&self) -> &Actions {
        &self.actions
    }

    /// The report of `workspace` as of `now`, for someone with the `check` permission there.
    #[tracing::instrument(name = "workspace_report", skip_all, fields(actor = actor.id(), workspace = %workspace))]
    pub async fn report(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
        now: DateTime<Utc>,
    ) -> Result<WorkspaceReport, EngineError> {
        if !actor.may(Permission::Check, workspace) {
            tracing::info!("report refused: no check permission");
            return Err(UserError::Forbidden {
                permission: Permission::Check.as_str(),
                workspace: Some(workspace.clone()),
            }
            .into());
        }
        let store = self.actions.engine().store();
        let found = store
            .find_workspace(workspace)
            .await?
            .ok_or_else(|| UserError::UnknownWorkspace(workspace.clone()))?;
        let started = std::time::Instant::now();
        let rows = store
            .report_counts(found.id, now, now - self.settings.stale_after)
            .await?;
        let (states, top_domains) = summarize(&rows, self.settings.top_domains)?;
        let sum = |keep: fn(MemberState) -> bool| -> i64 {
            states
                .iter()
                .filter(|s| keep(s.state))
                .map(|s| s.members)
                .sum()
        };
        let report = WorkspaceReport {
            workspace: found.slug.as_str().to_owned(),
            workspace_name: found.name.clone(),
            workspace_id: found.id,
            generated_at: now,
            stale_invite_days: self.settings.stale_invite_days,
            members: sum(|_| true),
            needing_action: sum(MemberState::needs_action),
            eligible_for_resend: sum(MemberState::resend_helps),
            states,
            top_domains,
        };
        tracing::info!(
            members = report.members,
            needing_action = report.needing_action,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "workspace report"
        );
        Ok(report)
    }

    /// The members of `report`'s workspace that need action (only those a resend helps when
    /// `resend_only`), by address, at most `limit`, as of the report's moment.
    pub async fn members_needing_action(
        &self,
        report: &WorkspaceReport,
        resend_only: bool,
        limit: u32,
    ) -> Result<Vec<MemberNeedingAction>, EngineError> {
        let now = report.generated_at;
        let rows = self
            .actions
            .engine()
            .store()
            .members_needing_action(
                report.workspace_id,
                now,
                now - self.settings.stale_after,
                resend_only,
                i64::from(limit),
            )
            .await?;
        rows.into_iter().map(member_needing_action).collect()
    }

    /// The CSV of `rows`: address, state, verdict, when the latest invitation was sent, and the
    /// next step in the words of `prompts/report.j2`.
    pub fn csv(&self, rows: &[MemberNeedingAction]) -> Result<Vec<u8>, EngineError> {
        let prompts = self.actions.engine().prompts();
        let mut steps: HashMap<MemberState, String> = HashMap::new();
        let internal = |e: csv::Error| EngineError::Internal(Box::new(e));
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(["email", "state", "verdict", "sent_at", "next_step"])
            .map_err(internal)?;
        for row in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = steps.entry(row.state) {
                slot.insert(
                    prompts.report_text("next_step", &json!({ "state": row.state.as_str() }))?,
                );
            }
            let sent_at = row
                .sent_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            writer
                .write_record([
                    row.email.as_str(),
                    row.state.as_str(),
                    row.verdict.as_str(),
                    sent_at.as_str(),
                    steps.get(&row.state).map(String::as_str).unwrap_or(""),
                ])
                .map_err(internal)?;
        }
        writer
            .into_inner()
            .map_err(|e| EngineError::Internal(Box::new(e.into_error())))
    }
}

fn member_needing_action(row: NeedingActionRow) -> Result<MemberNeedingAction, EngineError> {
    let state = Verdict::parse(&row.verdict)
        .and_then(|verdict| Some((verdict, MemberState::of(verdict, row.stale)?)))
        .ok_or_else(|| {
            EngineError::Internal(format!("report: unknown verdict {:?}", row.verdict).into())
        })?;
    Ok(MemberNeedingAction {
        member_id: row.member_id,
        email: row.email_key,
        verdict: state.0,
        state: state.1,
        sent_at: row.sent_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(verdict: &str, stale: bool, domain: Option<&str>, members: i64) -> ReportCountRow {
        ReportCountRow {
            verdict: verdict.into(),
            stale,
            domain: domain.map(str::to_owned),
            members,
        }
    }

    #[test]
    fn every_verdict_of_a_member_has_a_state_and_only_delivered_splits_by_age() {
        for verdict in Verdict::ALL {
            let fresh = MemberState::of(verdict, false);
            let old = MemberState::of(verdict, true);
            assert_eq!(fresh.is_none(), verdict == Verdict::NotRegistered);
            assert_eq!(fresh != old, verdict == Verdict::InviteDelivered);
        }
        assert_eq!(
            MemberState::of(Verdict::InviteDelivered, true),
            Some(MemberState::Stale)
        );
        // A resend is offered by the verdicts of exactly the states a resend helps.
        for state in MemberState::ALL {
            if state.resend_helps() {
                assert!(state.needs_action(), "{state:?}");
            }
        }
    }

    #[test]
    fn counts_add_up_per_state_and_domains_rank_by_failures() {
        let rows = [
            row("already_active", false, None, 7),
            row("invite_bounced", false, Some("acme.example"), 2),
            row("invite_suppressed", false, Some("acme.example"), 1),
            row("invite_marked_spam", false, Some("beta.example"), 3),
            row("invite_bounced", false, Some("gamma.example"), 1),
            row("invite_delivered", true, None, 4),
            row("invite_delivered", false, None, 5),
            row("invite_sent", false, None, 1),
        ];
        let (states, domains) = summarize(&rows, 2).unwrap();
        let count = |s: MemberState| states.iter().find(|c| c.state == s).unwrap().members;
        assert_eq!(count(MemberState::Active), 7);
        assert_eq!(count(MemberState::Stale), 4);
        assert_eq!(count(MemberState::Waiting), 6);
        assert_eq!(count(MemberState::Expired), 0);
        assert_eq!(states.len(), MemberState::ALL.len());
        assert_eq!(
            domains,
            vec![
                DomainFailures {
                    domain: "acme.example".into(),
                    members: 3
                },
                DomainFailures {
                    domain: "beta.example".into(),
                    members: 3
                },
            ]
        );
        assert!(summarize(&[row("no_such_verdict", false, None, 1)], 5).is_err());
    }
}
