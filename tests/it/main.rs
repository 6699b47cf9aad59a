//! The integration suite: one test binary (linking the harness once) with a module per capability.

#[macro_use]
mod common;

mod access;
mod audit_chain;
mod batches;
mod change_feed;
mod conditional_updates;
mod conformance_cli;
mod conformance_server;
mod conformance_vectors;
mod csv_files;
mod exchange_props;
mod hostile_input;
mod hub_exchange;
mod idempotency_leases;
mod identity;
mod import_resume;
mod indicators;
mod log_privacy;
mod meta;
mod ndjson;
mod openapi;
mod openapi_access;
mod problems;
mod records;
mod screening;
mod secrets_at_rest;
mod slow_clients;
mod tls;
mod transfer_props;
mod transfers;
mod validation;
