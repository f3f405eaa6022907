//! Builds the bench database, or reuses it when it already holds the same synthetic workspace.
//!
//! Seeding is all or nothing: members, invitations, delivery events and suppressions are written in
//! one transaction together with the `bench_meta` row that marks the database as seeded, so an
//! interrupted run leaves nothing half-written and the next run starts over. Members go in large
//! batches (PostgreSQL: one `UNNEST` of column arrays per 10,000 rows; SQLite: multi-row `VALUES`);
//! invitations and delivery events are derived from the members in SQL, server-side.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlx::{ConnectOptions, Connection, QueryBuilder};

use super::generate::{MemberGenerator, SyntheticMember};
use super::BenchError;
use invite_bot::store::Store;

/// Bumped whenever the generator changes what it produces, so old bench databases are rebuilt.
const GENERATOR_VERSION: u32 = 2;
const POSTGRES_BATCH: usize = 10_000;
/// 10 columns a row; SQLite allows 32,766 bound variables a statement.
const SQLITE_BATCH: usize = 3_000;

/// The parameters a bench database is built from; equal parameters mean an equal database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedParameters {
    pub members: u64,
    pub workspaces: u32,
}

impl SeedParameters {
    /// The marker stored in `bench_meta`.
    pub fn marker(&self) -> String {
        format!(
            "members={};workspaces={};generator={GENERATOR_VERSION}",
            self.members, self.workspaces
        )
    }
}

/// The slug of the bench's `i`-th workspace (0-based).
pub fn workspace_slug(i: usize) -> String {
    format!("bench-{}", i + 1)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seeding {
    Reused,
    Seeded { seconds: f64 },
}

const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS bench_meta (\
     parameters TEXT PRIMARY KEY, members BIGINT NOT NULL, seeded_at TEXT NOT NULL)";

/// Inserts the bench's workspaces in the open transaction `$tx`; evaluates to their ids in order.
macro_rules! insert_workspaces {
    ($tx:expr, $count:expr) => {{
        let mut ids: Vec<i64> = Vec::with_capacity($count as usize);
        for i in 0..$count as usize {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO workspaces (slug, name) VALUES ($1, $2) RETURNING id",
            )
            .bind(workspace_slug(i))
            .bind(format!("Bench workspace {}", i + 1))
            .fetch_one(&mut *$tx)
            .await
            .map_err(BenchError::seed)?;
            ids.push(id);
        }
        ids
    }};
}

/// Marks the database as seeded with `$marker`, in the same transaction as the data.
macro_rules! insert_meta {
    ($tx:expr, $marker:expr, $members:expr, $now:expr) => {
        sqlx::query("INSERT INTO bench_meta (parameters, members, seeded_at) VALUES ($1, $2, $3)")
            .bind($marker.as_str())
            .bind($members as i64)
            .bind($now.to_rfc3339())
            .execute(&mut *$tx)
            .await
            .map_err(BenchError::seed)?
    };
}

/// Makes sure the database holds the workspace described by `parameters`.
pub async fn ensure_seeded(
    store: &Store,
    parameters: SeedParameters,
    now: DateTime<Utc>,
) -> Result<Seeding, BenchError> {
    let marker = parameters.marker();
    let (existing, workspaces): (Option<String>, i64) = on_backend!(store, pool => {
        sqlx::query(CREATE_META).execute(pool).await.map_err(BenchError::seed)?;
        let existing = sqlx::query_scalar("SELECT parameters FROM bench_meta LIMIT 1")
            .fetch_optional(pool)
            .await
            .map_err(BenchError::seed)?;
        let workspaces = sqlx::query_scalar("SELECT COUNT(*) FROM workspaces")
            .fetch_one(pool)
            .await
            .map_err(BenchError::seed)?;
        (existing, workspaces)
    });
    match existing {
        Some(found) if found == marker => return Ok(Seeding::Reused),
        // Data without a bench marker is somebody's real data: never overwrite it.
        None if workspaces > 0 => return Err(BenchError::NotABenchDatabase),
        _ => {}
    }
    let started = std::time::Instant::now();
    let mut generator = MemberGenerator::new(
        StdRng::seed_from_u64(0x01b7_eb07),
        parameters.members,
        parameters.workspaces as usize,
        now,
    );
    match store {
        Store::Postgres(pool, _) => {
            // Its own connection, without sqlx's slow-statement warnings: seeding statements are
            // slow by design.
            let options = (*pool.connect_options())
                .clone()
                .disable_statement_logging();
            let mut conn = sqlx::PgConnection::connect_with(&options)
                .await
                .map_err(BenchError::seed)?;
            let mut tx = conn.begin().await.map_err(BenchError::seed)?;
            // Only bench data is here (checked above): clearing it is safe and much faster than DELETE.
            sqlx::query(
                "TRUNCATE bench_meta, suppressions, delivery_events, invitations, members, workspaces \
                 RESTART IDENTITY CASCADE",
            )
            .execute(&mut *tx)
            .await
            .map_err(BenchError::seed)?;
            let workspace_ids = insert_workspaces!(tx, parameters.workspaces);
            let mut remaining = parameters.members;
            while remaining > 0 {
                let n = remaining.min(POSTGRES_BATCH as u64) as usize;
                let batch: Vec<SyntheticMember> = (0..n).map(|_| generator.next_member()).collect();
                insert_members_postgres(&mut tx, &workspace_ids, &batch).await?;
                remaining -= n as u64;
            }
            drop(generator);
            // Migration 0012's triggers would rewrite every member once per derived statement,
            // in one transaction whose old row versions cannot be pruned: over a million members
            // the events' statement ran past the 30-minute deadline. They are off for the bulk
            // statements (in this transaction only) and the members are brought up to date once
            // at the end, by the same function the triggers call.
            for sql in [
                "ALTER TABLE invitations DISABLE TRIGGER USER",
                "ALTER TABLE delivery_events DISABLE TRIGGER USER",
            ]
            .iter()
            .chain(POSTGRES_DERIVED)
            .chain(&[
                "ALTER TABLE invitations ENABLE TRIGGER USER",
                "ALTER TABLE delivery_events ENABLE TRIGGER USER",
                "SELECT members_refresh_latest(ARRAY(SELECT id FROM members))",
            ]) {
                sqlx::query(*sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(BenchError::seed)?;
            }
            insert_meta!(tx, marker, parameters.members, now);
            tx.commit().await.map_err(BenchError::seed)?;
            // What autovacuum does to a real deployment's tables soon after a bulk write: the
            // statistics, and the visibility map that lets the report count from its index alone
            // (the triggers of migration 0012 rewrote every member row while seeding).
            sqlx::query("VACUUM ANALYZE")
                .execute(&mut conn)
                .await
                .map_err(BenchError::seed)?;
            let _ = conn.close().await;
        }
        Store::Sqlite(pool, _) => {
            let options = (*pool.connect_options())
                .clone()
                .disable_statement_logging();
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(BenchError::seed)?;
            // Only this bench database, only on this seeding connection: a crash could corrupt it,
            // and then the marker is missing and the next run rebuilds it anyway.
            sqlx::query("PRAGMA synchronous = OFF")
                .execute(&mut conn)
                .await
                .map_err(BenchError::seed)?;
            sqlx::query("PRAGMA cache_size = -131072")
                .execute(&mut conn)
                .await
                .map_err(BenchError::seed)?;
            let mut tx = conn.begin().await.map_err(BenchError::seed)?;
            for table in [
                "bench_meta",
                "suppressions",
                "delivery_events",
                "invitations",
                "members",
                "workspaces",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                    .execute(&mut *tx)
                    .await
                    .map_err(BenchError::seed)?;
            }
            let workspace_ids = insert_workspaces!(tx, parameters.workspaces);
            let mut remaining = parameters.members;
            while remaining > 0 {
                let n = remaining.min(SQLITE_BATCH as u64) as usize;
                let batch: Vec<SyntheticMember> = (0..n).map(|_| generator.next_member()).collect();
                insert_members_sqlite(&mut tx, &workspace_ids, &batch).await?;
                remaining -= n as u64;
            }
            drop(generator);
            for sql in SQLITE_DERIVED {
                sqlx::query(*sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(BenchError::seed)?;
            }
            insert_meta!(tx, marker, parameters.members, now);
            tx.commit().await.map_err(BenchError::seed)?;
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .map_err(BenchError::seed)?;
            // The relaxed pragmas end with this connection; the pool's connections never had them.
            let _ = conn.close().await;
        }
    }
    Ok(Seeding::Seeded {
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn insert_members_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    workspace_ids: &[i64],
    batch: &[SyntheticMember],
) -> Result<(), BenchError> {
    let column = |f: fn(&SyntheticMember) -> &str| -> Vec<&str> { batch.iter().map(f).collect() };
    let workspaces: Vec<i64> = batch.iter().map(|m| workspace_ids[m.workspace]).collect();
    let invited: Vec<DateTime<Utc>> = batch.iter().map(|m| m.invited_at).collect();
    let activated: Vec<Option<DateTime<Utc>>> = batch.iter().map(|m| m.activated_at).collect();
    sqlx::query(
        "INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, local_rev, \
             role, status, invited_at, activated_at) \
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[])",
    )
    .bind(workspaces)
    .bind(column(|m| &m.email))
    .bind(column(|m| &m.email_key))
    .bind(column(|m| &m.local_key))
    .bind(column(|m| &m.domain_key))
    .bind(column(|m| &m.local_rev))
    .bind(column(|m| m.role.as_str()))
    .bind(column(|m| m.status.as_str()))
    .bind(invited)
    .bind(activated)
    .execute(&mut **tx)
    .await
    .map_err(BenchError::seed)?;
    Ok(())
}

async fn insert_members_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    workspace_ids: &[i64],
    batch: &[SyntheticMember],
) -> Result<(), BenchError> {
    let mut query = QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, local_rev, \
             role, status, invited_at, activated_at) ",
    );
    query.push_values(batch, |mut row, m| {
        row.push_bind(workspace_ids[m.workspace])
            .push_bind(m.email.as_str())
            .push_bind(m.email_key.as_str())
            .push_bind(m.local_key.as_str())
            .push_bind(m.domain_key.as_str())
            .push_bind(m.local_rev.as_str())
            .push_bind(m.role.as_str())
            .push_bind(m.status.as_str())
            .push_bind(m.invited_at)
            .push_bind(m.activated_at);
    });
    query
        .build()
        .execute(&mut **tx)
        .await
        .map_err(BenchError::seed)?;
    Ok(())
}

// Proportions, from the member id scattered by a multiplicative hash: every member was invited;
// 8% were invited twice (a resend). Of the latest invitations: 90% delivered, 4% deferred,
// 3% hard-bounced, 0.5% marked as spam, 2.5% with no outcome yet. Bounces and complaints put the
// address on the suppression list, as the mail provider would.
const POSTGRES_DERIVED: &[&str] = &[
    "INSERT INTO invitations (member_id, sent_at, expires_at, message_id) \
     SELECT id, invited_at, invited_at + interval '7 days', 'bench.' || id || '.1' FROM members",
    "INSERT INTO invitations (member_id, sent_at, expires_at, message_id) \
     SELECT id, invited_at + interval '8 days', invited_at + interval '15 days', 'bench.' || id || '.2' \
     FROM members WHERE (id * 2654435761) % 100 < 8",
    "INSERT INTO delivery_events (event_key, invitation_id, message_id, recipient_key, \
         recipient_domain, event, bounce_kind, at) \
     SELECT 'bench:' || i.id, i.id, i.message_id, m.email_key, m.domain_key, \
            CASE WHEN i.b < 900 THEN 'delivered' WHEN i.b < 940 THEN 'deferred' \
                 WHEN i.b < 970 THEN 'bounced' ELSE 'spam_complaint' END, \
            CASE WHEN i.b >= 940 AND i.b < 970 THEN 'hard' END, \
            i.sent_at + interval '2 minutes' \
     FROM (SELECT id, member_id, message_id, sent_at, (id * 40503) % 1000 AS b FROM invitations) i \
     JOIN members m ON m.id = i.member_id WHERE i.b < 975",
    "INSERT INTO suppressions (email_key, reason, at) \
     SELECT recipient_key, CASE WHEN event = 'bounced' THEN 'hard_bounce' ELSE 'spam_complaint' END, MAX(at) \
     FROM delivery_events WHERE event IN ('bounced', 'spam_complaint') GROUP BY 1, 2",
];

const SQLITE_DERIVED: &[&str] = &[
    "INSERT INTO invitations (member_id, sent_at, expires_at, message_id) \
     SELECT id, invited_at, strftime('%Y-%m-%dT%H:%M:%S+00:00', invited_at, '+7 days'), \
            'bench.' || id || '.1' FROM members",
    "INSERT INTO invitations (member_id, sent_at, expires_at, message_id) \
     SELECT id, strftime('%Y-%m-%dT%H:%M:%S+00:00', invited_at, '+8 days'), \
            strftime('%Y-%m-%dT%H:%M:%S+00:00', invited_at, '+15 days'), 'bench.' || id || '.2' \
     FROM members WHERE (id * 2654435761) % 100 < 8",
    "INSERT INTO delivery_events (event_key, invitation_id, message_id, recipient_key, \
         recipient_domain, event, bounce_kind, at) \
     SELECT 'bench:' || i.id, i.id, i.message_id, m.email_key, m.domain_key, \
            CASE WHEN i.b < 900 THEN 'delivered' WHEN i.b < 940 THEN 'deferred' \
                 WHEN i.b < 970 THEN 'bounced' ELSE 'spam_complaint' END, \
            CASE WHEN i.b >= 940 AND i.b < 970 THEN 'hard' END, \
            strftime('%Y-%m-%dT%H:%M:%S+00:00', i.sent_at, '+2 minutes') \
     FROM (SELECT id, member_id, message_id, sent_at, (id * 40503) % 1000 AS b FROM invitations) i \
     JOIN members m ON m.id = i.member_id WHERE i.b < 975",
    "INSERT INTO suppressions (email_key, reason, at) \
     SELECT recipient_key, CASE WHEN event = 'bounced' THEN 'hard_bounce' ELSE 'spam_complaint' END, MAX(at) \
     FROM delivery_events WHERE event IN ('bounced', 'spam_complaint') GROUP BY 1, 2",
];
