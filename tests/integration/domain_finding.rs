//! The domain check: several other recipients at one company domain in trouble.

use invite_bot::diagnosis::{Check, Outcome, Verdict};

use crate::helpers::{both_backends, TestApp};

/// `others` recipients at `domain` had an event of `event` `at`, plus the member under test.
fn fixture(domain: &str, others: usize, event: &str, at: &str) -> String {
    let mut text = String::from("[[workspace]]\nslug = \"acme\"\nname = \"Acme\"\n");
    let mut add = |local: &str, event: Option<&str>| {
        text.push_str(&format!(
            "[[member]]\nworkspace = \"acme\"\nemail = \"{local}@{domain}\"\nrole = \"learner\"\nstatus = \"invited\"\n\
             [[invitation]]\nworkspace = \"acme\"\nemail = \"{local}@{domain}\"\nsent_at = \"2 hours ago\"\n"
        ));
        if let Some(event) = event {
            let bounce = if event == "bounced" {
                "bounce = \"hard\"\n"
            } else {
                ""
            };
            text.push_str(&format!(
                "[[delivery_event]]\nemail = \"{local}@{domain}\"\nevent = \"{event}\"\n{bounce}at = \"{at}\"\n"
            ));
        }
    };
    add("subject", Some("deferred"));
    for i in 0..others {
        add(&format!("colleague{i}"), Some(event));
    }
    text
}

async fn domain_finding(app: &TestApp, domain: &str) -> Option<String> {
    let diagnosis = app.check(&format!("subject@{domain}"), "acme").await;
    assert_eq!(
        diagnosis.verdict,
        Verdict::InviteDeferred,
        "the finding never changes the verdict"
    );
    diagnosis
        .findings
        .iter()
        .find(|f| f.check == Check::Domain)
        .inspect(|f| assert_eq!(f.outcome, Outcome::DomainBlocking))
        .map(|f| f.detail.clone())
}

both_backends! {
    async fn three_troubled_colleagues_trigger_it(app) {
        app.seed(&fixture("bigbank.example", 3, "bounced", "3 days ago")).await;
        let detail = domain_finding(&app, "bigbank.example").await.expect("domain finding");
        assert!(detail.contains("3 other recipients at bigbank.example"), "{detail}");
        assert!(detail.contains("allow-list"), "{detail}");
    }

    async fn deferrals_and_complaints_count_too(app) {
        app.seed(&fixture("slowbank.example", 3, "deferred", "1 day ago")).await;
        assert!(domain_finding(&app, "slowbank.example").await.is_some());
        app.seed(&fixture("grumpy.example", 3, "spam_complaint", "1 day ago")).await;
        assert!(domain_finding(&app, "grumpy.example").await.is_some());
    }

    async fn two_are_not_enough(app) {
        app.seed(&fixture("bigbank.example", 2, "bounced", "3 days ago")).await;
        assert_eq!(domain_finding(&app, "bigbank.example").await, None);
    }

    async fn old_trouble_is_ignored(app) {
        app.seed(&fixture("bigbank.example", 5, "bounced", "40 days ago")).await;
        assert_eq!(domain_finding(&app, "bigbank.example").await, None);
    }

    async fn delivered_mail_is_not_trouble(app) {
        app.seed(&fixture("fine.example", 5, "delivered", "1 day ago")).await;
        assert_eq!(domain_finding(&app, "fine.example").await, None);
    }

    async fn webmail_domains_are_never_blamed(app) {
        app.seed(&fixture("gmail.com", 10, "bounced", "1 day ago")).await;
        assert_eq!(domain_finding(&app, "gmail.com").await, None);
    }

    async fn the_threshold_comes_from_config(app) with |c: &mut invite_bot::config::Config| c.checks.domain_alert_threshold = 2; {
        app.seed(&fixture("bigbank.example", 2, "bounced", "3 days ago")).await;
        assert!(domain_finding(&app, "bigbank.example").await.is_some());
    }
}
