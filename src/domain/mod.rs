//! The nouns and rules of gatehouse: ids, users, groups, names, the password policy.
//!
//! Pure code: no I/O, no clock, no HTTP or database types. Every rule here is a function
//! that the service layer calls and that unit tests can check on its own.

pub mod api_key;
pub mod audit;
pub mod group;
pub mod ids;
pub mod names;
pub mod page;
pub mod password_policy;
pub mod signing_key;
pub mod user;
