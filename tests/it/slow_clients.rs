//! Slow and stalled clients cannot starve the hub: an NDJSON stream takes a pooled database
//! connection only for each chunk's transaction, never while it waits for the sender; one
//! client may run only so many streams at once (429) and a body that stops arriving is
//! answered 408; `/readyz` says at once when every pooled connection is in use.

use crate::common;

use std::time::{Duration, Instant};

use common::{Backend, Hub, RawDb, SlowUpload, TOWN, Town, subject};

/// More streams than the pool has connections (8).
const SLOW_STREAMS: usize = 10;

fn push_path() -> String {
    format!("/v1/municipalities/{TOWN}/records")
}

fn line(i: usize) -> Vec<u8> {
    format!(
        "{}\n",
        subject(&format!("s-S{i:03}"), &format!("S{i:03}"), "遅い 回線")
    )
    .into_bytes()
}

/// A stream that has sent its first line and then waits.
fn slow_stream(hub: &Hub, town: &Town, i: usize) -> SlowUpload {
    let mut upload = SlowUpload::start(hub, &push_path(), &town.token, &[]);
    upload.send(&line(i)).expect("send a line");
    upload
}

/// A caseworker's read of a child, timed.
fn timed_read(hub: &Hub, token: &str) -> Duration {
    let started = Instant::now();
    hub.get(
        &format!("/v1/municipalities/{TOWN}/subjects/R001"),
        Some(token),
    )
    .ok();
    started.elapsed()
}

fn slow_streams_of_one_client_leave_other_clients_prompt(backend: Backend) {
    let hub = Hub::start_with(backend, &["--max-streams-per-client", "32"]);
    let town = hub.town(TOWN);
    let reader = hub.add_client(TOWN, "reader", "caseworker", None);
    hub.push(&town, &[subject("s-R001", "R001", "読む 花子")]);
    let uploads: Vec<SlowUpload> = (0..SLOW_STREAMS)
        .map(|i| slow_stream(&hub, &town, i))
        .collect();
    // Let the server take every stream in.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let took = timed_read(&hub, &reader);
        assert!(
            took < Duration::from_secs(3),
            "a read took {took:?} while {SLOW_STREAMS} slow streams were open"
        );
    }
    let ready = hub.get_with("/readyz", None, &[]);
    assert_eq!(ready.status, 200, "{}", ready.text());
    for upload in uploads {
        let report = upload.finish().ok();
        assert_eq!(report["created"], 1, "{report}");
    }
}

fn a_client_runs_a_bounded_number_of_streams(backend: Backend) {
    let hub = Hub::start_with(backend, &["--max-streams-per-client", "2"]);
    let town = hub.town(TOWN);
    let other = Town {
        code: TOWN.into(),
        token: hub.add_client(TOWN, "other-system", "source", None),
    };
    let first = slow_stream(&hub, &town, 1);
    let second = slow_stream(&hub, &town, 2);
    std::thread::sleep(Duration::from_millis(300));
    let refused = SlowUpload::start(&hub, &push_path(), &town.token, &[]).answer();
    refused.problem(429, "too_many_streams");
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    // Another client is not affected.
    let theirs = slow_stream(&hub, &other, 3);
    assert_eq!(theirs.finish().ok()["created"], 1);
    // A finished stream gives its slot back.
    assert_eq!(first.finish().ok()["created"], 1);
    let third = slow_stream(&hub, &town, 4);
    assert_eq!(third.finish().ok()["created"], 1);
    assert_eq!(second.finish().ok()["created"], 1);
}

fn a_stalled_body_is_answered_408_keeping_complete_records(backend: Backend) {
    let hub = Hub::start_with(backend, &["--body-idle-timeout-secs", "2"]);
    let town = hub.town(TOWN);
    let started = Instant::now();
    let stalled = slow_stream(&hub, &town, 7).answer();
    let problem = stalled.problem(408, "body_timeout");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(problem["report"]["created"], 1, "{problem}");
    hub.profile(&town, "S007").ok();
}

/// A writer that holds the database keeps every pooled connection busy; `/readyz` says so at
/// once instead of queueing for a connection itself.
fn readyz_reports_a_saturated_pool_at_once(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let mut blocker = hub.raw_db();
    match &blocker {
        RawDb::Sqlite(_) => blocker.execute("BEGIN IMMEDIATE"),
        RawDb::Postgres(_) => {
            blocker.execute("BEGIN");
            blocker.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        }
    };
    let saturated = std::thread::scope(|scope| {
        let pushes: Vec<_> = (0..12)
            .map(|i| {
                let (hub, town) = (&hub, &town);
                scope.spawn(move || {
                    hub.push_json(
                        town,
                        &[subject(&format!("s-B{i}"), &format!("B{i:03}"), "待つ 人")],
                    )
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut answer = None;
        while Instant::now() < deadline {
            let started = Instant::now();
            let ready = hub.get_with("/readyz", None, &[]);
            if ready.status == 503 {
                answer = Some((ready, started.elapsed()));
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        blocker.execute("COMMIT");
        for push in pushes {
            let answer = push.join().expect("push thread");
            assert_eq!(answer.status, 200, "{}", answer.text());
        }
        answer
    });
    let (ready, took) = saturated.expect("/readyz never reported the saturated pool");
    ready.problem(503, "database_pool_saturated");
    assert!(took < Duration::from_secs(1), "/readyz took {took:?}");
    let ready = hub.get_with("/readyz", None, &[]);
    assert_eq!(ready.status, 200, "{}", describe_resp(&ready));
}

fn describe_resp(resp: &common::Resp) -> String {
    format!("{} {}", resp.status, String::from_utf8_lossy(&resp.body))
}

both_backends!(
    slow_streams_of_one_client_leave_other_clients_prompt,
    a_client_runs_a_bounded_number_of_streams,
    a_stalled_body_is_answered_408_keeping_complete_records,
    readyz_reports_a_saturated_pool_at_once,
);
