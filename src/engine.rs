//! The engine: takes typed requests, runs the checklist against the store, returns typed results.
//! It knows nothing about Discord, the console or the CLI; every edge calls the same functions.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::app::config::Config;
use crate::diagnosis::delivery::DeliveryFacts;
use crate::diagnosis::{
    delivery, domain, registration, status, suggestions, Action, Check, Diagnosis, Finding,
    FindingDraft, Outcome, Verdict,
};
use crate::domain::email::EmailAddress;
use crate::domain::member::MemberMatch;
use crate::domain::workspace::{Workspace, WorkspaceScope, WorkspaceSlug};
use crate::error::{EngineError, UserError};
use crate::fixture::{Fixture, FixtureError, SeedReport};
use crate::prompts::Prompts;
use crate::store::{DeliveryRecord, DomainWindow, Store};

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
}

impl Engine {
    pub fn new(store: Store, prompts: Arc<Prompts>, settings: CheckSettings) -> Self {
        Self {
            store,
            prompts,
            settings: Arc::new(settings),
            lookups: None,
        }
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
        let diagnoses = match workspace {
            Some(slug) => {
                // The common case, a member, costs one query; only a miss looks the workspace up.
                let found = self
                    .store
                    .member_in_workspace_named(slug, email.key())
                    .await?;
                match found {
                    Some(found) => vec![self.diagnose_member(email, found, now).await?],
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
                                now,
                            )
                            .await?,
                        ]
                    }
                }
            }
            None => {
                let mut memberships = self.store.memberships(email.key()).await?;
                memberships.retain(|m| scope.contains(&m.workspace.slug));
                if memberships.is_empty() {
                    vec![
                        self.diagnose_unregistered(email, None, &[], scope, now)
                            .await?,
                    ]
                } else {
                    let mut diagnoses = Vec::with_capacity(memberships.len());
                    for found in memberships {
                        diagnoses.push(self.diagnose_member(email, found, now).await?);
                    }
                    diagnoses
                }
            }
        };
        for diagnosis in &diagnoses {
            crate::app::metrics::record_check(diagnosis.verdict.as_str());
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
        now: DateTime<Utc>,
    ) -> Result<Diagnosis, EngineError> {
        let mut drafts = vec![registration::found(&found)];
        let (status_finding, status_verdict) = status::assess(&found.member);
        drafts.push(status_finding);
        if let Some(verdict) = status_verdict {
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
    pub async fn seed(&self, fixture: &Fixture) -> Result<SeedReport, FixtureError> {
        self.store
            .load_fixture(fixture, self.settings.invitation_ttl)
            .await
    }
}
