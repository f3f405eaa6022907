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
        f.pad(self.as_str())
    }
}

/// What pressing a button does: a check, or one of the actions. Stored with the button's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum ButtonAction {
    Check,
    ResendInvite,
    IssueActivationCode,
    Escalate,
}

impl ButtonAction {
    pub const ALL: [ButtonAction; 4] = [
        ButtonAction::Check,
        ButtonAction::ResendInvite,
        ButtonAction::IssueActivationCode,
        ButtonAction::Escalate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ButtonAction::Check => "check",
            ButtonAction::ResendInvite => "resend_invite",
            ButtonAction::IssueActivationCode => "issue_activation_code",
            ButtonAction::Escalate => "escalate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl From<Action> for ButtonAction {
    fn from(action: Action) -> Self {
        match action {
            Action::ResendInvite => ButtonAction::ResendInvite,
            Action::IssueActivationCode => ButtonAction::IssueActivationCode,
            Action::Escalate => ButtonAction::Escalate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, ButtonAction};

    #[test]
    fn every_action_parses_from_its_own_name_and_serde_agrees() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            let json = serde_json::to_string(&action).unwrap();
            assert_eq!(json, format!("\"{}\"", action.as_str()));
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
        }
        assert_eq!(Action::parse("check"), None);
    }

    #[test]
    fn every_button_action_parses_from_its_own_name_and_serde_agrees() {
        for button in ButtonAction::ALL {
            assert_eq!(ButtonAction::parse(button.as_str()), Some(button));
            let json = serde_json::to_string(&button).unwrap();
            assert_eq!(json, format!("\"{}\"", button.as_str()));
            assert_eq!(serde_json::from_str::<ButtonAction>(&json).unwrap(), button);
        }
        for action in Action::ALL {
            assert_eq!(ButtonAction::from(action).as_str(), action.as_str());
        }
        assert_eq!(ButtonAction::parse("redeem"), None);
    }
}
