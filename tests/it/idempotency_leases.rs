//! An Idempotency-Key is held on a lease its request renews while it runs. A request that died
//! with its server (kill -9 in the middle of the body) leaves a key a retry can use once the
//! lease has run out; a request that is merely slow keeps its key.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Hub, SlowUpload, TOWN, Town, record, subject};

const LEASE_SECS: &str = "3";

fn start(backend: Backend) -> Hub {
    Hub::start_with(backend, &["--idempotency-lease-secs", LEASE_SECS])
}

fn push_path() -> String {
    format!("/v1/municipalities/{TOWN}/records")
}

/// Two records as NDJSON lines.
fn body() -> (Vec<u8>, Vec<u8>) {
    let line = |v: serde_json::Value| format!("{v}\n").into_bytes();
    (
        line(subject("s-L001", "L001", "貸出 一郎")),
        line(record("school-attendance", "sa-L001", "L001")),
    )
}

/// Push the whole body at once with `key`.
fn push_with_key(hub: &Hub, town: &Town, key: &str) -> common::Resp {
    let (first, second) = body();
    hub.post(
        &push_path(),
        Some(&town.token),
        Some("application/x-ndjson"),
        &[("Idempotency-Key", key)],
        [first, second].concat(),
    )
}

/// Wait until the server has reserved `key` (its request is running).
fn wait_for_reservation(hub: &Hub, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = format!(
        "SELECT idempotency_key AS v FROM idempotency_keys WHERE idempotency_key = '{key}' AND status = 0"
    );
    while hub.raw_db().strings(&sql).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the key {key} was never reserved"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_key_whose_request_died_with_the_server_is_usable_after_its_lease(backend: Backend) {
    let mut hub = start(backend);
    let town = hub.town(TOWN);
    let (first, _) = body();
    let mut upload = SlowUpload::start(
        &hub,
        &push_path(),
        &town.token,
        &[("Idempotency-Key", "crash-1")],
    );
    upload.send(&first).expect("send the first line");
    wait_for_reservation(&hub, "crash-1");
    hub.kill_server();
    drop(upload);
    hub.restart_with(&["--idempotency-lease-secs", LEASE_SECS], &[]);

    // Retries answer 409 while the dead request's lease lasts, then run.
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        let answer = push_with_key(&hub, &town, "crash-1");
        if answer.status != 409 {
            break answer;
        }
        answer.problem(409, "idempotency_key_in_progress");
        assert!(
            Instant::now() < deadline,
            "the key of the request that died is still held a minute later"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let report = answer.ok();
    assert_eq!(report["created"], 2, "{report}");
    // The completed retry is now the key's answer.
    let replay = push_with_key(&hub, &town, "crash-1");
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(replay.json()["created"], 2);
}

fn a_slow_request_keeps_its_key_beyond_the_lease(backend: Backend) {
    let hub = start(backend);
    let town = hub.town(TOWN);
    let (first, second) = body();
    let mut upload = SlowUpload::start(
        &hub,
        &push_path(),
        &town.token,
        &[("Idempotency-Key", "slow-1")],
    );
    upload.send(&first).expect("send the first line");
    wait_for_reservation(&hub, "slow-1");
    // Two lease lengths later the running request still holds the key (it renews it).
    std::thread::sleep(Duration::from_secs(7));
    push_with_key(&hub, &town, "slow-1").problem(409, "idempotency_key_in_progress");
    upload.send(&second).expect("send the second line");
    let report = upload.finish().ok();
    assert_eq!(report["created"], 2, "{report}");
    let replay = push_with_key(&hub, &town, "slow-1");
    assert_eq!(replay.header("Idempotent-Replayed"), Some("true"));
}

both_backends!(
    a_key_whose_request_died_with_the_server_is_usable_after_its_lease,
    a_slow_request_keeps_its_key_beyond_the_lease,
);
