//! The SQL around the operator's query: pages in a fixed order, from a watermark that breaks ties
//! between equal timestamps by key, so a page boundary inside a run of equal `updated_at` values
//! neither skips a row nor repeats one forever.
//!
//! The operator's query stays as written, wrapped as a subquery (`src`); its one parameter (`$1`,
//! or each `?`) gets a moment just before the watermark, so `updated_at >= $1` and `> $1` both
//! return every row the page needs. The wrapper orders by `(updated_at, workspace, email)` and
//! keeps the rows after the last one applied.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};

use crate::config::SourceDialect;
use crate::store::Watermark;

/// Where the next page starts: after this row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    pub at: DateTime<Utc>,
    /// The product's own values of the last row (as read), compared as the database compares them.
    pub workspace: String,
    pub email: String,
}

impl Cursor {
    /// Before every row.
    pub fn start() -> Self {
        Cursor {
            at: DateTime::UNIX_EPOCH,
            workspace: String::new(),
            email: String::new(),
        }
    }

    pub fn from_watermark(mark: &Watermark) -> Self {
        let (workspace, email) = mark.key.split_once('/').unwrap_or((&mark.key, ""));
        Cursor {
            at: mark.at,
            workspace: workspace.to_owned(),
            email: email.to_owned(),
        }
    }

    /// Stored as `workspace/email`: a workspace slug never holds a `/`.
    pub fn to_watermark(&self) -> Watermark {
        Watermark {
            at: self.at,
            key: format!("{}/{}", self.workspace, self.email),
        }
    }

    /// What the operator's own parameter gets: a moment before the watermark.
    pub fn since(&self) -> DateTime<Utc> {
        self.at - Duration::microseconds(1)
    }
}

/// The watermark as a naive time in the source's zone (MySQL `DATETIME`, SQLite text).
pub(super) fn naive(at: DateTime<Utc>, zone: FixedOffset) -> NaiveDateTime {
    at.with_timezone(&zone).naive_local()
}

/// SQLite compares text: the form its own `datetime()` writes, with the fraction when there is one.
pub(super) fn sqlite_text(at: DateTime<Utc>, zone: FixedOffset) -> String {
    naive(at, zone).format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// The operator's query without what would break a subquery: surrounding space and a final `;`.
fn inner(query: &str) -> &str {
    query.trim().trim_end_matches(';').trim_end()
}

/// The row comparison and the order, with each database's placeholders.
fn after_cursor(dialect: SourceDialect) -> (&'static str, &'static str) {
    match dialect {
        // `::text` so a workspace held as a number or `varchar` compares with the text we bind.
        SourceDialect::Postgres => (
            "src.updated_at > $2 OR (src.updated_at = $2 \
             AND (src.workspace::text, src.email::text) > ($3, $4))",
            "src.updated_at, src.workspace::text, src.email::text",
        ),
        SourceDialect::MySql | SourceDialect::Sqlite => (
            "src.updated_at > ? OR (src.updated_at = ? AND (src.workspace, src.email) > (?, ?))",
            "src.updated_at, src.workspace, src.email",
        ),
    }
}

/// One page of at most `limit` rows after the cursor.
pub(super) fn page_sql(dialect: SourceDialect, query: &str, limit: u32) -> String {
    let (after, order) = after_cursor(dialect);
    format!(
        "SELECT * FROM ({}\n) AS src WHERE {after} ORDER BY {order} LIMIT {limit}",
        inner(query)
    )
}

/// How many rows are left after the cursor, for the progress line's ETA.
pub(super) fn count_sql(dialect: SourceDialect, query: &str) -> String {
    let (after, _) = after_cursor(dialect);
    format!(
        "SELECT COUNT(*) AS total FROM ({}\n) AS src WHERE {after}",
        inner(query)
    )
}

/// The rows of one address in one workspace, whatever their age (a live refresh).
pub(super) fn one_member_sql(dialect: SourceDialect, query: &str) -> String {
    let filter = match dialect {
        SourceDialect::Postgres => "src.workspace::text = $2 AND lower(src.email::text) = $3",
        SourceDialect::MySql | SourceDialect::Sqlite => {
            "src.workspace = ? AND lower(src.email) = ?"
        }
    };
    format!(
        "SELECT * FROM ({}\n) AS src WHERE {filter} ORDER BY src.updated_at",
        inner(query)
    )
}

/// How many `?` the operator's query holds (each gets the watermark), outside quotes and comments.
pub(super) fn question_marks(query: &str) -> usize {
    let bytes = query.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        // A doubled quote is one quote inside the string.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                count += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_strings_and_comments_are_not_parameters() {
        assert_eq!(question_marks("SELECT * FROM t WHERE a >= ? OR b >= ?"), 2);
        assert_eq!(
            question_marks(
                "SELECT '?', \"?\", `?` -- ?\n, 'it''s ?' # ?\n /* ? */ FROM t WHERE u >= ?"
            ),
            1
        );
        assert_eq!(question_marks("SELECT 'a\\'?' WHERE x > ?"), 1);
    }

    #[test]
    fn the_watermark_key_round_trips_and_the_query_is_wrapped_whole() {
        let cursor = Cursor {
            at: DateTime::UNIX_EPOCH,
            workspace: "acme".into(),
            email: "a/b@x.example".into(),
        };
        assert_eq!(Cursor::from_watermark(&cursor.to_watermark()), cursor);
        let sql = page_sql(SourceDialect::Postgres, " SELECT 1 -- trailing\n; ", 10);
        assert!(
            sql.starts_with("SELECT * FROM (SELECT 1 -- trailing\n) AS src"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT 10"));
    }
}
