//! `invite-bot retry-pending`: send invitation emails left waiting (after a mail outage or a crash)
//! and retry escalation webhooks.

use serde_json::json;

use crate::app::startup;
use crate::config::Config;

use super::output::print_facts;
use super::{Failure, Format};

pub(super) async fn retry_pending(config: &Config, format: Format) -> Result<(), Failure> {
    let actions = startup::build(config).await?;
    let engine = actions.engine();
    let sent = actions.send_due_invitations().await?;
    let delivered = actions.deliver_due_escalations().await?;
    engine.store().close().await;
    let facts = json!({ "invitations_sent": sent, "escalations_delivered": delivered });
    print_facts(engine.prompts(), format, "retried", &facts)
}
