//! The `invite-bot` binary: output shapes and exit codes, as an operator or a script sees them.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::helpers::{both_backends, fresh_database, run_binary, stderr, stdout, Backend, TestApp};

fn invite_bot(dir: &Path, args: &[&str]) -> Output {
    run_binary(dir, &[], args)
}

const VERDICTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/integration/fixtures/verdicts.toml"
);

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn json_shape(backend: Backend) {
    let Some(database) = fresh_database(backend).await else {
        return;
    };
    let url = database.url.clone();
    let cwd = tempfile::tempdir().unwrap();
    let seeded = invite_bot(cwd.path(), &["--database-url", &url, "seed", VERDICTS]);
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    assert!(
        stdout(&seeded).starts_with("seeded 2 workspaces, 21 members"),
        "{}",
        stdout(&seeded)
    );

    let output = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            &url,
            "check",
            " <Delivered@Corp.Example> ",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let results: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let results = results.as_array().expect("a JSON array");
    assert_eq!(results.len(), 2);
    let first = &results[0];
    assert_eq!(
        keys(first),
        [
            "actions",
            "email",
            "findings",
            "member",
            "suggestions",
            "verdict",
            "workspace"
        ]
    );
    assert_eq!(first["email"], "delivered@corp.example");
    assert_eq!(first["workspace"], "acme");
    assert_eq!(first["verdict"], "invite_delivered");
    assert_eq!(keys(&first["member"]), ["email", "role", "status"]);
    assert_eq!(first["member"]["role"], "learner");
    assert_eq!(first["member"]["status"], "invited");
    assert_eq!(
        first["actions"],
        serde_json::json!(["resend_invite", "issue_activation_code", "escalate"])
    );
    for finding in first["findings"].as_array().unwrap() {
        assert_eq!(keys(finding), ["check", "detail", "outcome"]);
        assert!(["registration", "status", "delivery", "domain", "data"]
            .contains(&finding["check"].as_str().unwrap()));
    }
    assert_eq!(results[1]["workspace"], "other");
    assert_eq!(results[1]["verdict"], "already_active");
    assert_eq!(results[1]["actions"], serde_json::json!([]));

    let output = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            &url,
            "check",
            "nobody@corp.example",
            "--format",
            "json",
        ],
    );
    let results: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(results[0]["workspace"], Value::Null);
    assert_eq!(results[0]["member"], Value::Null);
    assert_eq!(results[0]["verdict"], "not_registered");
    assert_eq!(results[0]["suggestions"], serde_json::json!([]));

    let text = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            &url,
            "check",
            "bounced@corp.example",
            "--workspace",
            "acme",
        ],
    );
    assert_eq!(text.status.code(), Some(0));
    assert!(
        stdout(&text).contains("Invitation bounced"),
        "{}",
        stdout(&text)
    );
    assert!(
        stdout(&text).contains("Actions: issue_activation_code, escalate"),
        "{}",
        stdout(&text)
    );
}

#[tokio::test]
async fn json_output_has_the_documented_shape_on_sqlite() {
    json_shape(Backend::Sqlite).await;
}

#[tokio::test]
async fn json_output_has_the_documented_shape_on_postgres() {
    json_shape(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line() {
    let Some(database) = fresh_database(Backend::Sqlite).await else {
        return;
    };
    let url = database.url.clone();
    let cwd = tempfile::tempdir().unwrap();
    // An empty database: only `migrate` (or `seed`) creates one.
    let migrated = invite_bot(cwd.path(), &["--database-url", &url, "migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "jane.acme.com"],
            "error: That is not a valid email address: the address has no `@`",
        ),
        (
            &["check", "jane doe@acme.com"],
            "error: That is not a valid email address: the address contains a space",
        ),
        (
            &["check", "jane@acme.com", "--workspace", "Not A Slug"],
            "error: That is not a valid workspace",
        ),
        (
            &["check", "jane@acme.com", "--workspace", "ghost"],
            "error: There is no workspace `ghost`.",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["--database-url", url.as_str()];
        full.extend_from_slice(args);
        let output = invite_bot(cwd.path(), &full);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(expected), "{args:?}: {err}");
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn an_unreachable_database_exits_1_with_a_clear_message() {
    let cwd = tempfile::tempdir().unwrap();
    let output = invite_bot(
        cwd.path(),
        &[
            "--database-url",
            "postgres://postgres:hunter2@127.0.0.1:9/none",
            "check",
            "jane@acme.com",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("cannot reach the database"), "{err}");
    assert!(
        err.contains("postgres://postgres:***@127.0.0.1:9/none"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

#[test]
fn a_bad_fixture_exits_2_and_names_the_entry() {
    let cwd = tempfile::tempdir().unwrap();
    let fixture = cwd.path().join("bad.toml");
    std::fs::write(&fixture, "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n[[member]]\nworkspace = \"acme\"\nemail = \"x@y.example\"\nrole = \"boss\"\nstatus = \"invited\"\n").unwrap();
    let output = invite_bot(cwd.path(), &["seed", fixture.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("[[member]] #1, field `role`"),
        "{}",
        stderr(&output)
    );
    let missing = invite_bot(cwd.path(), &["seed", "nope.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read the fixture nope.toml"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_broken_config_exits_2_and_names_the_key() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("config.toml"),
        "[checks]\nresend_wait = 5\n",
    )
    .unwrap();
    let output = invite_bot(cwd.path(), &["check", "jane@acme.com"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("config.toml") && err.contains("resend_wait"),
        "{err}"
    );

    std::fs::write(
        cwd.path().join("config.toml"),
        "database_url = \"mysql://x\"\n",
    )
    .unwrap();
    let output = invite_bot(cwd.path(), &["check", "jane@acme.com"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("database_url: must start with sqlite:// or postgres://"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn with_no_config_the_defaults_work_on_sqlite() {
    let cwd = tempfile::tempdir().unwrap();
    let demo = invite_bot(cwd.path(), &["demo", "--format", "json"]);
    assert_eq!(demo.status.code(), Some(0), "{}", stderr(&demo));
    assert!(
        cwd.path().join("invite-bot.db").exists(),
        "the default SQLite file was not created"
    );
    let results: Value = serde_json::from_str(&stdout(&demo)).unwrap();
    let verdicts: std::collections::BTreeSet<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts.len(),
        11,
        "the demo shows every verdict: {verdicts:?}"
    );

    // Running the demo again is harmless, and `migrate` twice too.
    assert_eq!(invite_bot(cwd.path(), &["demo"]).status.code(), Some(0));
    assert_eq!(invite_bot(cwd.path(), &["migrate"]).status.code(), Some(0));
    let again = invite_bot(cwd.path(), &["migrate"]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again).trim(), "migrations applied (sqlite)");
}

#[test]
fn operator_actions_report_json_and_exit_codes() {
    let smtp = crate::smtp::SmtpServer::start();
    let cwd = tempfile::tempdir().unwrap();
    let fixture = cwd.path().join("people.toml");
    std::fs::write(
        &fixture,
        "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n\
         [[member]]\nworkspace = \"acme\"\nemail = \"jo@learners.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\
         [[member]]\nworkspace = \"acme\"\nemail = \"al@learners.example\"\nrole = \"learner\"\nstatus = \"active\"\n",
    )
    .unwrap();
    let env = [("SMTP_URL", smtp.url.as_str())];
    let run = |args: &[&str]| run_binary(cwd.path(), &env, args);
    let json = |output: &Output| -> Value {
        serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
    };
    assert_eq!(
        run(&["seed", fixture.to_str().unwrap()]).status.code(),
        Some(0)
    );

    let sent = run(&[
        "resend",
        "jo@learners.example",
        "--workspace",
        "acme",
        "--format",
        "json",
    ]);
    assert_eq!(sent.status.code(), Some(0), "{}", stderr(&sent));
    let body = json(&sent);
    assert_eq!(body["outcome"], "done");
    assert!(body["reference"].as_str().unwrap().starts_with("RSD-"));
    assert_eq!(smtp.received().len(), 1);

    let again = run(&[
        "resend",
        "jo@learners.example",
        "--workspace",
        "acme",
        "--format",
        "json",
    ]);
    assert_eq!(again.status.code(), Some(3));
    let body = json(&again);
    assert_eq!(body["outcome"], "refused");
    assert_eq!(body["reason"], "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("already sent"));

    let active = run(&[
        "resend",
        "al@learners.example",
        "--workspace",
        "acme",
        "--format",
        "json",
    ]);
    assert_eq!(active.status.code(), Some(3));
    assert_eq!(json(&active)["reason"], "not_offered");

    let code = run(&[
        "activation-code",
        "jo@learners.example",
        "--workspace",
        "acme",
        "--format",
        "json",
    ]);
    assert_eq!(code.status.code(), Some(0), "{}", stderr(&code));
    let body = json(&code);
    let secret = body["code"].as_str().unwrap().to_owned();
    assert!(body["expires_at"].as_str().is_some());

    let activated = run(&[
        "activate",
        "jo@learners.example",
        &secret,
        "--workspace",
        "acme",
    ]);
    assert_eq!(activated.status.code(), Some(0), "{}", stdout(&activated));
    let reused = run(&[
        "activate",
        "jo@learners.example",
        &secret,
        "--workspace",
        "acme",
    ]);
    assert_eq!(reused.status.code(), Some(3));

    let escalated = run(&[
        "escalate",
        "jo@learners.example",
        "--workspace",
        "acme",
        "--note",
        "vip",
        "--format",
        "json",
    ]);
    assert_eq!(
        escalated.status.code(),
        Some(3),
        "an active member offers no escalation: {}",
        stdout(&escalated)
    );
    let escalated = run(&[
        "escalate",
        "nobody@learners.example",
        "--workspace",
        "acme",
        "--format",
        "json",
    ]);
    assert_eq!(escalated.status.code(), Some(0), "{}", stderr(&escalated));
    assert!(json(&escalated)["reference"]
        .as_str()
        .unwrap()
        .starts_with("ESC-"));

    let bad = run(&["resend", "jo@@learners.example", "--workspace", "acme"]);
    assert_eq!(bad.status.code(), Some(2));
    let ghost = run(&["resend", "jo@learners.example", "--workspace", "ghost"]);
    assert_eq!(ghost.status.code(), Some(2));
    assert!(stderr(&ghost).contains("There is no workspace `ghost`"));

    let audit = run(&[
        "audit",
        "--email",
        "jo@learners.example",
        "--format",
        "json",
    ]);
    assert_eq!(audit.status.code(), Some(0));
    let entries = json(&audit);
    let actions: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("resend_invite", "done"),
            ("resend_invite", "refused"),
            ("issue_activation_code", "done"),
            ("redeem", "activated"),
            ("redeem", "rejected"),
            ("escalate", "refused"),
        ]
    );
    assert!(!stdout(&audit).contains(&secret));
}

#[test]
fn a_mail_server_that_is_down_exits_1() {
    let cwd = tempfile::tempdir().unwrap();
    let fixture = cwd.path().join("people.toml");
    std::fs::write(
        &fixture,
        "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n\
         [[member]]\nworkspace = \"acme\"\nemail = \"jo@learners.example\"\nrole = \"learner\"\nstatus = \"invited\"\n",
    )
    .unwrap();
    let closed = crate::smtp::closed_smtp_url();
    let env = [("SMTP_URL", closed.as_str())];
    assert_eq!(
        run_binary(cwd.path(), &env, &["seed", fixture.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    let output = run_binary(
        cwd.path(),
        &env,
        &["resend", "jo@learners.example", "--workspace", "acme"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("has not been sent yet"),
        "{}",
        stderr(&output)
    );
}

/// The binary against `app`'s database and mail server, from an empty directory.
fn against(app: &TestApp, cwd: &Path, args: &[&str]) -> Output {
    let mut full = vec!["--database-url", app.database_url()];
    full.extend_from_slice(args);
    run_binary(cwd, &[("SMTP_URL", app.smtp.url.as_str())], &full)
}

both_backends! {
    async fn format_json_before_or_after_the_subcommand_is_the_same(app) {
        let cwd = tempfile::tempdir().unwrap();
        let seeded = against(&app, cwd.path(), &["--format", "json", "seed", VERDICTS]);
        assert_eq!(seeded.status.code(), Some(0), "{}", stderr(&seeded));
        let report: Value = serde_json::from_str(&stdout(&seeded)).unwrap();
        assert_eq!(
            keys(&report),
            ["delivery_events", "invitations", "members", "suppressions", "workspaces"]
        );
        assert_eq!(report["workspaces"], 2);
        assert_eq!(report["members"], 21);

        let commands: &[&[&str]] = &[
            &["seed", VERDICTS],
            &["check", "nobody@corp.example"],
            &["check", "nobody@corp.example", "--workspace", "acme"],
            &["migrate"],
            &["audit"],
            &["retry-pending"],
        ];
        for command in commands {
            let mut before = vec!["--format", "json"];
            before.extend_from_slice(command);
            let mut after = command.to_vec();
            after.extend_from_slice(&["--format", "json"]);
            let before = against(&app, cwd.path(), &before);
            let after = against(&app, cwd.path(), &after);
            assert_eq!(before.status.code(), Some(0), "{command:?}: {}", stderr(&before));
            assert_eq!(after.status.code(), Some(0), "{command:?}: {}", stderr(&after));
            assert!(
                serde_json::from_str::<Value>(&stdout(&before)).is_ok(),
                "{command:?} did not print JSON: {}",
                stdout(&before)
            );
            assert_eq!(stdout(&before), stdout(&after), "{command:?}");
        }

        let migrated = against(&app, cwd.path(), &["migrate", "--format", "json"]);
        let backend = app.engine.store().backend().as_str();
        assert_eq!(
            serde_json::from_str::<Value>(&stdout(&migrated)).unwrap(),
            serde_json::json!({ "backend": backend })
        );
        let retried = against(&app, cwd.path(), &["--format", "json", "retry-pending"]);
        assert_eq!(
            serde_json::from_str::<Value>(&stdout(&retried)).unwrap(),
            serde_json::json!({ "invitations_sent": 0, "escalations_delivered": 0 })
        );
        // The default is text, before or after.
        let text = against(&app, cwd.path(), &["check", "nobody@corp.example", "--format", "text"]);
        assert!(serde_json::from_str::<Value>(&stdout(&text)).is_err(), "{}", stdout(&text));
        assert_eq!(stdout(&text), stdout(&against(&app, cwd.path(), &["check", "nobody@corp.example"])));
    }

    async fn the_human_output_says_what_each_command_did(app) {
        let cwd = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| against(&app, cwd.path(), args);
        let seeded = run(&["seed", VERDICTS]);
        assert_eq!(seeded.status.code(), Some(0), "{}", stderr(&seeded));
        assert!(
            stdout(&seeded).starts_with("seeded 2 workspaces, 21 members, "),
            "{}",
            stdout(&seeded)
        );
        let migrated = run(&["migrate"]);
        assert!(stdout(&migrated).starts_with("migrations applied ("), "{}", stdout(&migrated));

        let resent = run(&["resend", "delivered@corp.example", "--workspace", "acme"]);
        assert_eq!(resent.status.code(), Some(0), "{}", stderr(&resent));
        assert!(
            stdout(&resent).starts_with("Invitation resent to delivered@corp.example (ref RSD-"),
            "{}",
            stdout(&resent)
        );
        let again = run(&["resend", "delivered@corp.example", "--workspace", "acme"]);
        assert_eq!(again.status.code(), Some(3));
        assert!(
            stdout(&again).starts_with("Refused (rate_limited): An invitation was already sent"),
            "{}",
            stdout(&again)
        );
        assert!(stderr(&again).is_empty(), "{}", stderr(&again));

        let issued = run(&["activation-code", "delivered@corp.example", "--workspace", "acme"]);
        assert_eq!(issued.status.code(), Some(0), "{}", stderr(&issued));
        let text = stdout(&issued);
        let mut lines = text.lines();
        let code = lines
            .next()
            .and_then(|line| line.strip_prefix("Activation code: "))
            .unwrap_or_else(|| panic!("no code line: {text}"))
            .to_owned();
        assert!(
            lines.next().unwrap().starts_with("Activation code for delivered@corp.example"),
            "{text}"
        );
        let activated = run(&["activate", "delivered@corp.example", &code, "--workspace", "acme"]);
        assert_eq!(activated.status.code(), Some(0), "{}", stderr(&activated));
        assert_eq!(
            stdout(&activated).trim(),
            "delivered@corp.example is now active and can log in."
        );
        let reused = run(&["activate", "delivered@corp.example", &code, "--workspace", "acme"]);
        assert_eq!(reused.status.code(), Some(3));
        assert!(
            stdout(&reused).starts_with("That code is not valid for this address"),
            "{}",
            stdout(&reused)
        );

        let retried = run(&["retry-pending"]);
        assert_eq!(
            stdout(&retried).trim(),
            "sent 0 waiting invitations, delivered 0 escalations"
        );

        let audit = run(&["audit", "--email", "delivered@corp.example"]);
        assert_eq!(audit.status.code(), Some(0), "{}", stderr(&audit));
        let text = stdout(&audit);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "resend, refused resend, code, redeemed, rejected: {text}");
        for line in &lines {
            // "2026-11-30 20:45:29  " then the columns.
            let (date, rest) = line.split_at(21);
            assert!(
                chrono::NaiveDateTime::parse_from_str(date.trim_end(), "%Y-%m-%d %H:%M:%S").is_ok(),
                "{line}"
            );
            // The actor column is 24 wide: the action starts at the same place on every line.
            assert!(
                ["resend_invite ", "issue_activation_code ", "redeem "]
                    .iter()
                    .any(|action| rest[25..].starts_with(action)),
                "{line}"
            );
        }
        assert!(
            lines.iter().any(|l| l.contains("resend_invite") && l.contains(" done RSD-")),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.contains("resend_invite") && l.contains(" refused (rate_limited)")),
            "{text}"
        );
        assert!(!text.contains(&code), "the audit shows the code: {text}");
    }
}

#[test]
fn an_invalid_format_is_a_clap_error() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["--format", "yaml", "check", "jane@acme.com"][..],
        &["check", "jane@acme.com", "--format", "yaml"][..],
    ] {
        let output = invite_bot(cwd.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains("invalid value 'yaml' for '--format <FORMAT>'")
                && err.contains("[possible values: text, json, csv]"),
            "{err}"
        );
        assert!(stdout(&output).is_empty());
        assert!(
            !cwd.path().join("invite-bot.db").exists(),
            "a usage error touched the database"
        );
    }
}

#[test]
fn serve_refuses_json_output_before_starting() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [
        &["--format", "json", "serve"][..],
        &["serve", "--format", "json"][..],
    ] {
        let output = invite_bot(cwd.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with("error: `serve` has no JSON output"),
            "{err}"
        );
        assert!(!err.contains("listening on"), "{err}");
    }
}
