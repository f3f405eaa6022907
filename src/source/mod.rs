//! The product's data coming in from its own database: `invite-bot sync`, the background sync of
//! `serve`, and the live re-read of one address.
//!
//! The operator's SQL (`[source] members_query`, `invitations_query`) is wrapped, never edited:
//! [`pages`] reads it in pages after a watermark with a key tie-break, [`columns`] reads its
//! columns by name whatever the product's types, [`sync`] applies each page in one transaction of
//! the bot's store with the watermark that covers it.

mod columns;
mod connection;
mod pages;
mod sync;

use std::time::Duration;

use chrono::FixedOffset;
use serde::Serialize;
use sqlx::{Column, Executor, Statement, TypeInfo};

use crate::config::{Config, SourceDialect};
use crate::ingest::{parse_members, IngestError, MemberRecord, RawMember, RowError, ValueMaps};

use columns::{ProductRow, RowKey};
use connection::{ProductDb, ProductPool};
use pages::Cursor;

pub use columns::{INVITATION_COLUMNS, MEMBER_COLUMNS};
pub use sync::{sync_once, KindReport, SyncOptions, SyncProgress, SyncReport};

/// Which of the operator's queries: errors name it as the config does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryName {
    MembersQuery,
    InvitationsQuery,
}

impl QueryName {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryName::MembersQuery => "members_query",
            QueryName::InvitationsQuery => "invitations_query",
        }
    }
}

impl std::fmt::Display for QueryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bad row of the product, named without its whole address: its place in the run's reading
/// order, its workspace and the masked address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// 1-based, in the order the sync read the query's rows this run.
    pub row: u64,
    pub workspace: String,
    /// `j***@acme.com`.
    pub email: String,
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {} ({}, {}): {} {}",
            self.row, self.workspace, self.email, self.field, self.reason
        )
    }
}

/// Longest list of bad rows a message shows.
const SHOWN_BAD_ROWS: usize = 5;

fn bad_rows_text(rows: &[BadRow]) -> String {
    let mut text: Vec<String> = rows
        .iter()
        .take(SHOWN_BAD_ROWS)
        .map(|r| r.to_string())
        .collect();
    if rows.len() > SHOWN_BAD_ROWS {
        text.push(format!("and {} more", rows.len() - SHOWN_BAD_ROWS));
    }
    text.join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the product's database is not configured: set [source] url (or INVITE_BOT_SOURCE_URL) and members_query")]
    NotConfigured,
    #[error("the source database {url} cannot be opened: {message}")]
    Open { url: String, message: String },
    /// Down, unreachable, or too slow: the bot answers from its last sync meanwhile.
    #[error("{query}: the source database {url} is not answering: {message}")]
    Unavailable {
        query: QueryName,
        url: String,
        message: String,
    },
    /// The database refused the query (syntax, a missing table or column, a type), or it returns
    /// columns the bot cannot use.
    #[error("{query}: {message}")]
    Query { query: QueryName, message: String },
    /// Rows the bot cannot take (an unmapped role, a bad address...): nothing of their batch was
    /// applied; earlier batches stay.
    #[error("{query}: {} bad row(s); nothing of their batch was applied: {}", .rows.len(), bad_rows_text(.rows))]
    Rows { query: QueryName, rows: Vec<BadRow> },
    #[error("the bot's store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl SourceError {
    /// A problem of the operator's config or SQL, rather than of a server that is down.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            SourceError::NotConfigured
                | SourceError::Open { .. }
                | SourceError::Query { .. }
                | SourceError::Rows { .. }
        )
    }
}

/// A server going away or out of time, rather than refusing the query: PostgreSQL's SQLSTATE
/// classes 08 (connection), 53 (resources), 57 (operator intervention, statement timeout), 58
/// (system); MySQL/MariaDB's shutdown, killed connection, lock wait timeout, interrupted query and
/// statement deadlines.
fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(mysql) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1053 | 1205 | 1317 | 1927 | 1969 | 3024);
    }
    let code = error.code().unwrap_or_default();
    ["08", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
}

/// Batches read per query of the product. Each page costs the product a run of the operator's
/// query up to its `ORDER BY ... LIMIT` (often a scan and a sort of every row after the
/// watermark), so pages are large; each batch is one transaction of the bot's store, which other
/// writers wait for, so batches stay small.
const BATCHES_PER_PAGE: u32 = 10;

/// The product's database with the operator's queries, ready to read.
#[derive(Debug, Clone)]
pub struct Source {
    db: ProductDb,
    members: PreparedQuery,
    invitations: Option<PreparedQuery>,
    maps: ValueMaps,
    zone: FixedOffset,
    batch_size: u32,
    invitation_ttl: chrono::Duration,
}

#[derive(Debug, Clone)]
struct PreparedQuery {
    name: QueryName,
    page: String,
    count: String,
    probe: String,
    one_member: String,
    /// How many `?` of the operator's own the watermark fills (MySQL, SQLite).
    marks: usize,
}

impl PreparedQuery {
    fn new(name: QueryName, dialect: SourceDialect, query: &str, batch_size: u32) -> Self {
        PreparedQuery {
            name,
            page: pages::page_sql(dialect, query, batch_size.saturating_mul(BATCHES_PER_PAGE)),
            count: pages::count_sql(dialect, query),
            probe: pages::page_sql(dialect, query, 0),
            one_member: pages::one_member_sql(dialect, query),
            marks: match dialect {
                SourceDialect::Postgres => 0,
                _ => pages::question_marks(query),
            },
        }
    }

    fn required_columns(&self) -> &'static [&'static str] {
        match self.name {
            QueryName::MembersQuery => MEMBER_COLUMNS,
            QueryName::InvitationsQuery => INVITATION_COLUMNS,
        }
    }
}

/// Rows of one page, in reading order, with the key of each.
struct Page<T> {
    rows: Vec<T>,
    keys: Vec<RowKey>,
}

impl Source {
    /// Opens the source of `config` without connecting yet (`NotConfigured` when `[source] url` is
    /// unset). Nothing is read until [`Source::validate`] or a sync.
    pub fn open(config: &Config) -> Result<Self, SourceError> {
        let source = &config.source;
        let members_query = source
            .members_query
            .as_deref()
            .ok_or(SourceError::NotConfigured)?;
        let db = ProductDb::open(source)?;
        let dialect = db.dialect;
        Ok(Source {
            members: PreparedQuery::new(
                QueryName::MembersQuery,
                dialect,
                members_query,
                source.batch_size,
            ),
            invitations: source.invitations_query.as_deref().map(|query| {
                PreparedQuery::new(
                    QueryName::InvitationsQuery,
                    dialect,
                    query,
                    source.batch_size,
                )
            }),
            db,
            maps: source.value_maps(),
            zone: source.zone(),
            batch_size: source.batch_size,
            invitation_ttl: chrono::Duration::hours(i64::from(config.product.invitation_ttl_hours)),
        })
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> &str {
        &self.db.shown_url
    }

    pub async fn close(&self) {
        self.db.close().await;
    }

    fn queries(&self) -> impl Iterator<Item = &PreparedQuery> {
        std::iter::once(&self.members).chain(self.invitations.iter())
    }

    /// Runs each query once without rows (after its columns are checked): a syntax error, a missing
    /// table or column, or a type the bot cannot read is refused here, naming the query, before a
    /// sync starts. `serve` and `sync` call it first.
    pub async fn validate(&self) -> Result<(), SourceError> {
        for query in self.queries() {
            let columns = self.columns_of(query).await?;
            columns::check_columns(self.db.dialect, query.required_columns(), &columns).map_err(
                |message| SourceError::Query {
                    query: query.name,
                    message,
                },
            )?;
            self.read_page(query, &query.probe, &Cursor::start(), |_, _, _| {
                ((), RowKey::default())
            })
            .await?;
        }
        Ok(())
    }

    /// The names and type names of the columns a query returns, from the server's own description.
    async fn columns_of(
        &self,
        query: &PreparedQuery,
    ) -> Result<Vec<(String, String)>, SourceError> {
        use sqlx::SqlSafeStr;
        let sql = sqlx::AssertSqlSafe(query.probe.clone()).into_sql_str();
        fn named<C: Column>(columns: &[C]) -> Vec<(String, String)> {
            columns
                .iter()
                .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                .collect()
        }
        let described = match &self.db.pool {
            ProductPool::Postgres(pool) => {
                use sqlx::postgres::{PgTypeInfo, Postgres};
                use sqlx::Type;
                let at = <chrono::DateTime<chrono::Utc> as Type<Postgres>>::type_info();
                let text = <String as Type<Postgres>>::type_info();
                let types: [PgTypeInfo; 4] = [at.clone(), at, text.clone(), text];
                self.deadline(query.name, pool.prepare_with(sql, &types))
                    .await
                    .map(|statement| named(statement.columns()))
            }
            ProductPool::MySql(pool) => self
                .deadline(query.name, pool.prepare(sql.clone()))
                .await
                .map(|statement| named(statement.columns())),
            ProductPool::Sqlite(pool) => self
                .deadline(query.name, pool.prepare(sql.clone()))
                .await
                .map(|statement| named(statement.columns())),
        };
        described
    }

    /// Waits for one statement at most the source's deadline; its errors name `query`.
    async fn deadline<T>(
        &self,
        query: QueryName,
        work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, SourceError> {
        match tokio::time::timeout(self.db.deadline, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.query_error(query, error)),
            Err(_) => Err(SourceError::Unavailable {
                query,
                url: self.db.shown_url.clone(),
                message: format!("no answer within {} ms", self.db.deadline.as_millis()),
            }),
        }
    }

    fn query_error(&self, query: QueryName, error: sqlx::Error) -> SourceError {
        match &error {
            sqlx::Error::Database(db) if !is_unavailable(db.as_ref()) => SourceError::Query {
                query,
                message: format!("the database refused it: {}", db.message()),
            },
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => SourceError::Query {
                query,
                message: format!("a column cannot be read: {error}"),
            },
            _ => SourceError::Unavailable {
                query,
                url: self.db.shown_url.clone(),
                message: crate::error::error_chain(&error),
            },
        }
    }

    /// Runs one page's SQL after `cursor`, and turns its rows into the product's text.
    async fn read_page<T>(
        &self,
        query: &PreparedQuery,
        sql: &str,
        cursor: &Cursor,
        convert: fn(&dyn ProductRow, usize, &mut Vec<RowError>) -> (T, RowKey),
    ) -> Result<(Page<T>, Vec<RowError>), SourceError> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let mut errors = Vec::new();
        let mut page = Page {
            rows: Vec::new(),
            keys: Vec::new(),
        };
        let mut take = |row: &dyn ProductRow, index: usize| {
            let (raw, key) = convert(row, index, &mut errors);
            page.rows.push(raw);
            page.keys.push(key);
        };
        match &self.db.pool {
            ProductPool::Postgres(pool) => {
                let rows = self
                    .deadline(
                        query.name,
                        sqlx::query(sql)
                            .bind(cursor.since())
                            .bind(cursor.at)
                            .bind(&cursor.workspace)
                            .bind(&cursor.email)
                            .fetch_all(pool),
                    )
                    .await?;
                rows.iter().enumerate().for_each(|(i, row)| take(row, i));
            }
            ProductPool::MySql(pool) => {
                let since = pages::naive(cursor.since(), self.zone);
                let at = pages::naive(cursor.at, self.zone);
                let mut statement = sqlx::query(sql);
                for _ in 0..query.marks {
                    statement = statement.bind(since);
                }
                let rows = self
                    .deadline(
                        query.name,
                        statement
                            .bind(at)
                            .bind(at)
                            .bind(&cursor.workspace)
                            .bind(&cursor.email)
                            .fetch_all(pool),
                    )
                    .await?;
                rows.iter().enumerate().for_each(|(i, row)| take(row, i));
            }
            ProductPool::Sqlite(pool) => {
                let since = pages::sqlite_text(cursor.since(), self.zone);
                let at = pages::sqlite_text(cursor.at, self.zone);
                let mut statement = sqlx::query(sql);
                for _ in 0..query.marks {
                    statement = statement.bind(since.clone());
                }
                let rows = self
                    .deadline(
                        query.name,
                        statement
                            .bind(at.clone())
                            .bind(at)
                            .bind(&cursor.workspace)
                            .bind(&cursor.email)
                            .fetch_all(pool),
                    )
                    .await?;
                rows.iter().enumerate().for_each(|(i, row)| take(row, i));
            }
        }
        Ok((page, errors))
    }

    /// Rows left after `cursor` (for the progress line's ETA).
    async fn count(&self, query: &PreparedQuery, cursor: &Cursor) -> Result<u64, SourceError> {
        let (page, _) = self
            .read_page(query, &query.count, cursor, |row, _, _| {
                let total = match row.value("total") {
                    Ok(Some(columns::Value::Int(n))) => n.max(0) as u64,
                    Ok(Some(columns::Value::UInt(n))) => n,
                    _ => 0,
                };
                (total, RowKey::default())
            })
            .await?;
        Ok(page.rows.first().copied().unwrap_or(0))
    }

    /// Re-reads one address in one workspace from the product, whatever its age, within `timeout`
    /// (a live refresh before a check). `Ok(None)`: the product does not hold it.
    pub async fn read_one(
        &self,
        workspace: &crate::domain::WorkspaceSlug,
        email: &crate::domain::email::EmailAddress,
        timeout: Duration,
    ) -> Result<Option<MemberRecord>, SourceError> {
        let query = &self.members;
        let sql = sqlx::AssertSqlSafe(query.one_member.clone());
        let since = Cursor::start().since();
        let mut errors = Vec::new();
        let mut rows: Vec<RawMember> = Vec::new();
        let mut take = |row: &dyn ProductRow, index: usize| {
            rows.push(columns::raw_member(row, index, &mut errors).0)
        };
        let work = async {
            match &self.db.pool {
                ProductPool::Postgres(pool) => {
                    let found = self
                        .deadline(
                            query.name,
                            sqlx::query(sql)
                                .bind(since)
                                .bind(workspace.as_str())
                                .bind(email.key())
                                .fetch_all(pool),
                        )
                        .await?;
                    found.iter().enumerate().for_each(|(i, row)| take(row, i));
                }
                ProductPool::MySql(pool) => {
                    let mut statement = sqlx::query(sql);
                    for _ in 0..query.marks {
                        statement = statement.bind(pages::naive(since, self.zone));
                    }
                    let found = self
                        .deadline(
                            query.name,
                            statement
                                .bind(workspace.as_str())
                                .bind(email.key())
                                .fetch_all(pool),
                        )
                        .await?;
                    found.iter().enumerate().for_each(|(i, row)| take(row, i));
                }
                ProductPool::Sqlite(pool) => {
                    let mut statement = sqlx::query(sql);
                    for _ in 0..query.marks {
                        statement = statement.bind(pages::sqlite_text(since, self.zone));
                    }
                    let found = self
                        .deadline(
                            query.name,
                            statement
                                .bind(workspace.as_str())
                                .bind(email.key())
                                .fetch_all(pool),
                        )
                        .await?;
                    found.iter().enumerate().for_each(|(i, row)| take(row, i));
                }
            }
            Ok::<(), SourceError>(())
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(SourceError::Unavailable {
                    query: query.name,
                    url: self.db.shown_url.clone(),
                    message: format!("no answer within {} ms", timeout.as_millis()),
                })
            }
        }
        let keys: Vec<RowKey> = rows
            .iter()
            .map(|r| RowKey {
                workspace: r.workspace.clone(),
                email: r.email.clone(),
            })
            .collect();
        if !errors.is_empty() {
            return Err(bad_rows(query.name, 0, &keys, errors));
        }
        let records = parse_members(rows, &self.maps, self.zone)
            .map_err(|errors| bad_rows(query.name, 0, &keys, errors))?;
        // The newest row wins, as it would in a sync.
        Ok(records.into_iter().max_by_key(|r| r.updated_at))
    }
}

/// Row errors of a page (indices within it) named by their place in the run and masked identity.
fn bad_rows(query: QueryName, offset: u64, keys: &[RowKey], errors: Vec<RowError>) -> SourceError {
    let rows = errors
        .into_iter()
        .map(|error| {
            let key = keys.get(error.index).cloned().unwrap_or_default();
            BadRow {
                row: offset + error.index as u64 + 1,
                workspace: key.workspace.chars().take(63).collect(),
                email: crate::domain::email::mask_key(&key.email.trim().to_lowercase()),
                field: error.field,
                reason: error.reason,
            }
        })
        .collect();
    SourceError::Rows { query, rows }
}

/// What the bot's store refused of a batch, as bad rows of the product.
fn store_refusal(
    query: QueryName,
    offset: u64,
    keys: &[RowKey],
    error: IngestError,
) -> SourceError {
    match error {
        IngestError::Rows(errors) => bad_rows(query, offset, keys, errors),
        IngestError::Store(store) => SourceError::Store(store),
    }
}
