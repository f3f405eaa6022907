//! The engine: takes typed requests, runs the checklist against the store, returns typed results.
//! It knows nothing about Discord, the console or the CLI; every edge calls the same functions.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::config::Config;
use crate::diagnosis::delivery::DeliveryFacts;
use crate::diagnosis::freshness::{self, DataOrigin};
use crate::diagnosis::{
    delivery, domain, registration, status, suggestions, Action, Check, Diagnosis, Finding,
    FindingDraft, Outcome, Verdict,
};
use crate::domain::email::EmailAddress;
use crate::domain::member::{Member, MemberMatch};
use crate::domain::source::SourceKind;
use crate::domain::workspace::{Workspace, WorkspaceScope, WorkspaceSlug};
use crate::error::{EngineError, UserError};
use crate::fixture::{Fixture, SeedReport};
use crate::prompts::Prompts;
use crate::store::{DeliveryRecord, DomainWindow, SeedError, SourceState, Store};

/// The knobs the checks read, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub login_url: String,
    pub sender: String,
    pub invitation_ttl: Duration,
    pub resend_wait: Duration,
    pub domain_alert_threshold: u32,
    pub domain_window_days: u32,
    pub max_suggestions: usize,
    /// Member data synced from the product's database longer ago than this is flagged as stale.
    pub data_stale_after: Duration,
}

impl From<&Config> for CheckSettings {
    fn from(config: &Config) -> Self {
        Self {
            login_url: config.product.login_url.clone(),
            sender: config.product.sender.clone(),
            invitation_ttl: Duration::hours(i64::from(config.product.invitation_ttl_hours)),
            resend_wait: Duration::minutes(i64::from(config.checks.resend_wait_minutes)),
            domain_alert_threshold: config.checks.domain_alert_threshold,
            domain_window_days: config.checks.domain_window_days,
            max_suggestions: config.checks.max_suggestions,
            data_stale_after: Duration::seconds(
                i64::try_from(config.source.stale_after_seconds).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// Cheap to clone: a pool handle, shared templates and settings, a mail transport.
#[derive(Clone, Debug)]
pub struct Engine {
    store: Store,
    prompts: Arc<Prompts>,
    settings: Arc<CheckSettings>,
    /// Providers asked at check time whether the address is suppressed (optional).
    lookups: Option<crate::providers::LiveLookups>,
    /// `[source] live_refresh`: the product's database, re-read for the one address before a
    /// check, within the deadline.
    live_source: Option<(Arc<crate::source::Source>, std::time::Duration)>,
}

impl Engine {
    pub fn new(store: Store, prompts: Arc<Prompts>, settings: CheckSettings) -> Self {
        Self {
            store,
            prompts,
            settings: Arc::new(settings),
            lookups: None,
            live_source: None,
        }
    }

    /// Re-reads each checked address from the product's database first (bounded by `deadline`;
    /// a slow or absent source leaves the synced data as it is).
    pub fn with_live_source(
        mut self,
        source: Arc<crate::source::Source>,
        deadline: std::time::Duration,
    ) -> Self {
        self.live_source = Some((source, deadline));
        self
    }

    /// Also asks these providers, at every check, whether the address is suppressed right now.
    pub fn with_lookups(mut self, lookups: crate::providers::LiveLookups) -> Self {
        self.lookups = Some(lookups);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    pub fn settings(&self) -> &CheckSettings {
        &self.settings
    }

    /// Checks `email` in `workspace`, or in every workspace it belongs to when `workspace` is `None`.
    /// Returns one diagnosis per workspace (exactly one `not_registered` when it is nowhere).
    pub async fn check(
        &self,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<Diagnosis>, EngineError> {
        self.check_at(email, workspace, Utc::now()).await
    }

    /// [`Engine::check`] at `now`, seeing every workspace.
    pub async fn check_at(
        &self,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Diagnosis>, EngineError> {
        self.check_within(email, workspace, &WorkspaceScope::All, now)
            .await
    }

    /// Checks as someone who sees only the workspaces in `scope`: memberships, "member elsewhere"
    /// and suggestions outside it are never looked at, so the answer is the one they would get if
    /// those workspaces did not exist (`not_registered` when they can see no membership).
    /// A `workspace` outside the scope is the caller's to refuse before asking.
    // The request id ties every log line of one check together; the address is logged masked only.
    #[tracing::instrument(
        name = "check",
        skip_all,
        fields(request_id = %crate::error::new_reference(), email = %email.masked(), workspace = workspace.map(|w| w.as_str()))
    )]
    pub async fn check_within(
        &self,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
        scope: &WorkspaceScope,
        now: DateTime<Utc>,
    ) -> Result<Vec<Diagnosis>, EngineError> {
        // Every card's data line needs the sources (a row per way the data comes in): read beside
        // the first look-up, so it adds no round trip to the answer.
        let diagnoses = match workspace {
            Some(slug) => {
                self.refresh_from_product(slug, email).await;
                // The common case, a member, costs one query; only a miss looks the workspace up.
                let (sources, found) = tokio::try_join!(
                    self.store.source_states(),
                    self.store.member_in_workspace_named(slug, email.key())
                )?;
                let sources = &sources[..];
                match found {
                    Some(found) => vec![self.diagnose_member(email, found, sources, now).await?],
                    None => {
                        let workspace = self
                            .store
                            .find_workspace(slug)
                            .await?
                            .ok_or_else(|| UserError::UnknownWorkspace(slug.clone()))?;
                        let mut elsewhere = self.store.memberships(email.key()).await?;
                        elsewhere.retain(|m| scope.contains(&m.workspace.slug));
                        vec![
                            self.diagnose_unregistered(
                                email,
                                Some(workspace),
                                &elsewhere,
                                scope,
                                sources,
                                now,
                            )
                            .await?,
                        ]
                    }
                }
            }
            None => {
                let (sources, mut memberships) = tokio::try_join!(
                    self.store.source_states(),
                    self.store.memberships(email.key())
                )?;
                let sources = &sources[..];
                memberships.retain(|m| scope.contains(&m.workspace.slug));
                if memberships.is_empty() {
                    vec![
                        self.diagnose_unregistered(email, None, &[], scope, sources, now)
                            .await?,
                    ]
                } else {
                    let mut diagnoses = Vec::with_capacity(memberships.len());
                    for found in memberships {
                        diagnoses.push(self.diagnose_member(email, found, sources, now).await?);
                    }
                    diagnoses
                }
            }
        };
        for diagnosis in &diagnoses {
            crate::metrics::record_check(diagnosis.verdict.as_str());
            tracing::info!(
                verdict = diagnosis.verdict.as_str(),
                workspace = diagnosis.workspace.as_ref().map(|w| w.slug.as_str()),
                "checked"
            );
        }
        Ok(diagnoses)
    }

    async fn diagnose_unregistered(
        &self,
        email: &EmailAddress,
        workspace: Option<Workspace>,
        elsewhere: &[MemberMatch],
        scope: &WorkspaceScope,
        sources: &[SourceState],
        now: DateTime<Utc>,
    ) -> Result<Diagnosis, EngineError> {
        let visible = match (&workspace, scope) {
            (Some(workspace), _) => Some(vec![workspace.id]),
            (None, WorkspaceScope::All) => None,
            (None, WorkspaceScope::Only(slugs)) => {
                let mut ids = Vec::with_capacity(slugs.len());
                for slug in slugs {
                    if let Some(workspace) = self.store.find_workspace(slug).await? {
                        ids.push(workspace.id);
                    }
                }
                Some(ids)
            }
        };
        let suggestions = self.suggestions(email, visible.as_deref()).await?;
        let mut drafts = vec![registration::not_found(
            email,
            workspace.as_ref(),
            &suggestions,
        )];
        if !elsewhere.is_empty() {
            drafts.push(registration::member_elsewhere(email, elsewhere));
        }
        drafts.push(self.data_line(data_origin(None, sources), now));
        self.finish(
            email,
            workspace,
            None,
            Verdict::NotRegistered,
            suggestions,
            drafts,
            json!({}),
            now,
        )
    }

    async fn diagnose_member(
        &self,
        email: &EmailAddress,
        found: MemberMatch,
        sources: &[SourceState],
        now: DateTime<Utc>,
    ) -> Result<Diagnosis, EngineError> {
        let mut drafts = vec![registration::found(&found)];
        let (status_finding, status_verdict) = status::assess(&found.member);
        drafts.push(status_finding);
        let data_line = self.data_line(data_origin(Some(&found.member), sources), now);
        if let Some(verdict) = status_verdict {
            drafts.push(data_line);
            return self.finish(
                email,
                Some(found.workspace),
                Some(found.member),
                verdict,
                Vec::new(),
                drafts,
                json!({}),
                now,
            );
        }

        let since = now - Duration::days(i64::from(self.settings.domain_window_days));
        let check_domain = !suggestions::is_mailbox_provider(email.domain());
        // Providers are asked while the store is read; the look-ups bound their own time.
        let live = async {
            match &self.lookups {
                Some(lookups) => lookups.check(email).await,
                None => Vec::new(),
            }
        };
        let window = check_domain.then(|| DomainWindow {
            domain: email.domain(),
            since,
        });
        let (stored, live) = tokio::join!(
            self.store
                .delivery_facts(found.member.id, email.key(), window),
            live
        );
        let DeliveryRecord {
            latest,
            mut suppressions,
            domain_trouble: trouble,
        } = stored?;
        let (invitation, events) = match latest {
            Some((invitation, events)) => (Some(invitation), events),
            None => (None, Vec::new()),
        };
        let live_findings = crate::providers::apply(&live, &mut suppressions, now);
        let assessment = delivery::assess(&DeliveryFacts {
            now,
            invitation: invitation.as_ref(),
            events: &events,
            suppressions: &suppressions,
            resend_wait: self.settings.resend_wait,
        });
        drafts.extend(assessment.findings);
        drafts.extend(live_findings);

        let mut suggestions = Vec::new();
        if assessment.verdict == Verdict::InviteBounced {
            suggestions = self.suggestions(email, Some(&[found.workspace.id])).await?;
            if !suggestions.is_empty() {
                drafts.push(FindingDraft::new(
                    Check::Registration,
                    Outcome::AddressTypo,
                    json!({ "suggestions": suggestions }),
                ));
            }
        }
        if let Some(finding) = trouble.and_then(|trouble| {
            domain::assess(
                email.domain(),
                trouble,
                self.settings.domain_alert_threshold,
                self.settings.domain_window_days,
            )
        }) {
            drafts.push(finding);
        }
        drafts.push(data_line);
        let extra = json!({
            "resend_not_before": assessment.resend_not_before.map(|at| at.to_rfc3339()),
        });
        let mut diagnosis = self.finish(
            email,
            Some(found.workspace),
            Some(found.member),
            assessment.verdict,
            suggestions,
            drafts,
            extra,
            now,
        )?;
        if assessment.resend_not_before.is_some() {
            diagnosis.actions.retain(|a| *a != Action::ResendInvite);
        }
        Ok(diagnosis)
    }

    /// The live refresh: the product's current row for this address replaces the synced one when
    /// it is newer. Never an error for the check: a source that is slow, down or refusing is logged
    /// and the check answers from what the last sync brought.
    async fn refresh_from_product(&self, slug: &WorkspaceSlug, email: &EmailAddress) {
        let Some((source, deadline)) = &self.live_source else {
            return;
        };
        let read = tokio::time::timeout(*deadline, source.read_one(slug, email, *deadline)).await;
        let record = match read {
            Ok(Ok(Some(record))) => record,
            Ok(Ok(None)) => return,
            Ok(Err(error)) => {
                tracing::warn!(%error, "live refresh: the product's database did not answer; using the synced data");
                return;
            }
            Err(_) => {
                tracing::info!(
                    "live refresh: the product's database was too slow; using the synced data"
                );
                return;
            }
        };
        // Its own transaction, without touching the sync's watermark or its last success.
        let applied = async {
            let mut tx = self.store.begin_ingest().await?;
            tx.apply_members(SourceKind::ProductDb, &[record], None, Utc::now())
                .await?;
            tx.commit().await?;
            Ok::<_, crate::store::IngestError>(())
        };
        if let Err(error) = applied.await {
            tracing::warn!(%error, "live refresh: the product's row could not be stored");
        }
    }

    fn data_line(&self, mut origin: DataOrigin, now: DateTime<Utc>) -> FindingDraft {
        // A live refresh during this check stamps the row after the check's `now`: that is "just
        // now", never "in 1 second".
        origin.as_of = origin.as_of.map(|at| at.min(now));
        freshness::assess(&origin, now, self.settings.data_stale_after)
    }

    /// Reads the candidates near `email` and lets the diagnosis rank them.
    async fn suggestions(
        &self,
        email: &EmailAddress,
        workspaces: Option<&[i64]>,
    ) -> Result<Vec<String>, EngineError> {
        let ranges = suggestions::near_query(email);
        let candidates = self.store.candidates_near(&ranges.query(email)).await?;
        Ok(suggestions::rank(
            email,
            candidates,
            workspaces,
            self.settings.max_suggestions,
        ))
    }

    /// Renders the findings' words and assembles the diagnosis.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        email: &EmailAddress,
        workspace: Option<Workspace>,
        member: Option<crate::domain::member::Member>,
        verdict: Verdict,
        suggestions: Vec<String>,
        drafts: Vec<FindingDraft>,
        extra: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Diagnosis, EngineError> {
        let findings = drafts
            .into_iter()
            .map(|draft| {
                Ok(Finding {
                    check: draft.check,
                    outcome: draft.outcome,
                    detail: self
                        .prompts
                        .finding_detail(draft.outcome, &draft.facts, now)?,
                })
            })
            .collect::<Result<Vec<_>, crate::prompts::PromptError>>()?;
        let actions = verdict.offered_actions().to_vec();
        let mut facts = json!({
            "email": email.key(),
            "verdict": verdict.as_str(),
            "workspace": workspace.as_ref().map(|w| json!({ "slug": w.slug.as_str(), "name": w.name })),
            "member": member.as_ref().map(|m| json!({
                "email": m.email, "role": m.role.as_str(), "status": m.status.as_str(),
            })),
            "suggestions": suggestions,
            "login_url": self.settings.login_url,
            "sender": self.settings.sender,
            "resend_wait_minutes": self.settings.resend_wait.num_minutes(),
        });
        if let (Some(target), Some(extra)) = (facts.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        Ok(Diagnosis {
            email: email.clone(),
            workspace,
            member,
            verdict,
            suggestions,
            findings,
            actions,
            facts,
        })
    }

    /// Loads a checked fixture into the store, in one transaction.
    pub async fn seed(&self, fixture: &Fixture) -> Result<SeedReport, SeedError> {
        self.store
            .load_fixture(fixture, self.settings.invitation_ttl)
            .await
    }
}

/// Where the data behind a card came from: the member's own source, or for an address the bot
/// does not hold, the way in that would have brought it (the product's database when there is a
/// sync, else the latest push or import, else the seed).
fn data_origin(member: Option<&Member>, sources: &[SourceState]) -> DataOrigin {
    let state = |kind: SourceKind| sources.iter().find(|s| s.name == kind.as_str());
    let sync_failing = state(SourceKind::ProductDb).is_some_and(|s| s.last_error.is_some());
    let source = match member {
        Some(member) => member.source,
        None if state(SourceKind::ProductDb).is_some() => SourceKind::ProductDb,
        None => [SourceKind::Push, SourceKind::Import]
            .into_iter()
            .filter_map(|kind| Some((state(kind)?.last_success_at?, kind)))
            .max_by_key(|(at, _)| *at)
            .map_or(SourceKind::Fixtures, |(_, kind)| kind),
    };
    let last_success = state(source).and_then(|s| s.last_success_at);
    let as_of = match (source, member) {
        (SourceKind::Fixtures, Some(member)) => member.refreshed_at,
        (SourceKind::Fixtures, None) => None,
        // A sync confirms every row it covers, changed or not.
        (SourceKind::ProductDb, Some(member)) => last_success.max(member.refreshed_at),
        (_, Some(member)) => member.refreshed_at,
        (_, None) => last_success,
    };
    DataOrigin {
        source,
        as_of,
        sync_failing: source == SourceKind::ProductDb && sync_failing,
    }
}
