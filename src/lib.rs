//! kodomo-hub: the library behind the `kodomo-hub` binary, organised by capability.
//!
//! Layers, each using only those below it: faces (`api`, `cli`) → workflows (`ingest`,
//! `transfer::workflow`, the `indicators` pipeline) → `store` (answers questions and records
//! facts; it never decides) → domain (`schema`, `identity`, `transfer`, `indicators`,
//! `access`, `audit`, `auth`). Who may see what is decided by `access` alone.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
#[cfg(feature = "tools")]
pub mod bench;
pub mod cli;
pub mod conformance;
#[cfg(feature = "tools")]
pub mod demo;
pub mod identity;
pub mod indicators;
pub mod ingest;
pub mod keys;
pub mod schema;
pub mod screening;
pub mod store;
pub mod transfer;
