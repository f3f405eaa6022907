//! `invite-bot demo`: load the bundled demo data and check one address per verdict.

use chrono::Utc;
use serde_json::json;

use crate::app::startup;
use crate::config::Config;
use crate::domain::email::EmailAddress;
use crate::error::UserError;
use crate::fixture::Fixture;

use super::output::{print_diagnoses, words};
use super::{Failure, Format};

/// One address per verdict in the demo fixture, plus a typo of a member's address.
const DEMO_ADDRESSES: &[&str] = &[
    "jane.deo@acme-corp.com",
    "omar.haddad@gmail.com",
    "lee.chen@initech.io",
    "sam.rivera@yahoo.com",
    "priya.patel@gmial.com",
    "tom.becker@outlook.com",
    "ana.souza@acme-corp.com",
    "kofi.mensah@hotmail.com",
    "eva.novak@bigbank.co.uk",
    "jane.doe@acme-corp.com",
    "mia.wong@acme-corp.com",
];

pub(super) async fn demo(config: &Config, format: Format) -> Result<(), Failure> {
    let fixture = Fixture::parse(crate::DEMO_FIXTURE, "fixtures/demo.toml", Utc::now())?;
    let actions = startup::build_for_seeding(config).await?;
    let engine = actions.engine();
    engine.seed(&fixture).await?;
    let mut all = Vec::new();
    for address in DEMO_ADDRESSES {
        let email = EmailAddress::parse(address).map_err(UserError::from)?;
        all.extend(engine.check(&email, None).await?);
    }
    if format == Format::Text {
        let database = startup::redact_url(&config.database_url);
        let banner = words(
            engine.prompts(),
            "demo_banner",
            &json!({ "database": database }),
        )?;
        // A blank line between the banner and the first diagnosis.
        println!("{banner}\n");
    }
    print_diagnoses(engine.prompts(), &all, format)?;
    engine.store().close().await;
    Ok(())
}
