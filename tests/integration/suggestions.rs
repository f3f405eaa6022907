//! "Did you mean": typed typos, stored typos, domain typos, scope, ranking and the limit.

use invite_bot::diagnosis::{Outcome, Verdict};

use crate::helpers::both_backends;

const PEOPLE: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme"

[[workspace]]
slug = "beta"
name = "Beta"

[[member]]
workspace = "acme"
email = "Jane.Doe@acme-corp.com"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "omar@gmail.com"
role = "learner"
status = "invited"

[[member]]
workspace = "acme"
email = "alexander.hamilton@bigcorp.example"
role = "trainer"
status = "active"

[[member]]
workspace = "beta"
email = "jane.doe@acme-corp.com"
role = "learner"
status = "active"

[[member]]
workspace = "beta"
email = "bob.smith@beta.example"
role = "learner"
status = "invited"
"#;

both_backends! {
    async fn a_typed_typo_suggests_the_member(app) {
        app.seed(PEOPLE).await;
        for typo in [
            "jane.deo@acme-corp.com",      // transposition
            "jane.do@acme-corp.com",       // deletion
            "jane.doee@acme-corp.com",     // insertion
            "jane.dOx@acme-corp.com",      // substitution
            "jnae.doe@acme-corp.com",      // transposition at the start
            "jane.doe@acme-crop.com",      // domain transposition
            "jane.doe@acmecorp.com",       // domain deletion
        ] {
            let diagnosis = app.check(typo, "acme").await;
            assert_eq!(diagnosis.verdict, Verdict::NotRegistered, "{typo}");
            assert_eq!(diagnosis.suggestions.first().map(String::as_str), Some("Jane.Doe@acme-corp.com"), "{typo}");
            // A suggestion is a hint only: the check stays about the typed address.
            assert!(diagnosis.member.is_none());
            assert_eq!(diagnosis.email.key(), typo.to_lowercase());
        }
    }

    async fn two_edits_are_still_suggested_but_three_are_not(app) {
        app.seed(PEOPLE).await;
        // Two edits are found when they fall in the same half of the local part (one index range).
        let two = app.check("alexander.hamiltxx@bigcorp.example", "acme").await;
        assert_eq!(two.suggestions, ["alexander.hamilton@bigcorp.example"]);
        let two_front = app.check("alexnadr.hamilton@bigcorp.example", "acme").await;
        assert_eq!(two_front.suggestions, ["alexander.hamilton@bigcorp.example"]);
        let three = app.check("alxandr.hamiltom@bigcorp.example", "acme").await;
        assert!(three.suggestions.is_empty(), "{:?}", three.suggestions);
    }

    async fn a_domain_typo_suggests_the_provider(app) {
        app.seed(PEOPLE).await;
        // A member at the right provider domain.
        let member = app.check("omar@gmial.com", "acme").await;
        assert_eq!(member.suggestions.first().map(String::as_str), Some("omar@gmail.com"));
        // Nobody at all: the provider fix is still offered.
        let nobody = app.check("zed@hotmial.com", "acme").await;
        assert_eq!(nobody.suggestions, ["zed@hotmail.com"]);
        let con = app.check("zed@gmail.con", "acme").await;
        assert_eq!(con.suggestions, ["zed@gmail.com"]);
    }

    async fn a_stored_typo_is_pointed_out_when_the_invitation_bounced(app) {
        app.seed(r#"
            [[workspace]]
            slug = "acme"
            name = "Acme"
            [[member]]
            workspace = "acme"
            email = "priya@gmial.com"
            role = "learner"
            status = "invited"
            [[invitation]]
            workspace = "acme"
            email = "priya@gmial.com"
            sent_at = "1 day ago"
            [[delivery_event]]
            email = "priya@gmial.com"
            event = "bounced"
            bounce = "hard"
            at = "1 day ago"
        "#).await;
        let diagnosis = app.check("priya@gmial.com", "acme").await;
        assert_eq!(diagnosis.verdict, Verdict::InviteBounced);
        assert_eq!(diagnosis.suggestions, ["priya@gmail.com"]);
        let typo = diagnosis.findings.iter().find(|f| f.outcome == Outcome::AddressTypo).unwrap();
        assert!(typo.detail.contains("priya@gmail.com"));
        // The member is still the one checked.
        assert_eq!(diagnosis.member.unwrap().email, "priya@gmial.com");
    }

    async fn suggestions_stay_in_the_workspace_asked_about(app) {
        app.seed(PEOPLE).await;
        let in_acme = app.check("bob.smtih@beta.example", "acme").await;
        assert!(in_acme.suggestions.is_empty(), "{:?}", in_acme.suggestions);
        let in_beta = app.check("bob.smtih@beta.example", "beta").await;
        assert_eq!(in_beta.suggestions, ["bob.smith@beta.example"]);
        let anywhere = app.try_check("bob.smtih@beta.example", None).await.unwrap();
        assert_eq!(anywhere[0].suggestions, ["bob.smith@beta.example"]);
    }

    async fn at_most_five_best_first(app) {
        let mut fixture = String::from("[[workspace]]\nslug = \"big\"\nname = \"Big\"\n");
        // Eight near-misses of "sam.lee": two at distance 1, six at distance 2.
        for local in ["sam.lxx", "sam.xxe", "sam.le", "sam.yey", "sam.lezz", "sam.leex", "sam.exe", "sam.qqe"] {
            fixture.push_str(&format!(
                "[[member]]\nworkspace = \"big\"\nemail = \"{local}@corp.example\"\nrole = \"learner\"\nstatus = \"invited\"\n"
            ));
        }
        app.seed(&fixture).await;
        let diagnosis = app.check("sam.lee@corp.example", "big").await;
        assert_eq!(diagnosis.suggestions.len(), 5, "{:?}", diagnosis.suggestions);
        assert_eq!(diagnosis.suggestions[0], "sam.le@corp.example");
        assert_eq!(diagnosis.suggestions[1], "sam.leex@corp.example");
    }

    async fn nothing_alike_means_no_suggestions(app) {
        app.seed(PEOPLE).await;
        let diagnosis = app.check("zzz.qqq@nowhere.example", "acme").await;
        assert_eq!(diagnosis.verdict, Verdict::NotRegistered);
        assert!(diagnosis.suggestions.is_empty());
        assert!(!diagnosis.findings[0].detail.contains("suggestion"));
    }
}
