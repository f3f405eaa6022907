//! Checks of whole lists (`/invite-check-list`, `invite-bot check --file`): a pasted list or a
//! file read into entries, every entry checked (a bounded number at once), and one report: the
//! verdict counts, the addresses that need action first, what is not an address and why, and a
//! CSV with one row per address. Nothing is dropped: an entry that is not an address is listed
//! with the reason, and an address listed twice is checked once and reported with its count.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::{Chat, ChatReply};
use crate::actions::Actor;
use crate::diagnosis::Verdict;
use crate::domain::email::EmailAddress;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::{EngineError, UserError};
use crate::prompts::Prompts;
use crate::summary::Summary;

/// At most this many entries in one list; a longer one is refused with the limit.
pub const MAX_LIST_ENTRIES: usize = 500;
/// A list file larger than this is refused before it is read (500 long addresses fit in a tenth).
pub const MAX_LIST_BYTES: usize = 256 * 1024;
/// Checks run at once: enough to finish 500 in a few seconds, few enough to leave the pool to
/// the people asking one at a time.
pub const LIST_CONCURRENCY: usize = 8;
/// Lines of each kind the summary names; the CSV has them all.
const MAX_SUMMARY_LINES: usize = 20;

/// How a list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Addresses separated by new lines, commas, semicolons or spaces (`Name <a@b.c>` stays whole).
    Text,
    /// A CSV file: in each row, the first cell with an `@`; a first row without one is a header.
    Csv,
}

impl ListFormat {
    /// CSV for a `.csv` file name or a CSV content type, text otherwise.
    pub fn of_file(name: &str, content_type: Option<&str>) -> Self {
        let csv = name.to_ascii_lowercase().ends_with(".csv")
            || content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("text/csv"));
        if csv {
            ListFormat::Csv
        } else {
            ListFormat::Text
        }
    }
}

/// Why a list is not checked at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRefusal {
    TooMany { found: usize },
    TooLarge,
    NotText,
    Empty,
    DownloadFailed,
    Usage,
}

impl ListRefusal {
    /// The words of `list_check.j2` for it.
    pub fn words(&self, prompts: &Prompts) -> String {
        let (name, facts) = match self {
            ListRefusal::TooMany { found } => (
                "too_many",
                json!({ "found": found, "limit": MAX_LIST_ENTRIES }),
            ),
            ListRefusal::TooLarge => (
                "too_large",
                json!({ "limit_kib": MAX_LIST_BYTES / 1024, "limit": MAX_LIST_ENTRIES }),
            ),
            ListRefusal::NotText => ("not_text", json!({})),
            ListRefusal::Empty => ("empty", json!({})),
            ListRefusal::DownloadFailed => ("download_failed", json!({})),
            ListRefusal::Usage => ("usage", json!({})),
        };
        prompts
            .list_check_text(name, &facts)
            .unwrap_or_else(|error| EngineError::from(error).public_message(prompts))
    }
}

/// One entry of a list, as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The line of a file; for text, the entry's place in the list.
    pub line: usize,
    pub input: String,
}

/// Reads a list into its entries, refusing one with more than [`MAX_LIST_ENTRIES`].
pub fn read_list(text: &str, format: ListFormat) -> Result<Vec<ListEntry>, ListRefusal> {
    let entries = match format {
        ListFormat::Text => text_entries(text),
        ListFormat::Csv => csv_entries(text),
    };
    if entries.is_empty() {
        return Err(ListRefusal::Empty);
    }
    if entries.len() > MAX_LIST_ENTRIES {
        return Err(ListRefusal::TooMany {
            found: entries.len(),
        });
    }
    Ok(entries)
}

/// Reads a file's bytes: refused when larger than [`MAX_LIST_BYTES`] or not UTF-8.
pub fn read_list_file(bytes: &[u8], format: ListFormat) -> Result<Vec<ListEntry>, ListRefusal> {
    if bytes.len() > MAX_LIST_BYTES {
        return Err(ListRefusal::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ListRefusal::NotText)?;
    read_list(text.trim_start_matches('\u{FEFF}'), format)
}

fn text_entries(text: &str) -> Vec<ListEntry> {
    let mut entries = Vec::new();
    let numbered = text.lines().count() > 1;
    for (index, line) in text.lines().enumerate() {
        for piece in line.split([',', ';']) {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            // `Name <jane@acme.com>` is one entry; elsewhere spaces separate addresses.
            let words: Vec<&str> = if piece.contains('<') {
                vec![piece]
            } else {
                piece.split_whitespace().collect()
            };
            for word in words {
                let place = if numbered {
                    index + 1
                } else {
                    entries.len() + 1
                };
                entries.push(ListEntry {
                    line: place,
                    input: word.to_owned(),
                });
            }
        }
    }
    entries
}

fn csv_entries(text: &str) -> Vec<ListEntry> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut entries = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error
                    .position()
                    .map_or(line, |p| usize::try_from(p.line()).unwrap_or(line));
                entries.push(ListEntry {
                    line,
                    input: String::new(),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(line, |p| usize::try_from(p.line()).unwrap_or(line));
        let cells: Vec<&str> = record
            .iter()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        match cells.iter().find(|c| c.contains('@')) {
            Some(cell) => entries.push(ListEntry {
                line,
                input: (*cell).to_owned(),
            }),
            None if cells.is_empty() => {}
            // A first row naming no address is the header.
            None if index == 0 => {}
            None => entries.push(ListEntry {
                line,
                input: cells.join(","),
            }),
        }
    }
    entries
}

/// One row of the report (and of its CSV).
#[derive(Debug, Clone, Serialize)]
pub struct ListRow {
    pub line: usize,
    pub input: String,
    /// The address as checked; `None` when the entry is not one.
    pub email: Option<String>,
    pub workspace: Option<String>,
    pub verdict: Option<Verdict>,
    /// The verdict in words.
    pub title: Option<String>,
    pub needs_action: bool,
    pub suggestions: Vec<String>,
    /// How often the list named this address.
    pub times_listed: usize,
    /// Why the entry is not an address, or why its check failed.
    pub problem: Option<String>,
}

/// The report of a list check.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    /// Distinct addresses checked.
    pub addresses: usize,
    /// Per verdict, how many rows have it.
    pub counts: BTreeMap<&'static str, usize>,
    pub needing_action: usize,
    /// Needing action first, then the entries that are not addresses, then the rest; each part
    /// in list order.
    pub rows: Vec<ListRow>,
    /// The summary in words.
    #[serde(skip)]
    pub summary: String,
}

impl ListReport {
    /// The CSV: a header, then one row per row of the report. A cell that a spreadsheet would
    /// take for a formula is prefixed with `'`.
    pub fn csv(&self) -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record([
            "line",
            "input",
            "email",
            "workspace",
            "verdict",
            "needs_action",
            "title",
            "suggestions",
            "times_listed",
            "problem",
        ]);
        for row in &self.rows {
            let cells = [
                row.line.to_string(),
                row.input.clone(),
                row.email.clone().unwrap_or_default(),
                row.workspace.clone().unwrap_or_default(),
                row.verdict
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                row.needs_action.to_string(),
                row.title.clone().unwrap_or_default(),
                row.suggestions.join(" "),
                row.times_listed.to_string(),
                row.problem.clone().unwrap_or_default(),
            ];
            let _ = writer.write_record(cells.iter().map(|c| inert_cell(c)));
        }
        writer.into_inner().unwrap_or_default()
    }
}

/// A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return, which spreadsheets run as a
/// formula, starts with `'` instead.
fn inert_cell(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// Verdicts after which nothing needs doing: the person is in, or their server took the email.
fn needs_action(verdict: Verdict) -> bool {
    !matches!(
        verdict,
        Verdict::AlreadyActive | Verdict::InviteDelivered | Verdict::InviteSent
    )
}

/// An address of the list and where it was first seen.
struct Distinct {
    email: EmailAddress,
    first: ListEntry,
    times: usize,
}

impl Chat {
    /// Checks every entry as `actor` (each check authorized and audited as a single check is), in
    /// `workspace` or wherever each address belongs. A refusal that applies to the whole list (no
    /// permission, an unknown workspace) comes back as the error, before the others are checked.
    pub async fn check_list(
        &self,
        actor: &Actor,
        entries: Vec<ListEntry>,
        workspace: Option<&str>,
    ) -> Result<ListReport, EngineError> {
        let prompts = self.engine().prompts();
        let workspace = match workspace.filter(|w| !w.trim().is_empty()) {
            Some(slug) => Some(WorkspaceSlug::parse(slug).map_err(UserError::from)?),
            None => None,
        };
        let mut unparseable = Vec::new();
        let mut distinct: Vec<Distinct> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            match EmailAddress::parse(&entry.input) {
                Ok(email) => match seen.get(email.key()) {
                    Some(&at) => distinct[at].times += 1,
                    None => {
                        seen.insert(email.key().to_owned(), distinct.len());
                        distinct.push(Distinct {
                            email,
                            first: entry,
                            times: 1,
                        });
                    }
                },
                Err(error) => {
                    let reason = UserError::from(error).public_message(prompts);
                    unparseable.push(ListRow {
                        line: entry.line,
                        input: entry.input,
                        email: None,
                        workspace: None,
                        verdict: None,
                        title: None,
                        needs_action: true,
                        suggestions: Vec::new(),
                        times_listed: 1,
                        problem: Some(reason),
                    });
                }
            }
        }
        let results = self.check_all(actor, &distinct, workspace.as_ref()).await?;
        let mut checked = Vec::new();
        for (address, result) in distinct.iter().zip(results) {
            match result {
                Ok(diagnoses) => {
                    for diagnosis in diagnoses {
                        let title = Summary::for_diagnosis(&diagnosis, prompts)
                            .map(|s| s.title)
                            .ok();
                        checked.push(ListRow {
                            line: address.first.line,
                            input: address.first.input.clone(),
                            email: Some(address.email.key().to_owned()),
                            workspace: diagnosis
                                .workspace
                                .as_ref()
                                .map(|w| w.slug.as_str().to_owned()),
                            verdict: Some(diagnosis.verdict),
                            title,
                            needs_action: needs_action(diagnosis.verdict),
                            suggestions: diagnosis.suggestions.clone(),
                            times_listed: address.times,
                            problem: None,
                        });
                    }
                }
                Err(error) => checked.push(ListRow {
                    line: address.first.line,
                    input: address.first.input.clone(),
                    email: Some(address.email.key().to_owned()),
                    workspace: workspace.as_ref().map(|w| w.as_str().to_owned()),
                    verdict: None,
                    title: None,
                    needs_action: true,
                    suggestions: Vec::new(),
                    times_listed: address.times,
                    problem: Some(error.public_message(prompts)),
                }),
            }
        }
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for row in &checked {
            if let Some(verdict) = row.verdict {
                *counts.entry(verdict.as_str()).or_default() += 1;
            }
        }
        let (mut first, rest): (Vec<ListRow>, Vec<ListRow>) =
            checked.into_iter().partition(|r| r.needs_action);
        let needing_action = first.len();
        let duplicates: Vec<_> = distinct
            .iter()
            .filter(|d| d.times > 1)
            .map(|d| json!({ "email": d.email.key(), "times": d.times }))
            .collect();
        let facts = json!({
            "addresses": distinct.len(),
            "workspace": workspace.as_ref().map(|w| w.as_str()),
            "counts": Verdict::ALL
                .iter()
                .filter_map(|v| counts.get(v.as_str()).map(|n| json!({ "verdict": v.as_str(), "count": n })))
                .collect::<Vec<_>>(),
            "needing_action": needing_action,
            "needs_action": first.iter().take(MAX_SUMMARY_LINES).map(|r| json!({
                "email": r.email, "workspace": r.workspace,
                "verdict": r.verdict.map(|v| v.as_str()).unwrap_or("error"),
            })).collect::<Vec<_>>(),
            "more_needing_action": needing_action.saturating_sub(MAX_SUMMARY_LINES),
            "unparseable": unparseable.iter().take(MAX_SUMMARY_LINES).map(|r| json!({
                "line": r.line, "input": super::truncate(&r.input, 60), "reason": r.problem,
            })).collect::<Vec<_>>(),
            "duplicates": duplicates,
        });
        let summary = prompts.list_check_text("summary", &facts)?;
        first.extend(unparseable);
        first.extend(rest);
        Ok(ListReport {
            addresses: distinct.len(),
            counts,
            needing_action,
            rows: first,
            summary,
        })
    }

    /// The report as a reply: the summary as its text (the CSV goes beside it as a file).
    pub fn list_reply(&self, report: &ListReport) -> ChatReply {
        ChatReply {
            ephemeral: self.settings().ephemeral_replies,
            text: report.summary.clone(),
            cards: Vec::new(),
            buttons: Vec::new(),
        }
    }

    /// Checks each address, [`LIST_CONCURRENCY`] at a time; the first is checked alone, so a
    /// refusal of the whole request stops it there.
    async fn check_all(
        &self,
        actor: &Actor,
        distinct: &[Distinct],
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<Result<Vec<crate::diagnosis::Diagnosis>, EngineError>>, EngineError> {
        let mut results = Vec::with_capacity(distinct.len());
        let Some((first, others)) = distinct.split_first() else {
            return Ok(results);
        };
        match self.actions.check_as(actor, &first.email, workspace).await {
            Err(EngineError::User(error)) => return Err(EngineError::User(error)),
            other => results.push(other),
        }
        let permits = Arc::new(tokio::sync::Semaphore::new(LIST_CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, address) in others.iter().enumerate() {
            let (chat, actor, email) = (self.clone(), actor.clone(), address.email.clone());
            let (workspace, permits) = (workspace.cloned(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = chat
                    .actions
                    .check_as(&actor, &email, workspace.as_ref())
                    .await;
                (index, result)
            });
        }
        let mut rest: Vec<Option<Result<_, EngineError>>> =
            (0..others.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, result)) = joined {
                rest[index] = Some(result);
            }
        }
        for result in rest {
            // A task that panicked is reported as that address's failure, never dropped.
            results.push(result.unwrap_or_else(|| {
                Err(EngineError::Internal(
                    "a list check task ended without an answer".into(),
                ))
            }));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(entries: &[ListEntry]) -> Vec<(usize, &str)> {
        entries.iter().map(|e| (e.line, e.input.as_str())).collect()
    }

    #[test]
    fn pasted_lists_split_on_commas_semicolons_and_spaces() {
        let entries = read_list(
            "a@x.com, b@x.com;c@x.com d@x.com,, Jane Doe <jane@x.com>",
            ListFormat::Text,
        )
        .unwrap();
        assert_eq!(
            inputs(&entries),
            [
                (1, "a@x.com"),
                (2, "b@x.com"),
                (3, "c@x.com"),
                (4, "d@x.com"),
                (5, "Jane Doe <jane@x.com>")
            ]
        );
        // A file's lines are numbered as lines.
        let entries = read_list("a@x.com\n\nnot an address\n", ListFormat::Text).unwrap();
        assert_eq!(
            inputs(&entries),
            [(1, "a@x.com"), (3, "not"), (3, "an"), (3, "address")]
        );
    }

    #[test]
    fn csv_takes_the_address_cell_and_skips_the_header() {
        let text = "name,email\nJane,jane@x.com\n\"Doe, Bob\",bob@x.com\nno address here,\n,\n";
        let entries = read_list(text, ListFormat::Csv).unwrap();
        assert_eq!(
            inputs(&entries),
            [(2, "jane@x.com"), (3, "bob@x.com"), (4, "no address here")]
        );
    }

    #[test]
    fn limits_are_refused_not_cut() {
        let many: String = (0..=MAX_LIST_ENTRIES)
            .map(|i| format!("u{i}@x.com\n"))
            .collect();
        assert_eq!(
            read_list(&many, ListFormat::Text),
            Err(ListRefusal::TooMany {
                found: MAX_LIST_ENTRIES + 1
            })
        );
        let exactly: String = (0..MAX_LIST_ENTRIES)
            .map(|i| format!("u{i}@x.com\n"))
            .collect();
        assert_eq!(
            read_list(&exactly, ListFormat::Text).unwrap().len(),
            MAX_LIST_ENTRIES
        );
        assert_eq!(
            read_list_file(&vec![b'a'; MAX_LIST_BYTES + 1], ListFormat::Text),
            Err(ListRefusal::TooLarge)
        );
        assert_eq!(
            read_list_file(&[0xff, 0xfe, 0x00], ListFormat::Text),
            Err(ListRefusal::NotText)
        );
        assert_eq!(
            read_list(" ,; \n", ListFormat::Text),
            Err(ListRefusal::Empty)
        );
    }

    #[test]
    fn formula_cells_are_made_inert() {
        assert_eq!(inert_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert_cell("@SUM(1)"), "'@SUM(1)");
        assert_eq!(inert_cell("jane@x.com"), "jane@x.com");
    }

    #[test]
    fn file_format_follows_the_name_or_type() {
        assert_eq!(ListFormat::of_file("List.CSV", None), ListFormat::Csv);
        assert_eq!(
            ListFormat::of_file("list", Some("text/csv; charset=utf-8")),
            ListFormat::Csv
        );
        assert_eq!(
            ListFormat::of_file("list.txt", Some("text/plain")),
            ListFormat::Text
        );
    }
}
