//! The chat side of alerts: the card of a check, posted unasked to an alert channel, with the
//! buttons a check offers. The buttons are the same records chat uses, offered to nobody in
//! particular: whoever presses is authorized then, as with every press.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{new_reference, ButtonAction, Chat, ChatButton, ChatReply};
use crate::diagnosis::Diagnosis;
use crate::error::EngineError;
use crate::store::ButtonRecord;

/// Who the buttons of an alert were offered to, in their records.
pub const ALERT_OFFERED_TO: &str = "alerts";

/// Discord shows at most five rows of five buttons under a message.
const MAX_CHECK_BUTTONS: usize = 25;

impl Chat {
    /// `text` above the card of `diagnosis`, with a button for every action the verdict offers
    /// and one for every suggestion ("did you mean").
    pub async fn alert_reply(
        &self,
        diagnosis: &Diagnosis,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<ChatReply, EngineError> {
        let card = self.card(diagnosis)?;
        let workspace = diagnosis
            .workspace
            .as_ref()
            .map(|w| w.slug.as_str().to_owned());
        let member_id = diagnosis.member.as_ref().map(|m| m.id);
        let mut offers: Vec<(ButtonAction, &str, String, usize)> = Vec::new();
        for action in &diagnosis.actions {
            let action = ButtonAction::from(*action);
            let label = self.label("action_button", json!({ "action": action.as_str() }))?;
            offers.push((action, diagnosis.email.key(), label, 0));
        }
        for suggestion in &diagnosis.suggestions {
            let label = self.label("suggestion_button", json!({ "email": suggestion }))?;
            offers.push((ButtonAction::Check, suggestion, label, 1));
        }
        let mut records = Vec::with_capacity(offers.len());
        let mut buttons = Vec::with_capacity(offers.len());
        for (action, email, label, group) in offers {
            let record = alert_record(
                action,
                email,
                workspace.clone(),
                (action != ButtonAction::Check)
                    .then_some(member_id)
                    .flatten(),
                now,
            );
            buttons.push(ChatButton {
                label,
                action,
                reference: record.reference.clone(),
                group,
            });
            records.push(record);
        }
        self.engine().store().insert_buttons(&records).await?;
        Ok(ChatReply {
            ephemeral: false,
            text,
            cards: vec![card],
            buttons,
        })
    }

    /// "Check <address>" buttons for (address, workspace) pairs, five to a row, at most 25: the
    /// check is shown privately to whoever presses.
    pub async fn check_buttons(
        &self,
        addresses: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<ChatButton>, EngineError> {
        let mut records = Vec::new();
        let mut buttons = Vec::new();
        for (index, (email, workspace)) in addresses.iter().take(MAX_CHECK_BUTTONS).enumerate() {
            let record = alert_record(
                ButtonAction::Check,
                email,
                Some(workspace.clone()),
                None,
                now,
            );
            buttons.push(ChatButton {
                label: self.label("check_button", json!({ "email": email }))?,
                action: ButtonAction::Check,
                reference: record.reference.clone(),
                group: index / 5,
            });
            records.push(record);
        }
        self.engine().store().insert_buttons(&records).await?;
        Ok(buttons)
    }
}

fn alert_record(
    action: ButtonAction,
    email: &str,
    workspace: Option<String>,
    member_id: Option<i64>,
    now: DateTime<Utc>,
) -> ButtonRecord {
    ButtonRecord {
        reference: new_reference(),
        action,
        email: email.to_owned(),
        workspace,
        member_id,
        offered_to: ALERT_OFFERED_TO.to_owned(),
        offered_at: now,
        used_at: None,
        used_by: None,
        outcome: None,
        message: None,
    }
}
