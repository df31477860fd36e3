//! gatehouse: a users-and-groups security server that speaks the Contensis Security API.
//!
//! Layers, outermost first: [`cli`] and [`http`] are front ends over [`service`], which
//! applies the rules of [`domain`] and persists through the [`store`] trait. [`auth`]
//! holds the credential primitives, [`clock`] is the only reader of time and [`config`]
//! the only reader of the environment. See ARCHITECTURE.md.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod ldap;
pub mod metrics;
pub mod query;
pub mod service;
pub mod store;

#[cfg(test)]
mod layering;
