//! kodomo-hub: the library behind the `kodomo-hub` binary, organised by capability.

pub mod access;
pub mod api;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod conformance;
pub mod demo;
pub mod identity;
pub mod indicators;
pub mod ingest;
pub mod keys;
pub mod schema;
pub mod store;
pub mod transfer;
