//! The product's columns, read by name and tolerant of its types: text, integers, booleans (or the
//! 0/1 MySQL stores), timestamps with or without a zone, dates. Everything becomes the text of a
//! [`RawMember`] / [`RawInvitation`], so the one parser checks it; a naive timestamp stays naive,
//! and the configured zone applies to it there.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::config::SourceDialect;
use crate::ingest::{RawInvitation, RawMember, RowError};

/// The columns `members_query` returns (`deleted` is optional).
pub const MEMBER_COLUMNS: &[&str] = &[
    "workspace",
    "workspace_name",
    "email",
    "role",
    "status",
    "invited_at",
    "activated_at",
    "updated_at",
];
/// The columns `invitations_query` returns.
pub const INVITATION_COLUMNS: &[&str] = &[
    "workspace",
    "email",
    "sent_at",
    "expires_at",
    "message_id",
    "updated_at",
];
const TIME_COLUMNS: &[&str] = &[
    "invited_at",
    "activated_at",
    "updated_at",
    "sent_at",
    "expires_at",
];

/// One value as the product holds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// A timestamp with its zone (PostgreSQL `timestamptz`).
    At(DateTime<Utc>),
    /// Without one (`timestamp`, `DATETIME`): read in the configured zone.
    Naive(NaiveDateTime),
    Date(NaiveDate),
}

impl Value {
    fn into_text(self) -> String {
        match self {
            Value::Text(text) => text,
            Value::Int(n) => n.to_string(),
            Value::UInt(n) => n.to_string(),
            Value::Float(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::At(at) => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Value::Naive(at) => at.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            Value::Date(date) => date.format("%Y-%m-%d").to_string(),
        }
    }
}

/// What a column's type is, as far as reading it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bytes,
    Int,
    UInt,
    Float,
    Bool,
    At,
    Naive,
    Date,
    Null,
    /// A type read as text when its bytes are text (PostgreSQL enums, `citext`, domains).
    MaybeText,
    Unsupported,
}

fn pg_kind(name: &str) -> Kind {
    match name.to_ascii_uppercase().as_str() {
        "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "UNKNOWN" => Kind::Text,
        "INT2" | "INT4" | "INT8" => Kind::Int,
        "FLOAT4" | "FLOAT8" => Kind::Float,
        "BOOL" => Kind::Bool,
        "TIMESTAMPTZ" => Kind::At,
        "TIMESTAMP" => Kind::Naive,
        "DATE" => Kind::Date,
        "VOID" => Kind::Null,
        "NUMERIC" | "UUID" | "JSON" | "JSONB" | "BYTEA" | "MONEY" | "INTERVAL" | "TIME"
        | "TIMETZ" | "OID" | "INET" | "CIDR" => Kind::Unsupported,
        name if name.ends_with("[]") => Kind::Unsupported,
        _ => Kind::MaybeText,
    }
}

fn mysql_kind(name: &str) -> Kind {
    match name {
        "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
        | "JSON" | "DECIMAL" => Kind::Text,
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => Kind::Bytes,
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => Kind::Int,
        "BOOLEAN" => Kind::Bool,
        "FLOAT" | "DOUBLE" => Kind::Float,
        "DATETIME" | "TIMESTAMP" => Kind::Naive,
        "DATE" => Kind::Date,
        "NULL" => Kind::Null,
        name if name.ends_with("UNSIGNED") => Kind::UInt,
        _ => Kind::Unsupported,
    }
}

fn sqlite_kind(name: &str) -> Kind {
    match name {
        "INTEGER" => Kind::Int,
        "REAL" => Kind::Float,
        "BLOB" => Kind::Bytes,
        "NULL" => Kind::Null,
        _ => Kind::Text,
    }
}

fn kind_of(dialect: SourceDialect, type_name: &str) -> Kind {
    match dialect {
        SourceDialect::Postgres => pg_kind(type_name),
        SourceDialect::MySql => mysql_kind(type_name),
        SourceDialect::Sqlite => sqlite_kind(type_name),
    }
}

/// Checks the columns a query returns (names and type names) before any row is read: every
/// column it must return is there, with a type the bot can read for it. `None` is fine.
pub(super) fn check_columns(
    dialect: SourceDialect,
    required: &[&str],
    returned: &[(String, String)],
) -> Result<(), String> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| !returned.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        .collect();
    if !missing.is_empty() {
        let found: Vec<&str> = returned.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "it does not return the column(s) {} (it returns: {}); name them with AS",
            missing.join(", "),
            found.join(", ")
        ));
    }
    // SQLite's types belong to values, not columns: checked row by row.
    if dialect == SourceDialect::Sqlite {
        return Ok(());
    }
    for (name, type_name) in returned {
        let name = name.to_ascii_lowercase();
        if !required.contains(&name.as_str()) && name != "deleted" {
            continue;
        }
        let kind = kind_of(dialect, type_name);
        let fits = match kind {
            Kind::Unsupported => false,
            Kind::Null => true,
            _ if TIME_COLUMNS.contains(&name.as_str()) => matches!(
                kind,
                Kind::At | Kind::Naive | Kind::Date | Kind::Text | Kind::MaybeText
            ),
            _ if name == "deleted" => matches!(
                kind,
                Kind::Bool | Kind::Int | Kind::UInt | Kind::Text | Kind::MaybeText
            ),
            _ => !matches!(kind, Kind::At | Kind::Naive | Kind::Date | Kind::Float),
        };
        if !fits {
            return Err(format!(
                "the column {name} is of type {type_name}, which the bot cannot read as {}; cast it in the query",
                if TIME_COLUMNS.contains(&name.as_str()) {
                    "a timestamp"
                } else if name == "deleted" {
                    "a boolean"
                } else {
                    "text"
                }
            ));
        }
    }
    Ok(())
}

/// A row of any of the three databases, read by column name.
pub(super) trait ProductRow {
    /// `Ok(None)` for SQL NULL or a column the query does not return.
    fn value(&self, column: &str) -> Result<Option<Value>, String>;
}

fn position<R: Row>(row: &R, column: &str) -> Option<usize> {
    row.columns()
        .iter()
        .position(|c| c.name().eq_ignore_ascii_case(column))
}

fn decode_failed(error: sqlx::Error) -> String {
    format!("cannot be read: {error}")
}

fn text_of_bytes(bytes: Vec<u8>) -> Result<Value, String> {
    String::from_utf8(bytes)
        .map(Value::Text)
        .map_err(|_| "is not UTF-8 text".to_owned())
}

fn unsupported(type_name: &str) -> String {
    format!("is of type {type_name}, which the bot cannot read: cast it in the query")
}

impl ProductRow for PgRow {
    fn value(&self, column: &str) -> Result<Option<Value>, String> {
        let Some(i) = position(self, column) else {
            return Ok(None);
        };
        let raw = self.try_get_raw(i).map_err(decode_failed)?;
        if raw.is_null() {
            return Ok(None);
        }
        let type_name = self.column(i).type_info().name().to_owned();
        let value = match pg_kind(&type_name) {
            Kind::Text | Kind::MaybeText => {
                Value::Text(self.try_get_unchecked(i).map_err(decode_failed)?)
            }
            Kind::Int => match type_name.to_ascii_uppercase().as_str() {
                "INT2" => Value::Int(self.try_get::<i16, _>(i).map_err(decode_failed)?.into()),
                "INT4" => Value::Int(self.try_get::<i32, _>(i).map_err(decode_failed)?.into()),
                _ => Value::Int(self.try_get(i).map_err(decode_failed)?),
            },
            Kind::Float => match type_name.to_ascii_uppercase().as_str() {
                "FLOAT4" => Value::Float(self.try_get::<f32, _>(i).map_err(decode_failed)?.into()),
                _ => Value::Float(self.try_get(i).map_err(decode_failed)?),
            },
            Kind::Bool => Value::Bool(self.try_get(i).map_err(decode_failed)?),
            Kind::At => Value::At(self.try_get(i).map_err(decode_failed)?),
            Kind::Naive => Value::Naive(self.try_get(i).map_err(decode_failed)?),
            Kind::Date => Value::Date(self.try_get(i).map_err(decode_failed)?),
            Kind::Null => return Ok(None),
            Kind::Bytes | Kind::UInt | Kind::Unsupported => return Err(unsupported(&type_name)),
        };
        Ok(Some(value))
    }
}

impl ProductRow for MySqlRow {
    fn value(&self, column: &str) -> Result<Option<Value>, String> {
        let Some(i) = position(self, column) else {
            return Ok(None);
        };
        let raw = self.try_get_raw(i).map_err(decode_failed)?;
        if raw.is_null() {
            return Ok(None);
        }
        let type_name = self.column(i).type_info().name().to_owned();
        let value = match mysql_kind(&type_name) {
            Kind::Text | Kind::MaybeText | Kind::Bytes => {
                text_of_bytes(self.try_get_unchecked(i).map_err(decode_failed)?)?
            }
            Kind::Int => Value::Int(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::UInt => Value::UInt(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Float => Value::Float(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Bool => Value::Bool(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Naive => Value::Naive(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Date => Value::Date(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Null => return Ok(None),
            Kind::At | Kind::Unsupported => return Err(unsupported(&type_name)),
        };
        Ok(Some(value))
    }
}

impl ProductRow for SqliteRow {
    fn value(&self, column: &str) -> Result<Option<Value>, String> {
        let Some(i) = position(self, column) else {
            return Ok(None);
        };
        let raw = self.try_get_raw(i).map_err(decode_failed)?;
        if raw.is_null() {
            return Ok(None);
        }
        // The value's own storage class, whatever the column was declared as.
        let type_name = raw.type_info().name().to_owned();
        let value = match sqlite_kind(&type_name) {
            Kind::Int => Value::Int(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Float => Value::Float(self.try_get_unchecked(i).map_err(decode_failed)?),
            Kind::Bytes => text_of_bytes(self.try_get_unchecked(i).map_err(decode_failed)?)?,
            Kind::Null => return Ok(None),
            _ => Value::Text(self.try_get_unchecked(i).map_err(decode_failed)?),
        };
        Ok(Some(value))
    }
}

/// The identity of a row as read (its workspace and address), for the cursor and for errors.
#[derive(Debug, Clone, Default)]
pub(super) struct RowKey {
    pub workspace: String,
    pub email: String,
}

fn text(
    row: &dyn ProductRow,
    index: usize,
    column: &str,
    errors: &mut Vec<RowError>,
) -> Option<String> {
    match row.value(column) {
        Ok(value) => value.map(Value::into_text),
        Err(reason) => {
            errors.push(RowError::new(index, column, reason));
            None
        }
    }
}

fn deleted(row: &dyn ProductRow, index: usize, errors: &mut Vec<RowError>) -> Option<bool> {
    let value = match row.value("deleted") {
        Ok(value) => value?,
        Err(reason) => {
            errors.push(RowError::new(index, "deleted", reason));
            return None;
        }
    };
    let flag = match value {
        Value::Bool(b) => Some(b),
        Value::Int(n) => Some(n != 0),
        Value::UInt(n) => Some(n != 0),
        Value::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "y" | "yes" => Some(true),
            "0" | "f" | "false" | "n" | "no" | "" => Some(false),
            _ => None,
        },
        // A deletion time: deleted.
        Value::At(_) | Value::Naive(_) | Value::Date(_) => Some(true),
        Value::Float(_) => None,
    };
    if flag.is_none() {
        errors.push(RowError::new(
            index,
            "deleted",
            "is not a boolean (true/false, or 1/0)",
        ));
    }
    flag
}

/// A member row in the product's text; `index` is its place in the page.
pub(super) fn raw_member(
    row: &dyn ProductRow,
    index: usize,
    errors: &mut Vec<RowError>,
) -> (RawMember, RowKey) {
    let mut field = |column: &str| text(row, index, column, errors);
    let member = RawMember {
        workspace: field("workspace").unwrap_or_default(),
        workspace_name: field("workspace_name"),
        email: field("email").unwrap_or_default(),
        role: field("role").unwrap_or_default(),
        status: field("status").unwrap_or_default(),
        invited_at: field("invited_at"),
        activated_at: field("activated_at"),
        updated_at: field("updated_at").unwrap_or_default(),
        deleted: deleted(row, index, errors),
    };
    let key = RowKey {
        workspace: member.workspace.clone(),
        email: member.email.clone(),
    };
    (member, key)
}

/// An invitation row in the product's text.
pub(super) fn raw_invitation(
    row: &dyn ProductRow,
    index: usize,
    errors: &mut Vec<RowError>,
) -> (RawInvitation, RowKey) {
    let mut field = |column: &str| text(row, index, column, errors);
    let invitation = RawInvitation {
        workspace: field("workspace").unwrap_or_default(),
        email: field("email").unwrap_or_default(),
        sent_at: field("sent_at").unwrap_or_default(),
        expires_at: field("expires_at"),
        message_id: field("message_id"),
        updated_at: field("updated_at").unwrap_or_default(),
    };
    let key = RowKey {
        workspace: invitation.workspace.clone(),
        email: invitation.email.clone(),
    };
    (invitation, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_missing_column_or_a_type_the_bot_cannot_read_is_named() {
        let mut good: Vec<(&str, &str)> = MEMBER_COLUMNS.iter().map(|c| (*c, "TEXT")).collect();
        good[7] = ("updated_at", "TIMESTAMPTZ");
        good.push(("deleted", "INT4"));
        assert_eq!(
            check_columns(SourceDialect::Postgres, MEMBER_COLUMNS, &columns(&good)),
            Ok(())
        );
        let error = check_columns(
            SourceDialect::Postgres,
            MEMBER_COLUMNS,
            &columns(&good[1..]),
        )
        .unwrap_err();
        assert!(
            error.contains("workspace") && error.contains("AS"),
            "{error}"
        );
        good[7] = ("updated_at", "INT8");
        let error =
            check_columns(SourceDialect::Postgres, MEMBER_COLUMNS, &columns(&good)).unwrap_err();
        assert!(
            error.contains("updated_at") && error.contains("INT8"),
            "{error}"
        );
        good[7] = ("updated_at", "DATETIME");
        good[3] = ("role", "NUMERIC");
        let error =
            check_columns(SourceDialect::MySql, MEMBER_COLUMNS, &columns(&good)).unwrap_err();
        assert!(error.contains("role"), "{error}");
    }

    #[test]
    fn naive_times_stay_naive_and_zoned_ones_keep_their_zone() {
        let naive = NaiveDate::from_ymd_opt(2026, 11, 2)
            .unwrap()
            .and_hms_micro_opt(10, 0, 0, 250)
            .unwrap();
        assert_eq!(
            Value::Naive(naive).into_text(),
            "2026-11-02 10:00:00.000250"
        );
        assert_eq!(
            Value::At(naive.and_utc()).into_text(),
            "2026-11-02T10:00:00.000250Z"
        );
    }
}
