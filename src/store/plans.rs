//! The queries a check runs, with the plans each database chooses for them. Tests and the benchmark
//! use this to prove that no check scans a whole table.

use chrono::{Duration, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{deliveries, members, prefix_upper_bound, Store, StoreResult};

/// Every query on a check's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotQuery {
    MemberInWorkspace,
    MemberByWorkspaceSlug,
    Memberships,
    CandidatesNear,
    DeliveryFacts,
}

impl HotQuery {
    pub const ALL: [HotQuery; 5] = [
        HotQuery::MemberInWorkspace,
        HotQuery::MemberByWorkspaceSlug,
        HotQuery::Memberships,
        HotQuery::CandidatesNear,
        HotQuery::DeliveryFacts,
    ];

    pub fn sql(self) -> &'static str {
        match self {
            HotQuery::MemberInWorkspace => members::MEMBER_IN_WORKSPACE,
            HotQuery::MemberByWorkspaceSlug => members::MEMBER_BY_SLUG,
            HotQuery::Memberships => members::MEMBERSHIPS,
            HotQuery::CandidatesNear => members::CANDIDATES_NEAR,
            HotQuery::DeliveryFacts => deliveries::DELIVERY_FACTS,
        }
    }
}

/// Binds representative parameters for `$query` to the sqlx query `$q`.
macro_rules! bind_samples {
    ($q:expr, $query:expr) => {{
        let key = "jane.doe@acme-corp.com";
        let upper = prefix_upper_bound("jane");
        let since = Utc::now() - Duration::days(30);
        match $query {
            HotQuery::MemberInWorkspace => $q.bind(1_i64).bind(key),
            HotQuery::MemberByWorkspaceSlug => $q.bind("acme").bind(key),
            HotQuery::Memberships => $q.bind(key),
            HotQuery::CandidatesNear => $q
                .bind("jane.doe")
                .bind(400_i64)
                .bind("acme-corp.com")
                .bind("jane")
                .bind(upper)
                .bind("eod.enaj")
                .bind("eod")
                .bind(prefix_upper_bound("eod"))
                .bind(64_i64),
            HotQuery::DeliveryFacts => $q
                .bind(1_i64)
                .bind(key)
                .bind(true)
                .bind("acme-corp.com")
                .bind(since),
        }
    }};
}

impl Store {
    /// The plan the database picks for `query`, one line per plan node.
    pub async fn query_plan(&self, query: HotQuery) -> StoreResult<Vec<String>> {
        match self {
            Store::Sqlite(pool, _) => {
                let sql = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql()));
                let rows = bind_samples!(sqlx::query(sql), query)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| row.try_get::<String, _>("detail").map_err(Into::into))
                    .collect()
            }
            Store::Postgres(pool) => {
                let sql = AssertSqlSafe(format!("EXPLAIN {}", query.sql()));
                let rows = bind_samples!(sqlx::query(sql), query)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| row.try_get::<String, _>(0).map_err(Into::into))
                    .collect()
            }
        }
    }
}
