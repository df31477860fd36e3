//! Credentials: password hashing and the signed access tokens.
//!
//! No HTTP and no store here: these are the primitives the service layer composes.

pub mod password;
pub mod token;
