//! The support domain's types: parsed once at the boundary, so bad states cannot be built.
//! Nothing here imports any other module of the bot.

pub mod email;
pub mod invitation;
pub mod member;
pub mod workspace;
