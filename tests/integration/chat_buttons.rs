//! The chat flow's button records without any platform: one press acts once, even when two land
//! at the same moment, and a button is only what its record says.

use invite_bot::chat::{ButtonAction, Chat, ChatUser};

use crate::helpers::both_backends;

const ADMIN_ROLE: &str = "8000";

fn grant_admins(config: &mut invite_bot::config::Config) {
    config.permissions.grant = vec![invite_bot::config::GrantConfig {
        roles: vec![ADMIN_ROLE.into()],
        allow: vec![
            invite_bot::domain::Permission::Check,
            invite_bot::domain::Permission::ResendInvite,
        ],
        ..Default::default()
    }];
}

both_backends! {
    async fn two_presses_at_once_send_one_invitation(app) with grant_admins; {
        app.seed(crate::discord::FIXTURE).await;
        let chat = Chat::new(app.actions.clone(), &app.config);
        let admin = chat.actor(&ChatUser { id: "333".into(), name: "admin".into(), roles: vec![ADMIN_ROLE.into()] });
        let reply = chat.invite_check(&admin, "never@corp.example", None).await;
        let resend = reply.buttons.iter().find(|b| b.label == "Resend invite").unwrap();
        let custom_id = format!("ib:{}", resend.reference);
        let (first, second) = tokio::join!(chat.press(&admin, &custom_id), chat.press(&admin, &custom_id));
        let done = [&first, &second].iter().filter(|o| o.finished.is_some()).count();
        assert_eq!(done, 1, "{:?} / {:?}", first.reply.text, second.reply.text);
        assert_eq!(app.smtp.received().len(), 1);
        let record = app.engine.store().find_button(&resend.reference).await.unwrap().unwrap();
        assert_eq!(record.used_by.as_deref(), Some("discord:333"));
        assert!(record.outcome.unwrap().contains("done by admin"));
    }

    async fn records_hold_what_the_button_does(app) with grant_admins; {
        app.seed(crate::discord::FIXTURE).await;
        let chat = Chat::new(app.actions.clone(), &app.config);
        let admin = chat.actor(&ChatUser { id: "333".into(), name: "admin".into(), roles: vec![ADMIN_ROLE.into()] });
        let reply = chat.invite_check(&admin, "jane.deo@corp.example", Some("acme")).await;
        let labels: Vec<&str> = reply.buttons.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["Escalate to support", "Did you mean jane.doe@corp.example?"]);
        let button = &reply.buttons[1];
        assert!(button.reference.len() <= 97 && !button.reference.contains('@'));
        let record = app.engine.store().find_button(&button.reference).await.unwrap().unwrap();
        assert_eq!(record.action, ButtonAction::Check);
        assert_eq!(record.email, "jane.doe@corp.example");
        assert_eq!(record.workspace.as_deref(), Some("acme"));
        assert_eq!(record.offered_to, "discord:333");
        assert!(record.used_at.is_none());
    }
}
