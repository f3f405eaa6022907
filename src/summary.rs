//! A diagnosis summed up for people: its title, next steps and one field per finding, before any
//! chat platform shapes it. The chat flow turns it into a card; the CLI prints it as text.

use serde::Serialize;

use crate::diagnosis::{Action, Diagnosis, Severity, Verdict};
use crate::prompts::{PromptError, Prompts};

#[derive(Debug, Clone, Serialize)]
pub struct SummaryField {
    /// The check that found it, in words (`summary.j2`).
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub verdict: Verdict,
    pub severity: Severity,
    pub title: String,
    pub workspace: Option<String>,
    pub next_steps: String,
    pub fields: Vec<SummaryField>,
    pub suggestions: Vec<String>,
    pub actions: Vec<Action>,
}

impl Summary {
    pub fn for_diagnosis(diagnosis: &Diagnosis, prompts: &Prompts) -> Result<Self, PromptError> {
        let fields = diagnosis
            .findings
            .iter()
            .map(|finding| {
                Ok(SummaryField {
                    name: prompts.field_name(finding.check)?,
                    value: finding.detail.clone(),
                })
            })
            .collect::<Result<_, PromptError>>()?;
        Ok(Summary {
            verdict: diagnosis.verdict,
            severity: diagnosis.verdict.severity(),
            title: prompts.verdict_title(diagnosis.verdict, &diagnosis.facts)?,
            workspace: diagnosis.workspace.as_ref().map(|w| w.name.clone()),
            next_steps: prompts.verdict_next_steps(diagnosis.verdict, &diagnosis.facts)?,
            fields,
            suggestions: diagnosis.suggestions.clone(),
            actions: diagnosis.actions.clone(),
        })
    }
}

/// A diagnosis as plain text, the way the CLI prints it.
pub fn render_text(diagnosis: &Diagnosis, prompts: &Prompts) -> Result<String, PromptError> {
    let summary = Summary::for_diagnosis(diagnosis, prompts)?;
    let context = serde_json::json!({
        "title": summary.title,
        "workspace": diagnosis.workspace.as_ref().map(|w| serde_json::json!({"slug": w.slug.as_str(), "name": w.name})),
        "findings": diagnosis.findings,
        "suggestions": summary.suggestions,
        "next_steps": summary.next_steps,
        "actions": summary.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    });
    Ok(prompts
        .render("reply.txt.j2", &context)?
        .trim_end()
        .to_owned())
}
