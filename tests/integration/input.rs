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
        assert_eq!(error.public_message(), "There is no workspace `ghost`.");
    }

    async fn a_database_that_went_away_is_reported_not_panicked(app) {
        app.engine.store().close().await;
        let email = EmailAddress::parse("a@b.example").unwrap();
        let error = app.engine.check(&email, None).await.unwrap_err();
        assert!(matches!(error, EngineError::Unavailable(_)), "{error:?}");
        let message = error.public_message();
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
