//! How results reach the terminal: JSON is data and stays in code; text for people comes from
//! `prompts/cli.j2` (or the verdict and action templates).

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;

use crate::actions::ActionOutcome;
use crate::diagnosis::Diagnosis;
use crate::domain::AuditOutcome;
use crate::error::error_chain;
use crate::prompts::Prompts;
use crate::summary::render_text;

use super::{Failure, Format};

/// A `cli.j2` macro rendered with `facts`.
pub(super) fn words(
    prompts: &Prompts,
    name: &str,
    facts: &serde_json::Value,
) -> Result<String, Failure> {
    Ok(prompts.cli_text(name, facts)?)
}

/// Prints a result whose facts are also its JSON: the facts as one JSON line, or the `cli.j2` macro
/// `name` rendered with them.
pub(super) fn print_facts(
    prompts: &Prompts,
    format: Format,
    name: &str,
    facts: &serde_json::Value,
) -> Result<(), Failure> {
    match format {
        Format::Json => println!("{facts}"),
        Format::Text => println!("{}", words(prompts, name, facts)?),
    }
    Ok(())
}

pub(super) fn print_pretty_json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::operational(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Diagnoses: a JSON array, or each diagnosis in words under its address.
pub(super) fn print_diagnoses(
    prompts: &Prompts,
    diagnoses: &[Diagnosis],
    format: Format,
) -> Result<(), Failure> {
    match format {
        Format::Json => {
            let json: Vec<_> = diagnoses.iter().map(|d| d.to_json()).collect();
            print_pretty_json(&json)?;
        }
        Format::Text => {
            let mut blocks = Vec::with_capacity(diagnoses.len());
            for diagnosis in diagnoses {
                let text = render_text(diagnosis, prompts)
                    .map_err(|e| Failure::operational(error_chain(&e)))?;
                blocks.push(format!("{}\n{text}", diagnosis.email));
            }
            println!("{}", blocks.join("\n\n────────\n\n"));
        }
    }
    Ok(())
}

/// Prints an action's outcome; a refusal exits 3.
pub(super) fn report_action(
    prompts: &Prompts,
    outcome: ActionOutcome,
    format: Format,
) -> Result<(), Failure> {
    match format {
        Format::Json => println!("{}", action_json(&outcome)),
        Format::Text => println!("{}", action_text(prompts, &outcome)?),
    }
    match outcome {
        ActionOutcome::Done(_) => Ok(()),
        ActionOutcome::Refused(_) => Err(Failure::refused()),
    }
}

fn action_json(outcome: &ActionOutcome) -> serde_json::Value {
    match outcome {
        ActionOutcome::Done(done) => {
            let mut json = json!({
                "outcome": AuditOutcome::Done,
                "action": done.action,
                "reason": null,
                "message": done.summary,
                "reference": done.reference,
            });
            if let Some(code) = &done.activation_code {
                // The operator asked for the code; this is one of the two places it is printed.
                let field = match code.form {
                    crate::actions::IssuedForm::ProductLink => "activation_url",
                    _ => "code",
                };
                json[field] = code.code.expose_secret().into();
                json["expires_at"] = code.expires_at.map(|at| at.to_rfc3339()).into();
            }
            json
        }
        ActionOutcome::Refused(refusal) => json!({
            "outcome": AuditOutcome::Refused,
            "reason": refusal.reason,
            "message": refusal.message,
        }),
    }
}

/// The summary is already words (actions.j2); `cli.j2` frames it.
fn action_text(prompts: &Prompts, outcome: &ActionOutcome) -> Result<String, Failure> {
    match outcome {
        ActionOutcome::Done(done) => match &done.activation_code {
            // The operator asked for the code; this is the other place it is printed.
            Some(code) if code.form == crate::actions::IssuedForm::ProductLink => words(
                prompts,
                "activation_link",
                &json!({ "link": code.code.expose_secret(), "summary": done.summary }),
            ),
            Some(code) => words(
                prompts,
                "activation_code",
                &json!({ "code": code.code.expose_secret(), "summary": done.summary }),
            ),
            None => Ok(done.summary.clone()),
        },
        ActionOutcome::Refused(refusal) => words(
            prompts,
            "action_refused",
            &json!({ "reason": refusal.reason.as_str(), "message": refusal.message }),
        ),
    }
}
