//! Something a person can do about a verdict.

use serde::{Deserialize, Serialize};

use super::permission::Permission;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Action {
    ResendInvite,
    IssueActivationCode,
    Escalate,
}

impl Action {
    pub const ALL: [Action; 3] = [
        Action::ResendInvite,
        Action::IssueActivationCode,
        Action::Escalate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ResendInvite => "resend_invite",
            Action::IssueActivationCode => "issue_activation_code",
            Action::Escalate => "escalate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The permission an actor needs to take this action.
    pub fn permission(self) -> Permission {
        match self {
            Action::ResendInvite => Permission::ResendInvite,
            Action::IssueActivationCode => Permission::IssueActivationCode,
            Action::Escalate => Permission::Escalate,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn every_action_parses_from_its_own_name_and_serde_agrees() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
        }
        assert_eq!(Action::parse("check"), None);
    }
}
