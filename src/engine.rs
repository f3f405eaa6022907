//! The engine: takes typed requests, runs the checklist against the store, returns typed results.
//! It knows nothing about Discord, the console or the CLI; every edge calls the same functions.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::actions::ActionSettings;
use crate::config::Config;
use crate::diagnosis::delivery::DeliveryFacts;
use crate::diagnosis::{
    delivery, domain, registration, status, suggestions, Action, Check, Diagnosis, Finding,
    FindingDraft, Outcome, Verdict,
};
use crate::email::EmailAddress;
use crate::error::{EngineError, UserError};
use crate::fixture::{Fixture, FixtureError, SeedReport};
use crate::mail::Mailer;
use crate::prompts::Prompts;
use crate::store::{DeliveryRecord, DomainWindow, MemberMatch, Store};
use crate::workspace::{Workspace, WorkspaceSlug};

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
    actions: Arc<ActionSettings>,
    mailer: Mailer,
    http: reqwest::Client,
    /// Providers asked at check time whether the address is suppressed (optional).
    lookups: Option<crate::providers::LiveLookups>,
}

impl Engine {
    pub fn new(store: Store, prompts: Arc<Prompts>, settings: CheckSettings) -> Self {
        Self {
            store,
            prompts,
            settings: Arc::new(settings),
            actions: Arc::new(ActionSettings::from(&Config::default())),
            mailer: Mailer::Disabled,
            http: http_client(),
            lookups: None,
        }
    }

    /// Sets how actions behave and how email leaves (the default sends none).
    pub fn with_actions(mut self, settings: ActionSettings, mailer: Mailer) -> Self {
        self.actions = Arc::new(settings);
        self.mailer = mailer;
        self
    }

    pub fn action_settings(&self) -> &ActionSettings {
        &self.actions
    }

    pub(crate) fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
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

    // The request id ties every log line of one check together; the address is logged masked only.
    #[tracing::instrument(
        name = "check",
        skip_all,
        fields(request_id = %crate::error::new_reference(), email = %email.masked(), workspace = workspace.map(|w| w.as_str()))
    )]
    pub async fn check_at(
        &self,
        email: &EmailAddress,
        workspace: Option<&WorkspaceSlug>,
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
                        let elsewhere = self.store.memberships(email.key()).await?;
                        vec![
                            self.diagnose_unregistered(email, Some(workspace), &elsewhere)
                                .await?,
                        ]
                    }
                }
            }
            None => {
                let memberships = self.store.memberships(email.key()).await?;
                if memberships.is_empty() {
                    vec![self.diagnose_unregistered(email, None, &[]).await?]
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
    ) -> Result<Diagnosis, EngineError> {
        let suggestions = suggestions::suggest(
            &self.store,
            email,
            workspace.as_ref().map(|w| w.id),
            self.settings.max_suggestions,
        )
        .await?;
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
            suggestions = suggestions::suggest(
                &self.store,
                email,
                Some(found.workspace.id),
                self.settings.max_suggestions,
            )
            .await?;
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
            "resend_in": assessment.resend_not_before.map(|at| crate::humanize::wait_words(at - now)),
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
        )?;
        if assessment.resend_not_before.is_some() {
            diagnosis.actions.retain(|a| *a != Action::ResendInvite);
        }
        Ok(diagnosis)
    }

    /// Renders the findings' words and assembles the diagnosis.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        email: &EmailAddress,
        workspace: Option<Workspace>,
        member: Option<crate::member::Member>,
        verdict: Verdict,
        suggestions: Vec<String>,
        drafts: Vec<FindingDraft>,
        extra: serde_json::Value,
    ) -> Result<Diagnosis, EngineError> {
        let findings = drafts
            .into_iter()
            .map(|draft| {
                Ok(Finding {
                    check: draft.check,
                    outcome: draft.outcome,
                    detail: self.prompts.finding_detail(draft.outcome, &draft.facts)?,
                })
            })
            .collect::<Result<Vec<_>, crate::prompts::PromptError>>()?;
        let actions = verdict.offered_actions().to_vec();
        let mut facts = json!({
            "email": email.key(),
            "verdict": verdict.as_str(),
            "workspace": workspace.as_ref().map(|w| json!({ "slug": w.slug.as_str(), "name": w.name })),
            "member": member.as_ref().map(|m| json!({
                "email": m.email, "role": m.role.as_str(), "tab": m.role.tab(), "status": m.status.as_str(),
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

/// The client for outgoing webhooks. Each request also sets its own, shorter total deadline; these
/// bound a request that forgets to.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        // Fails only when the TLS backend cannot start, as `reqwest::Client::new` would.
        .expect("the HTTP client builds")
}
