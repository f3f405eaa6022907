//! `invite-bot escalate ADDRESS --workspace W [--note N]`: hand the case to human support.

use crate::config::Config;

use super::operator::{operator_actions, parse_target};
use super::output::report_action;
use super::{Failure, Format};

pub(super) async fn escalate(
    config: &Config,
    email: &str,
    workspace: &str,
    note: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    let (email, workspace) = parse_target(email, workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let outcome = actions.escalate(&operator, &email, &workspace, note).await;
    actions.engine().store().close().await;
    report_action(actions.engine().prompts(), outcome?, format)
}
