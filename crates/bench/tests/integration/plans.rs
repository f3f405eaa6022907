//! Query plans: every query on a check's path is an index look-up, on both backends. Exact look-ups
//! by normalized address must use their btree index (a trigram index on the whole address could
//! otherwise win on PostgreSQL and make them ~100x slower).

use invite_bot::store::Store;
use invite_bot_bench::plans::{query_plan, HotQuery};

use crate::helpers::both_backends;

const POSTGRES_BULK: &str = r#"
INSERT INTO workspaces (slug, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, local_rev, role, status)
SELECT 1 + (i % 2), 'user' || i || '@d' || (i % 500) || '.example', 'user' || i || '@d' || (i % 500) || '.example',
       'user' || i, 'd' || (i % 500) || '.example', reverse('user' || i), 'learner', 'invited'
FROM generate_series(1, 20000) AS i;
INSERT INTO invitations (member_id, sent_at, expires_at, message_id)
SELECT id, now() - interval '1 day', now() + interval '6 days', 'm' || id FROM members;
INSERT INTO delivery_events (event_key, invitation_id, message_id, recipient_key, recipient_domain, event, at)
SELECT 'e' || i.id, i.id, i.message_id, m.email_key, m.domain_key, 'delivered', now()
FROM invitations i JOIN members m ON m.id = i.member_id;
INSERT INTO suppressions (email_key, reason, at) SELECT email_key, 'manual', now() FROM members WHERE id % 2 = 0;
ANALYZE;
"#;

const SQLITE_BULK: &str = r#"
INSERT INTO workspaces (slug, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 20000)
INSERT INTO members (workspace_id, email, email_key, local_key, domain_key, local_rev, role, status)
SELECT 1 + (i % 2), 'user' || i || '@d' || (i % 500) || '.example', 'user' || i || '@d' || (i % 500) || '.example',
       'user' || i, 'd' || (i % 500) || '.example', i || 'resu', 'learner', 'invited' FROM seq;
INSERT INTO invitations (member_id, sent_at, expires_at, message_id)
SELECT id, '2026-11-01T00:00:00+00:00', '2026-11-08T00:00:00+00:00', 'm' || id FROM members;
INSERT INTO delivery_events (event_key, invitation_id, message_id, recipient_key, recipient_domain, event, at)
SELECT 'e' || i.id, i.id, i.message_id, m.email_key, m.domain_key, 'delivered', '2026-11-02T00:00:00+00:00'
FROM invitations i JOIN members m ON m.id = i.member_id;
INSERT INTO suppressions (email_key, reason, at)
SELECT email_key, 'manual', '2026-11-02T00:00:00+00:00' FROM members WHERE id % 2 = 0;
ANALYZE;
"#;

async fn load_bulk(store: &Store) {
    match store {
        Store::Sqlite(pool, _) => sqlx::raw_sql(SQLITE_BULK)
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap(),
        Store::Postgres(pool, _) => sqlx::raw_sql(POSTGRES_BULK)
            .execute(pool)
            .await
            .map(|_| ())
            .unwrap(),
    }
}

/// The plan of `query`, with the assertion that no table that grows with members is scanned whole.
/// (Workspaces are few; scanning them to join is the planner's right call.)
async fn plan_without_full_scan(store: &Store, query: HotQuery) -> String {
    let lines = query_plan(store, query).await.unwrap();
    let plan = lines.join("\n");
    // SQLite also "scans" the small results of a query's own subqueries (co-routines); the SEARCH
    // lines inside them are what reads the tables.
    let subqueries: Vec<&str> = lines
        .iter()
        .filter_map(|line| {
            let line = line.trim();
            line.strip_prefix("CO-ROUTINE ")
                .or_else(|| line.strip_prefix("MATERIALIZE "))
        })
        .map(|name| name.split_whitespace().next().unwrap_or(name))
        .collect();
    for line in &lines {
        let line = line.trim_start_matches([' ', '-', '>']).trim();
        let full_scan_of = match store {
            Store::Postgres(..) => line.split("Seq Scan on ").nth(1),
            // SQLite says "SCAN t" for a full scan and "SEARCH t USING INDEX" for a look-up.
            Store::Sqlite(_, _) => line
                .strip_prefix("SCAN ")
                .filter(|rest| !rest.contains("USING")),
        };
        if let Some(table) = full_scan_of.and_then(|rest| rest.split_whitespace().next()) {
            let subquery = subqueries.contains(&table);
            assert!(
                matches!(table, "workspaces" | "w") || subquery,
                "{query:?} scans {table} whole:\n{plan}"
            );
        }
    }
    plan
}

both_backends! {
    async fn no_check_query_scans_a_table(store) {
        load_bulk(&store).await;
        for query in HotQuery::ALL {
            plan_without_full_scan(&store, query).await;
        }
    }

    async fn exact_lookups_use_their_btree_index(store) {
        load_bulk(&store).await;
        let store = &store;
        for query in [HotQuery::MemberInWorkspace, HotQuery::Memberships] {
            let plan = plan_without_full_scan(store, query).await;
            assert!(plan.contains("members_email_key"), "{query:?}:\n{plan}");
            if let Store::Postgres(_, _) = store {
                assert!(plan.contains("Index Scan using members_email_key"), "{query:?}:\n{plan}");
                // The generic plan, the one the bot's connections run: the key stays a parameter.
                assert!(plan.contains("(email_key = $"), "{query:?}:\n{plan}");
                assert!(!plan.contains("Bitmap"), "an exact look-up needs no bitmap:\n{plan}");
            }
        }
    }

    async fn postgres_connections_keep_one_generic_plan_per_statement(store) {
        // Custom plans would re-plan the compound check statements at every call (see Store::connect).
        if let Store::Postgres(pool, _) = &store {
            let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(pool).await.unwrap();
            assert_eq!(mode, "force_generic_plan");
        }
    }
}
