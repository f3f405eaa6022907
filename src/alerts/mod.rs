//! Alerts: the bot speaks first when an invitation will not reach its person.
//!
//! A scan ([`Alerts::scan`]) looks at what arrived since it last stopped (hard bounces and spam
//! complaints by delivery event id, suppressions by id) and at what time has made a problem
//! (invitations that expired unaccepted, deferrals older than `deferred_alert_hours`), and records
//! each (member, invitation, problem) once in `alerts`: a unique key, so a restart, a rescan or a
//! second bot instance never records it twice. Then [`Alerts::post_due`] posts what is due to the
//! workspace's channel: the card of a check of that member (run now, with its buttons), a burst at
//! one company domain as one post for the domain, and what quiet hours held as one digest. A post
//! is claimed (with a lease) before it is made, so two instances never post the same alert; one
//! that fails stays pending and is retried with backoff, `max_post_attempts` times in all.
//!
//! Posting itself is the edge's ([`AlertPoster`]: Discord's REST API in `discord::alerts`).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use crate::chat::{Chat, ChatReply};
use crate::config::{Config, ConfigError};
use crate::diagnosis::Verdict;
use crate::domain::alert::{AlertProblem, QuietHours};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::EngineError;
use crate::store::{AlertEnd, FoundProblem, PendingAlert, Store, StoreError};

/// Rows read per page of a scan; a scan reads at most [`MAX_PAGES`] pages of each kind and goes
/// on from there at its next run.
const PAGE: i64 = 2000;
const MAX_PAGES: usize = 10;
/// Delivery events and suppressions are read again this far back (in ids) at every scan: on
/// PostgreSQL a transaction that took an id first may commit after one that took a later id, and
/// its row must not fall behind the watermark unseen. Reading one again records nothing new.
const RESCAN_IDS: i64 = 1000;
/// Alerts read per run to be posted; the rest wait for the next run.
const MAX_DUE: i64 = 500;
/// Posts made per run, so a backlog cannot flood a channel (Discord allows about 5 messages per
/// 5 seconds per channel); the rest go out at the next runs.
const MAX_POSTS_PER_RUN: usize = 20;
/// How long a poster holds the alerts of one post before another process may take them.
const POST_LEASE: Duration = Duration::minutes(2);
/// Addresses named in a burst's or digest's text.
const MAX_LISTED: usize = 20;

/// A post for a channel: the words, the card(s) and buttons.
#[derive(Debug, Clone)]
pub struct AlertPost {
    pub channel_id: u64,
    pub reply: ChatReply,
    /// The same for every attempt at this post: Discord returns the message a retry already made
    /// (within a few minutes) instead of making another.
    pub nonce: String,
}

/// Why a post did not go out; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("the alert could not be posted: {0}")]
pub struct PostFailed(pub String);

/// What posts alerts (Discord's REST API; a recorder in tests).
pub trait AlertPoster: Send + Sync {
    /// Posts `post`; returns where it went (`channel/message`).
    fn post<'a>(
        &'a self,
        post: &'a AlertPost,
    ) -> Pin<Box<dyn Future<Output = Result<String, PostFailed>> + Send + 'a>>;
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertRun {
    /// New problems recorded by the scan.
    pub recorded: u64,
    /// Messages posted (single alerts, bursts, digests).
    pub messages: u64,
    /// Alerts those messages covered.
    pub alerts_posted: u64,
    /// Alerts whose member's check showed no problem any more when their post was due.
    pub resolved: u64,
    /// Posts that failed (retried later) and alerts given up after their last attempt.
    pub post_failures: u64,
    pub given_up: u64,
    /// Quiet hours: nothing was posted.
    pub held: bool,
}

/// The `[alerts]` settings the service reads.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Workspace slug -> channel.
    pub channels: BTreeMap<String, u64>,
    pub deferred_after: Duration,
    pub deferred_alert_hours: u32,
    pub quiet_hours: Option<QuietHours>,
    pub burst_threshold: i64,
    pub burst_window: Duration,
    pub max_attempts: i32,
}

impl AlertSettings {
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let alerts = &config.alerts;
        Ok(AlertSettings {
            channels: alerts.channels.clone(),
            deferred_after: Duration::hours(i64::from(alerts.deferred_alert_hours)),
            deferred_alert_hours: alerts.deferred_alert_hours,
            quiet_hours: alerts.quiet_hours()?,
            burst_threshold: i64::from(alerts.burst_threshold),
            burst_window: Duration::minutes(i64::from(alerts.burst_window_minutes)),
            max_attempts: i32::try_from(alerts.max_post_attempts).unwrap_or(i32::MAX),
        })
    }
}

/// The alert service. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    chat: Chat,
    settings: Arc<AlertSettings>,
    poster: Arc<dyn AlertPoster>,
}

/// One message to make, and the alerts it covers.
struct Planned {
    ids: Vec<i64>,
    kind: PlannedKind,
}

enum PlannedKind {
    Single(PendingAlert),
    Burst(Vec<PendingAlert>),
    Digest(Vec<PendingAlert>),
}

impl Alerts {
    pub fn new(chat: Chat, settings: AlertSettings, poster: Arc<dyn AlertPoster>) -> Self {
        Alerts {
            chat,
            settings: Arc::new(settings),
            poster,
        }
    }

    fn store(&self) -> &Store {
        self.chat.engine().store()
    }

    /// A scan, then the posts that are due.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<AlertRun, AlertError> {
        let mut run = AlertRun {
            recorded: self.scan(now).await?,
            ..AlertRun::default()
        };
        self.post_due(now, &mut run).await?;
        Ok(run)
    }

    /// Records the problems found since the last scan; returns how many were new. The first scan
    /// only marks where history ends: what happened before alerts were enabled is not alerted.
    #[tracing::instrument(name = "alert_scan", skip_all)]
    pub async fn scan(&self, now: DateTime<Utc>) -> Result<u64, AlertError> {
        let store = self.store();
        let deferred_cutoff = now - self.settings.deferred_after;
        let Some(state) = store.alert_scan_state().await? else {
            store.start_alert_scans(now, deferred_cutoff).await?;
            tracing::info!("alerts enabled: problems from now on are alerted");
            return Ok(0);
        };
        let mapped = self.mapped_workspaces().await?;
        let (event_top, suppression_top) = store.alert_scan_tops().await?;
        let mut found: Vec<FoundProblem> = Vec::new();
        let mut next = state.clone();

        // By id: hard bounces and complaints, then suppressions.
        next.event_id = self
            .scan_ids(
                &mut found,
                (state.event_id - RESCAN_IDS).max(state.event_floor),
                event_top,
                Kind::Events,
            )
            .await?;
        next.suppression_id = self
            .scan_ids(
                &mut found,
                (state.suppression_id - RESCAN_IDS).max(state.suppression_floor),
                suppression_top,
                Kind::Suppressions,
            )
            .await?;

        // By time: expiries up to now, deferrals up to `deferred_alert_hours` ago.
        next.expired_until = self
            .scan_times(&mut found, state.expired_until, now, Kind::Expiries)
            .await?;
        next.deferred_until = self
            .scan_times(
                &mut found,
                state.deferred_until,
                deferred_cutoff,
                Kind::Deferrals,
            )
            .await?;

        found.retain(|p| mapped.contains_key(&p.workspace_id));
        let recorded = store.record_alerts(&found, now, &next).await?;
        if recorded > 0 {
            tracing::info!(recorded, "new invitation problems found");
        }
        Ok(recorded)
    }

    /// Reads one kind by id in `(after, top]`, page by page; returns where it got to.
    async fn scan_ids(
        &self,
        found: &mut Vec<FoundProblem>,
        after: i64,
        top: i64,
        kind: Kind,
    ) -> Result<i64, AlertError> {
        let mut after = after;
        for _ in 0..MAX_PAGES {
            let page = match kind {
                Kind::Suppressions => self.store().problem_suppressions(after, top, PAGE).await?,
                _ => self.store().problem_events(after, top, PAGE).await?,
            };
            found.extend(page.problems);
            match (page.full, page.last_position) {
                (true, Some(last)) => after = last,
                _ => return Ok(top),
            }
        }
        Ok(after)
    }

    /// Reads one time-based kind in `[from, to)`, page by page; returns where it got to.
    async fn scan_times(
        &self,
        found: &mut Vec<FoundProblem>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        kind: Kind,
    ) -> Result<DateTime<Utc>, AlertError> {
        if to <= from {
            return Ok(from);
        }
        let mut from = from;
        for _ in 0..MAX_PAGES {
            let page = match kind {
                Kind::Expiries => self.store().problem_expiries(from, to, PAGE).await?,
                _ => self.store().problem_deferrals(from, to, PAGE).await?,
            };
            found.extend(page.problems);
            match (page.full, page.last_at) {
                // Rows at the last time are read again from there (recording them again is
                // nothing), so none sharing that time is skipped.
                (true, Some(last)) if last > from => from = last,
                _ => return Ok(to),
            }
        }
        Ok(from)
    }

    /// Workspace id -> slug, of the workspaces with an alert channel that exist.
    async fn mapped_workspaces(&self) -> Result<HashMap<i64, String>, AlertError> {
        let mut mapped = HashMap::new();
        for slug in self.settings.channels.keys() {
            let Ok(parsed) = WorkspaceSlug::parse(slug) else {
                continue;
            };
            match self.store().find_workspace(&parsed).await? {
                Some(workspace) => {
                    mapped.insert(workspace.id, slug.clone());
                }
                None => tracing::warn!(
                    workspace = slug.as_str(),
                    "[alerts] names a workspace the bot does not know"
                ),
            }
        }
        Ok(mapped)
    }

    /// Posts what is due, unless quiet hours hold it.
    #[tracing::instrument(name = "alert_posts", skip_all)]
    pub async fn post_due(&self, now: DateTime<Utc>, run: &mut AlertRun) -> Result<(), AlertError> {
        if self.settings.quiet_hours.is_some_and(|q| q.contains(now)) {
            run.held = true;
            return Ok(());
        }
        let due = self.store().due_alerts(now, MAX_DUE).await?;
        let plans = self.plan(due, now).await?;
        for plan in plans.into_iter().take(MAX_POSTS_PER_RUN) {
            self.post_planned(plan, now, run).await?;
        }
        Ok(())
    }

    /// What quiet hours held becomes one digest per workspace; a company domain with
    /// `burst_threshold` alerts within the window, one post; anything else, one post each.
    async fn plan(
        &self,
        due: Vec<PendingAlert>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Planned>, AlertError> {
        let mut digests: BTreeMap<String, Vec<PendingAlert>> = BTreeMap::new();
        let mut by_domain: BTreeMap<(i64, String), Vec<PendingAlert>> = BTreeMap::new();
        let mut singles = Vec::new();
        for alert in due {
            if !self.settings.channels.contains_key(&alert.workspace) {
                continue;
            }
            let held = self
                .settings
                .quiet_hours
                .is_some_and(|q| q.contains(alert.detected_at));
            if held {
                digests
                    .entry(alert.workspace.clone())
                    .or_default()
                    .push(alert);
            } else if crate::diagnosis::suggestions::is_mailbox_provider(&alert.domain) {
                // Many bounces at gmail.com are many people's typos, not one server refusing us.
                singles.push(alert);
            } else {
                by_domain
                    .entry((alert.workspace_id, alert.domain.clone()))
                    .or_default()
                    .push(alert);
            }
        }
        let mut plans = Vec::new();
        for (_, alerts) in digests {
            plans.push(Planned {
                ids: alerts.iter().map(|a| a.id).collect(),
                kind: PlannedKind::Digest(alerts),
            });
        }
        let since = now - self.settings.burst_window;
        for ((workspace_id, domain), alerts) in by_domain {
            let recent = self
                .store()
                .domain_alert_count(workspace_id, &domain, since)
                .await?;
            if recent >= self.settings.burst_threshold && alerts.len() > 1 {
                plans.push(Planned {
                    ids: alerts.iter().map(|a| a.id).collect(),
                    kind: PlannedKind::Burst(alerts),
                });
            } else {
                singles.extend(alerts);
            }
        }
        singles.sort_by_key(|a| a.id);
        plans.extend(singles.into_iter().map(|alert| Planned {
            ids: vec![alert.id],
            kind: PlannedKind::Single(alert),
        }));
        Ok(plans)
    }

    async fn post_planned(
        &self,
        plan: Planned,
        now: DateTime<Utc>,
        run: &mut AlertRun,
    ) -> Result<(), AlertError> {
        let store = self.store();
        let attempts = match &plan.kind {
            PlannedKind::Single(alert) => alert.attempts,
            PlannedKind::Burst(alerts) | PlannedKind::Digest(alerts) => {
                alerts.iter().map(|a| a.attempts).max().unwrap_or(0)
            }
        } + 1;
        let claimed = store.claim_alerts(&plan.ids, now, now + POST_LEASE).await?;
        if claimed.is_empty() {
            return Ok(());
        }
        // Only what this process claimed goes into its post.
        let keep = |alerts: Vec<PendingAlert>| -> Vec<PendingAlert> {
            alerts
                .into_iter()
                .filter(|a| claimed.contains(&a.id))
                .collect()
        };
        let (nonce, channel, made) = match plan.kind {
            PlannedKind::Single(alert) => (
                format!("ib-alert-{}", alert.id),
                self.channel(&alert.workspace),
                self.single(&alert, now).await,
            ),
            PlannedKind::Burst(alerts) => {
                let alerts = keep(alerts);
                let Some(first) = alerts.first() else {
                    return Ok(());
                };
                (
                    format!("ib-burst-{}", first.id),
                    self.channel(&first.workspace),
                    self.burst(&alerts, now).await.map(Some),
                )
            }
            PlannedKind::Digest(alerts) => {
                let alerts = keep(alerts);
                let Some(first) = alerts.first() else {
                    return Ok(());
                };
                (
                    format!("ib-digest-{}", first.id),
                    self.channel(&first.workspace),
                    self.digest(&alerts, now).await.map(Some),
                )
            }
        };
        let Some(channel_id) = channel else {
            return Ok(());
        };
        let reply = match made {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                store
                    .end_alerts(&claimed, AlertEnd::Resolved, None, now)
                    .await?;
                run.resolved += claimed.len() as u64;
                return Ok(());
            }
            Err(error) => {
                // The check failed (the database, a template): the alert waits for the next run.
                tracing::warn!(error = %crate::error::error_chain(&error), "alert not composed");
                self.failed(&claimed, attempts, now, run).await?;
                return Ok(());
            }
        };
        let post = AlertPost {
            channel_id,
            reply,
            nonce,
        };
        match self.poster.post(&post).await {
            Ok(message) => {
                let references: Vec<String> = post
                    .reply
                    .buttons
                    .iter()
                    .map(|b| b.reference.clone())
                    .collect();
                store
                    .end_alerts(&claimed, AlertEnd::Posted, Some(&message), now)
                    .await?;
                if let Err(error) = store.set_button_message(&references, &message).await {
                    tracing::warn!(error = %crate::error::error_chain(&error), "buttons not tied to their alert");
                }
                run.messages += 1;
                run.alerts_posted += claimed.len() as u64;
            }
            Err(error) => {
                tracing::warn!(%error, alerts = claimed.len(), "alert post failed; it stays pending");
                self.failed(&claimed, attempts, now, run).await?;
            }
        }
        Ok(())
    }

    async fn failed(
        &self,
        claimed: &[i64],
        attempts: i32,
        now: DateTime<Utc>,
        run: &mut AlertRun,
    ) -> Result<(), AlertError> {
        // A minute after the first attempt, doubling with each one, at most an hour.
        let wait = Duration::minutes(1 << (attempts - 1).clamp(0, 6)).min(Duration::hours(1));
        let given_up = self
            .store()
            .release_alerts(claimed, now + wait, self.settings.max_attempts)
            .await?;
        run.post_failures += 1;
        run.given_up += given_up;
        if given_up > 0 {
            tracing::error!(
                given_up,
                "alerts given up after their last post attempt failed"
            );
        }
        Ok(())
    }

    fn channel(&self, workspace: &str) -> Option<u64> {
        self.settings.channels.get(workspace).copied()
    }

    fn problem_facts(&self, problem: AlertProblem) -> serde_json::Value {
        json!({
            "problem": problem.as_str(),
            "deferred_alert_hours": self.settings.deferred_alert_hours,
        })
    }

    /// The check of one member now, under the alert's words; `None` when the check no longer
    /// shows a problem (resent and delivered since, activated, ...).
    async fn single(
        &self,
        alert: &PendingAlert,
        now: DateTime<Utc>,
    ) -> Result<Option<ChatReply>, EngineError> {
        let Some(diagnosis) = self.check(alert, now).await? else {
            return Ok(None);
        };
        if !is_problem(diagnosis.verdict) {
            return Ok(None);
        }
        let mut facts = self.problem_facts(alert.problem.0);
        facts["email"] = json!(alert.email);
        facts["workspace"] = json!(alert.workspace);
        let text = self.chat.engine().prompts().alert_text("alert", &facts)?;
        Ok(Some(self.chat.alert_reply(&diagnosis, text, now).await?))
    }

    async fn check(
        &self,
        alert: &PendingAlert,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::diagnosis::Diagnosis>, EngineError> {
        let (Ok(email), Ok(slug)) = (
            EmailAddress::parse(&alert.email),
            WorkspaceSlug::parse(&alert.workspace),
        ) else {
            return Ok(None);
        };
        Ok(self
            .chat
            .engine()
            .check_at(&email, Some(&slug), now)
            .await?
            .into_iter()
            .next())
    }

    /// One post for a company domain's burst: the count, each problem's count, the addresses,
    /// and the card of one of them (which carries the domain finding).
    async fn burst(
        &self,
        alerts: &[PendingAlert],
        now: DateTime<Utc>,
    ) -> Result<ChatReply, EngineError> {
        let first = &alerts[0];
        let mut facts = self.listing_facts(alerts);
        facts["domain"] = json!(first.domain);
        facts["workspace"] = json!(first.workspace);
        facts["window_minutes"] = json!(self.settings.burst_window.num_minutes());
        let text = self.chat.engine().prompts().alert_text("burst", &facts)?;
        match self.check(first, now).await? {
            Some(diagnosis) => self.chat.alert_reply(&diagnosis, text, now).await,
            None => Ok(ChatReply {
                ephemeral: false,
                text,
                cards: Vec::new(),
                buttons: Vec::new(),
            }),
        }
    }

    /// What quiet hours held in one workspace: each problem's count, the addresses, and a
    /// "Check" button for each of the first ones.
    async fn digest(
        &self,
        alerts: &[PendingAlert],
        now: DateTime<Utc>,
    ) -> Result<ChatReply, EngineError> {
        let first = &alerts[0];
        let mut facts = self.listing_facts(alerts);
        facts["workspace"] = json!(first.workspace);
        facts["quiet_hours"] = json!(self
            .settings
            .quiet_hours
            .map(|q| q.describe())
            .unwrap_or_default());
        let text = self.chat.engine().prompts().alert_text("digest", &facts)?;
        let mut seen = std::collections::HashSet::new();
        let addresses: Vec<(String, String)> = alerts
            .iter()
            .filter(|a| seen.insert(a.email.clone()))
            .map(|a| (a.email.clone(), a.workspace.clone()))
            .collect();
        let buttons = self.chat.check_buttons(&addresses, now).await?;
        Ok(ChatReply {
            ephemeral: false,
            text,
            cards: Vec::new(),
            buttons,
        })
    }

    /// The facts a burst and a digest share: the count, each problem's count, the first lines.
    fn listing_facts(&self, alerts: &[PendingAlert]) -> serde_json::Value {
        let mut counts: BTreeMap<AlertProblem, usize> = BTreeMap::new();
        for alert in alerts {
            *counts.entry(alert.problem.0).or_default() += 1;
        }
        let problems: Vec<_> = counts
            .into_iter()
            .map(|(problem, count)| json!({ "problem": problem.as_str(), "count": count }))
            .collect();
        let lines: Vec<_> = alerts
            .iter()
            .take(MAX_LISTED)
            .map(|a| json!({ "email": a.email, "problem": a.problem.0.as_str() }))
            .collect();
        let emails: Vec<&str> = alerts
            .iter()
            .take(MAX_LISTED)
            .map(|a| a.email.as_str())
            .collect();
        json!({
            "count": alerts.len(),
            "problems": problems,
            "lines": lines,
            "emails": emails,
            "more": alerts.len().saturating_sub(MAX_LISTED),
            "deferred_alert_hours": self.settings.deferred_alert_hours,
        })
    }
}

/// What a scan reads: by id, or by time.
#[derive(Clone, Copy)]
enum Kind {
    Events,
    Suppressions,
    Expiries,
    Deferrals,
}

/// The verdicts that mean the invitation will not reach its person.
fn is_problem(verdict: Verdict) -> bool {
    matches!(
        verdict,
        Verdict::InviteBounced
            | Verdict::InviteMarkedSpam
            | Verdict::InviteSuppressed
            | Verdict::InviteExpired
            | Verdict::InviteDeferred
    )
}
