//! `invite-bot-bench`: how fast a check answers in a workspace of a million members, measured
//! against what the database itself needs for one indexed look-up, in the same run.
//!
//! The bench builds (once) a synthetic workspace database, then times four scenarios through one
//! shared [`Engine`]: the bare indexed `SELECT` (baseline), the full check of a registered member, of
//! an address one typo away from a member, and of an address nothing resembles.

/// Expands `$body` once per backend with `$pool` bound to that backend's pool, so one query text
/// serves both (as the bot's store does).
macro_rules! on_backend {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            invite_bot::store::Store::Sqlite($pool, ..) => $body,
            invite_bot::store::Store::Postgres($pool, ..) => $body,
        }
    };
}

pub mod alerts;
mod child;
pub mod discord;
pub mod generate;
pub mod hostile;
pub mod interactions_http;
pub mod plans;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod stats;
pub mod sync;
pub mod system;
pub mod workspace_report;

use std::sync::Arc;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use invite_bot::config::Config;
use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::workspace::WorkspaceSlug;
use invite_bot::engine::{CheckSettings, Engine};
use invite_bot::error::EngineError;
use invite_bot::prompts::Prompts;
use invite_bot::store::{ConnectOptions, Store, StoreError};

pub use report::{BenchReport, ScenarioReport};
pub use seed::{SeedParameters, Seeding};
use stats::LatencyStats;

/// Where the bench builds its database unless told otherwise: never the bot's own database.
pub const DEFAULT_DATABASE: &str = "sqlite://invite-bot-bench.db";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    InvalidOptions(String),
    #[error(
        "the database already holds workspaces that the bench did not create; \
         point --database at an empty database (the bench never overwrites real data)"
    )]
    NotABenchDatabase,
    #[error("seeding the bench database failed: {0}")]
    Seed(#[source] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a check failed: {0}")]
    Engine(#[from] EngineError),
    #[error("a bench task failed: {0}")]
    Task(String),
}

impl BenchError {
    fn seed(error: sqlx::Error) -> Self {
        BenchError::Seed(error)
    }

    /// True for mistakes in what the person asked for (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            BenchError::InvalidOptions(_)
                | BenchError::NotABenchDatabase
                | BenchError::Store(StoreError::UnsupportedUrl(_))
        )
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub database_url: String,
    pub members: u64,
    pub workspaces: u32,
    pub concurrency: usize,
    pub checks: usize,
}

impl BenchOptions {
    pub fn validate(&self) -> Result<(), BenchError> {
        let fail = |m: &str| Err(BenchError::InvalidOptions(m.to_owned()));
        if self.members < 10 {
            return fail("--members must be at least 10");
        }
        if self.members > 100_000_000 {
            return fail("--members must be at most 100000000");
        }
        if self.workspaces == 0 || u64::from(self.workspaces) > self.members / 10 {
            return fail("--workspaces must be between 1 and a tenth of --members");
        }
        if self.workspaces > 10_000 {
            return fail("--workspaces must be at most 10000");
        }
        if !(1..=256).contains(&self.concurrency) {
            return fail("--concurrency must be between 1 and 256");
        }
        if !(1..=1_000_000).contains(&self.checks) {
            return fail("--checks must be between 1 and 1000000");
        }
        Ok(())
    }
}

/// A registered member, as the scenarios address it.
#[derive(Debug, Clone)]
struct Sample {
    email: EmailAddress,
    workspace_id: i64,
    slug: WorkspaceSlug,
}

/// A mistyped address and the member it was meant to be.
#[derive(Debug, Clone)]
struct TypoSample {
    typo: EmailAddress,
    intended_key: String,
    slug: WorkspaceSlug,
}

/// Seeds (or reuses) the database, runs the scenarios, and reports. `progress` receives one line
/// per phase (the CLI prints them on stderr).
pub async fn run(
    options: &BenchOptions,
    config: &Config,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BenchReport, BenchError> {
    options.validate()?;
    let store = Store::connect(
        &options.database_url,
        &ConnectOptions {
            // The pool the bot itself would have (`database_max_connections`, two per core by
            // default): on a 2-core machine running PostgreSQL too, 16 connections for 16 tasks
            // gave the registered check a p99 of 5.7-6.4 ms, 4 connections 3.1-4.6 ms, at higher
            // throughput (fewer server processes competing for the cores).
            max_connections: config.database_max_connections,
            ..ConnectOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    let parameters = SeedParameters {
        members: options.members,
        workspaces: options.workspaces,
    };
    progress(&format!(
        "bench database: {} ({})",
        invite_bot::urls::redact_url(&options.database_url),
        parameters.marker()
    ));
    let seeding = seed::ensure_seeded(&store, parameters, Utc::now()).await?;
    match seeding {
        Seeding::Reused => {
            progress("reusing the bench database, already seeded with these parameters")
        }
        Seeding::Seeded { seconds } => progress(&format!(
            "seeded {} members in {seconds:.1} s",
            options.members
        )),
    }
    // Seeding a million members is not what the bot's memory is judged by: measure from here.
    system::reset_peak_rss();

    let prompts = Prompts::builtin().map_err(|e| BenchError::Task(e.to_string()))?;
    let engine = Engine::new(
        store.clone(),
        Arc::new(prompts),
        CheckSettings::from(config),
    );
    let mut rng = StdRng::seed_from_u64(42);
    let bounds = id_bounds(&store).await?;
    let registered = sample_members(&store, &mut rng, options.checks, bounds).await?;
    let typos = typo_samples(&store, &mut rng, options.checks, bounds).await?;
    let unknown: Vec<EmailAddress> = (0..options.checks)
        .map(|_| generate::unknown_address(&mut rng))
        .collect();
    progress(&format!(
        "running {} operations per scenario at concurrency {}",
        options.checks, options.concurrency
    ));

    // Warm the pool and the caches so the first scenario is not charged for them.
    let warm: Vec<Sample> = registered.iter().take(100).cloned().collect();
    run_baseline(&store, warm.clone(), options.concurrency).await?;
    run_registered(&engine, warm, options.concurrency).await?;

    let baseline = run_baseline(&store, registered.clone(), options.concurrency).await?;
    let checked = run_registered(&engine, registered, options.concurrency).await?;
    let (typo, hits) = run_typos(&engine, typos, options.concurrency).await?;
    let unknown = run_unknown(&engine, unknown, options.concurrency).await?;

    let db_size_mb = system::database_size_mb(&store).await?;
    let peak_rss_mb = system::peak_rss_mb();
    store.close().await;
    Ok(BenchReport::new(
        store.backend(),
        options,
        vec![
            ("baseline", baseline),
            ("check, registered", checked),
            ("check, typo", typo),
            ("check, unknown", unknown),
        ],
        hits,
        db_size_mb,
        peak_rss_mb,
        seeding,
    ))
}

/// The bare look-up the checks are compared with: one indexed `SELECT` of a member by normalized
/// address, through the same pool.
pub(crate) const BASELINE: &str =
    "SELECT id FROM members WHERE email_key = $1 AND workspace_id = $2";

async fn run_baseline(
    store: &Store,
    samples: Vec<Sample>,
    concurrency: usize,
) -> Result<LatencyStats, BenchError> {
    let store = store.clone();
    let run = scenario::run_scenario(samples, concurrency, move |sample: Sample| {
        let store = store.clone();
        async move {
            let found: Option<i64> = on_backend!(&store, pool => {
                sqlx::query_scalar(BASELINE)
                    .bind(sample.email.key())
                    .bind(sample.workspace_id)
                    .fetch_optional(pool)
                    .await
                    .map_err(StoreError::from)?
            });
            found
                .map(|_| ())
                .ok_or_else(|| BenchError::Task(format!("{} vanished", sample.email.masked())))
        }
    })
    .await?;
    stats_of(run.latencies, run.wall)
}

async fn run_registered(
    engine: &Engine,
    samples: Vec<Sample>,
    concurrency: usize,
) -> Result<LatencyStats, BenchError> {
    let engine = engine.clone();
    let run = scenario::run_scenario(samples, concurrency, move |sample: Sample| {
        let engine = engine.clone();
        async move {
            let diagnoses = engine.check(&sample.email, Some(&sample.slug)).await?;
            match diagnoses.first() {
                Some(d) if d.member.is_some() => Ok(()),
                _ => Err(BenchError::Task(format!(
                    "{} was not found",
                    sample.email.masked()
                ))),
            }
        }
    })
    .await?;
    stats_of(run.latencies, run.wall)
}

/// Hits and attempts of the suggestion scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hits {
    pub hits: usize,
    pub attempts: usize,
}

impl Hits {
    pub fn rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.hits as f64 / self.attempts as f64
        }
    }
}

async fn run_typos(
    engine: &Engine,
    samples: Vec<TypoSample>,
    concurrency: usize,
) -> Result<(LatencyStats, Hits), BenchError> {
    let engine = engine.clone();
    let run = scenario::run_scenario(samples, concurrency, move |sample: TypoSample| {
        let engine = engine.clone();
        async move {
            let diagnoses = engine.check(&sample.typo, Some(&sample.slug)).await?;
            let first = diagnoses
                .first()
                .and_then(|d| d.suggestions.first())
                .and_then(|s| EmailAddress::parse(s).ok());
            let hit = first.is_some_and(|s| s.key() == sample.intended_key);
            Ok(hit)
        }
    })
    .await?;
    let hits = Hits {
        hits: run.results.iter().filter(|hit| **hit).count(),
        attempts: run.results.len(),
    };
    Ok((stats_of(run.latencies, run.wall)?, hits))
}

async fn run_unknown(
    engine: &Engine,
    samples: Vec<EmailAddress>,
    concurrency: usize,
) -> Result<LatencyStats, BenchError> {
    let engine = engine.clone();
    let run = scenario::run_scenario(samples, concurrency, move |email: EmailAddress| {
        let engine = engine.clone();
        async move {
            engine.check(&email, None).await?;
            Ok(())
        }
    })
    .await?;
    stats_of(run.latencies, run.wall)
}

fn stats_of(
    latencies: Vec<std::time::Duration>,
    wall: std::time::Duration,
) -> Result<LatencyStats, BenchError> {
    LatencyStats::from_samples(latencies, wall)
        .ok_or_else(|| BenchError::Task("a scenario ran no operation".into()))
}

/// The lowest and highest member id. (Two statements: SQLite optimizes `MIN(id)` and `MAX(id)`
/// to one index probe each only when each stands alone; together they scan the table.)
async fn id_bounds(store: &Store) -> Result<(i64, i64), BenchError> {
    let (low, high): (Option<i64>, Option<i64>) = on_backend!(store, pool => {
        let low = sqlx::query_scalar("SELECT MIN(id) FROM members")
            .fetch_one(pool)
            .await
            .map_err(StoreError::from)?;
        let high = sqlx::query_scalar("SELECT MAX(id) FROM members")
            .fetch_one(pool)
            .await
            .map_err(StoreError::from)?;
        (low, high)
    });
    match (low, high) {
        (Some(low), Some(high)) => Ok((low, high)),
        _ => Err(BenchError::Task("the bench database has no members".into())),
    }
}

/// `count` members picked at random (by id), with their workspace.
async fn sample_members(
    store: &Store,
    rng: &mut StdRng,
    count: usize,
    (low, high): (i64, i64),
) -> Result<Vec<Sample>, BenchError> {
    let mut samples = Vec::with_capacity(count);
    let mut misses = 0;
    while samples.len() < count {
        let id = rng.gen_range(low..=high);
        let row: Option<(String, i64, String)> = on_backend!(store, pool => {
            sqlx::query_as(
                "SELECT m.email_key, m.workspace_id, w.slug FROM members m \
                 JOIN workspaces w ON w.id = m.workspace_id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from)?
        });
        match row {
            Some((key, workspace_id, slug)) => samples.push(Sample {
                email: EmailAddress::parse(&key)
                    .map_err(|e| BenchError::Task(format!("stored address: {e}")))?,
                workspace_id,
                slug: WorkspaceSlug::parse(&slug)
                    .map_err(|e| BenchError::Task(format!("stored slug: {e}")))?,
            }),
            None => {
                misses += 1;
                if misses > count * 10 + 100 {
                    return Err(BenchError::Task("too few members to sample".into()));
                }
            }
        }
    }
    Ok(samples)
}

/// `count` single-typo addresses of random members, none of which is itself an address in use.
async fn typo_samples(
    store: &Store,
    rng: &mut StdRng,
    count: usize,
    bounds: (i64, i64),
) -> Result<Vec<TypoSample>, BenchError> {
    let mut samples = Vec::with_capacity(count);
    let mut attempts = 0;
    while samples.len() < count {
        attempts += 1;
        if attempts > count * 20 + 100 {
            return Err(BenchError::Task("cannot make enough typo samples".into()));
        }
        let member = sample_members(store, rng, 1, bounds).await?.remove(0);
        let Some((typo, _kind)) = generate::typo_of(rng, member.email.key()) else {
            continue;
        };
        // A "typo" that is somebody else's real address is a registered check, not a typo check.
        if !store.memberships(typo.key()).await?.is_empty() {
            continue;
        }
        samples.push(TypoSample {
            typo,
            intended_key: member.email.key().to_owned(),
            slug: member.slug,
        });
    }
    Ok(samples)
}
