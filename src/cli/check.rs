//! `invite-bot check ADDRESS [--workspace W]`: why an invitation did not arrive.

use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::error::UserError;

use super::operator::{operator_actions, parse_workspace};
use super::output::print_diagnoses;
use super::{Failure, Format};

pub(super) async fn check(
    config: &Config,
    email: &str,
    workspace: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    // Input is checked before any connection is made: a typo should not wait on a database.
    let email = EmailAddress::parse(email).map_err(UserError::from)?;
    let workspace = parse_workspace(workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let diagnoses = actions
        .check_as(&operator, &email, workspace.as_ref())
        .await?;
    print_diagnoses(actions.engine().prompts(), &diagnoses, format)?;
    actions.engine().store().close().await;
    Ok(())
}
