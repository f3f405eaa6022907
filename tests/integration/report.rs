//! The workspace report (`/invite-report`, `invite-bot report`) and its bulk resend, on SQLite and
//! PostgreSQL: the counts against a workspace with a member in every state (each state the one
//! `/invite-check` gives that member), the CSV, the refusals, the bulk resend's confirmation,
//! limits and second press, the CLI's formats, and the Discord edge against the fake Discord.

use std::time::Duration;

use chrono::Utc;
use invite_bot::chat::report::{BulkReply, ReportReply};
use invite_bot::chat::Chat;
use invite_bot::config::{Config, GrantConfig};
use invite_bot::domain::Permission;
use invite_bot::report::bulk::{self, BulkAnswer, BulkProgress, BulkStage};
use invite_bot::report::{MemberState, ReportSettings, Reports};
use invite_bot::store::{BulkStart, NewBulkResend};
use invite_bot_testkit::fake_discord::{
    custom_ids, message_json, Recorded, APPLICATION_ID, CHANNEL_ID,
};
use serde_json::Value;

use crate::discord::{admin, agent, outsider, DiscordApp};
use crate::helpers::{both_backends, run_binary, stderr, stdout, Backend, TestApp};

/// One member per state in `acme` (two bounced at one company domain), and a member of `other`
/// that the report of `acme` must not count.
const EVERY_STATE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[workspace]]
slug = "other"
name = "Other"

[[member]]
workspace = "acme"
email = "active@corp.example"
role = "learner"
status = "active"

[[member]]
workspace = "acme"
email = "gone@corp.example"
role = "learner"
status = "deactivated"

[[member]]
workspace = "acme"
email = "never@corp.example"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "waiting@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "waiting@corp.example"
sent_at = "1 day ago"

[[member]]
workspace = "acme"
email = "fresh@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "fresh@corp.example"
sent_at = "1 day ago"

[[delivery_event]]
email = "fresh@corp.example"
event = "delivered"
at = "1 day ago"

[[member]]
workspace = "acme"
email = "deferred@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "deferred@corp.example"
sent_at = "1 day ago"

[[delivery_event]]
email = "deferred@corp.example"
event = "deferred"
at = "1 day ago"

[[member]]
workspace = "acme"
email = "stale@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "stale@corp.example"
sent_at = "5 days ago"

[[delivery_event]]
email = "stale@corp.example"
event = "delivered"
at = "5 days ago"

[[member]]
workspace = "acme"
email = "expired@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "expired@corp.example"
sent_at = "10 days ago"

[[member]]
workspace = "acme"
email = "one@bounce.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "one@bounce.example"
sent_at = "1 day ago"

[[delivery_event]]
email = "one@bounce.example"
event = "bounced"
bounce = "hard"
at = "1 day ago"

[[member]]
workspace = "acme"
email = "two@bounce.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "two@bounce.example"
sent_at = "1 day ago"

[[delivery_event]]
email = "two@bounce.example"
event = "bounced"
bounce = "hard"
at = "1 day ago"

[[member]]
workspace = "acme"
email = "suppressed@corp.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "suppressed@corp.example"
sent_at = "1 day ago"

[[suppression]]
email = "suppressed@corp.example"
reason = "manual"
at = "1 day ago"

[[member]]
workspace = "acme"
email = "spam@spam.example"
role = "learner"
status = "invited"

[[invitation]]
workspace = "acme"
email = "spam@spam.example"
sent_at = "1 day ago"

[[delivery_event]]
email = "spam@spam.example"
event = "spam_complaint"
at = "1 day ago"

[[member]]
workspace = "other"
email = "elsewhere@corp.example"
role = "learner"
status = "invited"
"#;

/// Each member of `acme` and the state the report must give them.
const STATES: &[(&str, MemberState)] = &[
    ("active@corp.example", MemberState::Active),
    ("gone@corp.example", MemberState::Deactivated),
    ("never@corp.example", MemberState::NeverSent),
    ("waiting@corp.example", MemberState::Waiting),
    ("fresh@corp.example", MemberState::Waiting),
    ("deferred@corp.example", MemberState::Deferred),
    ("stale@corp.example", MemberState::Stale),
    ("expired@corp.example", MemberState::Expired),
    ("one@bounce.example", MemberState::Bounced),
    ("two@bounce.example", MemberState::Bounced),
    ("suppressed@corp.example", MemberState::Suppressed),
    ("spam@spam.example", MemberState::SpamComplaint),
];

/// `count` invited members of `acme` (`member1@time.example`, ...) who were never sent an
/// invitation: all eligible for a resend.
fn never_sent(count: usize) -> String {
    let members: String = (1..=count)
        .map(|n| {
            format!(
                "[[member]]\nworkspace = \"acme\"\nemail = \"member{n}@time.example\"\nrole = \"learner\"\nstatus = \"invited\"\n\n"
            )
        })
        .collect();
    format!("[[workspace]]\nslug = \"acme\"\nname = \"Acme Academy\"\n\n{members}")
}

const ADMIN: &str = "42";
const AGENT: &str = "7";
const OTHER_AGENT: &str = "8";

/// `42` may check and resend in every workspace, `7` may only check, `8` may check `other` only.
fn grants(config: &mut Config) {
    config.permissions.grant = vec![
        GrantConfig {
            users: vec![ADMIN.into()],
            allow: vec![Permission::Check, Permission::ResendInvite],
            ..GrantConfig::default()
        },
        GrantConfig {
            users: vec![AGENT.into()],
            allow: vec![Permission::Check],
            ..GrantConfig::default()
        },
        GrantConfig {
            users: vec![OTHER_AGENT.into()],
            allow: vec![Permission::Check],
            workspaces: Some(vec![invite_bot::domain::workspace::WorkspaceSlug::parse(
                "other",
            )
            .unwrap()]),
            ..GrantConfig::default()
        },
    ];
    config.report.bulk_pause_ms = 10;
    config.report.bulk_progress_ms = 50;
}

fn reports(app: &TestApp) -> Reports {
    Reports::new(app.actions.clone(), &app.config)
}

fn chat(app: &TestApp) -> Chat {
    Chat::new(app.actions.clone(), &app.config)
}

/// CSV rows as (email, state, verdict, next step), header first.
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The reply's bulk button: its custom id, and the label.
fn button(reply: &ReportReply) -> (String, String) {
    let button = reply
        .button
        .as_ref()
        .unwrap_or_else(|| panic!("no button in {reply:?}"));
    (button.custom_id.clone(), button.label.clone())
}

async fn confirm_and_finish(
    chat: &Chat,
    actor: &invite_bot::actions::Actor,
    report: &ReportReply,
) -> (String, BulkProgress) {
    let (offer, _) = button(report);
    let BulkReply::Answer(confirmation) = chat.press_bulk(actor, &offer).await else {
        panic!("the offer started a run without confirmation");
    };
    let (confirm, _) = button(&confirmation);
    let BulkReply::Started { mut run, .. } = chat.press_bulk(actor, &confirm).await else {
        panic!("the confirmation did not start a run");
    };
    let progress = bulk::finished(&mut run, Duration::from_secs(30)).await;
    assert!(progress.finished, "{progress:?}");
    (confirm, progress)
}

both_backends! {
    async fn counts_every_state_as_the_check_gives_it(app) with grants; {
        app.seed(EVERY_STATE).await;
        let actor = app.chat_user(AGENT, &[]);
        let report = reports(&app)
            .report(&actor, &app.slug("acme"), Utc::now())
            .await
            .unwrap();
        let count = |state: MemberState| {
            report.states.iter().find(|s| s.state == state).unwrap().members
        };
        for state in MemberState::ALL {
            let expected = STATES.iter().filter(|(_, s)| *s == state).count() as i64;
            assert_eq!(count(state), expected, "{state:?}: {:#?}", report.states);
        }
        assert_eq!(report.members, STATES.len() as i64, "the member of `other` is not counted");
        assert_eq!(report.needing_action, 7);
        assert_eq!(report.eligible_for_resend, 3);
        let domains: Vec<(&str, i64)> = report
            .top_domains
            .iter()
            .map(|d| (d.domain.as_str(), d.members))
            .collect();
        assert_eq!(domains, [("bounce.example", 2), ("corp.example", 1), ("spam.example", 1)]);

        // Each member's state is the one its check gives (the report's SQL and the engine agree).
        for (email, state) in STATES {
            let verdict = app.verdict(email, "acme").await;
            assert_eq!(
                MemberState::of(verdict, *state == MemberState::Stale),
                Some(*state),
                "{email}: the check says {verdict}"
            );
        }
    }

    async fn the_csv_lists_who_needs_action_with_the_next_step(app) with grants; {
        app.seed(EVERY_STATE).await;
        let reply = chat(&app).invite_report(&app.chat_user(AGENT, &[]), Some("acme")).await;
        let file = reply.attachment.as_ref().unwrap_or_else(|| panic!("no CSV: {reply:?}"));
        assert_eq!(file.filename, "invite-report-acme.csv");
        let rows = csv_rows(&file.bytes);
        assert_eq!(rows[0], ["email", "state", "verdict", "sent_at", "next_step"]);
        let listed: Vec<(&str, &str, &str)> = rows[1..]
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("expired@corp.example", "expired", "invite_expired"),
                ("never@corp.example", "never_sent", "invite_never_sent"),
                ("one@bounce.example", "bounced", "invite_bounced"),
                ("spam@spam.example", "spam_complaint", "invite_marked_spam"),
                ("stale@corp.example", "stale", "invite_delivered"),
                ("suppressed@corp.example", "suppressed", "invite_suppressed"),
                ("two@bounce.example", "bounced", "invite_bounced"),
            ]
        );
        for row in &rows[1..] {
            assert!(!row[4].is_empty(), "a next step for {row:?}");
        }
        assert_eq!(rows[2][3], "", "never sent: no sent_at");
        assert!(!rows[1][3].is_empty(), "expired: its sent_at");
        assert!(reply.text.contains("bounce.example: 2"), "{}", reply.text);
        assert!(reply.text.contains("7 members need action"), "{}", reply.text);
        // Someone who may only check is offered no bulk resend.
        assert!(reply.button.is_none());
    }

    async fn the_csv_is_held_to_its_row_limit(app) with |c: &mut Config| { grants(c); c.report.max_csv_rows = 2; }; {
        app.seed(EVERY_STATE).await;
        let reply = chat(&app).invite_report(&app.chat_user(AGENT, &[]), Some("acme")).await;
        let rows = csv_rows(&reply.attachment.unwrap().bytes);
        assert_eq!(rows.len(), 3, "header and two rows: {rows:?}");
        assert!(reply.text.contains("first 2 of 7"), "{}", reply.text);
    }

    async fn refuses_who_may_not_check_the_workspace(app) with grants; {
        app.seed(EVERY_STATE).await;
        let chat = chat(&app);
        let reply = chat.invite_report(&app.chat_user(OTHER_AGENT, &[]), Some("acme")).await;
        assert!(reply.text.contains("`check` permission in acme"), "{}", reply.text);
        assert!(reply.attachment.is_none() && reply.button.is_none());
        let stranger = chat.invite_report(&app.chat_user("99", &[]), Some("acme")).await;
        assert!(stranger.text.contains("`check` permission"), "{}", stranger.text);
        // The same person may report on the workspace they may check.
        let other = chat.invite_report(&app.chat_user(OTHER_AGENT, &[]), Some("other")).await;
        assert!(other.text.contains("1 member"), "{}", other.text);
        let unknown = chat.invite_report(&app.chat_user(ADMIN, &[]), Some("nowhere")).await;
        assert!(unknown.text.contains("nowhere"), "{}", unknown.text);
        let missing = chat.invite_report(&app.chat_user(ADMIN, &[]), None).await;
        assert!(missing.text.contains("workspace"), "{}", missing.text);
    }

    async fn bulk_resend_confirms_then_resends_each_once_and_a_second_press_starts_nothing(app) with grants; {
        app.seed(EVERY_STATE).await;
        let chat = chat(&app);
        let admin = app.chat_user(ADMIN, &[]);
        let report = chat.invite_report(&admin, Some("acme")).await;
        let (offer, label) = button(&report);
        assert_eq!(label, "Resend all eligible (3)");

        // The offer only asks; nothing is sent before the confirmation.
        let BulkReply::Answer(confirmation) = chat.press_bulk(&admin, &offer).await else {
            panic!("started without confirmation");
        };
        assert!(confirmation.text.contains("3 members of acme"), "{}", confirmation.text);
        assert_eq!(button(&confirmation).1, "Yes, resend to 3");
        assert!(app.smtp.received().is_empty());

        // Whoever presses is authorized anew: someone who may only check starts nothing.
        let (confirm, _) = button(&confirmation);
        let BulkReply::Answer(refused) = chat.press_bulk(&app.chat_user(AGENT, &[]), &confirm).await else {
            panic!("a run started for someone who may not resend");
        };
        assert!(refused.text.contains("`resend_invite` permission"), "{}", refused.text);

        let BulkReply::Started { mut run, text } = chat.press_bulk(&admin, &confirm).await else {
            panic!("the confirmation did not start a run");
        };
        assert!(text.contains("Resending to 3 members"), "{text}");
        // Pressed again (a double click, another replica): told it runs or ran, nothing new.
        let BulkReply::Answer(again) = chat.press_bulk(&admin, &confirm).await else {
            panic!("a second run started");
        };
        assert!(again.text.contains("already running") || again.text.contains("has finished"), "{}", again.text);
        let progress = bulk::finished(&mut run, Duration::from_secs(30)).await;
        assert_eq!((progress.sent, progress.skipped, progress.failed), (3, 0, 0), "{progress:?}");
        let mut recipients: Vec<String> = app
            .smtp
            .received()
            .iter()
            .flat_map(|m| m.to.clone())
            .collect();
        recipients.sort();
        assert_eq!(recipients, ["expired@corp.example", "never@corp.example", "stale@corp.example"]);
        // Each through the resend action: its own audit row.
        for email in ["expired@corp.example", "never@corp.example", "stale@corp.example"] {
            let rows = app.audit_rows(email).await;
            assert!(rows.contains(&("resend_invite".into(), "done".into(), None)), "{email}: {rows:?}");
        }
        let summary = chat.bulk_progress_text(&progress);
        assert!(summary.contains("3 sent, 0 skipped, 0 failed"), "{summary}");
        let BulkReply::Answer(after) = chat.press_bulk(&admin, &confirm).await else {
            panic!("a finished run started again");
        };
        assert!(after.text.contains("has finished: 3 sent"), "{}", after.text);
        assert_eq!(app.smtp.received().len(), 3, "nothing sent twice");
        // Those resent are no longer eligible.
        let later = chat.invite_report(&admin, Some("acme")).await;
        assert!(later.button.is_none(), "{later:?}");
    }

    async fn bulk_resend_keeps_the_limits_and_says_why_it_skipped(app) with |c: &mut Config| { grants(c); c.actions.resends_per_actor_per_hour = 2; }; {
        app.seed(EVERY_STATE).await;
        let chat = chat(&app);
        let admin = app.chat_user(ADMIN, &[]);
        let report = chat.invite_report(&admin, Some("acme")).await;
        let (_, progress) = confirm_and_finish(&chat, &admin, &report).await;
        assert_eq!((progress.sent, progress.skipped, progress.failed), (2, 1, 0), "{progress:?}");
        assert_eq!(progress.reasons.len(), 1);
        assert_eq!(progress.reasons[0].reason, "rate_limited");
        assert_eq!(app.smtp.received().len(), 2);
        let summary = chat.bulk_progress_text(&progress);
        assert!(summary.contains("a resend limit holds: 1"), "{summary}");
    }

    async fn bulk_resend_stops_at_its_time_bound(app) with |c: &mut Config| { grants(c); c.report.bulk_pause_ms = 300; }; {
        app.seed(&never_sent(8)).await;
        // The bound is whole minutes in `[report]`: shortened here to one second. Eight members
        // 300 ms apart take over two seconds, so the run cannot reach them all.
        let mut settings = ReportSettings::from(&app.config);
        settings.bulk.max_run = Duration::from_secs(1);
        let reports = Reports::with_settings(app.actions.clone(), settings);
        let admin = app.chat_user(ADMIN, &[]);
        let acme = app.slug("acme");
        let report = reports.report(&admin, &acme, Utc::now()).await.unwrap();
        assert_eq!(report.eligible_for_resend, 8);
        let reference = reports.offer_bulk_resend(&admin, &report).await.unwrap().expect("offered");
        let BulkAnswer::Started(mut run) = reports
            .press_bulk_resend(&admin, BulkStage::Confirm, &reference, Utc::now())
            .await
            .unwrap()
        else {
            panic!("the confirmation did not start a run");
        };
        let progress = bulk::finished(&mut run, Duration::from_secs(30)).await;

        assert!(progress.finished && progress.time_up, "{progress:?}");
        assert_eq!(progress.total, 8);
        assert_eq!(progress.failed, 0, "{progress:?}");
        assert!(progress.sent >= 1 && progress.sent < 8, "{progress:?}");
        // Everyone not reached is skipped as time up, and nobody else is skipped.
        assert_eq!(progress.sent + progress.skipped, 8, "{progress:?}");
        assert_eq!(progress.reasons.len(), 1, "{progress:?}");
        assert_eq!(progress.reasons[0].reason, "time_up");
        assert_eq!(progress.reasons[0].members, progress.skipped);
        let summary = chat(&app).bulk_progress_text(&progress);
        assert!(summary.contains("(its 10 minutes were up)"), "{summary}");
        assert!(summary.contains(&format!("time was up: {}", progress.skipped)), "{summary}");

        // Sent once each, to as many as it counted; those not reached got nothing and are
        // still eligible.
        let mut recipients: Vec<String> =
            app.smtp.received().iter().flat_map(|m| m.to.clone()).collect();
        assert_eq!(recipients.len() as i64, progress.sent, "{recipients:?}");
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len() as i64, progress.sent, "nothing sent twice");
        for email in (1..=8).map(|n| format!("member{n}@time.example")) {
            let resent = recipients.contains(&email);
            assert_eq!(app.verdict(&email, "acme").await.as_str(), if resent { "invite_sent" } else { "invite_never_sent" }, "{email}");
        }
        let later = reports.report(&admin, &acme, Utc::now()).await.unwrap();
        assert_eq!(later.eligible_for_resend, 8 - progress.sent);

        // The run ended as any run ends: finished, its tally and summary in its row.
        let row = app.engine.store().find_bulk_resend(&reference).await.unwrap().unwrap();
        assert_eq!(row.state, "finished");
        assert_eq!((row.sent, row.skipped, row.failed), (progress.sent, progress.skipped, 0));
        assert!(row.summary.unwrap().contains("\"time_up\":true"));
        // Confirmed again, it starts nothing.
        assert!(matches!(
            reports.press_bulk_resend(&admin, BulkStage::Confirm, &reference, Utc::now()).await.unwrap(),
            BulkAnswer::Already(_)
        ));
        assert_eq!(app.smtp.received().len() as i64, progress.sent);
    }

    async fn bulk_resend_takes_at_most_its_bound_of_members(app) with |c: &mut Config| { grants(c); c.report.bulk_max_members = 2; }; {
        app.seed(EVERY_STATE).await;
        let chat = chat(&app);
        let admin = app.chat_user(ADMIN, &[]);
        let report = chat.invite_report(&admin, Some("acme")).await;
        let (_, progress) = confirm_and_finish(&chat, &admin, &report).await;
        assert_eq!(progress.total, 2, "at most bulk_max_members per run");
        assert_eq!(progress.sent, 2);
    }

    async fn one_run_per_workspace_and_a_run_left_by_a_stopped_process_is_interrupted(app) with grants; {
        app.seed(EVERY_STATE).await;
        let store = app.engine.store();
        let now = Utc::now();
        for reference in ["first", "second", "third"] {
            store
                .offer_bulk_resend(&NewBulkResend {
                    reference,
                    workspace: "acme",
                    offered_to: "discord:42",
                    offered_at: now,
                    eligible: 3,
                })
                .await
                .unwrap();
        }
        let lease = chrono::Duration::seconds(60);
        assert_eq!(store.start_bulk_resend("first", "discord:42", now, now + lease).await.unwrap(), BulkStart::Started);
        assert_eq!(store.start_bulk_resend("second", "discord:42", now, now + lease).await.unwrap(), BulkStart::Busy);
        assert!(matches!(
            store.start_bulk_resend("first", "discord:42", now, now + lease).await.unwrap(),
            BulkStart::AlreadyStarted(row) if row.state == "running"
        ));
        // The first run's process stops: its lease lapses, and the next start takes over.
        let later = now + lease + chrono::Duration::seconds(1);
        assert_eq!(store.start_bulk_resend("third", "discord:42", later, later + lease).await.unwrap(), BulkStart::Started);
        assert_eq!(store.find_bulk_resend("first").await.unwrap().unwrap().state, "interrupted");
        assert_eq!(store.start_bulk_resend("nothing", "discord:42", now, now + lease).await.unwrap(), BulkStart::Unknown);
    }

    async fn cli_writes_text_json_and_csv(app) with grants; {
        app.seed(EVERY_STATE).await;
        let cwd = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let mut full = vec!["--database-url", app.database_url()];
            full.extend_from_slice(args);
            run_binary(cwd.path(), &[], &full)
        };
        let text = run(&["report", "acme"]);
        assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
        let text = stdout(&text);
        assert!(text.contains("Invitation report for Acme Academy (acme): 12 members"), "{text}");
        assert!(text.contains("bounced: 2"), "{text}");
        assert!(text.contains("--format csv"), "{text}");

        let json = run(&["report", "acme", "--format", "json"]);
        assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
        let json: Value = serde_json::from_str(&stdout(&json)).unwrap();
        assert_eq!(json["members"], 12);
        assert_eq!(json["needing_action"], 7);
        assert_eq!(json["members_needing_action"].as_array().unwrap().len(), 7);
        assert_eq!(json["members_needing_action"][0]["email"], "expired@corp.example");
        assert_eq!(json["top_domains"][0]["domain"], "bounce.example");

        let csv = run(&["--format", "csv", "report", "acme"]);
        assert_eq!(csv.status.code(), Some(0), "{}", stderr(&csv));
        let rows = csv_rows(stdout(&csv).as_bytes());
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[0][0], "email");

        // CSV is the report's alone; a bad workspace is bad input.
        assert_eq!(run(&["--format", "csv", "check", "never@corp.example"]).status.code(), Some(2));
        assert_eq!(run(&["report", "Not A Slug!"]).status.code(), Some(2));
        let unknown = run(&["report", "nowhere"]);
        assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    }
}

/// The report on Discord: deferred, then edited in with the CSV attached (multipart); the bulk
/// resend's confirmation, its progress message edited while it runs, and a second press.
async fn discord_report(backend: Backend) {
    let Some(app) = DiscordApp::spawn_with_options(
        backend,
        |config| {
            config.report.bulk_pause_ms = 200;
            config.report.bulk_progress_ms = 50;
        },
        invite_bot::discord::DiscordOptions::default(),
    )
    .await
    else {
        return;
    };
    app.app.seed(EVERY_STATE).await;
    let put = app
        .fake
        .wait_for("registration", |r| r.method == "PUT", 1)
        .await
        .remove(0);
    assert_eq!(put.body[1]["name"], "invite-report");
    assert_eq!(put.body[1]["options"][0]["autocomplete"], true);

    // Someone without the permission: refused, no file.
    let token = app
        .fake
        .command(&outsider(), "invite-report", &[("workspace", "acme")]);
    let refused = edited_original(&app, &token).await;
    assert!(refused.files.is_empty());
    // (Escaped for Discord's markdown: \`check\`.)
    assert!(
        refused.body["content"]
            .as_str()
            .unwrap()
            .contains("check\\` permission"),
        "{:#}",
        refused.body
    );

    // An agent: the counts and the CSV, no bulk button.
    let token = app
        .fake
        .command(&agent(), "invite-report", &[("workspace", "acme")]);
    let callback = app.callback(&token).await;
    assert_eq!(callback.body["type"], 5, "deferred first");
    let report = edited_original(&app, &token).await;
    assert_eq!(report.files.len(), 1, "{report:?}");
    assert_eq!(report.files[0].filename, "invite-report-acme.csv");
    let rows = csv_rows(&report.files[0].bytes);
    // The Discord fixture adds `never@` (never sent) and `jane.doe@` (bounced) to ours.
    assert_eq!(rows.len(), 1 + 8, "{rows:?}");
    let content = report.body["content"].as_str().unwrap();
    assert!(
        content.contains("Invitation report for Acme Academy"),
        "{content}"
    );
    assert!(custom_ids(&report.body).is_empty());

    // An admin: "Resend all eligible (3)".
    let token = app
        .fake
        .command(&admin(), "invite-report", &[("workspace", "acme")]);
    let report = edited_original(&app, &token).await;
    let buttons = custom_ids(&report.body);
    assert_eq!(buttons.len(), 1);
    assert_eq!(buttons[0].0, "Resend all eligible (3)");
    let press = app.fake.press(&admin(), &buttons[0].1, as_message(&report));
    let confirmation = app.followup(&press).await;
    let confirm = custom_ids(&confirmation.body);
    assert_eq!(confirm[0].0, "Yes, resend to 3");
    assert!(
        app.app.smtp.received().is_empty(),
        "nothing before the confirmation"
    );

    let press = app
        .fake
        .press(&admin(), &confirm[0].1, as_message(&confirmation));
    let progress = app.followup(&press).await;
    assert!(progress.body["content"]
        .as_str()
        .unwrap()
        .contains("Resending to 3 members"));
    // A second press while it runs: told so, nothing new.
    let again = app
        .fake
        .press(&admin(), &confirm[0].1, as_message(&confirmation));
    let again = app.followup(&again).await;
    let said = again.body["content"].as_str().unwrap();
    assert!(
        said.contains("already running") || said.contains("has finished"),
        "{said}"
    );

    // The progress message is edited while it works, and last with the summary.
    let edits = format!("/webhooks/{APPLICATION_ID}/{press}/messages/");
    let summary = app
        .fake
        .wait_for(
            "the summary",
            |r| {
                r.method == "PATCH"
                    && r.path.contains(&edits)
                    && r.body["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("finished"))
            },
            1,
        )
        .await
        .remove(0);
    assert!(
        summary.body["content"]
            .as_str()
            .unwrap()
            .contains("3 sent, 0 skipped, 0 failed"),
        "{:#}",
        summary.body
    );
    let progress_edits: Vec<String> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "PATCH" && r.path.contains(&edits) && !r.path.ends_with("@original")
        })
        .map(|r| r.body["content"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        progress_edits
            .iter()
            .any(|c| c.contains("1 done") || c.contains("2 done")),
        "the progress message is edited while the run works: {progress_edits:#?}"
    );
    assert_eq!(app.app.smtp.received().len(), 3);
    app.stop().await;
}

/// The message a PATCH or follow-up body makes, so a test can press its buttons.
fn as_message(request: &Recorded) -> Value {
    let body = &request.body;
    message_json(
        "880002",
        CHANNEL_ID,
        body["content"].as_str().unwrap_or(""),
        body.get("embeds").cloned().unwrap_or(serde_json::json!([])),
        body.get("components")
            .cloned()
            .unwrap_or(serde_json::json!([])),
    )
}

/// The edit of the original answer of the interaction `token`.
async fn edited_original(app: &DiscordApp, token: &str) -> Recorded {
    let fragment = format!("/webhooks/{APPLICATION_ID}/{token}/messages/@original");
    app.fake
        .wait_for(
            "the edited answer",
            |r| r.method == "PATCH" && r.path.ends_with(&fragment),
            1,
        )
        .await
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_report_sqlite() {
    discord_report(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_report_postgres() {
    discord_report(Backend::Postgres).await;
}

/// One member alone in each workspace, so the report of that workspace is that member's verdict.
const FOLLOWED: &str = r#"
[[workspace]]
slug = "followed"
name = "Followed"

[[workspace]]
slug = "queued"
name = "Queued"

[[workspace]]
slug = "refused"
name = "Refused"

[[member]]
workspace = "followed"
email = "pat@corp.example"
role = "learner"
status = "invited"

[[member]]
workspace = "queued"
email = "quinn@corp.example"
role = "learner"
status = "invited"

[[member]]
workspace = "refused"
email = "rae@corp.example"
role = "learner"
status = "invited"
"#;

/// The verdict the report's SQL gives the only member of `workspace` (and whether it is stale),
/// after asserting that the check gives that member the same verdict.
async fn report_agrees_with_check(app: &TestApp, email: &str, workspace: &str) -> String {
    let store = app.engine.store();
    let id = store
        .find_workspace(&app.slug(workspace))
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = Utc::now();
    let stale = chrono::Duration::days(i64::from(app.config.report.stale_invite_days));
    let rows = store.report_counts(id, now, now - stale).await.unwrap();
    let counted: Vec<_> = rows.iter().filter(|r| r.members > 0).collect();
    assert_eq!(counted.len(), 1, "{workspace}: {rows:?}");
    assert_eq!(counted[0].members, 1, "{workspace}: {rows:?}");
    let check = app.verdict(email, workspace).await;
    assert_eq!(
        counted[0].verdict,
        check.as_str(),
        "{email}: the report and the check disagree"
    );
    // The list behind the CSV reads the same columns.
    let listed = store
        .members_needing_action(id, now, now - stale, false, 10)
        .await
        .unwrap();
    let needs = MemberState::of(check, counted[0].stale).is_some_and(MemberState::needs_action);
    assert_eq!(
        listed.len(),
        usize::from(needs),
        "{email} ({check}): {listed:?}"
    );
    if let Some(row) = listed.first() {
        assert_eq!(row.verdict, check.as_str());
    }
    counted[0].verdict.clone()
}

fn delivery_event(
    key: &str,
    message_id: &str,
    kind: invite_bot::domain::invitation::DeliveryEventKind,
    bounce: Option<invite_bot::domain::invitation::BounceKind>,
    at: chrono::DateTime<Utc>,
) -> invite_bot::store::NewDeliveryEvent {
    invite_bot::store::NewDeliveryEvent {
        event_key: format!("test:{key}"),
        message_ids: vec![message_id.to_owned()],
        recipient: invite_bot::domain::email::EmailAddress::parse("pat@corp.example").unwrap(),
        kind,
        bounce,
        at,
        detail: None,
    }
}

async fn webhook(app: &TestApp, events: Vec<invite_bot::store::NewDeliveryEvent>) {
    app.engine
        .store()
        .record_webhook_batch(
            &invite_bot::store::WebhookBatch {
                replay_token: None,
                events,
                suppressions: Vec::new(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
}

/// The product's invitation of pat, sent `hours_ago`, with its Message-ID.
async fn product_invitation(app: &TestApp, hours_ago: i64, message_id: &str) {
    use invite_bot::ingest::{parse_invitations, RawInvitation, SourceKind};
    let sent = (Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339();
    let row = RawInvitation {
        workspace: "followed".into(),
        email: "pat@corp.example".into(),
        sent_at: sent.clone(),
        expires_at: None,
        message_id: Some(message_id.to_owned()),
        updated_at: Utc::now().to_rfc3339(),
    };
    let rows = parse_invitations(
        vec![row],
        chrono::Duration::hours(168),
        chrono::FixedOffset::east_opt(0).unwrap(),
    )
    .unwrap();
    app.engine
        .store()
        .apply_invitations(SourceKind::Push, &rows)
        .await
        .unwrap();
}

both_backends! {
    // The report reads each member's latest sent invitation and its outcome from the member row
    // (migration 0012's triggers): after every kind of write, it still says what the check says.
    async fn the_report_follows_every_write_as_the_check_does(app) with grants; {
        use invite_bot::domain::invitation::{BounceKind, DeliveryEventKind};
        use crate::smtp::SmtpMode;
        app.seed(FOLLOWED).await;
        let hours = |h: i64| Utc::now() - chrono::Duration::hours(h);

        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_never_sent");

        // A sent invitation, four days ago: sent, then delivered (and stale), then hard-bounced
        // after it was delivered.
        product_invitation(&app, 96, "a@mail.product").await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_sent");
        webhook(&app, vec![delivery_event("a-delivered", "a@mail.product", DeliveryEventKind::Delivered, None, hours(95))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_delivered");
        webhook(&app, vec![delivery_event("a-bounced", "a@mail.product", DeliveryEventKind::Bounced, Some(BounceKind::Hard), hours(94))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_bounced");
        // A delivery reported after the hard bounce does not undo it.
        webhook(&app, vec![delivery_event("a-delivered-late", "a@mail.product", DeliveryEventKind::Delivered, None, hours(93))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_bounced");

        // A newer invitation: its own (empty) outcome, not the old one's bounce; a soft bounce of
        // it is a deferral, a delivery after that is delivered.
        product_invitation(&app, 10, "b@mail.product").await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_sent");
        webhook(&app, vec![delivery_event("b-soft", "b@mail.product", DeliveryEventKind::Bounced, Some(BounceKind::Soft), hours(9))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_deferred");
        webhook(&app, vec![delivery_event("b-delivered", "b@mail.product", DeliveryEventKind::Delivered, None, hours(8))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_delivered");
        // An event of the older invitation changes nothing now.
        webhook(&app, vec![delivery_event("a-spam", "a@mail.product", DeliveryEventKind::SpamComplaint, None, hours(7))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_delivered");

        // An early event: the provider's word on c arrives before the bot knows invitation c,
        // attached when the invitation is written.
        webhook(&app, vec![delivery_event("c-deferred", "c@mail.product", DeliveryEventKind::Deferred, None, hours(1))]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_delivered");
        product_invitation(&app, 2, "c@mail.product").await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_deferred");
        webhook(&app, vec![delivery_event("c-spam", "c@mail.product", DeliveryEventKind::SpamComplaint, None, Utc::now())]).await;
        assert_eq!(report_agrees_with_check(&app, "pat@corp.example", "followed").await, "invite_marked_spam");

        // The outbox: an invitation queued behind a 451 is not sent yet; once it goes out, it is.
        app.smtp.set_mode(SmtpMode::Temporary);
        let (actor, quinn, queued) = (app.operator(), app.email("quinn@corp.example"), app.slug("queued"));
        app.actions.resend_invite(&actor, &quinn, &queued, None).await.unwrap_err();
        assert_eq!(app.count("invitations").await, 4, "the queued invitation is written");
        assert_eq!(report_agrees_with_check(&app, "quinn@corp.example", "queued").await, "invite_never_sent");
        app.smtp.set_mode(SmtpMode::Accept);
        assert_eq!(app.actions.send_invitations_due_at(Utc::now() + chrono::Duration::hours(2)).await.unwrap(), 1);
        assert_eq!(report_agrees_with_check(&app, "quinn@corp.example", "queued").await, "invite_sent");

        // An invitation the mail server refused for good is failed, never sent; the next one is.
        app.smtp.set_mode(SmtpMode::Permanent);
        let (rae, refused) = (app.email("rae@corp.example"), app.slug("refused"));
        app.actions.resend_invite(&actor, &rae, &refused, None).await.unwrap_err();
        assert_eq!(app.count("invitations").await, 5, "the failed invitation is written");
        assert_eq!(report_agrees_with_check(&app, "rae@corp.example", "refused").await, "invite_never_sent");
        app.smtp.set_mode(SmtpMode::Accept);
        app.actions.resend_invite(&actor, &rae, &refused, None).await.unwrap();
        assert_eq!(report_agrees_with_check(&app, "rae@corp.example", "refused").await, "invite_sent");
    }
}
