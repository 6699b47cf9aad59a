//! The integration suite: one test binary (linking the harness once) with a module per capability.

#[macro_use]
mod common;

mod access;
mod audit_chain;
mod batches;
mod change_feed;
mod conditional_updates;
mod conformance_cli;
mod conformance_client;
mod conformance_server;
mod conformance_vectors;
mod csv_files;
mod exchange_props;
mod hostile_input;
mod hub_exchange;
mod hub_outcomes;
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
mod scopes;
mod screening;
mod secrets_at_rest;
mod slow_clients;
mod tls;
mod transfer_props;
mod transfers;
mod validation;

/// CI runs the PostgreSQL half of the suite: `.ci/run` sets `KODOMO_REQUIRE_PG=1` with the
/// database, so a CI that lost its database fails here, loudly, instead of passing with the
/// PostgreSQL tests ignored.
#[test]
fn postgresql_tests_run_where_they_are_required() {
    if std::env::var("KODOMO_REQUIRE_PG").is_ok_and(|v| v == "1") {
        assert!(
            common::pg_url().is_some() && !cfg!(kodomo_no_pg),
            "KODOMO_REQUIRE_PG=1 but KODOMO_TEST_PG_URL is not set (or was not when the tests were built): the PostgreSQL tests would not run"
        );
    }
}
