//! A product's user export (CSV or JSON Lines) read as a stream of
//! [`RawMember`] rows, each with the line it came from.
//!
//! Exports name their columns their own way ("Email address", "User type"): [`ColumnMap`] says
//! which column holds which field. An export of one workspace often has no workspace column at
//! all: [`ImportSettings::workspace`] fills it in.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::RawMember;

/// Longest line of a JSON Lines file (a member is a few hundred bytes): a file with no line
/// breaks cannot make the reader hold all of it.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The fields of a member row, in the bot's names.
pub const MEMBER_FIELDS: [&str; 9] = [
    "workspace",
    "workspace_name",
    "email",
    "role",
    "status",
    "invited_at",
    "activated_at",
    "updated_at",
    "deleted",
];

/// The fields without which a row means nothing.
const REQUIRED_FIELDS: [&str; 4] = ["email", "role", "status", "updated_at"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Csv,
    Jsonl,
}

impl FileKind {
    /// From the file name: `.csv`, or `.jsonl` / `.ndjson` / `.json`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(FileKind::Csv),
            "jsonl" | "ndjson" | "json" => Some(FileKind::Jsonl),
            _ => None,
        }
    }
}

/// Field name (ours) to column name (the export's). Fields not named are looked up under
/// their own name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ColumnMap(BTreeMap<String, String>);

impl ColumnMap {
    pub fn new(map: BTreeMap<String, String>) -> Result<Self, String> {
        for field in map.keys() {
            if !MEMBER_FIELDS.contains(&field.as_str()) {
                return Err(format!(
                    "`{field}` is not a member field (fields: {})",
                    MEMBER_FIELDS.join(", ")
                ));
            }
        }
        Ok(Self(map))
    }

    fn column<'a>(&'a self, field: &'a str) -> &'a str {
        self.0.get(field).map(String::as_str).unwrap_or(field)
    }
}

/// How to read one export.
#[derive(Debug, Clone, Default)]
pub struct ImportSettings {
    pub columns: ColumnMap,
    /// The workspace of every row that has no workspace column.
    pub workspace: Option<String>,
}

impl ImportSettings {
    /// The export's name for one of our fields, as an error about it names it.
    pub fn column_of<'a>(&'a self, field: &'a str) -> &'a str {
        self.columns.column(field)
    }
}

/// A row with the line it starts on, or what is wrong with that line as a whole.
pub type Line = (usize, Result<RawMember, LineError>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub column: String,
    pub reason: String,
}

impl LineError {
    fn new(column: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            column: column.into(),
            reason: reason.into(),
        }
    }
}

/// What stops a file from being read at all (rather than one bad row).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the file has no header line")]
    NoHeader,
    #[error("no column for `{field}`: expected a column named `{column}` (map it with --column {field}=NAME)")]
    MissingColumn { field: String, column: String },
    #[error("the file's header cannot be read: {0}")]
    Header(String),
}

/// Opens `path` and streams its rows: one row in memory at a time.
pub fn read_members(
    path: &Path,
    kind: FileKind,
    settings: &ImportSettings,
) -> Result<Box<dyn Iterator<Item = Line>>, ImportError> {
    let file = std::fs::File::open(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    read_members_from(BufReader::new(file), kind, settings)
}

/// Streams rows from any reader (a file, or a test's bytes).
pub fn read_members_from(
    reader: impl Read + 'static,
    kind: FileKind,
    settings: &ImportSettings,
) -> Result<Box<dyn Iterator<Item = Line>>, ImportError> {
    match kind {
        FileKind::Csv => csv_rows(reader, settings),
        FileKind::Jsonl => Ok(Box::new(jsonl_rows(reader, settings.clone()))),
    }
}

/// Where the file's line breaks are, for the lines the csv reader has buffered but not yet
/// returned: the reader skips blank lines without counting them, so its own line numbers drift.
#[derive(Default)]
struct LineBreaks {
    /// Byte offsets of breaks not yet passed, and whether the line each ends is blank.
    ahead: std::collections::VecDeque<(u64, bool)>,
    /// Bytes of the current line so far, `\r` not counted.
    line_bytes: u64,
    /// Breaks already passed.
    passed: usize,
    /// Bytes read so far.
    read: u64,
}

impl LineBreaks {
    /// The 1-based line of a record the reader started parsing at byte `offset`: blank lines it
    /// skipped on the way are passed too (offsets only move forward).
    fn line_of(&mut self, offset: u64) -> usize {
        while let Some(&(at, blank)) = self.ahead.front() {
            if at >= offset && !blank {
                break;
            }
            self.ahead.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// Passes bytes through, noting where each line break is.
struct CountingReader<R> {
    inner: R,
    breaks: std::rc::Rc<std::cell::RefCell<LineBreaks>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        let start = breaks.read;
        for (i, &byte) in buf[..n].iter().enumerate() {
            match byte {
                b'\n' => {
                    let blank = breaks.line_bytes == 0;
                    breaks.ahead.push_back((start + i as u64, blank));
                    breaks.line_bytes = 0;
                }
                b'\r' => {}
                _ => breaks.line_bytes += 1,
            }
        }
        breaks.read += n as u64;
        Ok(n)
    }
}

fn csv_rows(
    reader: impl Read + 'static,
    settings: &ImportSettings,
) -> Result<Box<dyn Iterator<Item = Line>>, ImportError> {
    let breaks = std::rc::Rc::new(std::cell::RefCell::new(LineBreaks::default()));
    let reader = CountingReader {
        inner: reader,
        breaks: breaks.clone(),
    };
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    if headers.is_empty() {
        return Err(ImportError::NoHeader);
    }
    let position = |column: &str| {
        headers.iter().position(|h| {
            h.trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(column)
        })
    };
    let mut at: BTreeMap<&'static str, usize> = BTreeMap::new();
    for field in MEMBER_FIELDS {
        let column = settings.columns.column(field);
        match position(column) {
            Some(index) => {
                at.insert(field, index);
            }
            None if REQUIRED_FIELDS.contains(&field)
                || (field == "workspace" && settings.workspace.is_none()) =>
            {
                return Err(ImportError::MissingColumn {
                    field: field.to_owned(),
                    column: column.to_owned(),
                });
            }
            None => {}
        }
    }
    let columns = settings.columns.clone();
    let workspace = settings.workspace.clone();
    let mut record = csv::StringRecord::new();
    let mut stopped = false;
    let rows = std::iter::from_fn(move || loop {
        if stopped {
            return None;
        }
        match csv.read_record(&mut record) {
            Ok(false) => return None,
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(0, |p| breaks.borrow_mut().line_of(p.byte()));
                if record.iter().all(str::is_empty) {
                    continue;
                }
                let value = |field: &str| {
                    at.get(field)
                        .and_then(|&i| record.get(i))
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                let row = csv_member(&value, &columns, workspace.as_deref());
                return Some((line, row));
            }
            Err(error) => {
                let line = error
                    .position()
                    .map_or(0, |p| breaks.borrow_mut().line_of(p.byte()));
                // A row of the wrong width or bad UTF-8 is one bad row; an I/O error ends the file.
                stopped = !matches!(
                    error.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                );
                let problem = LineError::new("", format!("cannot be read: {error}"));
                return Some((line, Err(problem)));
            }
        }
    });
    Ok(Box::new(rows.fuse()))
}

fn csv_member(
    value: &dyn Fn(&str) -> Option<String>,
    columns: &ColumnMap,
    workspace: Option<&str>,
) -> Result<RawMember, LineError> {
    let required =
        |field: &str| value(field).ok_or_else(|| LineError::new(columns.column(field), "is empty"));
    let deleted = match value("deleted") {
        None => None,
        Some(text) => Some(parse_flag(&text).ok_or_else(|| {
            LineError::new(
                columns.column("deleted"),
                format!("{text:?} is not true/false, yes/no or 1/0"),
            )
        })?),
    };
    Ok(RawMember {
        workspace: match value("workspace").or_else(|| workspace.map(str::to_owned)) {
            Some(slug) => slug,
            None => return Err(LineError::new(columns.column("workspace"), "is empty")),
        },
        workspace_name: value("workspace_name"),
        email: required("email")?,
        role: required("role")?,
        status: required("status")?,
        invited_at: value("invited_at"),
        activated_at: value("activated_at"),
        updated_at: required("updated_at")?,
        deleted,
    })
}

fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "" => Some(false),
        _ => None,
    }
}

fn jsonl_rows(reader: impl Read + 'static, settings: ImportSettings) -> impl Iterator<Item = Line> {
    let mut reader = BufReader::new(reader);
    let mut number = 0usize;
    let mut buffer = Vec::new();
    let mut failed = false;
    std::iter::from_fn(move || loop {
        if failed {
            return None;
        }
        buffer.clear();
        number += 1;
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer);
        match read {
            Ok(0) => return None,
            Ok(_) if buffer.len() > MAX_LINE_BYTES && !buffer.ends_with(b"\n") => {
                failed = true;
                return Some((
                    number,
                    Err(LineError::new(
                        "",
                        format!("is longer than {MAX_LINE_BYTES} bytes; one member per line"),
                    )),
                ));
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer);
                let text = text.trim();
                if text.is_empty() {
                    continue;
                }
                return Some((number, json_member(text, &settings)));
            }
            Err(error) => {
                failed = true;
                return Some((
                    number,
                    Err(LineError::new("", format!("cannot be read: {error}"))),
                ));
            }
        }
    })
}

fn json_member(text: &str, settings: &ImportSettings) -> Result<RawMember, LineError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| LineError::new("", format!("is not a JSON object: {e}")))?;
    let columns = &settings.columns;
    let value = |field: &str| -> Result<Option<String>, LineError> {
        let column = columns.column(field);
        match object.get(column) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(serde_json::Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(LineError::new(column, "is not text, a number or a boolean")),
        }
    };
    let required = |field: &str| {
        value(field)?.ok_or_else(|| LineError::new(columns.column(field), "is missing or empty"))
    };
    let deleted = match value("deleted")? {
        None => None,
        Some(text) => Some(parse_flag(&text).ok_or_else(|| {
            LineError::new(
                columns.column("deleted"),
                format!("{text:?} is not true or false"),
            )
        })?),
    };
    let workspace = match value("workspace")?.or_else(|| settings.workspace.clone()) {
        Some(slug) => slug,
        None => {
            return Err(LineError::new(
                columns.column("workspace"),
                "is missing or empty",
            ))
        }
    };
    Ok(RawMember {
        workspace,
        workspace_name: value("workspace_name")?,
        email: required("email")?,
        role: required("role")?,
        status: required("status")?,
        invited_at: value("invited_at")?,
        activated_at: value("activated_at")?,
        updated_at: required("updated_at")?,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(kind: FileKind, text: &'static str, settings: &ImportSettings) -> Vec<Line> {
        read_members_from(text.as_bytes(), kind, settings)
            .unwrap()
            .collect()
    }

    #[test]
    fn a_csv_export_with_its_own_headers_maps_to_member_rows_with_line_numbers() {
        let settings = ImportSettings {
            columns: ColumnMap::new(BTreeMap::from([
                ("email".into(), "Email address".into()),
                ("role".into(), "User type".into()),
            ]))
            .unwrap(),
            workspace: Some("acme".into()),
        };
        let text = "\u{feff}Email address,User type,status,updated_at,Deleted\n\
                    ann@corp.example,learner,invited,2026-11-02 10:00:00,no\n\
                    \n\
                    \"bo@corp.example\",trainer,active,2026-11-02,1\n\
                    ,learner,invited,2026-11-02,\n";
        let read = rows(FileKind::Csv, text, &settings);
        assert_eq!(read.len(), 3);
        let (line, first) = &read[0];
        let first = first.as_ref().unwrap();
        assert_eq!(
            (*line, first.workspace.as_str(), first.email.as_str()),
            (2, "acme", "ann@corp.example")
        );
        let (line, second) = &read[1];
        assert_eq!(*line, 4);
        assert_eq!(second.as_ref().unwrap().deleted, Some(true));
        let (line, third) = &read[2];
        assert_eq!(*line, 5);
        assert_eq!(third.as_ref().unwrap_err().column, "Email address");
    }

    #[test]
    fn a_missing_required_column_is_named_before_any_row() {
        let error = read_members_from(
            "email,role,status\n".as_bytes(),
            FileKind::Csv,
            &ImportSettings::default(),
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains("`workspace`"), "{error}");
    }

    #[test]
    fn json_lines_take_text_numbers_and_booleans_and_report_bad_lines() {
        let settings = ImportSettings {
            columns: ColumnMap::new(BTreeMap::from([("status".into(), "state".into())])).unwrap(),
            workspace: None,
        };
        let text = "{\"workspace\":\"acme\",\"email\":\"a@corp.example\",\"role\":\"learner\",\"state\":1,\"updated_at\":\"2026-11-02T10:00:00Z\",\"deleted\":false}\n\
                    not json\n\
                    {\"workspace\":\"acme\",\"email\":[\"x\"],\"role\":\"learner\",\"state\":1,\"updated_at\":\"x\"}\n";
        let read = rows(FileKind::Jsonl, text, &settings);
        assert_eq!(read[0].1.as_ref().unwrap().status, "1");
        assert_eq!(read[1].0, 2);
        assert!(read[1].1.as_ref().unwrap_err().reason.contains("JSON"));
        assert_eq!(read[2].1.as_ref().unwrap_err().column, "email");
    }

    #[test]
    fn a_json_lines_file_without_line_breaks_is_refused_without_reading_it_whole() {
        let huge: &'static str = Box::leak("x".repeat(MAX_LINE_BYTES * 4).into_boxed_str());
        let read = rows(FileKind::Jsonl, huge, &ImportSettings::default());
        assert_eq!(read.len(), 1);
        assert!(read[0].1.as_ref().unwrap_err().reason.contains("longer"));
    }

    #[test]
    fn an_unknown_field_in_the_column_map_is_refused() {
        let error = ColumnMap::new(BTreeMap::from([("mail".into(), "E-mail".into())])).unwrap_err();
        assert!(error.contains("`mail`"), "{error}");
    }
}
