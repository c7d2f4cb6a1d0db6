//! Who is calling and what they may touch: bearer-token hashing and the one
//! authorization matrix every service call goes through.

mod authz;
mod secret;

pub use authz::{Denied, Principal};
pub use secret::{hash_token, new_secret, new_token, secrets_match};
