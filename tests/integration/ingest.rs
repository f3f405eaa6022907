//! The product's rows applied to the bot's store (the layer under sync, import and the push API):
//! newer rows win, older and equal ones change nothing, deletions leave the bot's view, a refused
//! row refuses its batch, a sync's watermark moves with its rows.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use invite_bot::diagnosis::Verdict;
use invite_bot::ingest::{
    parse_invitations, parse_members, ApplyReport, IngestError, RawInvitation, RawMember,
    SourceKind, ValueMaps,
};
use invite_bot::store::{ApplyOptions, Watermark};

use crate::helpers::{both_backends, TestApp};

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

fn raw(email: &str, status: &str, updated_at: &str) -> RawMember {
    RawMember {
        workspace: "prod-ws".into(),
        workspace_name: Some("Product Workspace".into()),
        email: email.into(),
        role: "learner".into(),
        status: status.into(),
        invited_at: Some("2026-11-01T09:00:00Z".into()),
        activated_at: None,
        updated_at: updated_at.into(),
        deleted: None,
    }
}

async fn apply(app: &TestApp, rows: Vec<RawMember>) -> ApplyReport {
    let records = parse_members(rows, &ValueMaps::identity(), utc()).unwrap();
    app.engine
        .store()
        .apply_members(SourceKind::Push, &records)
        .await
        .unwrap()
}

both_backends! {
    async fn newer_rows_win_and_older_or_equal_ones_change_nothing(app) {
        let first = apply(&app, vec![raw("ann@corp.example", "invited", "2026-11-02T10:00:00Z")]).await;
        assert_eq!(first, ApplyReport { applied: 1, unchanged: 0 });
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        // The same row again, and an older one: nothing changes.
        let again = apply(&app, vec![
            raw("ann@corp.example", "invited", "2026-11-02T10:00:00Z"),
            raw("ann@corp.example", "active", "2026-11-01T10:00:00Z"),
        ]).await;
        assert_eq!(again, ApplyReport { applied: 0, unchanged: 2 });
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        // A newer one replaces it (a naive local time is read as UTC, one microsecond later).
        let newer = apply(&app, vec![raw("ann@corp.example", "active", "2026-11-02 10:00:00.000001")]).await;
        assert_eq!(newer, ApplyReport { applied: 1, unchanged: 0 });
        assert_eq!(app.verdict("ann@corp.example", "prod-ws").await, Verdict::AlreadyActive);
        assert_eq!(app.count("members").await, 1);
        assert_eq!(app.count("workspaces").await, 1);
    }

    async fn repeats_within_a_batch_count_once_and_the_newest_wins(app) {
        let report = apply(&app, vec![
            raw("bo@corp.example", "active", "2026-11-03T10:00:00Z"),
            raw("BO@corp.example", "invited", "2026-11-02T10:00:00Z"),
        ]).await;
        assert_eq!(report, ApplyReport { applied: 1, unchanged: 1 });
        assert_eq!(app.verdict("bo@corp.example", "prod-ws").await, Verdict::AlreadyActive);
    }

    async fn a_deleted_member_leaves_the_view_and_a_newer_row_brings_it_back(app) {
        apply(&app, vec![raw("cy@corp.example", "invited", "2026-11-02T10:00:00Z")]).await;
        let mut gone = raw("cy@corp.example", "invited", "2026-11-03T10:00:00Z");
        gone.deleted = Some(true);
        assert_eq!(apply(&app, vec![gone]).await.applied, 1);
        assert_eq!(app.verdict("cy@corp.example", "prod-ws").await, Verdict::NotRegistered);
        // Kept for the audit log, not deleted.
        assert_eq!(app.count("members").await, 1);

        apply(&app, vec![raw("cy@corp.example", "invited", "2026-11-04T10:00:00Z")]).await;
        assert_eq!(app.verdict("cy@corp.example", "prod-ws").await, Verdict::InviteNeverSent);
    }

    async fn the_product_overrides_seeded_fixtures(app) {
        app.seed("[[workspace]]\nslug = \"prod-ws\"\nname = \"Seeded\"\n\
                  [[member]]\nworkspace = \"prod-ws\"\nemail = \"di@corp.example\"\nrole = \"learner\"\nstatus = \"invited\"\n").await;
        let report = apply(&app, vec![raw("di@corp.example", "active", "2020-01-01T00:00:00Z")]).await;
        assert_eq!(report.applied, 1);
        assert_eq!(app.verdict("di@corp.example", "prod-ws").await, Verdict::AlreadyActive);
        assert!(app.dump("workspaces").await.contains("Product Workspace"));
    }

    async fn invitations_attach_to_members_and_a_refused_row_refuses_the_batch(app) {
        apply(&app, vec![
            raw("ed@corp.example", "invited", "2026-11-02T10:00:00Z"),
            raw("flo@corp.example", "invited", "2026-11-02T10:00:00Z"),
        ]).await;
        let store = app.engine.store();
        let sent = (Utc::now() - Duration::hours(2)).to_rfc3339();
        let invitation = |email: &str, message_id: Option<&str>| RawInvitation {
            workspace: "prod-ws".into(),
            email: email.into(),
            sent_at: sent.clone(),
            expires_at: None,
            message_id: message_id.map(str::to_owned),
            updated_at: sent.clone(),
        };
        let parse = |rows| parse_invitations(rows, Duration::hours(168), utc()).unwrap();

        // One row for a member the bot does not hold: nothing of the batch lands.
        let error = store
            .apply_invitations(SourceKind::Push, &parse(vec![
                invitation("ed@corp.example", None),
                invitation("nobody@corp.example", None),
            ]))
            .await
            .unwrap_err();
        let IngestError::Rows(rows) = error else { panic!("{error}") };
        assert_eq!((rows[0].index, rows[0].field.as_str()), (1, "email"));
        assert_eq!(app.count("invitations").await, 0);

        let report = store
            .apply_invitations(SourceKind::Push, &parse(vec![invitation("ed@corp.example", None)]))
            .await
            .unwrap();
        assert_eq!(report, ApplyReport { applied: 1, unchanged: 0 });
        assert_eq!(app.verdict("ed@corp.example", "prod-ws").await, Verdict::InviteSent);

        // The same invitation later gains its Message-ID: one invitation, now with the id.
        let mut with_id = invitation("ed@corp.example", Some("<p-1@mail.product>"));
        with_id.updated_at = Utc::now().to_rfc3339();
        let report = store.apply_invitations(SourceKind::Push, &parse(vec![with_id])).await.unwrap();
        assert_eq!(report.applied, 1);
        assert_eq!(app.count("invitations").await, 1);
        assert!(app.dump("invitations").await.contains("|p-1@mail.product|"), "{}", app.dump("invitations").await);

        // Another member's invitation cannot take that Message-ID.
        let error = store
            .apply_invitations(SourceKind::Push, &parse(vec![invitation("flo@corp.example", Some("p-1@mail.product"))]))
            .await
            .unwrap_err();
        let IngestError::Rows(rows) = error else { panic!("{error}") };
        assert_eq!(rows[0].field, "message_id");
    }

    async fn a_sync_run_moves_its_watermark_with_its_rows_and_reconciles_what_is_gone(app) {
        let store = app.engine.store();
        let records = |rows| parse_members(rows, &ValueMaps::identity(), utc()).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let run = store.begin_source_run(SourceKind::ProductDb, Utc::now()).await.unwrap();
        let mark = Watermark { at: at("2026-11-02T10:00:00Z"), key: "prod-ws/b".into() };

        // A dry run works it out and keeps nothing.
        let dry = ApplyOptions { dry_run: true, run: Some((run, Some(mark.clone()))) };
        let report = store
            .apply_members_with(SourceKind::ProductDb, &records(vec![raw("a@corp.example", "invited", "2026-11-02T10:00:00Z")]), &dry, Utc::now())
            .await
            .unwrap();
        assert_eq!(report.applied, 1);
        assert_eq!(app.count("members").await, 0);
        assert_eq!(store.source_state(SourceKind::ProductDb).await.unwrap().unwrap().watermark(), None);

        let options = ApplyOptions { dry_run: false, run: Some((run, Some(mark.clone()))) };
        store
            .apply_members_with(SourceKind::ProductDb, &records(vec![
                raw("a@corp.example", "invited", "2026-11-02T10:00:00Z"),
                raw("b@corp.example", "invited", "2026-11-02T10:00:00Z"),
            ]), &options, Utc::now())
            .await
            .unwrap();
        let state = store.source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert_eq!(state.watermark(), Some(mark));
        assert_eq!(state.last_success_at, None, "a run succeeds when it ends");
        store.finish_source_run(SourceKind::ProductDb, Utc::now(), Ok(())).await.unwrap();

        // A second full run returns only `a` (unchanged): `b` leaves the view, `a` stays.
        let second = store.begin_source_run(SourceKind::ProductDb, Utc::now()).await.unwrap();
        assert_eq!(second, run + 1);
        let options = ApplyOptions { dry_run: false, run: Some((second, None)) };
        let report = store
            .apply_members_with(SourceKind::ProductDb, &records(vec![raw("a@corp.example", "invited", "2026-11-02T10:00:00Z")]), &options, Utc::now())
            .await
            .unwrap();
        assert_eq!(report, ApplyReport { applied: 0, unchanged: 1 });
        assert_eq!(store.reconcile_removed(SourceKind::ProductDb, second, Utc::now(), true).await.unwrap(), 1);
        assert_eq!(app.verdict("b@corp.example", "prod-ws").await, Verdict::InviteNeverSent, "dry run kept it");
        assert_eq!(store.reconcile_removed(SourceKind::ProductDb, second, Utc::now(), false).await.unwrap(), 1);
        assert_eq!(app.verdict("b@corp.example", "prod-ws").await, Verdict::NotRegistered);
        assert_eq!(app.verdict("a@corp.example", "prod-ws").await, Verdict::InviteNeverSent);

        store.finish_source_run(SourceKind::ProductDb, Utc::now(), Err("source down")).await.unwrap();
        let state = store.source_state(SourceKind::ProductDb).await.unwrap().unwrap();
        assert_eq!(state.last_error.as_deref(), Some("source down"));
        assert!(state.last_success_at.is_some());
    }
}

fn data_line(diagnosis: &invite_bot::diagnosis::Diagnosis) -> String {
    let last = diagnosis.findings.last().unwrap();
    assert_eq!(last.check, invite_bot::diagnosis::Check::Data);
    format!("{}: {}", last.outcome.as_str(), last.detail)
}

both_backends! {
    async fn every_card_says_where_its_data_came_from_and_how_old_it_is(app) {
        // Seeded data, and an address the bot does not hold, before any other way in was used.
        app.seed("[[workspace]]\nslug = \"prod-ws\"\nname = \"Seeded\"\n\
                  [[member]]\nworkspace = \"prod-ws\"\nemail = \"seed@corp.example\"\nrole = \"learner\"\nstatus = \"active\"\n").await;
        assert_eq!(data_line(&app.check("seed@corp.example", "prod-ws").await), "data_age: Member data seeded from fixtures.");
        assert_eq!(data_line(&app.check("nobody@corp.example", "prod-ws").await), "data_age: Member data seeded from fixtures.");

        apply(&app, vec![raw("push@corp.example", "invited", "2026-11-02T10:00:00Z")]).await;
        let line = data_line(&app.check("push@corp.example", "prod-ws").await);
        assert_eq!(line, "data_age: Member data pushed just now.");
        // An address nobody holds is answered from the latest way in.
        let line = data_line(&app.check("nobody@corp.example", "prod-ws").await);
        assert!(line.starts_with("data_age: Member data pushed "), "{line}");
        assert_eq!(data_line(&app.check("seed@corp.example", "prod-ws").await), "data_age: Member data seeded from fixtures.");
    }

    async fn data_from_a_sync_that_stopped_is_flagged_stale(app) {
        let store = app.engine.store();
        let records = parse_members(vec![raw("sync@corp.example", "invited", "2026-11-02T10:00:00Z")], &ValueMaps::identity(), utc()).unwrap();
        let two_hours_ago = Utc::now() - Duration::minutes(121);
        let run = store.begin_source_run(SourceKind::ProductDb, two_hours_ago).await.unwrap();
        let options = ApplyOptions { dry_run: false, run: Some((run, None)) };
        store.apply_members_with(SourceKind::ProductDb, &records, &options, two_hours_ago).await.unwrap();
        store.finish_source_run(SourceKind::ProductDb, two_hours_ago, Ok(())).await.unwrap();
        let line = data_line(&app.check("sync@corp.example", "prod-ws").await);
        assert!(line.starts_with("data_stale: Member data from product-db, synced 2 hours ago, longer ago than 1 hour: it may be out of date."), "{line}");

        // The sync is failing now: the card says so; the check still answers from what it holds.
        store.finish_source_run(SourceKind::ProductDb, Utc::now(), Err("connection refused")).await.unwrap();
        let diagnosis = app.check("sync@corp.example", "prod-ws").await;
        assert_eq!(diagnosis.verdict, Verdict::InviteNeverSent);
        let line = data_line(&diagnosis);
        assert!(line.contains("the last sync could not read the product's database"), "{line}");
        assert!(!line.contains("connection refused"), "{line}");

        // A sync that just succeeded confirms it again.
        store.finish_source_run(SourceKind::ProductDb, Utc::now(), Ok(())).await.unwrap();
        let line = data_line(&app.check("sync@corp.example", "prod-ws").await);
        assert!(line.starts_with("data_age: Member data from product-db, synced "), "{line}");
        let line = data_line(&app.check("nobody@corp.example", "prod-ws").await);
        assert!(line.starts_with("data_age: Member data from product-db, synced "), "{line}");
    }
}
