//! `invite-bot import FILE`: a product's user export (CSV or JSON Lines), all or nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::app::config::Config;
use crate::app::startup;
use crate::ingest::export_file::{ColumnMap, FileKind, ImportSettings};
use crate::ingest::import::{import_members, ImportFailure, ImportJob};
use crate::ingest::{parse_offset, ValueMap, ValueMaps};

use super::output::{print_facts, words};
use super::{Failure, Format, ImportArgs};

pub(super) async fn import(
    config: &Config,
    args: &ImportArgs,
    format: Format,
) -> Result<(), Failure> {
    let job = job(config, args)?;
    let actions = startup::build(config).await?;
    let engine = actions.engine();
    let prompts = engine.prompts();
    let progress = |rows: u64, seconds: f64| {
        let facts =
            json!({ "rows": rows, "rows_per_second": (rows as f64 / seconds.max(0.001)) as u64 });
        if let Ok(line) = prompts.cli_text("import_progress", &facts) {
            eprintln!("{line}");
        }
    };
    let outcome = import_members(engine.store(), job, progress).await;
    engine.store().close().await;
    match outcome {
        Ok(report) => {
            let facts = serde_json::to_value(report)
                .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
            print_facts(prompts, format, "imported", &facts)
        }
        Err(ImportFailure::BadRows { listed, count }) => {
            let facts = json!({ "imported": false, "bad_rows": count, "errors": listed });
            match format {
                Format::Json => println!("{facts}"),
                Format::Text => println!("{}", words(prompts, "import_refused", &facts)?),
            }
            Err(Failure::bad_input(""))
        }
        Err(ImportFailure::File(error)) => Err(Failure::bad_input(format!(
            "{}: {error}",
            args.file.display()
        ))),
        Err(ImportFailure::Store(error)) => Err(Failure::from_store(error)),
    }
}

/// The import as asked: flags over `[import]` in the config.
fn job<'a>(config: &Config, args: &'a ImportArgs) -> Result<ImportJob<'a>, Failure> {
    let defaults = &config.import;
    let kind = args
        .kind
        .or_else(|| FileKind::from_path(&args.file))
        .ok_or_else(|| {
            Failure::bad_input(format!(
                "cannot tell the kind of {} from its name: pass --kind csv or --kind jsonl",
                args.file.display()
            ))
        })?;
    let mut columns = defaults.columns.clone();
    columns.extend(pairs("--column", &args.columns)?);
    let columns =
        ColumnMap::new(columns).map_err(|e| Failure::bad_input(format!("--column: {e}")))?;
    let mut role = defaults.role_map.clone();
    role.extend(pairs("--role-map", &args.role_map)?);
    let mut status = defaults.status_map.clone();
    status.extend(pairs("--status-map", &args.status_map)?);
    let maps = ValueMaps {
        role: ValueMap::new(role),
        status: ValueMap::new(status),
    };
    maps.check().map_err(Failure::bad_input)?;
    let zone_text = args.timezone.as_deref().unwrap_or(&defaults.timezone);
    let zone =
        parse_offset(zone_text).map_err(|e| Failure::bad_input(format!("--timezone: {e}")))?;
    Ok(ImportJob {
        path: Path::new(&args.file),
        kind,
        settings: ImportSettings {
            columns,
            workspace: args
                .workspace
                .clone()
                .or_else(|| defaults.workspace.clone()),
        },
        maps,
        zone,
        dry_run: args.dry_run,
    })
}

/// `NAME=VALUE` flags as a map.
fn pairs(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    values
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() => {
                Ok((from.trim().to_owned(), to.trim().to_owned()))
            }
            _ => Err(Failure::bad_input(format!(
                "{flag} {pair:?}: write it as NAME=VALUE"
            ))),
        })
        .collect()
}
