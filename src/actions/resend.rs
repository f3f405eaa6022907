//! Resend the invitation: a new invitation with a fresh token, sent by SMTP exactly once.
//!
//! The intent, the invitation and an outbox row are committed together first; only then is the email
//! sent. A temporary (4xx) failure is retried with backoff, then left to the background worker; a
//! permanent (5xx) failure is reported. A crash between commit and send leaves a pending outbox row
//! that the next start-up sends. The person is told "sent" only once the SMTP server accepted it.
//!
//! A sender holds the row it sends under a short lease that it renews while the SMTP conversation
//! lasts, so a row left in `sending` by a process that died is taken over within seconds, and a live
//! sender's row never is. Each try's token is stored (hashed) before its email goes out and stays
//! valid beside the tokens of earlier tries: when an email was accepted but its recording was lost
//! (a crash, a failed commit) and a retry sends another, whichever arrives has a working link. The
//! person who asked is told the truth in that case too: sent, but not recorded.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::audit::AuditEvent;
use super::gate::Held;
use super::product_api::ResendAnswer;
use super::{new_reference, ActionDone, ActionOutcome, Actions, Actor};
use crate::diagnosis::{Action, Diagnosis};
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::{AuditAction, AuditOutcome, AuditReason};
use crate::error::{ActionFailure, EngineError};
use crate::mail::{MailError, OutgoingEmail};
use crate::store::{NewResend, OutboxItem, PriorAction, ResendStart};

/// What one delivery attempt came to.
enum Delivery {
    Sent(Box<OutboxItem>),
    /// The mail server accepted it, and the database would not record that.
    SentUnrecorded(Box<OutboxItem>),
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
        if let Some(api) = &self.action_settings().product {
            return self
                .through_product::<ResendAnswer>(api, actor, email, workspace, idempotency_key)
                .await;
        }
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
                            Err(Held::after_last(last, next_allowed))
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
            match self.deliver_once(outbox_id, Utc::now()).await? {
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
                Delivery::SentUnrecorded(item) => {
                    let message = self.prompts().action_text(
                        "resend_sent_unrecorded",
                        &json!({ "email": email.key(), "reference": reference, "expires_at": item.expires_at.to_rfc3339() }),
                    )?;
                    return Err(ActionFailure::MailSentUnrecorded { reference, message }.into());
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

    /// Claims an outbox row as of `now`, sends its email once with a fresh token, and records the
    /// result.
    async fn deliver_once(
        &self,
        outbox_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Delivery, EngineError> {
        let lease = self.action_settings().outbox_lease;
        let token = crate::random::hex(32);
        let token_hash = sha256_hex(&token);
        let Some(item) = self
            .store()
            .claim_outbox(outbox_id, &token_hash, instance_id(), now, now + lease)
            .await?
        else {
            return Ok(Delivery::ClaimedElsewhere);
        };
        // The link comes from configuration only; the token is the one thing added to it.
        let link = format!("{}?token={token}", self.action_settings().activation_url);
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
            .holding_lease(
                &item,
                self.mailer().send(&OutgoingEmail {
                    from: &self.engine.settings().sender,
                    to: &item.recipient,
                    subject: &subject,
                    body: &body,
                    message_id: &message_id,
                }),
            )
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
        crate::metrics::record_smtp(sent.is_ok());
        match sent {
            Ok(provider_id) => {
                if let Err(error) = self
                    .record_send(&item, &message_id, provider_id.as_deref())
                    .await
                {
                    // The email is out and cannot be called back: say so, rather than the
                    // database's error alone. The row stays `sending` until its lease lapses; a
                    // retry then sends it again with a new token, and both links work.
                    tracing::error!(
                        reference = %item.reference,
                        error = %crate::error::error_chain(&error),
                        "invitation accepted by the mail server but not recorded"
                    );
                    let audited = self
                        .audit_as(
                            &item.actor_id,
                            &item.actor_name,
                            event(
                                AuditOutcome::Done,
                                Some(AuditReason::RecordingFailed),
                                Some("accepted by the mail server; recording it failed".into()),
                            ),
                        )
                        .await;
                    if let Err(audit_error) = audited {
                        tracing::error!(reference = %item.reference, error = %crate::error::error_chain(&audit_error), "audit row of an unrecorded send not written");
                    }
                    return Ok(Delivery::SentUnrecorded(Box::new(item)));
                }
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
        let mut sent = 0;
        for id in self.store().due_outbox(now, 100).await? {
            match self.deliver_once(id, now).await? {
                Delivery::Sent(_) | Delivery::SentUnrecorded(_) => sent += 1,
                // The server went silent: the rest of the round would each wait out the same
                // deadline. They stay due for the next round.
                Delivery::Failed(MailError::TimedOut(_)) => break,
                Delivery::Failed(_) | Delivery::ClaimedElsewhere => {}
            }
        }
        Ok(sent)
    }
}

impl Actions {
    /// Records an accepted email, trying a few times: a busy database (SQLite's lock, a slow
    /// statement) often passes in a moment, and every failed recording means a second email later.
    async fn record_send(
        &self,
        item: &OutboxItem,
        message_id: &str,
        provider_id: Option<&str>,
    ) -> Result<(), crate::store::StoreError> {
        let mut wait = std::time::Duration::from_millis(50);
        let mut tries = 1;
        loop {
            match self
                .store()
                .complete_send(item, message_id, provider_id, Utc::now())
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if tries >= RECORD_TRIES => return Err(error),
                Err(error) => {
                    tracing::warn!(tries, error = %error, "recording a sent invitation failed; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                    tries += 1;
                }
            }
        }
    }

    /// Runs `send` while renewing this process's lease on `item`'s row, so no other sender takes
    /// the row while the SMTP conversation lasts (however long the send deadline allows).
    async fn holding_lease<T>(
        &self,
        item: &OutboxItem,
        send: impl std::future::Future<Output = T>,
    ) -> T {
        let lease = self.action_settings().outbox_lease;
        let every = self.action_settings().outbox_lease_renewal;
        let renew = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                match self
                    .store()
                    .renew_lease(item.id, instance_id(), Utc::now() + lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        // Taken over (our renewals failed for a whole lease) or finished: the
                        // send itself goes on; what it came to is recorded either way.
                        tracing::warn!(reference = %item.reference, "lost the lease on a send in progress");
                        std::future::pending::<()>().await;
                    }
                    Err(error) => {
                        tracing::warn!(reference = %item.reference, error = %error, "renewing a send's lease failed")
                    }
                }
            }
        };
        tokio::select! {
            outcome = send => outcome,
            // `renew` loops until dropped: it never finishes first.
            () = renew => unreachable!("renewing a lease never ends"),
        }
    }
}

impl Held {
    /// A resend asked for too soon after `last`: told as sent (when, by whom) once its email went
    /// out, and as queued (the next try at T) while it has not; a request is not a send.
    pub(crate) fn after_last(last: PriorAction, next_allowed: DateTime<Utc>) -> Held {
        if last.unsent() {
            Held::Unsent { last, next_allowed }
        } else {
            Held::TooSoon { last, next_allowed }
        }
    }
}

/// How many times an accepted email's record is tried before the person is told it failed.
const RECORD_TRIES: u32 = 3;

/// This process, as the owner of the outbox rows it sends: a fresh id each start, so a row held
/// by a process that is gone is never mistaken for one of ours.
pub(super) fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}-{}", std::process::id(), crate::random::hex(6)))
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
