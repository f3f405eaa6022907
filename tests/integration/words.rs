//! Every word a person reads comes from `prompts/`: an edited copy of it, named by `prompts_dir`,
//! changes what the checks and the actions say, with no code involved.

use invite_bot::actions::ActionOutcome;
use invite_bot::app::config::Config;
use invite_bot::summary::{render_text, Summary};

use crate::helpers::both_backends;

const FIXTURE: &str = include_str!("fixtures/verdicts.toml");

/// The built-in templates copied to a fresh directory (kept until the test removes it), with a
/// few words translated into Dutch.
fn translated_prompts() -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    for (name, text) in invite_bot::prompts::builtin_files() {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for (file, from, to) in [
        ("time.j2", "}} ago", "}} geleden"),
        (
            "time.j2",
            r#"{{ n }} day{{ "s" if n != 1 }}"#,
            r#"{{ n }} dag{{ "en" if n != 1 }}"#,
        ),
        (
            "findings.j2",
            "Its activation link expired",
            "De activeringslink verliep",
        ),
        ("summary.j2", "Delivery", "Bezorging"),
        (
            "verdicts/invite_expired.j2",
            "Invitation expired",
            "Uitnodiging verlopen",
        ),
        ("verdicts/already_active.j2", "Already active", "Al actief"),
        (
            "actions.j2",
            "is not offered here",
            "wordt hier niet aangeboden",
        ),
        ("reply.txt.j2", "Next steps:", "Volgende stappen:"),
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} no longer says {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }
    dir
}

both_backends! {
    async fn an_edited_copy_of_the_prompts_is_what_the_bot_says(app) with |c: &mut Config| c.prompts_dir = Some(translated_prompts()); {
        app.seed(FIXTURE).await;
        let diagnosis = app.check("expired@corp.example", "acme").await;
        let summary = Summary::for_diagnosis(&diagnosis, app.engine.prompts()).unwrap();
        assert_eq!(summary.title, "Uitnodiging verlopen");
        assert!(
            // The number of days is the fixture's business; the words are the template's.
            summary.fields.iter().any(|f| f.name == "Bezorging"
                && f.value.starts_with("De activeringslink verliep ")
                && f.value.ends_with(" dagen geleden.")),
            "{:?}",
            summary.fields
        );
        let text = render_text(&diagnosis, app.engine.prompts()).unwrap();
        assert!(text.contains("was sent ") && text.contains(" dagen geleden;"), "{text}");
        assert!(text.contains("Volgende stappen:"), "{text}");

        let outcome = app
            .actions
            .resend_invite(&app.operator(), &app.email("active@corp.example"), &app.slug("acme"), None)
            .await
            .unwrap();
        let refusal = match outcome {
            ActionOutcome::Refused(refusal) => refusal,
            ActionOutcome::Done(done) => panic!("done: {done:?}"),
        };
        assert!(
            refusal.message.starts_with("Resending the invitation wordt hier niet aangeboden: al actief."),
            "{}",
            refusal.message
        );
        std::fs::remove_dir_all(app.config.prompts_dir.as_ref().unwrap()).unwrap();
    }
}
