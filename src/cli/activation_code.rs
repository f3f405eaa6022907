//! `invite-bot activation-code ADDRESS --workspace W`: issue a one-time activation code for the
//! operator to hand over.

use crate::config::Config;

use super::operator::{operator_actions, parse_target};
use super::output::report_action;
use super::{Failure, Format};

pub(super) async fn activation_code(
    config: &Config,
    email: &str,
    workspace: &str,
    format: Format,
) -> Result<(), Failure> {
    let (email, workspace) = parse_target(email, workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let outcome = actions
        .issue_activation_code(&operator, &email, &workspace, None)
        .await;
    actions.engine().store().close().await;
    report_action(actions.engine().prompts(), outcome?, format)
}
