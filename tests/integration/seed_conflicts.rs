//! `seed` with repeated entries: conflicting ones are errors naming both and nothing lands; exact
//! repeats land once and are counted once.

use invite_bot::fixture::FixtureError;

use crate::helpers::both_backends;

const ACME: &str = "[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n";

fn member(email: &str, role: &str, status: &str) -> String {
    format!("[[member]]\nworkspace = \"acme\"\nemail = \"{email}\"\nrole = \"{role}\"\nstatus = \"{status}\"\n")
}

fn invitation(email: &str, message_id: &str) -> String {
    format!("[[invitation]]\nworkspace = \"acme\"\nemail = \"{email}\"\nsent_at = \"2026-11-01T09:00:00Z\"\nmessage_id = \"{message_id}\"\n")
}

const SUPPRESSION: &str = "[[suppression]]\nemail = \"a@corp.example\"\nreason = \"manual\"\nat = \"2026-11-02T00:00:00Z\"\n";

both_backends! {
    async fn conflicting_repeats_are_refused_whole(app) {
        let cases = [
            [ACME, &member("a@corp.example", "learner", "invited"), &member("a@corp.example", "trainer", "invited")].concat(),
            [ACME, &member("a@corp.example", "learner", "invited"), &member("a@corp.example", "learner", "deactivated")].concat(),
            [ACME, "[[workspace]]\nslug = \"acme\"\nname = \"Acme Academy\"\n"].concat(),
            [
                ACME,
                &member("a@corp.example", "learner", "invited"),
                &member("b@corp.example", "learner", "invited"),
                &invitation("a@corp.example", "m-1"),
                &invitation("b@corp.example", "m-1"),
            ]
            .concat(),
        ];
        let seconds = ["[[member]] #2", "[[member]] #2", "[[workspace]] #2", "[[invitation]] #2"];
        for (fixture, second) in cases.iter().zip(seconds) {
            let error = app.try_seed(fixture).await.unwrap_err();
            assert!(matches!(error, FixtureError::Conflict { .. }), "{error}");
            let message = error.to_string();
            assert!(message.contains(" #1 and ") && message.contains(second), "{message}");
            for table in ["workspaces", "members", "invitations"] {
                assert_eq!(app.count(table).await, 0, "{table}: {message}");
            }
        }
    }

    async fn exact_repeats_land_once_and_count_once(app) {
        let fixture = [
            ACME,
            ACME,
            &member("a@corp.example", "learner", "invited"),
            &member("a@corp.example", "learner", "invited"),
            &invitation("a@corp.example", "m-1"),
            &invitation("a@corp.example", "m-1"),
            SUPPRESSION,
            SUPPRESSION,
        ]
        .concat();
        let report = app.seed(&fixture).await;
        assert_eq!(
            (report.workspaces, report.members, report.invitations, report.suppressions),
            (1, 1, 1, 1)
        );
        for table in ["workspaces", "members", "invitations", "suppressions"] {
            assert_eq!(app.count(table).await, 1, "{table}");
        }
    }

    async fn a_message_id_of_another_members_invitation_is_not_taken_over(app) {
        app.seed(&[ACME, &member("a@corp.example", "learner", "invited"), &invitation("a@corp.example", "m-1")].concat()).await;
        let error = app
            .try_seed(&[ACME, &member("b@corp.example", "learner", "invited"), &invitation("b@corp.example", "m-1")].concat())
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "[[invitation]] #1, field `message_id`: message id \"m-1\" belongs to another member's invitation in the database"
        );
        assert_eq!(app.count("members").await, 1, "nothing of the refused fixture landed");
        // The same fixture again is still an update of its own invitation.
        app.seed(&[ACME, &member("a@corp.example", "learner", "invited"), &invitation("a@corp.example", "m-1")].concat()).await;
        assert_eq!(app.count("invitations").await, 1);
    }
}
