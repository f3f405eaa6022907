//! A grant scoped to some workspaces sees nothing of the others: no membership, no "member of
//! another workspace", no suggestion drawn from them, no name in autocompletion, and never an empty
//! answer that would give a membership away.

use invite_bot::chat::Chat;
use invite_bot::config::{Config, GrantConfig};
use invite_bot::diagnosis::{Diagnosis, Verdict};
use invite_bot::domain::{Permission, WorkspaceSlug};
use invite_bot::error::{EngineError, UserError};

use crate::helpers::{both_backends, TestApp};

const TWO_COMPANIES: &str = r#"
[[workspace]]
slug = "acme"
name = "Acme Academy"

[[workspace]]
slug = "globex"
name = "Globex Secret Project"

[[member]]
workspace = "acme"
email = "known@acme.example"
role = "learner"
status = "active"

[[member]]
workspace = "globex"
email = "ada@school.example"
role = "learner"
status = "invited"

[[member]]
workspace = "globex"
email = "jane.doe@corp.example"
role = "learner"
status = "invited"
"#;

fn grants(config: &mut Config) {
    config.permissions.grant = vec![
        GrantConfig {
            roles: vec!["acme-agents".into()],
            allow: vec![Permission::Check],
            workspaces: Some(vec![WorkspaceSlug::parse("acme").unwrap()]),
            ..Default::default()
        },
        GrantConfig {
            roles: vec!["all-agents".into()],
            allow: vec![Permission::Check],
            ..Default::default()
        },
    ];
}

/// Everything the person would read or a program would parse, as one string.
fn everything(diagnoses: &[Diagnosis]) -> String {
    diagnoses
        .iter()
        .map(|d| format!("{:?} {}", d, serde_json::to_string(&d.to_json()).unwrap()))
        .collect()
}

async fn check(
    app: &TestApp,
    roles: &[&str],
    email: &str,
    workspace: Option<&str>,
) -> Result<Vec<Diagnosis>, EngineError> {
    app.actions
        .check_as(
            &app.chat_user("7", roles),
            &app.email(email),
            workspace.map(|w| app.slug(w)).as_ref(),
        )
        .await
}

both_backends! {
    async fn a_scoped_agent_learns_nothing_about_other_workspaces(app) with grants; {
        app.seed(TWO_COMPANIES).await;
        let scoped = ["acme-agents"];

        // Asked about its own workspace: not registered there, and no word of globex.
        let in_acme = check(&app, &scoped, "ada@school.example", Some("acme")).await.unwrap();
        assert_eq!(in_acme.len(), 1);
        assert_eq!(in_acme[0].verdict, Verdict::NotRegistered);
        let text = everything(&in_acme);
        assert!(!text.contains("globex") && !text.contains("Globex"), "{text}");

        // Asked everywhere: a real not_registered answer, never an empty reply.
        let anywhere = check(&app, &scoped, "ada@school.example", None).await.unwrap();
        assert_eq!(anywhere.len(), 1, "an empty answer gives the membership away");
        assert_eq!(anywhere[0].verdict, Verdict::NotRegistered);
        assert!(anywhere[0].workspace.is_none());
        let text = everything(&anywhere);
        assert!(!text.contains("globex") && !text.contains("Globex"), "{text}");

        // A typo of a globex member's address suggests nothing to someone who cannot see globex...
        let typo = check(&app, &scoped, "jane.deo@corp.example", None).await.unwrap();
        assert_eq!(typo.len(), 1);
        assert!(typo[0].suggestions.is_empty(), "{:?}", typo[0].suggestions);
        // ...and the same as an address that exists nowhere.
        let nowhere = check(&app, &scoped, "nobody@nowhere.example", None).await.unwrap();
        assert_eq!(nowhere[0].verdict, typo[0].verdict);
        assert_eq!(nowhere[0].findings.len(), typo[0].findings.len());

        // Asking about globex by name is refused.
        let refused = check(&app, &scoped, "ada@school.example", Some("globex")).await.unwrap_err();
        assert!(matches!(refused, EngineError::User(UserError::Forbidden { .. })), "{refused:?}");

        // Its own workspace still works as before.
        let known = check(&app, &scoped, "known@acme.example", None).await.unwrap();
        assert_eq!(known[0].verdict, Verdict::AlreadyActive);
    }

    async fn an_unscoped_agent_sees_every_workspace(app) with grants; {
        app.seed(TWO_COMPANIES).await;
        let all = ["all-agents"];
        let found = check(&app, &all, "ada@school.example", None).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].workspace.as_ref().unwrap().slug.as_str(), "globex");
        let elsewhere = check(&app, &all, "ada@school.example", Some("acme")).await.unwrap();
        assert!(everything(&elsewhere).contains("globex"));
        let typo = check(&app, &all, "jane.deo@corp.example", None).await.unwrap();
        assert_eq!(typo[0].suggestions, ["jane.doe@corp.example"]);
    }

    async fn autocompletion_lists_only_workspaces_the_person_may_check(app) with grants; {
        app.seed(TWO_COMPANIES).await;
        let chat = Chat::new(app.actions.clone(), &app.config);
        let slugs = |choices: Vec<(String, String)>| choices.into_iter().map(|(_, slug)| slug).collect::<Vec<_>>();
        assert_eq!(slugs(chat.workspace_choices(&app.chat_user("1", &["acme-agents"]), "").await), ["acme"]);
        assert_eq!(slugs(chat.workspace_choices(&app.chat_user("2", &["all-agents"]), "").await), ["acme", "globex"]);
        assert!(chat.workspace_choices(&app.chat_user("3", &["visitors"]), "").await.is_empty());
    }
}
