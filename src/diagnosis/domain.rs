//! Step 4, beyond the help article: is the recipient's company mail server turning our mail away?

use serde_json::json;

use super::{Check, FindingDraft, Outcome};
use crate::domain::invitation::DomainTrouble;

/// A finding when enough other recipients at the domain had trouble; `None` otherwise.
/// Never changes the verdict.
pub fn assess(
    domain: &str,
    trouble: DomainTrouble,
    threshold: u32,
    window_days: u32,
) -> Option<FindingDraft> {
    (trouble.recipients >= i64::from(threshold)).then(|| {
        FindingDraft::new(
            Check::Domain,
            Outcome::DomainBlocking,
            json!({
                "domain": domain,
                "recipients": trouble.recipients,
                "bounced": trouble.bounced,
                "deferred": trouble.deferred,
                "complained": trouble.complained,
                "window_days": window_days,
            }),
        )
    })
}
