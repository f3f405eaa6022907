//! `invite-bot check ADDRESS [--workspace W]`: why an invitation did not arrive; with `--file`,
//! for every address of a list.

use std::path::Path;

use crate::chat::list_check::{read_list_file, ListFormat, MAX_LIST_BYTES};
use crate::chat::Chat;
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::error::UserError;
use crate::prompts::Prompts;

use super::operator::{operator_actions, parse_workspace};
use super::output::{print_diagnoses, print_pretty_json};
use super::{Failure, Format};

pub(super) async fn check(
    config: &Config,
    email: &str,
    workspace: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    // Input is checked before any connection is made: a typo should not wait on a database.
    let email = EmailAddress::parse(email).map_err(UserError::from)?;
    let workspace = parse_workspace(workspace)?;
    let (actions, operator) = operator_actions(config).await?;
    let diagnoses = actions
        .check_as(&operator, &email, workspace.as_ref())
        .await?;
    print_diagnoses(actions.engine().prompts(), &diagnoses, format)?;
    actions.engine().store().close().await;
    Ok(())
}

/// `invite-bot check --file FILE [--workspace W] [--csv OUT]`: every address of a list. The file
/// is read (and refused when too large, not text or too long) before any connection is made.
pub(super) async fn check_file(
    config: &Config,
    file: &Path,
    workspace: Option<&str>,
    csv: Option<&Path>,
    format: Format,
) -> Result<(), Failure> {
    let workspace = parse_workspace(workspace)?;
    let bytes = read_bounded(file)?;
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let entries = match read_list_file(&bytes, ListFormat::of_file(name, None)) {
        Ok(entries) => entries,
        Err(refusal) => {
            let prompts = Prompts::load(config.prompts_dir.as_deref())?;
            return Err(Failure::bad_input(refusal.words(&prompts)));
        }
    };
    let (actions, operator) = operator_actions(config).await?;
    let chat = Chat::new(actions.clone(), config);
    let report = chat
        .check_list(&operator, entries, workspace.as_ref().map(|w| w.as_str()))
        .await?;
    if let Some(out) = csv {
        let written = if out == Path::new("-") {
            std::io::Write::write_all(&mut std::io::stdout(), &report.csv())
        } else {
            std::fs::write(out, report.csv())
        };
        written.map_err(|e| Failure::operational(format!("{}: {e}", out.display())))?;
    }
    match format {
        Format::Json => print_pretty_json(&report)?,
        // The CSV on stdout is the output; the summary would mix into it.
        Format::Text if csv == Some(Path::new("-")) => eprintln!("{}", report.summary),
        Format::Text => println!("{}", report.summary),
    }
    actions.engine().store().close().await;
    Ok(())
}

/// The file, refused with the list's own words when larger than a list can be.
fn read_bounded(file: &Path) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| Failure::bad_input(format!("{}: {e}", file.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .map_err(unreadable)?
        // One byte more than allowed is enough to tell "too large".
        .take(MAX_LIST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}
