//! Bad input reaches the engine only as typed errors, with a message for the person.

use invite_bot::domain::email::EmailAddress;
use invite_bot::domain::workspace::WorkspaceSlug;
use invite_bot::error::{EngineError, UserError};

use crate::helpers::both_backends;

both_backends! {
    async fn an_unknown_workspace_is_named(app) {
        app.seed("[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n").await;
        let email = EmailAddress::parse("a@b.example").unwrap();
        let ghost = WorkspaceSlug::parse("ghost").unwrap();
        let error = app.engine.check(&email, Some(&ghost)).await.unwrap_err();
        assert!(matches!(&error, EngineError::User(UserError::UnknownWorkspace(slug)) if slug.as_str() == "ghost"));
        assert_eq!(error.public_message(app.engine.prompts()), "There is no workspace `ghost`.");
    }

    async fn a_database_that_went_away_is_reported_not_panicked(app) {
        app.engine.store().close().await;
        let email = EmailAddress::parse("a@b.example").unwrap();
        let error = app.engine.check(&email, None).await.unwrap_err();
        assert!(matches!(error, EngineError::Unavailable(_)), "{error:?}");
        let message = error.public_message(app.engine.prompts());
        assert!(message.starts_with("The workspace database is not reachable right now"), "{message}");
        assert!(message.contains("(ref "), "{message}");
    }
}

#[test]
fn user_errors_say_what_to_fix() {
    let error = UserError::from(EmailAddress::parse("jane@@acme.com").unwrap_err());
    assert_eq!(
        error.to_string(),
        "That is not a valid email address: the address has more than one `@`."
    );
    let error = UserError::from(WorkspaceSlug::parse("a b").unwrap_err());
    assert_eq!(error.to_string(), "That is not a valid workspace: the workspace `a b` may only hold lower-case letters, digits and `-`.");
}

/// The words moved to `prompts/errors.j2` without changing: what a person is told is, word for
/// word, the text the operator's log and the command line show.
#[test]
fn the_built_in_words_of_every_error_are_its_text() {
    use invite_bot::domain::email::EmailError;
    use invite_bot::domain::workspace::SlugError;
    use invite_bot::error::ActionFailure;

    let prompts = invite_bot::prompts::Prompts::builtin().unwrap();
    let emails = [
        EmailError::Empty,
        EmailError::MissingAt,
        EmailError::MultipleAt,
        EmailError::ContainsSpace,
        EmailError::ControlCharacter,
        EmailError::InvisibleCharacter('\u{200B}'),
        EmailError::InputTooLong(4096),
        EmailError::EmptyLocalPart,
        EmailError::EmptyDomain,
        EmailError::DomainWithoutDot("acme".into()),
        EmailError::TooLong(300),
        EmailError::LocalPartTooLong(70),
        EmailError::ForbiddenCharacter('<'),
        EmailError::MisplacedDot,
        EmailError::InvalidDomain("a..b".into()),
    ];
    let slugs = [
        SlugError::Empty,
        SlugError::TooLong("x".repeat(64)),
        SlugError::InvalidCharacter("a b".into()),
    ];
    let mut errors: Vec<UserError> = emails.into_iter().map(UserError::from).collect();
    errors.extend(slugs.into_iter().map(UserError::from));
    errors.push(UserError::UnknownWorkspace(
        WorkspaceSlug::parse("ghost").unwrap(),
    ));
    errors.push(UserError::Forbidden {
        permission: "check",
        workspace: Some(WorkspaceSlug::parse("acme").unwrap()),
    });
    errors.push(UserError::Forbidden {
        permission: "check",
        workspace: None,
    });
    for error in errors {
        assert_eq!(error.public_message(&prompts), error.to_string());
    }
    for failure in [
        ActionFailure::MailRejected {
            reference: "RSD-1".into(),
            detail: "550 no such user".into(),
        },
        ActionFailure::MailQueued {
            reference: "RSD-1".into(),
            detail: "421 busy".into(),
        },
        ActionFailure::MailUnanswered {
            reference: "RSD-1".into(),
            seconds: 30,
        },
        ActionFailure::MailNotConfigured {
            reference: "RSD-1".into(),
        },
    ] {
        let text = failure.to_string();
        assert_eq!(EngineError::from(failure).public_message(&prompts), text);
    }
}
