//! Who may run a check from chat.
//!
//! Temporary until the actions module's `Authorizer` lands: a check needs the configured support
//! role when one is configured. Actions are authorized by the engine itself on every press.

use crate::config::Config;

use super::ChatUser;

pub const CHECK_REFUSAL: &str =
    "You do not have permission to run invitation checks. Ask a support lead to give you the support role.";

#[derive(Debug, Clone)]
pub struct CheckGate {
    required_role: Option<String>,
}

impl CheckGate {
    pub fn from_config(config: &Config) -> Self {
        CheckGate {
            required_role: config.discord.support_role_id.map(|id| id.to_string()),
        }
    }

    pub fn may_check(&self, user: &ChatUser) -> bool {
        match &self.required_role {
            Some(role) => user.roles.iter().any(|r| r == role),
            None => true,
        }
    }
}
