//! The local operator: the actions service it acts through, and the member it names.

use crate::actions::{Actions, Actor, Authorizer};
use crate::app::startup;
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::UserError;

use super::Failure;

/// The actions service and the local operator, for the action commands.
pub(super) async fn operator_actions(config: &Config) -> Result<(Actions, Actor), Failure> {
    let actions = startup::build(config).await?;
    Ok((actions, Authorizer::from_config(config).operator()))
}

/// An address and a workspace, parsed before any connection is made: a typo should not wait on a
/// database.
pub(super) fn parse_target(
    email: &str,
    workspace: &str,
) -> Result<(EmailAddress, WorkspaceSlug), Failure> {
    let email = EmailAddress::parse(email).map_err(UserError::from)?;
    let workspace = WorkspaceSlug::parse(workspace).map_err(UserError::from)?;
    Ok((email, workspace))
}

/// An optional `--workspace`, parsed the same way.
pub(super) fn parse_workspace(workspace: Option<&str>) -> Result<Option<WorkspaceSlug>, Failure> {
    Ok(workspace
        .map(WorkspaceSlug::parse)
        .transpose()
        .map_err(UserError::from)?)
}
