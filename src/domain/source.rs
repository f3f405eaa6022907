//! Where the bot's member data came from.

use serde::{Deserialize, Serialize};

/// Where member data came from: the name a card shows, and the `data_sources` row that records
/// its freshness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// `invite-bot seed` (the demo's fixtures).
    Fixtures,
    /// `invite-bot sync` and the background sync of `serve`.
    ProductDb,
    /// The invitations of the same sync: their own watermark, since they change apart from the
    /// members.
    ProductDbInvitations,
    /// `invite-bot import FILE`.
    Import,
    /// `POST /api/v1/members` and `/api/v1/invitations`.
    Push,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Fixtures => "fixtures",
            SourceKind::ProductDb => "product-db",
            SourceKind::ProductDbInvitations => "product-db-invitations",
            SourceKind::Import => "import",
            SourceKind::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "fixtures" => Some(SourceKind::Fixtures),
            "product-db" => Some(SourceKind::ProductDb),
            "product-db-invitations" => Some(SourceKind::ProductDbInvitations),
            "import" => Some(SourceKind::Import),
            "push" => Some(SourceKind::Push),
            _ => None,
        }
    }
}
