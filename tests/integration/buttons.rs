//! Who sees which button, who is told what a used button did, and that every press ends its claim
//! (issue 11 #18, #19); the chat flow's words come from `prompts/chat.j2` (issue 10).

use invite_bot::actions::ActionOutcome;
use invite_bot::chat::{Chat, ChatReply, ChatUser};
use invite_bot::config::Config;
use invite_bot::domain::{AuditOutcome, AuditReason};
use invite_bot::store::AuditFilter;

use crate::helpers::{both_backends, discord_grants as grants, TestApp, ADMIN_ROLE, SUPPORT_ROLE};

struct People {
    chat: Chat,
    admin: invite_bot::actions::Actor,
    agent: invite_bot::actions::Actor,
}

async fn people(app: &TestApp) -> People {
    app.seed(crate::discord::FIXTURE).await;
    let chat = Chat::new(app.actions.clone(), &app.config);
    let user = |id: &str, name: &str, role: &str| ChatUser {
        id: id.into(),
        name: name.into(),
        roles: vec![role.into()],
    };
    People {
        admin: chat.actor(&user("333", "admin", ADMIN_ROLE)),
        agent: chat.actor(&user("111", "agent", SUPPORT_ROLE)),
        chat,
    }
}

fn labels(reply: &ChatReply) -> Vec<&str> {
    reply.buttons.iter().map(|b| b.label.as_str()).collect()
}

/// The `custom_id` of the button labelled `label`.
fn button(reply: &ChatReply, label: &str) -> String {
    let button = reply
        .buttons
        .iter()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no {label:?} in {:?}", labels(reply)));
    format!("ib:{}", button.reference)
}

/// The refused audit rows about never@corp.example, as (actor id, reason).
async fn refusals(app: &TestApp) -> Vec<(String, Option<AuditReason>)> {
    let filter = AuditFilter {
        email_key: Some("never@corp.example".into()),
        limit: 100,
        ..AuditFilter::default()
    };
    app.actions
        .read_audit(&filter)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| row.outcome == AuditOutcome::Refused)
        .map(|row| (row.actor_id, row.reason))
        .collect()
}

both_backends! {
    async fn each_person_sees_only_the_actions_they_may_take(app) with grants; {
        let p = people(&app).await;
        let agent = p.chat.invite_check(&p.agent, "never@corp.example", None).await;
        assert_eq!(labels(&agent), ["Escalate to support"], "no resend or code for a checker without those rights");
        let admin = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        // (Escalation is granted to everyone by default.)
        assert_eq!(labels(&admin), ["Resend invite", "Issue activation code", "Escalate to support"]);
    }

    async fn a_button_from_someone_elses_reply_is_refused_for_an_unauthorized_presser(app) with grants; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        let resend = button(&reply, "Resend invite");
        let refused = p.chat.press(&p.agent, &resend).await;
        assert!(refused.reply.text.contains("permission"), "{}", refused.reply.text);
        assert!(refused.finished.is_none());
        assert!(app.smtp.received().is_empty(), "nothing sent");
        assert_eq!(refusals(&app).await, [("discord:111".to_owned(), Some(AuditReason::Forbidden))]);
        // The refusal gave the button back: its admin can still use it.
        let done = p.chat.press(&p.admin, &resend).await;
        assert!(done.finished.is_some(), "{}", done.reply.text);
        assert_eq!(app.smtp.received().len(), 1);
    }

    async fn a_replay_by_an_unauthorized_actor_is_forbidden_and_audited(app) with grants; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        let resend = button(&reply, "Resend invite");
        let done = p.chat.press(&p.admin, &resend).await;
        let finished = done.finished.expect("the resend was done");
        assert!(finished.contains("done by admin"), "{finished}");

        let replay = p.chat.press(&p.agent, &resend).await;
        let text = &replay.reply.text;
        assert!(text.contains("permission"), "{text}");
        assert!(!text.contains("done by") && !text.contains("RSD-"), "the outcome is not told: {text}");
        assert!(replay.finished.is_none());
        assert_eq!(refusals(&app).await, [("discord:111".to_owned(), Some(AuditReason::Forbidden))]);
        assert_eq!(app.smtp.received().len(), 1, "nothing sent again");
    }

    async fn a_replay_by_an_authorized_actor_gets_the_outcome_and_is_audited(app) with grants; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        let resend = button(&reply, "Resend invite");
        let finished = p.chat.press(&p.admin, &resend).await.finished.expect("done");

        let replay = p.chat.press(&p.admin, &resend).await;
        let text = &replay.reply.text;
        assert!(text.contains("already done") && text.contains(&finished), "{text}");
        assert!(replay.finished.is_none());
        assert_eq!(refusals(&app).await, [("discord:333".to_owned(), Some(AuditReason::AlreadyDone))]);
        assert_eq!(app.smtp.received().len(), 1, "nothing sent again");
    }

    async fn a_button_refused_as_already_done_is_not_being_handled_later(app) with grants; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        let resend = button(&reply, "Resend invite");
        // Another bot instance acted on this very button (its reference is the idempotency key)
        // without this record hearing of it.
        let outcome = app
            .actions
            .resend_invite(&p.admin, &app.email("never@corp.example"), &app.slug("acme"), Some(&resend[3..]))
            .await
            .unwrap();
        assert!(matches!(outcome, ActionOutcome::Done(_)));

        let first = p.chat.press(&p.admin, &resend).await;
        assert!(first.reply.text.to_lowercase().contains("already done"), "{}", first.reply.text);
        let record = app.engine.store().find_button(&resend[3..]).await.unwrap().unwrap();
        assert!(record.outcome.is_some(), "the claim ended with the refusal: {record:?}");

        let again = p.chat.press(&p.admin, &resend).await;
        let text = &again.reply.text;
        assert!(!text.contains("being handled"), "{text}");
        assert!(text.contains("already done"), "{text}");
        assert_eq!(app.smtp.received().len(), 1);
    }

    async fn the_activation_code_reply_always_warns_not_to_open_the_link(app) with grants; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "jane.doe@corp.example", None).await;
        let issue = button(&reply, "Issue activation code");
        let outcome = p.chat.press(&p.admin, &issue).await;
        let text = &outcome.reply.text;
        assert!(outcome.reply.ephemeral);
        let code_line = text.lines().find(|l| l.starts_with("Activation code:")).unwrap_or_else(|| panic!("{text}"));
        assert!(code_line.contains("UTC"), "{code_line}");
        assert!(text.contains("Do not open the activation link yourself"), "{text}");
        assert!(text.contains("privately"), "{text}");
        let finished = outcome.finished.unwrap();
        let code = code_line.split_whitespace().nth(2).unwrap();
        assert!(!finished.contains(code), "the code never reaches the shared message");
    }

    async fn a_template_edit_translates_the_chat_words(app) with |config: &mut Config| {
        grants(config);
        config.prompts_dir = Some(translated_prompts());
    }; {
        let p = people(&app).await;
        let reply = p.chat.invite_check(&p.admin, "never@corp.example", None).await;
        assert_eq!(labels(&reply), ["Einladung erneut senden", "Aktivierungscode ausstellen", "Escalate to support"]);
        let listener = p.chat.on_message(&p.agent, "never@corp.example hat nichts bekommen").await.unwrap();
        assert_eq!(listener.text, "Der Support kann nachsehen.");
        assert_eq!(labels(&listener), ["Prüfen: never@corp.example"]);
        let forged = p.chat.press(&p.admin, "ib:AAAAAAAAAAAAAAAAAAAAAAAA").await;
        assert_eq!(forged.reply.text, "Diesen Knopf kennt der Bot nicht.");
        // A label the template makes too long is still cut to Discord's 80 characters.
        let suggestion = p.chat.invite_check(&p.agent, "jane.deo@corp.example", None).await;
        let label = suggestion.buttons.iter().find(|b| b.action == invite_bot::chat::ButtonAction::Check).unwrap();
        assert_eq!(label.label.chars().count(), 80, "{}", label.label);
    }
}

/// The built-in templates with some of `chat.j2` in German, as an operator would edit a copy.
fn translated_prompts() -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    for (name, text) in invite_bot::prompts::builtin_files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = if name == "chat.j2" {
            text.replace(">Resend invite<", ">Einladung erneut senden<")
                .replace("%}Resend invite{%", "%}Einladung erneut senden{%")
                .replace("%}Issue activation code{%", "%}Aktivierungscode ausstellen{%")
                .replace("Check {{ f.email }}", "Prüfen: {{ f.email }}")
                .replace("Did you mean {{ f.email }}?", "Meinten Sie vielleicht, und diese Frage hat ein Übersetzer sehr lang gemacht, die Adresse {{ f.email }}?")
                .replace(
                    "Support can check why an invitation did not arrive; the result is shown only to the person who presses.",
                    "Der Support kann nachsehen.",
                )
                .replace(
                    "This button is not one the bot offered (or its record is gone); run the check again.",
                    "Diesen Knopf kennt der Bot nicht.",
                )
        } else {
            text.to_owned()
        };
        std::fs::write(path, text).unwrap();
    }
    dir
}
