//! The queries a check runs, with the plans each database chooses for them. Tests and the benchmark
//! use this to prove that no check scans a whole table.

use chrono::{DateTime, Duration, Utc};
use sqlx::{AssertSqlSafe, Row};

use invite_bot::store::{check_queries, prefix_upper_bound, Store, StoreResult};

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
            HotQuery::MemberInWorkspace => check_queries::MEMBER_IN_WORKSPACE,
            HotQuery::MemberByWorkspaceSlug => check_queries::MEMBER_BY_SLUG,
            HotQuery::Memberships => check_queries::MEMBERSHIPS,
            HotQuery::CandidatesNear => check_queries::CANDIDATES_NEAR,
            HotQuery::DeliveryFacts => check_queries::DELIVERY_FACTS,
        }
    }
}

/// One representative parameter value.
#[derive(Debug, Clone)]
enum Sample {
    Text(String),
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl Sample {
    /// The value as a PostgreSQL literal, for `EXECUTE` (which cannot take bound parameters).
    fn literal(&self) -> String {
        match self {
            Sample::Text(text) => format!("'{}'", text.replace('\'', "''")),
            Sample::Int(n) => n.to_string(),
            Sample::Bool(b) => b.to_string(),
            Sample::Time(at) => format!("'{}'::timestamptz", at.to_rfc3339()),
        }
    }
}

/// Representative parameters for `query`, `$1` first.
fn samples(query: HotQuery) -> Vec<Sample> {
    let text = |s: &str| Sample::Text(s.to_owned());
    let key = "jane.doe@acme-corp.com";
    match query {
        HotQuery::MemberInWorkspace => vec![Sample::Int(1), text(key)],
        HotQuery::MemberByWorkspaceSlug => vec![text("acme"), text(key)],
        HotQuery::Memberships => vec![text(key)],
        HotQuery::CandidatesNear => vec![
            text("jane.doe"),
            Sample::Int(400),
            text("acme-corp.com"),
            text("jane"),
            Sample::Text(prefix_upper_bound("jane")),
            text("eod.enaj"),
            text("eod"),
            Sample::Text(prefix_upper_bound("eod")),
            Sample::Int(64),
        ],
        HotQuery::DeliveryFacts => vec![
            Sample::Int(1),
            text(key),
            Sample::Bool(true),
            text("acme-corp.com"),
            Sample::Time(Utc::now() - Duration::days(30)),
        ],
    }
}

/// The plan the database picks for `query`, one line per plan node.
pub async fn query_plan(store: &Store, query: HotQuery) -> StoreResult<Vec<String>> {
    match store {
        Store::Sqlite(pool, _) => {
            let sql = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", query.sql()));
            let mut explain = sqlx::query(sql);
            for sample in samples(query) {
                explain = match sample {
                    Sample::Text(text) => explain.bind(text),
                    Sample::Int(n) => explain.bind(n),
                    Sample::Bool(b) => explain.bind(b),
                    Sample::Time(at) => explain.bind(at),
                };
            }
            let rows = explain.fetch_all(pool).await?;
            rows.iter()
                .map(|row| row.try_get::<String, _>("detail").map_err(Into::into))
                .collect()
        }
        Store::Postgres(pool, _) => {
            // The plan the bot's connections run is the generic one (`plan_cache_mode`, see
            // `Store::connect`); a plain EXPLAIN with values would show a custom plan instead.
            // EXPLAIN EXECUTE of a statement prepared on a connection in that mode shows it.
            let mut conn = pool.acquire().await?;
            let prepare = AssertSqlSafe(format!("PREPARE invite_bot_plan AS {}", query.sql()));
            sqlx::raw_sql(prepare).execute(&mut *conn).await?;
            let values: Vec<String> = samples(query).iter().map(Sample::literal).collect();
            let explain = AssertSqlSafe(format!(
                "EXPLAIN EXECUTE invite_bot_plan({})",
                values.join(", ")
            ));
            let rows = sqlx::raw_sql(explain).fetch_all(&mut *conn).await;
            sqlx::raw_sql("DEALLOCATE invite_bot_plan")
                .execute(&mut *conn)
                .await?;
            rows?
                .iter()
                .map(|row| row.try_get::<String, _>(0).map_err(Into::into))
                .collect()
        }
    }
}
