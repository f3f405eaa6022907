//! `invite-bot resend ADDRESS --workspace W`: resend the invitation by email, as the local operator.

use crate::config::Config;

use super::operator::{operator_actions, parse_target};
use super::output::report_action;
use super::{Failure, Format};

pub(super) async fn resend(
    config: &Config,
    email: &str,
    workspace: &str,
    format: Format,
) -> Result<(), Failure> {
    let (email, workspace) = parse_target(email, workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let outcome = actions
        .resend_invite(&operator, &email, &workspace, None)
        .await;
    actions.engine().store().close().await;
    report_action(actions.engine().prompts(), outcome?, format)
}
