//! `/invite-report` in the chat flow: the report in words, the CSV of members needing action, and
//! the "Resend all eligible" buttons. The words come from `prompts/report.j2`; the decisions from
//! [`crate::report`].
//!
//! The bulk buttons are not chat buttons (`chat_buttons` names one member's action): their custom
//! id is a prefix and the opaque reference of a `bulk_resends` row, and nothing else in it is
//! trusted.

use chrono::Utc;
use serde_json::json;

use super::{is_reference, Chat, ChatReply};
use crate::actions::Actor;
use crate::domain::workspace::WorkspaceSlug;
use crate::domain::Permission;
use crate::error::{EngineError, UserError};
use crate::report::bulk::{BulkAnswer, BulkProgress, BulkRun, BulkStage};
use crate::report::{Reports, WorkspaceReport};

/// The custom id of "Resend all eligible (N)" starts with this.
pub const BULK_OFFER_PREFIX: &str = "ibr:offer:";
/// The custom id of the confirmation starts with this.
pub const BULK_CONFIRM_PREFIX: &str = "ibr:confirm:";

/// A file sent with a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// A button of the report's own (the bulk resend's two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportButton {
    pub label: String,
    pub custom_id: String,
}

/// The answer to `/invite-report`, or to a press of its buttons.
#[derive(Debug, Clone)]
pub struct ReportReply {
    pub ephemeral: bool,
    pub text: String,
    pub attachment: Option<Attachment>,
    pub button: Option<ReportButton>,
}

impl ReportReply {
    fn notice(text: String) -> Self {
        ReportReply {
            ephemeral: true,
            text,
            attachment: None,
            button: None,
        }
    }
}

/// What a press of a bulk button comes to in chat.
#[derive(Debug)]
pub enum BulkReply {
    /// A private answer: the confirmation (with its button), or why nothing was started.
    Answer(ReportReply),
    /// A run started: the first words of its progress message, and its progress to follow.
    Started { text: String, run: BulkRun },
}

/// Is this custom id one of the bulk resend's buttons?
pub fn is_bulk_button(custom_id: &str) -> bool {
    custom_id.starts_with(BULK_OFFER_PREFIX) || custom_id.starts_with(BULK_CONFIRM_PREFIX)
}

fn bulk_button(custom_id: &str) -> Option<(BulkStage, &str)> {
    let (stage, reference) = if let Some(r) = custom_id.strip_prefix(BULK_OFFER_PREFIX) {
        (BulkStage::Offer, r)
    } else {
        (
            BulkStage::Confirm,
            custom_id.strip_prefix(BULK_CONFIRM_PREFIX)?,
        )
    };
    is_reference(reference).then_some((stage, reference))
}

impl Chat {
    pub fn reports(&self) -> &Reports {
        &self.reports
    }

    /// Words of `report.j2`.
    fn report_words(&self, name: &str, facts: serde_json::Value) -> Result<String, EngineError> {
        Ok(self.engine().prompts().report_text(name, &facts)?)
    }

    fn public(&self, error: &EngineError) -> String {
        error.public_message(self.engine().prompts())
    }

    /// `/invite-report [workspace]`: the counts, the top failing domains, the CSV of members
    /// needing action, and for those who may resend there, "Resend all eligible (N)".
    #[tracing::instrument(name = "invite_report", skip_all, fields(actor = %actor.id()))]
    pub async fn invite_report(&self, actor: &Actor, workspace: Option<&str>) -> ReportReply {
        let Some(workspace) = workspace.filter(|w| !w.trim().is_empty()) else {
            return ReportReply::notice(
                self.report_words("no_workspace", json!({}))
                    .unwrap_or_else(|e| self.public(&e)),
            );
        };
        let workspace = match WorkspaceSlug::parse(workspace) {
            Ok(slug) => slug,
            Err(error) => return ReportReply::notice(self.public(&UserError::from(error).into())),
        };
        match self.report_reply(actor, &workspace).await {
            Ok(reply) => reply,
            Err(error) => ReportReply::notice(self.public(&error)),
        }
    }

    async fn report_reply(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<ReportReply, EngineError> {
        let report = self.reports.report(actor, workspace, Utc::now()).await?;
        let mut text = self.report_words("report", json!(report))?;
        let attachment = self.csv_attachment(&report, &mut text).await?;
        let button = match self.reports.offer_bulk_resend(actor, &report).await? {
            Some(reference) => Some(ReportButton {
                label: super::truncate(
                    &self.report_words(
                        "bulk_button",
                        json!({ "eligible": report.eligible_for_resend }),
                    )?,
                    super::MAX_LABEL,
                ),
                custom_id: format!("{BULK_OFFER_PREFIX}{reference}"),
            }),
            None => None,
        };
        Ok(ReportReply {
            ephemeral: self.settings().ephemeral_replies,
            text,
            attachment,
            button,
        })
    }

    /// The CSV of the members needing action (none when nobody does); its line added to `text`.
    async fn csv_attachment(
        &self,
        report: &WorkspaceReport,
        text: &mut String,
    ) -> Result<Option<Attachment>, EngineError> {
        if report.needing_action == 0 {
            return Ok(None);
        }
        let limit = self.reports.settings().max_csv_rows;
        let rows = self
            .reports
            .members_needing_action(report, false, limit)
            .await?;
        let filename = format!("invite-report-{}.csv", report.workspace);
        let note = self.report_words(
            "csv_note",
            json!({ "rows": rows.len(), "needing_action": report.needing_action, "file": filename }),
        )?;
        if !note.is_empty() {
            text.push('\n');
            text.push_str(&note);
        }
        Ok(Some(Attachment {
            bytes: self.reports.csv(&rows)?,
            filename,
        }))
    }

    /// A press of "Resend all eligible (N)" or of its confirmation. Nothing in the custom id is
    /// trusted but the reference of the offer; the presser is authorized anew.
    #[tracing::instrument(name = "bulk_press", skip_all, fields(actor = %actor.id()))]
    pub async fn press_bulk(&self, actor: &Actor, custom_id: &str) -> BulkReply {
        let answer = |text: String| BulkReply::Answer(ReportReply::notice(text));
        let Some((stage, reference)) = bulk_button(custom_id) else {
            return answer(self.say("forged", json!({})));
        };
        let pressed = self
            .reports
            .press_bulk_resend(actor, stage, reference, Utc::now())
            .await;
        let words = match pressed {
            Ok(BulkAnswer::Started(run)) => {
                let text = self.bulk_progress_text(&run.progress.borrow());
                return BulkReply::Started { text, run };
            }
            Ok(BulkAnswer::Confirm {
                workspace,
                eligible,
                max_members,
            }) => {
                let facts = json!({ "workspace": workspace, "eligible": eligible, "max_members": max_members });
                let confirm = self
                    .report_words("bulk_confirm", facts.clone())
                    .and_then(|text| {
                        let label = self.report_words("bulk_confirm_button", facts)?;
                        Ok((text, label))
                    });
                return match confirm {
                    Ok((text, label)) => BulkReply::Answer(ReportReply {
                        button: Some(ReportButton {
                            label: super::truncate(&label, super::MAX_LABEL),
                            custom_id: format!("{BULK_CONFIRM_PREFIX}{reference}"),
                        }),
                        ..ReportReply::notice(text)
                    }),
                    Err(error) => answer(self.public(&error)),
                };
            }
            Ok(BulkAnswer::Unknown) => return answer(self.say("forged", json!({}))),
            Ok(BulkAnswer::Stale { max_age_minutes }) => {
                return answer(self.say("stale", json!({ "max_age_minutes": max_age_minutes })))
            }
            Ok(BulkAnswer::Forbidden { workspace }) => {
                let error: EngineError = UserError::Forbidden {
                    permission: Permission::ResendInvite.as_str(),
                    workspace: Some(workspace),
                }
                .into();
                return answer(self.public(&error));
            }
            Ok(BulkAnswer::Nobody { workspace }) => {
                self.report_words("bulk_nobody", json!({ "workspace": workspace }))
            }
            Ok(BulkAnswer::Busy { workspace }) => {
                self.report_words("bulk_busy", json!({ "workspace": workspace }))
            }
            Ok(BulkAnswer::Already(row)) => self.report_words(
                "bulk_already",
                json!({
                    "state": row.state, "started_by": row.started_by,
                    "sent": row.sent, "skipped": row.skipped, "failed": row.failed,
                }),
            ),
            Err(error) => Err(error),
        };
        answer(words.unwrap_or_else(|error| self.public(&error)))
    }

    /// The progress message of a run: where it is, or once it has finished, its summary.
    pub fn bulk_progress_text(&self, progress: &BulkProgress) -> String {
        let name = if progress.finished {
            "bulk_summary"
        } else {
            "bulk_progress"
        };
        self.report_words(name, json!(progress))
            .unwrap_or_else(|error| self.public(&error))
    }
}

/// The reply as the console or a test reads it: its text, then the button's label.
impl ReportReply {
    pub fn plain_text(&self) -> String {
        match &self.button {
            Some(button) => format!("{}\n[{}]", self.text, button.label),
            None => self.text.clone(),
        }
    }
}

impl From<ReportReply> for ChatReply {
    /// The words alone (an edge that cannot send files or these buttons).
    fn from(reply: ReportReply) -> Self {
        ChatReply {
            ephemeral: reply.ephemeral,
            text: reply.text,
            cards: Vec::new(),
            buttons: Vec::new(),
        }
    }
}
