//! `invite-bot report WORKSPACE [--format text|json|csv]`: the workspace report as the local
//! operator sees it (the `check` permission of `[permissions] operator`).
//!
//! Text: the counts and the top failing domains in the words of `prompts/report.j2`. JSON: the
//! report and the members needing action. CSV: one row per member needing action (at most
//! `[report] max_csv_rows`), the same file `/invite-report` attaches.

use std::io::Write;

use serde_json::json;

use crate::config::Config;
use crate::domain::workspace::WorkspaceSlug;
use crate::error::UserError;
use crate::report::Reports;

use super::operator::operator_actions;
use super::{Failure, OutputFormat};

pub(super) async fn report(
    config: &Config,
    workspace: &str,
    format: OutputFormat,
) -> Result<(), Failure> {
    // Checked before any connection is made: a typo should not wait on a database.
    let workspace = WorkspaceSlug::parse(workspace).map_err(UserError::from)?;
    let (actions, operator) = operator_actions(config).await?;
    let reports = Reports::new(actions.clone(), config);
    let prompts = actions.engine().prompts();
    let report = reports
        .report(&operator, &workspace, chrono::Utc::now())
        .await?;
    let limit = reports.settings().max_csv_rows;
    let members = if report.needing_action > 0 && format != OutputFormat::Text {
        reports
            .members_needing_action(&report, false, limit)
            .await?
    } else {
        Vec::new()
    };
    match format {
        OutputFormat::Text => {
            println!("{}", prompts.report_text("report", &json!(report))?);
            if report.needing_action > 0 {
                println!(
                    "{}",
                    prompts.report_text("list_hint", &json!({ "workspace": report.workspace }))?
                );
            }
        }
        OutputFormat::Json => {
            let mut value = json!(report);
            value["members_needing_action"] = json!(members);
            super::output::print_pretty_json(&value)?;
        }
        OutputFormat::Csv => {
            let bytes = reports.csv(&members)?;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|e| Failure::operational(format!("cannot write the CSV: {e}")))?;
        }
    }
    actions.engine().store().close().await;
    Ok(())
}
