//! `seed`: idempotent, all or nothing, and precise about mistakes.

use invite_bot::fixture::FixtureError;

use crate::helpers::both_backends;

const GOOD: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme"

[[member]]
workspace = "acme"
email = "jane@acme-corp.com"
role = "learner"
status = "invited"
invited_at = "2026-11-01T09:00:00Z"

[[invitation]]
workspace = "acme"
email = "jane@acme-corp.com"
sent_at = 2026-11-01T09:05:00Z
expires_at = "2026-11-08T09:05:00Z"
message_id = "m-1"

[[delivery_event]]
email = "jane@acme-corp.com"
message_id = "m-1"
event = "deferred"
at = "2026-11-01T09:06:00Z"

[[delivery_event]]
email = "jane@acme-corp.com"
event = "deferred"
at = "2026-11-01T09:36:00Z"

[[suppression]]
email = "spam@acme-corp.com"
reason = "spam_complaint"
at = "2026-11-02T00:00:00Z"
"#;

both_backends! {
    async fn seeding_twice_changes_nothing(app) {
        let first = app.seed(GOOD).await;
        assert_eq!((first.workspaces, first.members, first.invitations, first.delivery_events, first.suppressions), (1, 1, 1, 2, 1));
        app.seed(GOOD).await;
        for (table, rows) in [("workspaces", 1), ("members", 1), ("invitations", 1), ("delivery_events", 2), ("suppressions", 1)] {
            assert_eq!(app.count(table).await, rows, "{table}");
        }
    }

    async fn a_bad_fixture_is_rejected_whole(app) {
        // Everything is valid except the last event, which names an unknown message:
        // nothing of the fixture may land.
        let bad = format!("{GOOD}\n[[delivery_event]]\nemail = \"jane@acme-corp.com\"\nmessage_id = \"nope\"\nevent = \"delivered\"\nat = \"now\"\n");
        let error = app.try_seed(&bad).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "[[delivery_event]] #3, field `message_id`: no invitation has message id \"nope\""
        );
        for table in ["workspaces", "members", "invitations", "delivery_events", "suppressions"] {
            assert_eq!(app.count(table).await, 0, "{table} was half-loaded");
        }
    }

    async fn references_must_exist(app) {
        let unknown_workspace = "[[member]]\nworkspace = \"ghost\"\nemail = \"a@b.example\"\nrole = \"learner\"\nstatus = \"invited\"\n";
        let error = app.try_seed(unknown_workspace).await.unwrap_err();
        assert_eq!(error.to_string(), "[[member]] #1, field `workspace`: no workspace `ghost` in the fixture or the database");

        let not_a_member = "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n[[invitation]]\nworkspace = \"acme\"\nemail = \"x@y.example\"\nsent_at = \"now\"\n";
        let error = app.try_seed(not_a_member).await.unwrap_err();
        assert!(error.to_string().starts_with("[[invitation]] #1, field `email`"), "{error}");
        assert_eq!(app.count("workspaces").await, 0);

        let no_invitation = format!("{GOOD}\n[[delivery_event]]\nemail = \"other@acme-corp.com\"\nevent = \"delivered\"\nat = \"now\"\n");
        let error = app.try_seed(&no_invitation).await.unwrap_err();
        assert!(error.to_string().contains("no invitation was sent to other@acme-corp.com"), "{error}");
    }

    async fn a_later_seed_builds_on_earlier_data(app) {
        app.seed(GOOD).await;
        app.seed("[[member]]\nworkspace = \"acme\"\nemail = \"bob@acme-corp.com\"\nrole = \"trainer\"\nstatus = \"active\"\n").await;
        assert_eq!(app.count("members").await, 2);
    }
}

#[test]
fn field_errors_are_named_before_touching_a_database() {
    let cases = [
        ("[[member]]\nworkspace = \"acme\"\nemail = \"not-an-address\"\nrole = \"learner\"\nstatus = \"invited\"\n",
         "[[member]] #1, field `email`: the address has no `@`"),
        ("[[member]]\nworkspace = \"acme\"\nemail = \"a@b.example\"\nrole = \"learner\"\nstatus = \"pending\"\n",
         "[[member]] #1, field `status`: expected invited, active or deactivated, got \"pending\""),
        ("[[delivery_event]]\nemail = \"a@b.example\"\nevent = \"bounced\"\nat = \"now\"\n",
         "[[delivery_event]] #1, field `bounce`: a bounced event needs bounce = \"hard\" or \"soft\""),
        ("[[suppression]]\nemail = \"a@b.example\"\nreason = \"angry\"\nat = \"now\"\n",
         "[[suppression]] #1, field `reason`: expected hard_bounce, spam_complaint, unsubscribe or manual, got \"angry\""),
        ("[[invitation]]\nworkspace = \"acme\"\nemail = \"a@b.example\"\nsent_at = \"whenever\"\n",
         "[[invitation]] #1, field `sent_at`: \"whenever\" is not a time"),
    ];
    for (text, expected) in cases {
        let error =
            invite_bot::fixture::Fixture::parse(text, "f.toml", chrono::Utc::now()).unwrap_err();
        assert!(matches!(error, FixtureError::Entry { .. }));
        assert!(
            error.to_string().starts_with(expected),
            "{error}\nexpected: {expected}"
        );
    }
}
