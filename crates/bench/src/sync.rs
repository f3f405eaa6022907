//! `invite-bot-bench --sync`: issue 12's numbers. A product database with a schema unlike the bot's
//! (`users`, `teams`, `team_users` with integer role and status codes, a soft delete and an index on
//! `updated_at`) is created and filled server-side on PostgreSQL and on MariaDB; then `invite-bot
//! sync` runs as a child process into a fresh PostgreSQL store: the first sync of every member, then
//! an incremental sync of 10,000 changed rows. Each row reports the wall time and the child's peak
//! RSS (`VmHWM`, sampled until it exits). Every database the run created is dropped afterwards,
//! however the run ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{ConnectOptions, Connection};

use crate::child::{proc_status_kb, tail, Bot, TempDir};
use crate::discord::RUN_AS_BOT;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const DEFAULT_MARIADB_URL: &str = "mysql://root@127.0.0.1:3306";

/// Issue 12's targets (at 1,000,000 members).
const FIRST_POSTGRES_SECONDS: f64 = 60.0;
const FIRST_MARIADB_SECONDS: f64 = 90.0;
const INCREMENTAL_SECONDS: f64 = 2.0;
const PEAK_RSS_MB: f64 = 150.0;
/// Rows changed before the incremental sync (fewer when the product holds fewer).
const CHANGED: u64 = 10_000;
const TEAMS: u64 = 20;

#[derive(Debug, Clone)]
pub struct SyncBenchOptions {
    /// Members in the product.
    pub rows: u64,
    /// A PostgreSQL server (any database on it): the product's and the bot's databases are created there.
    pub postgres_url: String,
    /// A MariaDB/MySQL server; `None` leaves MariaDB out.
    pub mariadb_url: Option<String>,
    /// The bot's binary (see [`RUN_AS_BOT`]); None: the running executable.
    pub bot_exe: Option<PathBuf>,
    /// Longest a single `invite-bot sync` may take before it is killed.
    pub timeout: Duration,
}

impl Default for SyncBenchOptions {
    fn default() -> Self {
        SyncBenchOptions {
            rows: 1_000_000,
            postgres_url: DEFAULT_POSTGRES_URL.to_owned(),
            mariadb_url: Some(DEFAULT_MARIADB_URL.to_owned()),
            bot_exe: None,
            timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncBenchError {
    #[error("--sync-rows must be at least 1")]
    NoRows,
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Database { what: String, message: String },
    #[error("invite-bot sync ({what}) failed ({status}); its output ends:\n{log}")]
    SyncFailed {
        what: String,
        status: String,
        log: String,
    },
    #[error(
        "invite-bot sync ({what}) read {read} rows, {expected} expected; its output:\n{output}"
    )]
    WrongCount {
        what: String,
        read: u64,
        expected: u64,
        output: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SyncBenchError {
    let what = what.into();
    move |source| SyncBenchError::Io { what, source }
}

fn db(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> SyncBenchError {
    let what = what.into();
    move |error| SyncBenchError::Database {
        what,
        message: error.to_string(),
    }
}

/// One measured run of `invite-bot sync`.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRow {
    /// `first sync` or `incremental`.
    pub scenario: String,
    /// `PostgreSQL` or `MariaDB`: the product's database.
    pub source: String,
    /// `PostgreSQL`: the bot's store.
    pub store: String,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub peak_rss_mb: f64,
    pub target_seconds: f64,
    pub target_rss_mb: f64,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncBenchReport {
    pub members: u64,
    pub changed: u64,
    pub rows: Vec<SyncRow>,
}

impl SyncBenchReport {
    pub fn all_pass(&self) -> bool {
        self.rows.iter().all(|row| row.pass)
    }

    /// The table `invite-bot-bench --sync` prints.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "Sync scenario: invite-bot sync of {} members (then {} changed) into a PostgreSQL store\n",
            self.members, self.changed
        );
        text.push_str(&format!(
            "{:<12}  {:<10}  {:>9}  {:>8}  {:>9}  {:>11}  {:<16}  {}\n",
            "scenario", "source", "rows", "seconds", "rows/s", "peak RSS MB", "target", "pass"
        ));
        for row in &self.rows {
            text.push_str(&format!(
                "{:<12}  {:<10}  {:>9}  {:>8.2}  {:>9.0}  {:>11.1}  {:<16}  {}\n",
                row.scenario,
                row.source,
                row.rows,
                row.seconds,
                row.rows_per_second,
                row.peak_rss_mb,
                format!("< {} s, < {} MB", row.target_seconds, row.target_rss_mb),
                if row.pass { "yes" } else { "NO" },
            ));
        }
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    Postgres,
    MariaDb,
}

impl Product {
    fn name(self) -> &'static str {
        match self {
            Product::Postgres => "PostgreSQL",
            Product::MariaDb => "MariaDB",
        }
    }

    fn first_target(self) -> f64 {
        match self {
            Product::Postgres => FIRST_POSTGRES_SECONDS,
            Product::MariaDb => FIRST_MARIADB_SECONDS,
        }
    }
}

/// The scenario's members query: its filter is on the indexed `team_users.updated_at`, so a page
/// after the watermark reads only the rows after it, in index order.
const POSTGRES_QUERY: &str = "\
SELECT t.slug AS workspace, t.title AS workspace_name, u.email,
       tu.role_code AS role, tu.status_code AS status, tu.invited_at, tu.activated_at,
       tu.updated_at, tu.deleted_at IS NOT NULL AS deleted
FROM team_users tu JOIN users u ON u.id = tu.user_id JOIN teams t ON t.id = tu.team_id
WHERE tu.updated_at >= $1";

const MARIADB_QUERY: &str = "\
SELECT t.slug AS workspace, t.title AS workspace_name, u.email,
       tu.role_code AS role, tu.status_code AS status, tu.invited_at, tu.activated_at,
       tu.updated_at, tu.is_deleted AS deleted
FROM team_users tu JOIN users u ON u.id = tu.user_id JOIN teams t ON t.id = tu.team_id
WHERE tu.updated_at >= ?";

/// `server` with its path replaced by `/database` (query string kept).
pub(crate) fn with_database(server: &str, database: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &base[..host_end])
}

/// A database name of this run: `invite_bot_bench_<what>_<pid>_<nanos>`.
pub(crate) fn scratch_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("invite_bot_bench_{what}_{}_{nanos}", std::process::id())
}

/// A connection that does not log its slow statements: filling and dropping are slow on purpose.
async fn pg_connect(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    options
        .log_slow_statements(tracing::log::LevelFilter::Off, Duration::ZERO)
        .log_statements(tracing::log::LevelFilter::Off)
        .connect()
        .await
}

async fn mariadb_connect(url: &str) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    let options: sqlx::mysql::MySqlConnectOptions = url.parse()?;
    options
        .log_slow_statements(tracing::log::LevelFilter::Off, Duration::ZERO)
        .log_statements(tracing::log::LevelFilter::Off)
        .connect()
        .await
}

/// The databases created so far, dropped by [`Scratch::drop_all`].
#[derive(Default)]
struct Scratch {
    postgres: Vec<String>,
    mariadb: Vec<String>,
}

impl Scratch {
    async fn create_postgres(
        &mut self,
        server: &str,
        what: &str,
    ) -> Result<String, SyncBenchError> {
        let name = scratch_name(what);
        let mut admin = pg_connect(server)
            .await
            .map_err(db(format!("connect to PostgreSQL at {server}")))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(db(format!("create the database {name}")))?;
        self.postgres.push(name.clone());
        let _ = admin.close().await;
        Ok(with_database(server, &name))
    }

    async fn create_mariadb(&mut self, server: &str, what: &str) -> Result<String, SyncBenchError> {
        let name = scratch_name(what);
        let mut admin = mariadb_connect(server)
            .await
            .map_err(db(format!("connect to MariaDB at {server}")))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(db(format!("create the database {name}")))?;
        self.mariadb.push(name.clone());
        let _ = admin.close().await;
        Ok(with_database(server, &name))
    }

    async fn drop_all(&mut self, postgres: &str, mariadb: Option<&str>) {
        if !self.postgres.is_empty() {
            if let Ok(mut admin) = pg_connect(postgres).await {
                for name in self.postgres.drain(..) {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                    {
                        tracing::warn!(%error, database = %name, "cannot drop a bench database");
                    }
                }
                let _ = admin.close().await;
            }
        }
        if let (false, Some(server)) = (self.mariadb.is_empty(), mariadb) {
            if let Ok(mut admin) = mariadb_connect(server).await {
                for name in self.mariadb.drain(..) {
                    let sql = format!("DROP DATABASE IF EXISTS {name}");
                    if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                    {
                        tracing::warn!(%error, database = %name, "cannot drop a bench database");
                    }
                }
                let _ = admin.close().await;
            }
        }
    }
}

async fn execute_pg(url: &str, statements: &[String]) -> Result<(), SyncBenchError> {
    let mut conn = pg_connect(url)
        .await
        .map_err(db("connect to the product (PostgreSQL)"))?;
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .map_err(db(format!("product (PostgreSQL): {}", first_line(sql))))?;
    }
    let _ = conn.close().await;
    Ok(())
}

async fn execute_mariadb(url: &str, statements: &[String]) -> Result<(), SyncBenchError> {
    let mut conn = mariadb_connect(url)
        .await
        .map_err(db("connect to the product (MariaDB)"))?;
    for sql in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .map_err(db(format!("product (MariaDB): {}", first_line(sql))))?;
    }
    let _ = conn.close().await;
    Ok(())
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// Every third member shares its `updated_at` with its neighbours (ties across page boundaries),
/// roles 1/2, statuses 0 invited / 1 active / 2 deactivated, one in fifty soft-deleted.
fn postgres_fill(rows: u64) -> Vec<String> {
    vec![
        "CREATE TABLE teams (id integer PRIMARY KEY, slug text NOT NULL UNIQUE, title text NOT NULL)".into(),
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, updated_at timestamptz NOT NULL)".into(),
        "CREATE TABLE team_users (id bigint PRIMARY KEY, team_id integer NOT NULL REFERENCES teams, \
         user_id bigint NOT NULL REFERENCES users, role_code smallint NOT NULL, status_code smallint NOT NULL, \
         invited_at timestamptz, activated_at timestamptz, updated_at timestamptz NOT NULL, deleted_at timestamptz)".into(),
        format!("INSERT INTO teams SELECT g, 'team-' || g, 'Team ' || g FROM generate_series(1, {TEAMS}) g"),
        format!(
            "INSERT INTO users SELECT g, 'user' || g || '@example.com', \
             timestamptz '2026-01-01 00:00:00+00' + (g / 3) * interval '1 second' \
             FROM generate_series(1, {rows}) g"
        ),
        format!(
            "INSERT INTO team_users SELECT g, g % {TEAMS} + 1, g, g % 2 + 1, g % 3, \
             timestamptz '2025-12-01 00:00:00+00' + g * interval '1 millisecond', \
             CASE WHEN g % 3 = 1 THEN timestamptz '2025-12-15 00:00:00+00' END, \
             timestamptz '2026-01-01 00:00:00+00' + (g / 3) * interval '1 second', \
             CASE WHEN g % 50 = 0 THEN timestamptz '2026-01-01 00:00:00+00' END \
             FROM generate_series(1, {rows}) g"
        ),
        "CREATE INDEX team_users_updated_at ON team_users (updated_at)".into(),
        "CREATE INDEX team_users_user ON team_users (user_id)".into(),
        "ANALYZE".into(),
    ]
}

/// `n` from 0 to at least `rows`: a cross join of ten-row digit tables.
fn mariadb_numbers(rows: u64) -> String {
    let mut digits = 1;
    while 10u64.pow(digits) <= rows {
        digits += 1;
    }
    let terms: Vec<String> = (0..digits)
        .map(|i| format!("d{i}.d * {}", 10u64.pow(i)))
        .collect();
    let tables: Vec<String> = (0..digits).map(|i| format!("digits d{i}")).collect();
    format!(
        "(SELECT {} + 1 AS g FROM {}) AS s WHERE g <= {rows}",
        terms.join(" + "),
        tables.join(", ")
    )
}

fn mariadb_fill(rows: u64) -> Vec<String> {
    let numbers = mariadb_numbers(rows);
    vec![
        "CREATE TABLE digits (d INT NOT NULL PRIMARY KEY)".into(),
        "INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)".into(),
        "CREATE TABLE teams (id INT PRIMARY KEY, slug VARCHAR(64) NOT NULL UNIQUE, title VARCHAR(200) NOT NULL)".into(),
        "CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE, updated_at DATETIME(6) NOT NULL)".into(),
        "CREATE TABLE team_users (id BIGINT PRIMARY KEY, team_id INT NOT NULL, user_id BIGINT NOT NULL, \
         role_code TINYINT NOT NULL, status_code TINYINT NOT NULL, invited_at DATETIME(6) NULL, \
         activated_at DATETIME(6) NULL, updated_at DATETIME(6) NOT NULL, is_deleted TINYINT(1) NOT NULL DEFAULT 0, \
         KEY team_users_updated_at (updated_at), KEY team_users_user (user_id))".into(),
        format!(
            "INSERT INTO teams SELECT d + 1, CONCAT('team-', d + 1), CONCAT('Team ', d + 1) \
             FROM (SELECT a.d + 10 * b.d AS d FROM digits a, digits b) s WHERE d < {TEAMS}"
        ),
        format!(
            "INSERT INTO users SELECT g, CONCAT('user', g, '@example.com'), \
             TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (g DIV 3) SECOND FROM {numbers}"
        ),
        format!(
            "INSERT INTO team_users SELECT g, g % {TEAMS} + 1, g, g % 2 + 1, g % 3, \
             TIMESTAMP '2025-12-01 00:00:00' + INTERVAL g * 1000 MICROSECOND, \
             IF(g % 3 = 1, TIMESTAMP '2025-12-15 00:00:00', NULL), \
             TIMESTAMP '2026-01-01 00:00:00' + INTERVAL (g DIV 3) SECOND, g % 50 = 0 FROM {numbers}"
        ),
        "ANALYZE TABLE teams, users, team_users".into(),
    ]
}

/// The `changed` rows of the incremental sync: spread over the whole table, newer than any row.
fn change_sql(product: Product, rows: u64, changed: u64) -> String {
    let step = (rows / changed.max(1)).max(1);
    match product {
        Product::Postgres => format!(
            "UPDATE team_users SET status_code = 1, activated_at = now(), \
             updated_at = timestamptz '2027-01-01 00:00:00+00' + id * interval '1 microsecond' \
             WHERE id % {step} = 0 AND id <= {}",
            step * changed
        ),
        Product::MariaDb => format!(
            "UPDATE team_users SET status_code = 1, activated_at = NOW(6), \
             updated_at = TIMESTAMP '2027-01-01 00:00:00' + INTERVAL id MICROSECOND \
             WHERE id % {step} = 0 AND id <= {}",
            step * changed
        ),
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn config_text(store_url: &str, source_url: &str, query: &str) -> String {
    format!(
        "database_url = {store}\n\n[source]\nurl = {source}\nmembers_query = {query}\n\
         statement_timeout_ms = 600000\n\n\
         [source.role_map]\n\"1\" = \"learner\"\n\"2\" = \"trainer\"\n\n\
         [source.status_map]\n\"0\" = \"invited\"\n\"1\" = \"active\"\n\"2\" = \"deactivated\"\n",
        store = quote(store_url),
        source = quote(source_url),
        query = quote(query),
    )
}

/// What one `invite-bot sync` did.
struct Measured {
    seconds: f64,
    peak_rss_mb: f64,
    read: u64,
}

/// Runs `invite-bot sync --format json` and samples its `VmHWM` until it exits.
async fn run_sync(
    exe: &Path,
    dir: &Path,
    config: &Path,
    what: &str,
    timeout: Duration,
) -> Result<Measured, SyncBenchError> {
    let log = dir.join("sync.log");
    let out = dir.join("sync.json");
    let log_file = std::fs::File::create(&log).map_err(io("create the sync log"))?;
    let out_file = std::fs::File::create(&out).map_err(io("create the sync output"))?;
    let started = Instant::now();
    let child = Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(["--format", "json", "sync"])
        .current_dir(dir)
        .env(RUN_AS_BOT, "1")
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("INVITE_BOT_SOURCE_URL")
        .env_remove("INVITE_BOT_CONFIG")
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(log_file)
        .spawn()
        .map_err(io(format!("start {}", exe.display())))?;
    let mut bot = Bot::new(child, log);
    let pid = bot.pid();
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(kb) = proc_status_kb(pid, "VmHWM") {
            peak_kb = peak_kb.max(kb);
        }
        if let Err(exited) = bot.check_alive() {
            break exited.status;
        }
        if started.elapsed() > timeout {
            return Err(SyncBenchError::SyncFailed {
                what: what.to_owned(),
                status: format!("still running after {} s, killed", timeout.as_secs()),
                log: bot.log(),
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let output = std::fs::read_to_string(&out).unwrap_or_default();
    if !status.success() {
        return Err(SyncBenchError::SyncFailed {
            what: what.to_owned(),
            status: status.to_string(),
            log: format!("{}{}", bot.log(), tail(&output, 2000)),
        });
    }
    let read = serde_json::from_str::<serde_json::Value>(&output)
        .ok()
        .and_then(|report| report["members"]["read"].as_u64())
        .unwrap_or(0);
    Ok(Measured {
        seconds,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        read,
    })
}

fn row(product: Product, scenario: &str, rows: u64, target_seconds: f64, m: &Measured) -> SyncRow {
    SyncRow {
        scenario: scenario.to_owned(),
        source: product.name().to_owned(),
        store: "PostgreSQL".to_owned(),
        rows,
        seconds: m.seconds,
        rows_per_second: if m.seconds > 0.0 {
            rows as f64 / m.seconds
        } else {
            0.0
        },
        peak_rss_mb: m.peak_rss_mb,
        target_seconds,
        target_rss_mb: PEAK_RSS_MB,
        pass: m.seconds < target_seconds && m.peak_rss_mb < PEAK_RSS_MB,
    }
}

fn expect_read(what: &str, m: &Measured, expected: u64, dir: &Path) -> Result<(), SyncBenchError> {
    if m.read == expected {
        return Ok(());
    }
    Err(SyncBenchError::WrongCount {
        what: what.to_owned(),
        read: m.read,
        expected,
        output: std::fs::read_to_string(dir.join("sync.json")).unwrap_or_default(),
    })
}

/// One product: fill it, sync it whole, change some rows, sync again.
async fn measure(
    product: Product,
    options: &SyncBenchOptions,
    scratch: &mut Scratch,
    exe: &Path,
    dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SyncRow>, SyncBenchError> {
    let rows = options.rows;
    let changed = CHANGED.min(rows);
    let (source_url, query) = match product {
        Product::Postgres => {
            let url = scratch
                .create_postgres(&options.postgres_url, "product")
                .await?;
            progress(&format!(
                "filling the PostgreSQL product with {rows} members"
            ));
            execute_pg(&url, &postgres_fill(rows)).await?;
            (url, POSTGRES_QUERY)
        }
        Product::MariaDb => {
            let server = options
                .mariadb_url
                .as_deref()
                .unwrap_or(DEFAULT_MARIADB_URL);
            let url = scratch.create_mariadb(server, "product").await?;
            progress(&format!("filling the MariaDB product with {rows} members"));
            execute_mariadb(&url, &mariadb_fill(rows)).await?;
            (url, MARIADB_QUERY)
        }
    };
    let store_url = scratch
        .create_postgres(&options.postgres_url, "store")
        .await?;
    let config = dir.join(format!("sync-{}.toml", product.name()));
    std::fs::write(&config, config_text(&store_url, &source_url, query))
        .map_err(io(format!("write {}", config.display())))?;

    let what = format!("first sync from {}", product.name());
    progress(&what);
    let first = run_sync(exe, dir, &config, &what, options.timeout).await?;
    expect_read(&what, &first, rows, dir)?;

    let update = change_sql(product, rows, changed);
    match product {
        Product::Postgres => execute_pg(&source_url, &[update]).await?,
        Product::MariaDb => execute_mariadb(&source_url, &[update]).await?,
    }
    let what = format!("incremental sync from {}", product.name());
    progress(&what);
    let second = run_sync(exe, dir, &config, &what, options.timeout).await?;
    expect_read(&what, &second, changed, dir)?;
    Ok(vec![
        row(product, "first sync", rows, product.first_target(), &first),
        row(
            product,
            "incremental",
            changed,
            INCREMENTAL_SECONDS,
            &second,
        ),
    ])
}

/// Runs the scenario; every database it created is dropped before it returns.
#[tracing::instrument(skip_all)]
pub async fn run(
    options: SyncBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<SyncBenchReport, SyncBenchError> {
    if options.rows == 0 {
        return Err(SyncBenchError::NoRows);
    }
    let dir = TempDir::new("sync").map_err(io("create a temporary directory"))?;
    let exe = match &options.bot_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().map_err(io("find the invite-bot executable"))?,
    };
    let mut products = vec![Product::Postgres];
    if options.mariadb_url.is_some() {
        products.push(Product::MariaDb);
    }
    let mut scratch = Scratch::default();
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    for product in products {
        match measure(product, &options, &mut scratch, &exe, dir.path(), progress).await {
            Ok(measured) => rows.extend(measured),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
        // Each product's databases go as soon as it is measured: a 1M product is a few hundred MB.
        scratch
            .drop_all(&options.postgres_url, options.mariadb_url.as_deref())
            .await;
    }
    scratch
        .drop_all(&options.postgres_url, options.mariadb_url.as_deref())
        .await;
    outcome?;
    Ok(SyncBenchReport {
        members: options.rows,
        changed: CHANGED.min(options.rows),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_gets_the_database_in_its_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }

    #[test]
    fn the_mariadb_numbers_cover_every_member() {
        assert!(mariadb_numbers(9).contains("digits d0) AS s"));
        assert!(mariadb_numbers(10).contains("d1.d * 10"));
        assert!(mariadb_numbers(1_000_000).contains("d6.d * 1000000"));
    }
}
