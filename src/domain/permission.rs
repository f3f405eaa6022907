//! What a person may be allowed to do; granted in config, asked at the moment an action runs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Check,
    ResendInvite,
    IssueActivationCode,
    Escalate,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::Check,
        Permission::ResendInvite,
        Permission::IssueActivationCode,
        Permission::Escalate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Check => "check",
            Permission::ResendInvite => "resend_invite",
            Permission::IssueActivationCode => "issue_activation_code",
            Permission::Escalate => "escalate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::Permission;

    #[test]
    fn every_permission_parses_from_its_own_name_and_serde_agrees() {
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.as_str()), Some(permission));
            let json = serde_json::to_string(&permission).unwrap();
            assert_eq!(json, format!("\"{}\"", permission.as_str()));
            assert_eq!(
                serde_json::from_str::<Permission>(&json).unwrap(),
                permission
            );
        }
        assert_eq!(Permission::parse("resend"), None);
    }
}
