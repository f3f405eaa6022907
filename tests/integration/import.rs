//! `invite-bot import FILE`: a product's export, all or nothing, every bad row reported with its
//! line and column, re-imports idempotent, large files streamed through one transaction.

use std::io::Write;

use serde_json::Value;

use crate::helpers::{both_backends, run_binary, stderr, stdout};

/// An admin-UI export of one workspace: its own column names, its own status words.
const EXPORT: &str = "Email address,User type,State,Last change,Removed\n\
    ann@corp.example,Learner,Pending,2026-11-02 10:00:00,no\n\
    bo@corp.example,Trainer,Active,2026-11-02 10:00:00,no\n\
    cy@corp.example,Learner,Disabled,2026-11-02 10:00:00,yes\n";

fn mapping_flags() -> Vec<&'static str> {
    vec![
        "--workspace",
        "acme",
        "--column",
        "email=Email address",
        "--column",
        "role=User type",
        "--column",
        "status=State",
        "--column",
        "updated_at=Last change",
        "--column",
        "deleted=Removed",
        "--role-map",
        "Learner=learner",
        "--role-map",
        "Trainer=trainer",
        "--status-map",
        "Pending=invited",
        "--status-map",
        "Active=active",
        "--status-map",
        "Disabled=deactivated",
    ]
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

both_backends! {
    async fn an_export_with_its_own_columns_and_words_imports_and_reimports_unchanged(app) {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "users.csv", EXPORT);
        let url = app.database_url().to_owned();
        let mut args = vec!["--database-url", &url, "import", &file];
        args.extend(mapping_flags());

        let mut dry = args.clone();
        dry.push("--dry-run");
        let output = run_binary(dir.path(), &[], &dry);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).starts_with("dry run: would import 3 rows: 3 to apply"), "{}", stdout(&output));
        assert_eq!(app.count("members").await, 0);

        let output = run_binary(dir.path(), &[], &args);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).starts_with("imported 3 rows: 3 applied, 0 unchanged"), "{}", stdout(&output));
        assert_eq!(app.verdict("ann@corp.example", "acme").await, invite_bot::diagnosis::Verdict::InviteNeverSent);
        assert_eq!(app.verdict("bo@corp.example", "acme").await, invite_bot::diagnosis::Verdict::AlreadyActive);
        // Removed in the product: out of the bot's view.
        assert_eq!(app.verdict("cy@corp.example", "acme").await, invite_bot::diagnosis::Verdict::NotRegistered);

        let mut json = vec!["--format", "json"];
        json.extend(&args);
        let output = run_binary(dir.path(), &[], &json);
        let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
        assert_eq!(report["applied"], 0);
        assert_eq!(report["unchanged"], 3);
    }

    async fn bad_rows_are_all_reported_with_line_and_column_and_nothing_lands(app) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{EXPORT}not-an-address,Learner,Pending,2026-11-02 10:00:00,no\n\
             dee@corp.example,Admin,Banned,2026-11-02 10:00:00,no\n"
        );
        let file = write(dir.path(), "users.csv", &text);
        let url = app.database_url().to_owned();
        let mut args = vec!["--database-url", &url, "import", &file];
        args.extend(mapping_flags());
        let output = run_binary(dir.path(), &[], &args);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let out = stdout(&output);
        assert!(out.starts_with("nothing was imported: 3 bad rows"), "{out}");
        assert!(out.contains("line 5, column Email address:"), "{out}");
        assert!(out.contains("line 6, column User type:") && out.contains("\"Admin\""), "{out}");
        assert!(out.contains("line 6, column State:") && out.contains("\"Banned\""), "{out}");
        assert_eq!(app.count("members").await, 0);

        let mut json = vec!["--format", "json"];
        json.extend(&args);
        let output = run_binary(dir.path(), &[], &json);
        assert_eq!(output.status.code(), Some(2));
        let report: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
        assert_eq!(report["bad_rows"], 3);
        assert_eq!(report["errors"][0]["line"], 5);
    }

    async fn a_bad_row_after_many_batches_still_leaves_nothing(app) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..5_000 {
            writeln!(file, r#"{{"workspace":"big","email":"user{i}@corp.example","role":"learner","status":"invited","updated_at":"2026-11-02T10:00:00Z"}}"#).unwrap();
        }
        writeln!(file, r#"{{"workspace":"big","email":"last@corp.example","role":"learner","status":"invited"}}"#).unwrap();
        drop(file);
        let url = app.database_url().to_owned();
        let output = run_binary(dir.path(), &[], &["--database-url", &url, "import", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stdout(&output).contains("line 5001, column updated_at: is missing"), "{}", stdout(&output));
        assert_eq!(app.count("members").await, 0);
        assert_eq!(app.count("workspaces").await, 0);
    }

    async fn a_file_that_cannot_be_read_as_an_export_is_a_clear_error(app) {
        let dir = tempfile::tempdir().unwrap();
        let url = app.database_url().to_owned();
        let no_column = write(dir.path(), "users.csv", "email,role,status,updated_at\n");
        let output = run_binary(dir.path(), &[], &["--database-url", &url, "import", &no_column]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("no column for `workspace`"), "{}", stderr(&output));

        let unknown = write(dir.path(), "users.xlsx", "");
        let output = run_binary(dir.path(), &[], &["--database-url", &url, "import", &unknown]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("--kind csv"), "{}", stderr(&output));

        let output = run_binary(dir.path(), &[], &["--database-url", &url, "import", "missing.csv"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("cannot read"), "{}", stderr(&output));

        let output = run_binary(dir.path(), &[], &["--database-url", &url, "import", &no_column, "--status-map", "1=banned"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains("banned"), "{}", stderr(&output));
    }
}
