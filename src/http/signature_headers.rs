//! The three Standard Webhooks headers as the OpenAPI document lists them, for both directions:
//! the push API, which the product signs ([`super::push`]), and the calls the bot signs to the
//! product ([`super::product_contract`]). Their names, types and bounds are written once here;
//! each side says in [`HeaderWords`] what they mean to it.

use std::marker::PhantomData;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{KnownFormat, ObjectBuilder, Required, SchemaFormat, Type};

/// Longest `webhook-id` either side takes.
pub const MAX_ID_BYTES: usize = 256;

/// What each header means to one side, as its document describes it.
pub trait HeaderWords {
    const ID: &'static str;
    const TIMESTAMP: &'static str;
    const SIGNATURE: &'static str;
}

/// `webhook-id`, `webhook-timestamp` and `webhook-signature`, required, worded by `W`: for a
/// route's `params(...)`.
pub struct SignatureHeaders<W>(PhantomData<W>);

impl<W: HeaderWords> utoipa::IntoParams for SignatureHeaders<W> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = |name: &str, description: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            header(
                "webhook-id",
                W::ID,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(MAX_ID_BYTES)),
            ),
            header(
                "webhook-timestamp",
                W::TIMESTAMP,
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
            ),
            header(
                "webhook-signature",
                W::SIGNATURE,
                ObjectBuilder::new().schema_type(Type::String),
            ),
        ]
    }
}
