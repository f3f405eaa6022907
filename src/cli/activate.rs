//! `invite-bot activate ADDRESS CODE --workspace W`: redeem an activation code (or an invitation
//! token); the member becomes active. A code that does not work exits 3.

use serde_json::json;

use crate::actions::RedeemOutcome;
use crate::config::Config;

use super::operator::{operator_actions, parse_target};
use super::output::words;
use super::{Failure, Format};

pub(super) async fn activate(
    config: &Config,
    email: &str,
    code: &str,
    workspace: &str,
    format: Format,
) -> Result<(), Failure> {
    let (email, workspace) = parse_target(email, workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let outcome = actions.redeem(&operator, &email, &workspace, code).await;
    actions.engine().store().close().await;
    let outcome = outcome?;
    let (label, name, facts) = match outcome {
        RedeemOutcome::Activated => (
            "activated",
            "redeem_activated",
            json!({ "email": email.key() }),
        ),
        RedeemOutcome::Rejected => ("rejected", "redeem_rejected", json!({})),
        RedeemOutcome::Throttled { retry_after } => (
            "throttled",
            "redeem_throttled",
            json!({ "retry_after_seconds": retry_after.as_secs().max(1) }),
        ),
    };
    // The JSON carries the same sentence as `message`, as it always has: scripts show it as is.
    let message = words(actions.engine().prompts(), name, &facts)?;
    match format {
        Format::Json => println!("{}", json!({ "outcome": label, "message": message })),
        Format::Text => println!("{message}"),
    }
    match outcome {
        RedeemOutcome::Activated => Ok(()),
        RedeemOutcome::Rejected | RedeemOutcome::Throttled { .. } => Err(Failure::refused()),
    }
}
