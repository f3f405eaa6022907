//! Checks of whole lists: the chat flow's report, `/invite-check-list` against the fake Discord
//! (pasted and attached, with the size and row limits), and `invite-bot check --file`.

use invite_bot::chat::list_check::{
    read_list, ListFormat, ListReport, MAX_LIST_BYTES, MAX_LIST_ENTRIES,
};
use invite_bot::chat::Chat;
use invite_bot::diagnosis::Verdict;
use invite_bot::discord::DiscordOptions;
use invite_bot_testkit::fake_discord::{self, Recorded};

use crate::discord::{agent, outsider, DiscordApp, FIXTURE};
use crate::helpers::{both_backends, run_binary, stderr, stdout, Backend, TestApp};

/// Good, duplicate and bad lines: jane bounced, never invited but never sent, active fine.
const LIST: &str = "jane.doe@corp.example\nnever@corp.example\n  JANE.DOE@corp.example \n\
                    not-an-address\nactive@corp.example\nbob@@corp.example\n";

async fn report(app: &TestApp, text: &str) -> ListReport {
    let chat = Chat::new(app.actions.clone(), &app.config);
    chat.check_list(
        &app.operator(),
        read_list(text, ListFormat::Text).unwrap(),
        Some("acme"),
    )
    .await
    .unwrap()
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::Reader::from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

both_backends! {
    async fn a_list_reports_every_line_needing_action_first(app) {
        app.seed(FIXTURE).await;
        let report = report(&app, LIST).await;
        assert_eq!(report.addresses, 3, "duplicates are checked once");
        assert_eq!(report.counts.get("invite_bounced"), Some(&1));
        assert_eq!(report.counts.get("invite_never_sent"), Some(&1));
        assert_eq!(report.counts.get("already_active"), Some(&1));
        assert_eq!(report.needing_action, 2);
        let order: Vec<(usize, Option<&str>)> = report
            .rows
            .iter()
            .map(|r| (r.line, r.email.as_deref()))
            .collect();
        // Needing action first (in list order), then what is not an address, then the rest.
        assert_eq!(
            order,
            [
                (1, Some("jane.doe@corp.example")),
                (2, Some("never@corp.example")),
                (4, None),
                (6, None),
                (5, Some("active@corp.example")),
            ]
        );
        assert_eq!(report.rows[0].times_listed, 2);
        assert_eq!(report.rows[0].verdict, Some(Verdict::InviteBounced));
        let bad = &report.rows[2];
        assert_eq!(bad.input, "not-an-address");
        assert!(bad.problem.as_deref().unwrap().contains('@'), "{bad:?}");
        assert!(report.rows[3].problem.is_some());

        let summary = &report.summary;
        assert!(summary.contains("Checked 3 addresses in acme: 2 need action."), "{summary}");
        assert!(summary.contains("- bounced: 1"), "{summary}");
        assert!(summary.contains("- not an address: 2"), "{summary}");
        assert!(summary.contains("4: \"not-an-address\""), "{summary}");
        assert!(summary.contains("jane.doe@corp.example (2x)"), "{summary}");
        let needing = summary.find("Needing action").unwrap();
        assert!(summary[needing..].starts_with("Needing action:\njane.doe@corp.example (acme): bounced"), "{summary}");

        let rows = csv_rows(&report.csv());
        assert_eq!(rows.len(), 5, "one row per address and per unparseable line");
        assert_eq!(rows[0][2], "jane.doe@corp.example");
        assert_eq!(rows[0][4], "invite_bounced");
        assert_eq!(rows[0][5], "true");
        assert_eq!(rows[0][8], "2");
        assert_eq!(rows[2][1], "not-an-address");
        assert!(!rows[2][9].is_empty());

        // Every check was authorized and audited as one check is.
        assert!(app.audit_rows("never@corp.example").await.iter().any(|(a, o, _)| a == "check" && o == "invite_never_sent"));
    }

    async fn a_list_without_permission_is_refused_whole(app) {
        app.seed(FIXTURE).await;
        let chat = Chat::new(app.actions.clone(), &app.config);
        let nobody = app.chat_user("999", &[]);
        let refused = chat
            .check_list(&nobody, read_list(LIST, ListFormat::Text).unwrap(), Some("acme"))
            .await
            .unwrap_err();
        assert!(refused.public_message(app.engine.prompts()).to_lowercase().contains("permission"));
        // Only the first address was tried (and its refusal audited).
        assert!(app.audit_rows("never@corp.example").await.is_empty());
    }

    async fn check_file_on_the_command_line(app) {
        app.seed(FIXTURE).await;
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("people.csv");
        std::fs::write(&list, format!("email,name\n{}", LIST.replace('\n', ",x\n"))).unwrap();
        let out = dir.path().join("out.csv");
        let env = [("DATABASE_URL", app.database_url())];
        let run = |args: &[&str]| run_binary(dir.path(), &env, args);
        let done = run(&["check", "--file", list.to_str().unwrap(), "--workspace", "acme", "--csv", out.to_str().unwrap()]);
        assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
        let text = stdout(&done);
        assert!(text.contains("Checked 3 addresses in acme: 2 need action."), "{text}");
        let rows = csv_rows(&std::fs::read(&out).unwrap());
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0][2], "jane.doe@corp.example");

        let json = run(&["check", "--file", list.to_str().unwrap(), "--format", "json"]);
        assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
        let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
        assert_eq!(value["addresses"], 3);
        assert_eq!(value["rows"][0]["verdict"], "invite_bounced");

        // Too many rows: refused with the limit, exit 2, before anything is checked.
        let many = dir.path().join("many.txt");
        let text: String = (0..=MAX_LIST_ENTRIES).map(|i| format!("u{i}@corp.example\n")).collect();
        std::fs::write(&many, text).unwrap();
        let refused = run(&["check", "--file", many.to_str().unwrap()]);
        assert_eq!(refused.status.code(), Some(2));
        assert!(stderr(&refused).contains(&format!("at most {MAX_LIST_ENTRIES}")), "{}", stderr(&refused));
        // An address and --file are one or the other.
        let both = run(&["check", "jane.doe@corp.example", "--file", many.to_str().unwrap()]);
        assert_eq!(both.status.code(), Some(2));
    }
}

/// The interaction's deferral, then the edit that answers it.
async fn answer(discord: &DiscordApp, token: &str) -> Recorded {
    let callback = discord.callback(token).await;
    assert_eq!(callback.body["type"], 5, "a list is always deferred");
    let fragment = format!(
        "/webhooks/{}/{token}/messages/@original",
        fake_discord::APPLICATION_ID
    );
    discord
        .fake
        .wait_for(
            "list answer",
            |r| r.method == "PATCH" && r.path.ends_with(&fragment),
            1,
        )
        .await
        .remove(0)
}

async fn discord_lists(backend: Backend) {
    let Some(discord) =
        DiscordApp::spawn_with_options(backend, |_| {}, DiscordOptions::default()).await
    else {
        return;
    };
    let registered = discord
        .fake
        .wait_for(
            "commands",
            |r| r.method == "PUT" && r.path.contains("/commands"),
            1,
        )
        .await;
    let names: Vec<String> = registered[0]
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"invite-check-list".to_owned()), "{names:?}");

    // Pasted: one line, separated by commas.
    let pasted = LIST.trim().replace('\n', ", ");
    let token =
        discord
            .fake
            .invite_check_list(&agent(), &[("list", &pasted), ("workspace", "acme")], None);
    let edit = answer(&discord, &token).await;
    let content = edit.body["content"].as_str().unwrap();
    assert!(
        content.contains("Checked 3 addresses in acme: 2 need action."),
        "{content}"
    );
    assert_eq!(edit.files.len(), 1, "{:?}", edit.files);
    assert_eq!(edit.files[0].filename, "invite-check-list.csv");
    assert_eq!(csv_rows(&edit.files[0].bytes).len(), 5);
    assert_eq!(
        edit.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );

    // Attached CSV.
    let body = format!("email\n{LIST}");
    let url = discord
        .fake
        .host_attachment("people.csv", body.clone().into_bytes());
    let token = discord.fake.invite_check_list(
        &agent(),
        &[],
        Some(("people.csv", &url, body.len() as u64)),
    );
    let edit = answer(&discord, &token).await;
    let content = edit.body["content"].as_str().unwrap();
    assert!(
        content.contains("Checked 3 addresses: 2 need action."),
        "{content}"
    );
    assert_eq!(csv_rows(&edit.files[0].bytes).len(), 5);

    // A file Discord says is too large is not fetched; one larger than it said is cut off.
    let token = discord.fake.invite_check_list(
        &agent(),
        &[],
        Some(("big.csv", &url, MAX_LIST_BYTES as u64 + 1)),
    );
    let edit = answer(&discord, &token).await;
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("larger than 256 KiB"),
        "{}",
        edit.body
    );
    assert!(edit.files.is_empty());
    let huge = discord
        .fake
        .host_attachment("huge.txt", vec![b'a'; MAX_LIST_BYTES + 10]);
    let token = discord
        .fake
        .invite_check_list(&agent(), &[], Some(("huge.txt", &huge, 10)));
    let edit = answer(&discord, &token).await;
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("larger than 256 KiB"),
        "{}",
        edit.body
    );

    // More rows than allowed: refused with the limit.
    let rows: String = (0..=MAX_LIST_ENTRIES)
        .map(|i| format!("u{i}@corp.example\n"))
        .collect();
    let many = discord
        .fake
        .host_attachment("many.txt", rows.clone().into_bytes());
    let token =
        discord
            .fake
            .invite_check_list(&agent(), &[], Some(("many.txt", &many, rows.len() as u64)));
    let edit = answer(&discord, &token).await;
    let content = edit.body["content"].as_str().unwrap();
    assert!(
        content.contains(&format!(
            "{} entries; at most {MAX_LIST_ENTRIES}",
            MAX_LIST_ENTRIES + 1
        )),
        "{content}"
    );

    // A file from anywhere but Discord is not fetched.
    let token = discord.fake.invite_check_list(
        &agent(),
        &[],
        Some(("x.csv", "http://127.0.0.2:9/x.csv", 10)),
    );
    let edit = answer(&discord, &token).await;
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{}",
        edit.body
    );

    // Nothing given, and nobody allowed.
    let token = discord.fake.invite_check_list(&agent(), &[], None);
    assert!(answer(&discord, &token).await.body["content"]
        .as_str()
        .unwrap()
        .contains("Paste the addresses"));
    let token =
        discord
            .fake
            .invite_check_list(&outsider(), &[("list", "never@corp.example")], None);
    let refused = answer(&discord, &token).await;
    assert!(
        refused.body["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("permission"),
        "{}",
        refused.body
    );
    assert!(refused.files.is_empty());
    discord.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_list_checks_sqlite() {
    discord_lists(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_list_checks_postgres() {
    discord_lists(Backend::Postgres).await;
}
