//! Who may do what. Every action asks [`Actor::may`] itself, at the moment it runs: who ran the check
//! that showed a button grants nothing to whoever presses it.

use std::collections::HashSet;

use crate::config::{Config, GrantConfig};
pub use crate::domain::permission::Permission;
use crate::domain::workspace::{WorkspaceScope, WorkspaceSlug};

/// One grant an actor holds: permissions, in some workspaces or all.
#[derive(Debug, Clone)]
struct Grant {
    permissions: HashSet<Permission>,
    workspaces: Option<HashSet<WorkspaceSlug>>,
}

impl Grant {
    fn from_config(config: &GrantConfig) -> Self {
        Grant {
            permissions: config.allow.iter().copied().collect(),
            workspaces: config
                .workspaces
                .as_ref()
                .map(|list| list.iter().cloned().collect()),
        }
    }

    fn covers(&self, workspace: Option<&WorkspaceSlug>) -> bool {
        match (&self.workspaces, workspace) {
            (None, _) => true,
            (Some(allowed), Some(slug)) => allowed.contains(slug),
            (Some(_), None) => false,
        }
    }
}

/// Who asked, and what they may do.
#[derive(Debug, Clone)]
pub struct Actor {
    id: String,
    name: String,
    grants: Vec<Grant>,
}

impl Actor {
    /// An actor with no permissions, for callers that need none (the activation API, whose caller is
    /// the person being activated) but still appear in the audit log.
    pub fn without_permissions(id: &str, name: &str) -> Self {
        Actor {
            id: id.to_owned(),
            name: name.to_owned(),
            grants: Vec::new(),
        }
    }

    /// A stable id for audit rows: `discord:<user id>` or `operator`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A display name for people reading replies and escalations.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// May this actor do `permission` in `workspace`? Anyone who may check may also escalate.
    pub fn may(&self, permission: Permission, workspace: &WorkspaceSlug) -> bool {
        self.allows(permission, Some(workspace))
    }

    /// May this actor do `permission` in at least one workspace (for requests that name none)?
    pub fn may_anywhere(&self, permission: Permission) -> bool {
        self.grants.iter().any(|g| {
            g.permissions.contains(&permission)
                || (permission == Permission::Escalate
                    && g.permissions.contains(&Permission::Check))
        })
    }

    /// The workspaces in which this actor may do `permission`.
    pub fn scope(&self, permission: Permission) -> WorkspaceScope {
        if self.may_everywhere(permission) {
            return WorkspaceScope::All;
        }
        let implied = |p: Permission| {
            p == permission || (permission == Permission::Escalate && p == Permission::Check)
        };
        WorkspaceScope::Only(
            self.grants
                .iter()
                .filter(|g| g.permissions.iter().any(|p| implied(*p)))
                .flat_map(|g| g.workspaces.iter().flatten().cloned())
                .collect(),
        )
    }

    /// May this actor do `permission` in every workspace (a check across all of them)?
    pub fn may_everywhere(&self, permission: Permission) -> bool {
        self.allows(permission, None)
    }

    fn allows(&self, permission: Permission, workspace: Option<&WorkspaceSlug>) -> bool {
        let implied = |p: Permission| {
            p == permission || (permission == Permission::Escalate && p == Permission::Check)
        };
        self.grants
            .iter()
            .any(|g| g.covers(workspace) && g.permissions.iter().any(|p| implied(*p)))
    }
}

/// Turns chat identities into actors, from the `[permissions]` config.
#[derive(Debug, Clone)]
pub struct Authorizer {
    grants: Vec<GrantConfig>,
    operator: Vec<Permission>,
}

impl Authorizer {
    pub fn from_config(config: &Config) -> Self {
        Authorizer {
            grants: config.permissions.grant.clone(),
            operator: config.permissions.operator.clone(),
        }
    }

    /// A chat user: the union of every grant naming the user or one of their roles.
    pub fn chat_actor(&self, user_id: &str, display_name: &str, role_ids: &[String]) -> Actor {
        let grants = self
            .grants
            .iter()
            .filter(|g| {
                g.users.iter().any(|u| u == user_id) || g.roles.iter().any(|r| role_ids.contains(r))
            })
            .map(Grant::from_config)
            .collect();
        Actor {
            id: format!("discord:{user_id}"),
            name: display_name.to_owned(),
            grants,
        }
    }

    /// The person at the terminal running the CLI or the local chat.
    pub fn operator(&self) -> Actor {
        Actor {
            id: "operator".into(),
            name: "local operator".into(),
            grants: vec![Grant {
                permissions: self.operator.iter().copied().collect(),
                workspaces: None,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorizer() -> Authorizer {
        let mut config = Config::default();
        config.permissions.grant = vec![
            GrantConfig {
                roles: vec!["agents".into()],
                allow: vec![Permission::Check],
                ..Default::default()
            },
            GrantConfig {
                users: vec!["42".into()],
                allow: vec![Permission::ResendInvite, Permission::IssueActivationCode],
                workspaces: Some(vec![WorkspaceSlug::parse("acme").unwrap()]),
                ..Default::default()
            },
        ];
        Authorizer::from_config(&config)
    }

    #[test]
    fn grants_combine_and_respect_their_scope() {
        let acme = WorkspaceSlug::parse("acme").unwrap();
        let beta = WorkspaceSlug::parse("beta").unwrap();
        let admin = authorizer().chat_actor("42", "Ada", &["agents".into()]);
        assert!(admin.may(Permission::Check, &beta));
        assert!(admin.may(Permission::ResendInvite, &acme));
        assert!(!admin.may(Permission::ResendInvite, &beta));
        assert!(admin.may_anywhere(Permission::IssueActivationCode));
        assert!(!admin.may_everywhere(Permission::IssueActivationCode));
        assert_eq!(admin.id(), "discord:42");

        let agent = authorizer().chat_actor("7", "Sam", &["agents".into()]);
        assert!(
            agent.may(Permission::Escalate, &acme),
            "who may check may escalate"
        );
        assert!(!agent.may(Permission::ResendInvite, &acme));

        let stranger = authorizer().chat_actor("8", "Eve", &["visitors".into()]);
        assert!(!stranger.may_anywhere(Permission::Check));
        assert!(!stranger.may(Permission::Escalate, &acme));
    }

    #[test]
    fn the_operator_has_what_config_says() {
        let everything = Authorizer::from_config(&Config::default()).operator();
        let acme = WorkspaceSlug::parse("acme").unwrap();
        assert!(everything.may(Permission::ResendInvite, &acme));
        let mut config = Config::default();
        config.permissions.operator = vec![Permission::Check];
        let limited = Authorizer::from_config(&config).operator();
        assert!(!limited.may(Permission::IssueActivationCode, &acme));
        assert!(limited.may(Permission::Check, &acme));
    }
}
