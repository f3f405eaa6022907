//! Activation codes: the help article's "Get activation link" without its trap. An admin gets a
//! one-time code to hand to the person; the bot never shows a clickable activation link, which
//! opening would use up.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;

use std::time::Instant;

use super::audit::minute;
use super::audit::AuditEvent;
use super::gate::Held;
use super::product_api::ActivationAnswer;
use super::resend::sha256_hex;
use super::{new_reference, ActionDone, ActionOutcome, Actions, Actor, IssuedCode, IssuedForm};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::EngineError;
use crate::random::SYMBOLS;
use crate::store::{ActivationStart, NewActivationCode};

/// 10 symbols of 5 bits (easy to read aloud: no 0/O, no 1/I): 50 bits of entropy, shown as
/// `XXXX-XXXX-XX`.
const CODE_LENGTH: usize = 10;

/// A code as typed by a person, normalized: upper case, no separators.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationCode(String);

impl ActivationCode {
    fn generate() -> Self {
        ActivationCode(crate::random::symbols(CODE_LENGTH))
    }

    /// Accepts `k7qf-9mzx-2h`, `K7QF 9MZX 2H`...; `None` when it cannot be a code.
    pub fn parse(input: &str) -> Option<Self> {
        let normalized: String = input
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (normalized.len() == CODE_LENGTH && normalized.bytes().all(|b| SYMBOLS.contains(&b)))
            .then_some(ActivationCode(normalized))
    }

    /// `K7QF-9MZX-2H`.
    fn display(&self) -> String {
        format!("{}-{}-{}", &self.0[..4], &self.0[4..8], &self.0[8..])
    }

    fn hash(&self) -> Result<String, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut OsRng);
        Ok(Argon2::default()
            .hash_password(self.0.as_bytes(), &salt)?
            .to_string())
    }

    fn matches(&self, stored_hash: &str) -> bool {
        PasswordHash::new(stored_hash)
            .map(|hash| {
                Argon2::default()
                    .verify_password(self.0.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    }
}

impl std::fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivationCode(***)")
    }
}

/// A hash to verify against when there is nothing real to verify, so that "no such member" and
/// "no live code" take as long as "wrong code".
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        ActivationCode::generate()
            .hash()
            .unwrap_or_else(|_| String::from("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"))
    })
}

/// The answer to a redemption. Deliberately says nothing about why it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemOutcome {
    Activated,
    Rejected,
    /// Too many attempts for this address (or the bot is busy checking others): nothing was
    /// checked or counted; try again after the wait.
    Throttled {
        retry_after: std::time::Duration,
    },
}

impl Actions {
    #[tracing::instrument(
        name = "issue_activation_code",
        skip_all,
        fields(request_id = %crate::error::new_reference(), actor = actor.id(), email = %email.masked(), workspace = %workspace)
    )]
    pub async fn issue_activation_code(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
    ) -> Result<ActionOutcome, EngineError> {
        if let Some(api) = &self.action_settings().product {
            return self
                .through_product::<ActivationAnswer>(api, actor, email, workspace, idempotency_key)
                .await;
        }
        let action = Action::IssueActivationCode;
        let settings = self.action_settings();
        let reference = new_reference("ACT");
        let code = ActivationCode::generate();
        let started = self
            .gate(
                actor,
                action,
                email,
                workspace,
                idempotency_key,
                async |diagnosis: &Diagnosis| {
                    let Some(member) = &diagnosis.member else {
                        return Ok(Err(Held::NotOffered));
                    };
                    // Argon2 is deliberately slow; keep it off the async workers.
                    let hashing = code.clone();
                    let code_hash = tokio::task::spawn_blocking(move || hashing.hash())
                        .await
                        .map_err(|e| EngineError::Internal(Box::new(e)))?
                        .map_err(|e| EngineError::Internal(e.to_string().into()))?;
                    let now = Utc::now();
                    let expires_at = now + settings.activation_code_ttl;
                    let start = self
                        .store()
                        .issue_activation_code(&NewActivationCode {
                            member_id: member.id,
                            code_hash: &code_hash,
                            idempotency_key,
                            actor_id: actor.id(),
                            actor_name: actor.name(),
                            reference: &reference,
                            now,
                            expires_at,
                            per_member_per_day: settings.activation_codes_per_member_per_day,
                            reissue_after: settings.activation_code_reissue_after,
                        })
                        .await?;
                    Ok(match start {
                        ActivationStart::Issued => Ok(expires_at),
                        ActivationStart::Duplicate(prior) => Err(Held::Duplicate(prior)),
                        // Told as what it is: a code was just issued, by whom and when (shown
                        // only to whoever asked for it); this request changed nothing.
                        ActivationStart::JustIssued(prior) => Err(Held::Duplicate(prior)),
                        ActivationStart::MemberDailyLimit { next_allowed } => Err(Held::Limit {
                            template: "member_daily_limit",
                            limit: settings.activation_codes_per_member_per_day,
                            next_allowed,
                        }),
                    })
                },
            )
            .await?;
        let expires_at = match started {
            Ok((_, expires_at)) => expires_at,
            Err(refusal) => return Ok(refusal),
        };
        self.audit(
            actor,
            AuditEvent {
                action: AuditAction::from(action),
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: AuditOutcome::Done,
                reason: None,
                reference: Some(&reference),
                detail: Some(format!("valid until {} UTC", minute(expires_at))),
            },
        )
        .await?;
        tracing::info!(reference = %reference, "activation code issued");
        let summary = self.prompts().action_text(
            "activation_done",
            &json!({ "email": email.key(), "expires_at": expires_at.to_rfc3339(), "reference": reference }),
        )?;
        Ok(ActionOutcome::Done(ActionDone {
            action,
            reference,
            summary,
            activation_code: Some(IssuedCode {
                code: SecretString::from(code.display()),
                expires_at: Some(expires_at),
                form: IssuedForm::Code,
            }),
            escalation: None,
        }))
    }

    /// Redeems an activation code or an invitation token for `email` in `workspace`. Wrong, expired,
    /// used, voided and unknown all answer [`RedeemOutcome::Rejected`] after the same slow hash check.
    #[tracing::instrument(name = "redeem", skip_all, fields(request_id = %crate::error::new_reference(), email = %email.masked(), workspace = %workspace))]
    pub async fn redeem(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        secret: &str,
    ) -> Result<RedeemOutcome, EngineError> {
        let now = Utc::now();
        let member = match self.store().find_workspace(workspace).await? {
            Some(ws) => self
                .store()
                .member_in_workspace(ws.id, email.key())
                .await?
                .map(|m| m.member),
            None => None,
        };
        let code = ActivationCode::parse(secret);
        let settings = self.action_settings();

        // Throttle before anything is counted: a stranger guessing at someone's address is slowed
        // down here and never gets to use up (and so void) the person's live code.
        let target = format!("{}/{}", workspace.as_str(), email.key());
        if let Err(retry_after) = self
            .redeem_guard
            .per_target
            .attempt(&target, Instant::now())
        {
            return self
                .throttled(
                    actor,
                    email,
                    workspace,
                    retry_after,
                    AuditReason::AddressThrottled,
                )
                .await;
        }
        // One slow hash per core at a time, whatever the load: each takes ~19 MiB and a core.
        let Ok(Ok(_hashing)) = tokio::time::timeout(
            HASHING_WAIT,
            self.redeem_guard.hashing.clone().acquire_owned(),
        )
        .await
        else {
            return self
                .throttled(actor, email, workspace, HASHING_WAIT, AuditReason::Busy)
                .await;
        };

        let (outcome, reason) = match (&member, &code) {
            (Some(member), Some(code)) => {
                let reserved = self
                    .store()
                    .reserve_code_attempts(member.id, settings.activation_code_max_attempts, now)
                    .await?;
                let candidates: Vec<(i64, String)> =
                    reserved.into_iter().map(|c| (c.id, c.code_hash)).collect();
                let attempt = code.clone();
                let checking = candidates.clone();
                let matched = tokio::task::spawn_blocking(move || {
                    if checking.is_empty() {
                        let _ = attempt.matches(decoy_hash());
                        return None;
                    }
                    checking
                        .iter()
                        .find(|(_, hash)| attempt.matches(hash))
                        .map(|(id, _)| *id)
                })
                .await
                .map_err(|e| EngineError::Internal(Box::new(e)))?;
                match matched {
                    Some(id)
                        if self
                            .store()
                            .redeem_activation_code(id, member.id, now)
                            .await? =>
                    {
                        (RedeemOutcome::Activated, AuditReason::Code)
                    }
                    Some(_) => (RedeemOutcome::Rejected, AuditReason::CodeAlreadyUsed),
                    None if candidates.is_empty() => {
                        (RedeemOutcome::Rejected, AuditReason::NoLiveCode)
                    }
                    None => {
                        let ids: Vec<i64> = candidates.iter().map(|(id, _)| *id).collect();
                        self.store()
                            .void_exhausted_codes(&ids, settings.activation_code_max_attempts, now)
                            .await?;
                        (RedeemOutcome::Rejected, AuditReason::WrongCode)
                    }
                }
            }
            (Some(member), None) => {
                // Not code-shaped: an invitation token. Burn the same time as a code check.
                let _ = tokio::task::spawn_blocking(|| {
                    ActivationCode::generate().matches(decoy_hash())
                })
                .await;
                if self
                    .store()
                    .redeem_invitation_token(&sha256_hex(secret.trim()), member.id, now)
                    .await?
                {
                    (RedeemOutcome::Activated, AuditReason::InvitationToken)
                } else {
                    (RedeemOutcome::Rejected, AuditReason::BadToken)
                }
            }
            (None, _) => {
                let _ = tokio::task::spawn_blocking(|| {
                    ActivationCode::generate().matches(decoy_hash())
                })
                .await;
                (RedeemOutcome::Rejected, AuditReason::UnknownMember)
            }
        };
        self.audit(
            actor,
            AuditEvent {
                action: AuditAction::Redeem,
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: match outcome {
                    RedeemOutcome::Activated => AuditOutcome::Activated,
                    RedeemOutcome::Rejected | RedeemOutcome::Throttled { .. } => {
                        AuditOutcome::Rejected
                    }
                },
                reason: Some(reason),
                reference: None,
                detail: None,
            },
        )
        .await?;
        tracing::info!(outcome = ?outcome, "redemption");
        Ok(outcome)
    }
}

/// How long a redemption waits for a free hashing slot before it is told to come back.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What bounds redemptions: attempts per workspace and address, and hashes in flight.
#[derive(Debug)]
pub(crate) struct RedeemGuard {
    pub(crate) per_target: super::throttle::Throttle,
    pub(crate) hashing: std::sync::Arc<tokio::sync::Semaphore>,
}

impl RedeemGuard {
    pub(crate) fn new(attempts_per_hour: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RedeemGuard {
            // Ten thousand addresses under attack at once is already an incident; past it, new
            // ones wait (see `Throttle::attempt`).
            per_target: super::throttle::Throttle::new(
                attempts_per_hour,
                std::time::Duration::from_secs(3600),
                10_000,
            ),
            hashing: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }
}

impl Actions {
    async fn throttled(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        retry_after: std::time::Duration,
        reason: AuditReason,
    ) -> Result<RedeemOutcome, EngineError> {
        self.audit(
            actor,
            AuditEvent {
                action: AuditAction::Redeem,
                workspace: Some(workspace.as_str()),
                email_key: Some(email.key()),
                outcome: AuditOutcome::Refused,
                reason: Some(reason),
                reference: None,
                detail: None,
            },
        )
        .await?;
        Ok(RedeemOutcome::Throttled {
            retry_after: retry_after.max(std::time::Duration::from_secs(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_parse_back() {
        for _ in 0..100 {
            let code = ActivationCode::generate();
            let shown = code.display();
            assert_eq!(shown.len(), 12);
            assert!(!shown.contains(['0', 'O', '1', 'I']), "{shown}");
            assert_eq!(
                ActivationCode::parse(&shown.to_lowercase()),
                Some(code.clone())
            );
            assert_eq!(ActivationCode::parse(&shown.replace('-', " ")), Some(code));
        }
        assert_eq!(ActivationCode::parse("K7QF-9MZX-2"), None);
        assert_eq!(ActivationCode::parse("K7QF-9MZX-2O"), None);
    }

    #[test]
    fn hashes_are_salted_and_verify() {
        let code = ActivationCode::parse("K7QF-9MZX-2H").unwrap();
        let first = code.hash().unwrap();
        let second = code.hash().unwrap();
        assert_ne!(first, second, "salted");
        assert!(!first.contains("K7QF"));
        assert!(code.matches(&first));
        assert!(!ActivationCode::parse("K7QF-9MZX-2J")
            .unwrap()
            .matches(&first));
    }
}
