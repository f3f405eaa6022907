//! Resend the invitation: a new invitation with a fresh token, sent by SMTP exactly once.
//!
//! The intent, the invitation and an outbox row are committed together first; only then is the email
//! sent. A temporary (4xx) failure is retried with backoff, then left to the background worker; a
//! permanent (5xx) failure is reported. A crash between commit and send leaves a pending outbox row
//! that the next start-up sends. The person is told "sent" only once the SMTP server accepted it.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::AuditEvent;
use super::gate::Held;
use super::{new_reference, ActionDone, ActionOutcome, Actions, Actor};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::{ActionFailure, EngineError};
use crate::mail::{MailError, OutgoingEmail};
use crate::store::{NewResend, OutboxItem, ResendStart};

/// What one delivery attempt came to.
enum Delivery {
    Sent(Box<OutboxItem>),
    /// Another worker holds the row (it is being sent right now).
    ClaimedElsewhere,
    Failed(MailError),
}

impl Actions {
    #[tracing::instrument(
        name = "resend_invite",
        skip_all,
        fields(request_id = %crate::error::new_reference(), actor = actor.id(), email = %email.masked(), workspace = %workspace)
    )]
    pub async fn resend_invite(
        &self,
        actor: &Actor,
        email: &EmailAddress,
        workspace: &WorkspaceSlug,
        idempotency_key: Option<&str>,
    ) -> Result<ActionOutcome, EngineError> {
        let action = Action::ResendInvite;
        let settings = self.action_settings();
        let reference = new_reference("RSD");
        // Stored without angle brackets, the form webhooks look up; the mailer adds them for the header.
        let message_id = format!(
            "{}.{}@invite-bot",
            reference.to_lowercase(),
            crate::random::hex(8)
        );
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
                    let now = Utc::now();
                    let start = self
                        .store()
                        .begin_resend(&NewResend {
                            member_id: member.id,
                            recipient: email.key(),
                            idempotency_key,
                            actor_id: actor.id(),
                            actor_name: actor.name(),
                            reference: &reference,
                            message_id: &message_id,
                            now,
                            expires_at: now + self.engine.settings().invitation_ttl,
                            limits: settings.resend_limits,
                        })
                        .await?;
                    Ok(match start {
                        ResendStart::Started { outbox_id } => Ok(outbox_id),
                        ResendStart::Duplicate(prior) => Err(Held::Duplicate(prior)),
                        ResendStart::TooSoon { last, next_allowed } => {
                            Err(Held::TooSoon { last, next_allowed })
                        }
                        ResendStart::MemberDailyLimit { next_allowed } => Err(Held::Limit {
                            template: "member_daily_limit",
                            limit: settings.resend_limits.per_member_per_day,
                            next_allowed,
                        }),
                        ResendStart::ActorHourlyLimit { next_allowed } => Err(Held::Limit {
                            template: "actor_hourly_limit",
                            limit: settings.resend_limits.per_actor_per_hour,
                            next_allowed,
                        }),
                    })
                },
            )
            .await?;
        let outbox_id = match started {
            Ok((_, outbox_id)) => outbox_id,
            Err(refusal) => return Ok(refusal),
        };

        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.deliver_once(outbox_id).await? {
                Delivery::Sent(item) => {
                    let summary = self.prompts().action_text(
                        "resend_done",
                        &json!({ "email": email.key(), "reference": reference, "expires_at": item.expires_at.to_rfc3339() }),
                    )?;
                    return Ok(ActionOutcome::Done(ActionDone {
                        action,
                        reference,
                        summary,
                        activation_code: None,
                        escalation: None,
                    }));
                }
                Delivery::ClaimedElsewhere => {
                    return Err(ActionFailure::MailQueued {
                        reference,
                        detail: "another worker is sending it".into(),
                    }
                    .into());
                }
                // A server that went silent is not asked again at once: each try would wait out
                // the whole send deadline. The background retry takes it from here.
                Delivery::Failed(error)
                    if error.is_temporary()
                        && !matches!(error, MailError::TimedOut(_))
                        && attempt < settings.smtp_max_attempts =>
                {
                    let backoff = settings.smtp_retry_base * 2u32.saturating_pow(attempt - 1);
                    tracing::warn!(attempt, error = %error, "temporary SMTP failure; retrying");
                    tokio::time::sleep(backoff).await;
                }
                Delivery::Failed(error) => {
                    return Err(match error {
                        MailError::Temporary(detail) => {
                            ActionFailure::MailQueued { reference, detail }
                        }
                        MailError::TimedOut(waited) => ActionFailure::MailUnanswered {
                            reference,
                            seconds: waited.as_secs(),
                        },
                        MailError::NotConfigured => ActionFailure::MailNotConfigured { reference },
                        MailError::Permanent(detail) | MailError::Invalid(detail) => {
                            ActionFailure::MailRejected { reference, detail }
                        }
                    }
                    .into());
                }
            }
        }
    }

    /// Claims an outbox row, sends its email once with a fresh token, and records the result.
    async fn deliver_once(&self, outbox_id: i64) -> Result<Delivery, EngineError> {
        let now = Utc::now();
        let settings = self.action_settings();
        let token = crate::random::hex(32);
        let token_hash = sha256_hex(&token);
        let Some(item) = self
            .store()
            .claim_outbox(
                outbox_id,
                &token_hash,
                now,
                now - settings.outbox_claim_timeout,
            )
            .await?
        else {
            return Ok(Delivery::ClaimedElsewhere);
        };
        // The link comes from configuration only; the token is the one thing added to it.
        let link = format!("{}?token={token}", settings.activation_url);
        let (subject, body) = self.prompts().invitation_email(&json!({
            "workspace": item.workspace_name,
            "role": item.member_role,
            "link": link,
            "expires_at": item.expires_at.to_rfc3339(),
        }))?;
        let message_id = item
            .message_id
            .clone()
            .unwrap_or_else(|| format!("outbox-{}@invite-bot", item.id));
        let sent = self
            .mailer()
            .send(&OutgoingEmail {
                from: &self.engine.settings().sender,
                to: &item.recipient,
                subject: &subject,
                body: &body,
                message_id: &message_id,
            })
            .await;
        let event = |outcome, reason, detail| AuditEvent {
            action: AuditAction::ResendInvite,
            workspace: Some(item.workspace_slug.as_str()),
            email_key: Some(item.recipient.as_str()),
            outcome,
            reason,
            reference: Some(item.reference.as_str()),
            detail,
        };
        crate::app::metrics::record_smtp(sent.is_ok());
        match sent {
            Ok(provider_id) => {
                self.store()
                    .complete_send(&item, &message_id, provider_id.as_deref(), Utc::now())
                    .await?;
                self.audit_as(
                    &item.actor_id,
                    &item.actor_name,
                    event(
                        AuditOutcome::Done,
                        None,
                        Some("accepted by the mail server".into()),
                    ),
                )
                .await?;
                tracing::info!(reference = %item.reference, "invitation sent");
                Ok(Delivery::Sent(Box::new(item)))
            }
            Err(error) if error.is_temporary() => {
                let backoff =
                    Duration::seconds(30 * 2i64.saturating_pow(item.attempts.clamp(0, 7) as u32));
                self.store()
                    .defer_send(&item, &error.to_string(), Utc::now() + backoff)
                    .await?;
                let reason = match error {
                    MailError::TimedOut(_) => AuditReason::SmtpTimeout,
                    _ => AuditReason::SmtpTemporary,
                };
                self.audit_as(
                    &item.actor_id,
                    &item.actor_name,
                    event(
                        AuditOutcome::Deferred,
                        Some(reason),
                        Some(error.to_string()),
                    ),
                )
                .await?;
                Ok(Delivery::Failed(error))
            }
            Err(error) => {
                self.store()
                    .fail_send(&item, &error.to_string(), Utc::now())
                    .await?;
                self.audit_as(
                    &item.actor_id,
                    &item.actor_name,
                    event(
                        AuditOutcome::Failed,
                        Some(AuditReason::SmtpPermanent),
                        Some(error.to_string()),
                    ),
                )
                .await?;
                tracing::warn!(reference = %item.reference, error = %error, "invitation refused by the mail server");
                Ok(Delivery::Failed(error))
            }
        }
    }

    /// Sends every outbox email that is due: left pending by a temporary failure, or abandoned by a
    /// crash between commit and send. Run at start-up and periodically. Returns how many were sent.
    pub async fn send_due_invitations(&self) -> Result<usize, EngineError> {
        self.send_invitations_due_at(Utc::now()).await
    }

    /// [`Actions::send_due_invitations`] as if it were `now` (operators catching up, tests).
    pub async fn send_invitations_due_at(&self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        let stale = now - self.action_settings().outbox_claim_timeout;
        let mut sent = 0;
        for id in self.store().due_outbox(now, stale, 100).await? {
            match self.deliver_once(id).await? {
                Delivery::Sent(_) => sent += 1,
                // The server went silent: the rest of the round would each wait out the same
                // deadline. They stay due for the next round.
                Delivery::Failed(MailError::TimedOut(_)) => break,
                Delivery::Failed(_) | Delivery::ClaimedElsewhere => {}
            }
        }
        Ok(sent)
    }
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
