//! "Resend all eligible": the report offers it, a second press confirms it, and a run resends the
//! invitation to each eligible member one by one through [`Actions::resend_invite`], the same
//! path as a single resend: its permission, its limits (per member, per admin and hour), its
//! idempotency key (one per run and member) and its audit row, for every member.
//!
//! A run is a row of `bulk_resends`. The confirming press moves it from offered to running once
//! (a second press, on any replica, is told it is running), and at most one run per workspace runs
//! at a time. A run is bounded: at most `bulk_max_members` members, at most `bulk_max_minutes`
//! (what is left then is skipped as "time up"). While it works it renews a lease on its row.
//!
//! A restart in the middle: the run stops with its process and is not resumed. Its row keeps
//! "running" until its lease lapses; the next run of that workspace then marks it interrupted, and
//! a press of its buttons says so. Whoever it had resent to has a fresh invitation, so a new report
//! no longer counts them as eligible (and the resend limits would hold them anyway): running the
//! report again and confirming a new run picks up exactly who is left.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use super::{Reports, WorkspaceReport};
use crate::actions::{ActionOutcome, Actor};
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::Permission;
use crate::error::EngineError;
use crate::store::{BulkResendRow, BulkStart, BulkTally, NewBulkResend};

/// The bounds of a run, from `[report]` (and the button age of `[discord]`).
#[derive(Debug, Clone)]
pub struct BulkSettings {
    pub max_members: u32,
    pub max_run: Duration,
    pub max_minutes: u32,
    pub pause: Duration,
    pub progress_every: Duration,
    /// How often a running run renews its lease.
    pub renew_every: Duration,
    /// How long a lease holds: three renewals, so one slow renewal does not lose it.
    pub lease: chrono::Duration,
    /// An offer older than this is refused, like any button.
    pub offer_max_age: chrono::Duration,
}

impl From<&Config> for BulkSettings {
    fn from(config: &Config) -> Self {
        let report = &config.report;
        BulkSettings {
            max_members: report.bulk_max_members,
            max_run: Duration::from_secs(u64::from(report.bulk_max_minutes) * 60),
            max_minutes: report.bulk_max_minutes,
            pause: Duration::from_millis(report.bulk_pause_ms),
            progress_every: Duration::from_millis(report.bulk_progress_ms),
            renew_every: Duration::from_secs(u64::from(report.bulk_lease_seconds)),
            lease: chrono::Duration::seconds(3 * i64::from(report.bulk_lease_seconds)),
            offer_max_age: chrono::Duration::minutes(i64::from(
                config.discord.button_max_age_minutes,
            )),
        }
    }
}

/// Skipped members by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkipCount {
    /// A refusal reason of the resend (`rate_limited`, `not_offered`, `already_done`,
    /// `forbidden`), or `time_up`.
    pub reason: String,
    pub members: i64,
}

/// Where a run is: what the progress message and the summary show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BulkProgress {
    pub reference: String,
    pub workspace: String,
    pub total: usize,
    pub done: usize,
    pub sent: i64,
    pub skipped: i64,
    pub failed: i64,
    pub reasons: Vec<SkipCount>,
    pub time_up: bool,
    pub finished: bool,
    pub max_minutes: u32,
}

/// A run that started: its progress, until `finished`.
#[derive(Debug)]
pub struct BulkRun {
    pub reference: String,
    pub progress: watch::Receiver<BulkProgress>,
}

/// Which of the two buttons was pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkStage {
    /// "Resend all eligible (N)": asks for confirmation.
    Offer,
    /// The confirmation: starts the run.
    Confirm,
}

/// What a press of a bulk button comes to.
#[derive(Debug)]
pub enum BulkAnswer {
    /// No such offer (forged, or its record is gone).
    Unknown,
    Stale {
        max_age_minutes: i64,
    },
    Forbidden {
        workspace: WorkspaceSlug,
    },
    Nobody {
        workspace: String,
    },
    Confirm {
        workspace: String,
        eligible: i64,
        max_members: u32,
    },
    /// Started already (this press is a second one): the run as it stands.
    Already(BulkResendRow),
    /// Another run of the workspace is going.
    Busy {
        workspace: String,
    },
    Started(BulkRun),
}

impl Reports {
    /// Records a "Resend all eligible" offer under `report` when `actor` may resend there and
    /// someone is eligible; returns its reference (the buttons carry only that).
    pub async fn offer_bulk_resend(
        &self,
        actor: &Actor,
        report: &WorkspaceReport,
    ) -> Result<Option<String>, EngineError> {
        let Ok(workspace) = WorkspaceSlug::parse(&report.workspace) else {
            return Ok(None);
        };
        if report.eligible_for_resend == 0 || !actor.may(Permission::ResendInvite, &workspace) {
            return Ok(None);
        }
        // Like a chat button's: 120 random bits, unguessable.
        let reference = crate::random::symbols(24);
        self.actions()
            .engine()
            .store()
            .offer_bulk_resend(&NewBulkResend {
                reference: &reference,
                workspace: workspace.as_str(),
                offered_to: actor.id(),
                offered_at: report.generated_at,
                eligible: report.eligible_for_resend,
            })
            .await?;
        Ok(Some(reference))
    }

    /// A press of a bulk button: authorized anew (the presser's own permission to resend, never
    /// the one of whoever ran the report), then the confirmation, or the start of the run.
    #[tracing::instrument(name = "bulk_resend_press", skip_all, fields(actor = actor.id(), stage = ?stage))]
    pub async fn press_bulk_resend(
        &self,
        actor: &Actor,
        stage: BulkStage,
        reference: &str,
        now: DateTime<Utc>,
    ) -> Result<BulkAnswer, EngineError> {
        let settings = &self.settings().bulk;
        let store = self.actions().engine().store();
        let Some(offer) = store.find_bulk_resend(reference).await? else {
            return Ok(BulkAnswer::Unknown);
        };
        let Ok(workspace) = WorkspaceSlug::parse(&offer.workspace) else {
            return Ok(BulkAnswer::Unknown);
        };
        if !actor.may(Permission::ResendInvite, &workspace) {
            tracing::info!("bulk resend refused: no resend permission");
            return Ok(BulkAnswer::Forbidden { workspace });
        }
        if offer.state != "offered" {
            return Ok(BulkAnswer::Already(offer));
        }
        if now - offer.offered_at > settings.offer_max_age {
            return Ok(BulkAnswer::Stale {
                max_age_minutes: settings.offer_max_age.num_minutes(),
            });
        }
        // Counted again now: the report may be minutes old.
        let report = self.report(actor, &workspace, now).await?;
        if report.eligible_for_resend == 0 {
            return Ok(BulkAnswer::Nobody {
                workspace: offer.workspace,
            });
        }
        match stage {
            BulkStage::Offer => Ok(BulkAnswer::Confirm {
                workspace: offer.workspace,
                eligible: report.eligible_for_resend,
                max_members: settings.max_members,
            }),
            BulkStage::Confirm => self.start(actor, &offer, &workspace, &report, now).await,
        }
    }

    async fn start(
        &self,
        actor: &Actor,
        offer: &BulkResendRow,
        workspace: &WorkspaceSlug,
        report: &WorkspaceReport,
        now: DateTime<Utc>,
    ) -> Result<BulkAnswer, EngineError> {
        let settings = self.settings().bulk.clone();
        let store = self.actions().engine().store();
        match store
            .start_bulk_resend(&offer.reference, actor.id(), now, now + settings.lease)
            .await?
        {
            BulkStart::Started => {}
            BulkStart::AlreadyStarted(row) => return Ok(BulkAnswer::Already(*row)),
            BulkStart::Busy => {
                return Ok(BulkAnswer::Busy {
                    workspace: offer.workspace.clone(),
                })
            }
            BulkStart::Unknown => return Ok(BulkAnswer::Unknown),
        }
        let members = match self
            .members_needing_action(report, true, settings.max_members)
            .await
        {
            Ok(members) => members,
            Err(error) => {
                // Nothing was sent: the run ends at once rather than holding the workspace.
                let summary = json!({ "error": "members could not be read" }).to_string();
                if let Err(error) = store
                    .finish_bulk_resend(&offer.reference, BulkTally::default(), &summary, now)
                    .await
                {
                    tracing::warn!(error = %crate::error::error_chain(&error), "bulk resend not ended");
                }
                return Err(error);
            }
        };
        tracing::info!(
            reference = %offer.reference,
            members = members.len(),
            "bulk resend started"
        );
        let first = BulkProgress {
            reference: offer.reference.clone(),
            workspace: workspace.as_str().to_owned(),
            total: members.len(),
            max_minutes: settings.max_minutes,
            ..BulkProgress::default()
        };
        let (sender, receiver) = watch::channel(first.clone());
        let run = Runner {
            reports: self.clone(),
            actor: actor.clone(),
            workspace: workspace.clone(),
            settings,
            progress: first,
            sender,
        };
        let members = members
            .into_iter()
            .map(|m| (m.member_id, m.email))
            .collect();
        tokio::spawn(run.run(members));
        Ok(BulkAnswer::Started(BulkRun {
            reference: offer.reference.clone(),
            progress: receiver,
        }))
    }
}

/// One run, on its own task.
struct Runner {
    reports: Reports,
    actor: Actor,
    workspace: WorkspaceSlug,
    settings: BulkSettings,
    progress: BulkProgress,
    sender: watch::Sender<BulkProgress>,
}

impl Runner {
    async fn run(mut self, members: Vec<(i64, String)>) {
        let started = tokio::time::Instant::now();
        let deadline = started + self.settings.max_run;
        let mut renewed = started;
        let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
        let reference = self.progress.reference.clone();
        let total = members.len();
        for (index, (member_id, email)) in members.into_iter().enumerate() {
            if tokio::time::Instant::now() >= deadline {
                let left = (total - index) as i64;
                self.progress.time_up = true;
                self.progress.skipped += left;
                *reasons.entry("time_up".into()).or_default() += left;
                self.progress.done = total;
                break;
            }
            // One key per run and member: a retry of this run's step is recognised, and another
            // run is another request (held by the resend limits, not by the key).
            let key = format!("bulk:{reference}:{member_id}");
            let outcome = match EmailAddress::parse(&email) {
                Ok(address) => {
                    self.reports
                        .actions()
                        .resend_invite(&self.actor, &address, &self.workspace, Some(&key))
                        .await
                }
                Err(error) => Err(crate::error::UserError::from(error).into()),
            };
            match outcome {
                Ok(ActionOutcome::Done(_)) => self.progress.sent += 1,
                Ok(ActionOutcome::Refused(refusal)) => {
                    self.progress.skipped += 1;
                    *reasons.entry(refusal.reason.as_str().into()).or_default() += 1;
                }
                Err(error) => {
                    self.progress.failed += 1;
                    tracing::warn!(error = %crate::error::error_chain(&error), "bulk resend: one member failed");
                }
            }
            self.progress.done = index + 1;
            self.progress.reasons = skip_counts(&reasons);
            self.sender.send_replace(self.progress.clone());
            let now = tokio::time::Instant::now();
            if now - renewed >= self.settings.renew_every {
                renewed = now;
                let at = Utc::now();
                if let Err(error) = self
                    .reports
                    .actions()
                    .engine()
                    .store()
                    .renew_bulk_resend(&reference, self.tally(), at + self.settings.lease)
                    .await
                {
                    tracing::warn!(error = %crate::error::error_chain(&error), "bulk resend: lease not renewed");
                }
            }
            if index + 1 < total && !self.settings.pause.is_zero() {
                tokio::time::sleep_until((now + self.settings.pause).min(deadline)).await;
            }
        }
        self.progress.reasons = skip_counts(&reasons);
        self.progress.finished = true;
        let summary = serde_json::to_string(&self.progress).unwrap_or_default();
        if let Err(error) = self
            .reports
            .actions()
            .engine()
            .store()
            .finish_bulk_resend(&reference, self.tally(), &summary, Utc::now())
            .await
        {
            // The lease lapses and the next run marks this one interrupted.
            tracing::warn!(error = %crate::error::error_chain(&error), "bulk resend: end not recorded");
        }
        tracing::info!(
            reference = %reference,
            sent = self.progress.sent,
            skipped = self.progress.skipped,
            failed = self.progress.failed,
            time_up = self.progress.time_up,
            "bulk resend finished"
        );
        self.sender.send_replace(self.progress.clone());
    }

    fn tally(&self) -> BulkTally {
        BulkTally {
            sent: self.progress.sent,
            skipped: self.progress.skipped,
            failed: self.progress.failed,
        }
    }
}

fn skip_counts(reasons: &BTreeMap<String, i64>) -> Vec<SkipCount> {
    reasons
        .iter()
        .map(|(reason, members)| SkipCount {
            reason: reason.clone(),
            members: *members,
        })
        .collect()
}

/// Waits until `run` has finished, at most `limit`; its last progress either way.
pub async fn finished(run: &mut BulkRun, limit: Duration) -> BulkProgress {
    let _ = tokio::time::timeout(limit, run.progress.wait_for(|p| p.finished)).await;
    run.progress.borrow().clone()
}
