//! A fresh, empty database for each test, on the backend it asks for.
//!
//! SQLite runs everywhere (a file in a temporary directory). PostgreSQL runs when
//! `TEST_DATABASE_URL` points at a server (`.ci/run` sets it): each test creates a uniquely named
//! database there and drops it afterwards. With `INVITE_BOT_REQUIRE_POSTGRES=1` (also set by
//! `.ci/run`) a missing server fails the test instead of skipping it.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An empty database for one test; dropping it removes it.
pub struct FreshDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a fresh thread may block on its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// The admin URL of the test PostgreSQL server, or `None` when tests should skip PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("INVITE_BOT_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("INVITE_BOT_REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set");
            }
            eprintln!("skipping PostgreSQL: set TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres");
            None
        }
    }
}

/// A fresh, empty database for `backend`; `None` when PostgreSQL is not configured for tests.
pub async fn fresh_database(backend: Backend) -> Option<FreshDatabase> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            Some(FreshDatabase {
                url,
                _dir: Some(dir),
                _postgres: None,
            })
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url()?;
            let name = format!("invite_bot_test_{}", random_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("cannot reach TEST_DATABASE_URL: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
            let url = replace_database(&admin_url, &name);
            Some(FreshDatabase {
                url,
                _dir: None,
                _postgres: Some(PostgresDatabase { admin_url, name }),
            })
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.gen_range(0..26)))
        .collect()
}
