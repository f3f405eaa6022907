//! The last line of every card: where the member data came from and how old it is, with a
//! warning when the product's database has not been synced for too long.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{Check, FindingDraft, Outcome};
use crate::domain::source::SourceKind;

/// What the engine read about the data a check was answered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOrigin {
    pub source: SourceKind,
    /// When the data was last written or confirmed (`None`: never, or not known).
    pub as_of: Option<DateTime<Utc>>,
    /// The product's database could not be read the last time the sync tried.
    pub sync_failing: bool,
}

/// Only a sync can fall behind: pushed, imported and seeded data are as new as their last write,
/// and the card says how old that is.
pub fn assess(origin: &DataOrigin, now: DateTime<Utc>, stale_after: Duration) -> FindingDraft {
    let stale = origin.source == SourceKind::ProductDb
        && origin.as_of.is_none_or(|at| now - at > stale_after);
    let outcome = if stale {
        Outcome::DataStale
    } else {
        Outcome::DataAge
    };
    FindingDraft::new(
        Check::Data,
        outcome,
        json!({
            "source": origin.source.as_str(),
            "as_of": origin.as_of.map(|at| at.to_rfc3339()),
            "stale_after_seconds": stale_after.num_seconds(),
            "sync_failing": origin.sync_failing,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(source: SourceKind, age_seconds: Option<i64>, now: DateTime<Utc>) -> DataOrigin {
        DataOrigin {
            source,
            as_of: age_seconds.map(|s| now - Duration::seconds(s)),
            sync_failing: false,
        }
    }

    #[test]
    fn a_sync_older_than_the_limit_is_stale_and_other_sources_never_are() {
        let now = Utc::now();
        let limit = Duration::seconds(600);
        let outcome = |source, age| assess(&origin(source, age, now), now, limit).outcome;
        assert_eq!(outcome(SourceKind::ProductDb, Some(40)), Outcome::DataAge);
        assert_eq!(
            outcome(SourceKind::ProductDb, Some(601)),
            Outcome::DataStale
        );
        assert_eq!(outcome(SourceKind::ProductDb, None), Outcome::DataStale);
        assert_eq!(outcome(SourceKind::Push, Some(86_400)), Outcome::DataAge);
        assert_eq!(outcome(SourceKind::Fixtures, None), Outcome::DataAge);
        let facts = assess(&origin(SourceKind::Import, Some(5), now), now, limit).facts;
        assert_eq!(facts["source"], "import");
        assert_eq!(facts["stale_after_seconds"], 600);
    }
}
