//! Batches as a whole: partial acceptance, atomic batches, Idempotency-Key replays and
//! concurrent pushes of the same batch.

use crate::common;

use std::sync::{Arc, Barrier};

use common::{Backend, Hub, TOWN, Town, record, result_at, results, subject};
use serde_json::{Value, json};

fn records_path(town: &Town) -> String {
    format!("/v1/municipalities/{}/records", town.code)
}

fn invalid(id: &str) -> Value {
    let mut r = record("postnatal-checkup", id, "M1");
    r["epds_total"] = json!(99);
    r
}

fn mixed_batch_keeps_every_valid_record(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    // 1,500 records spanning two ingest chunks, with rejected ones in both chunks and at
    // both ends.
    let mut batch = Vec::new();
    let mut bad = Vec::new();
    for i in 0..1500usize {
        let id = format!("mx-{i:04}");
        if i == 0 || i % 250 == 7 || i == 1499 {
            batch.push(invalid(&id));
            bad.push(id);
        } else {
            let kinds = [
                "school-attendance",
                "school-wellbeing-check",
                "public-assistance",
            ];
            batch.push(record(kinds[i % 3], &id, &format!("C{:03}", i % 40)));
        }
    }
    let report = hub.push(&town, &batch);
    let valid = 1500 - bad.len();
    assert_eq!(report["received"], 1500);
    assert_eq!(report["rejected"], bad.len(), "{}", report["rejected"]);
    assert_eq!(report["created"], valid);
    let all = results(&report);
    assert_eq!(all.len(), 1500);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r["index"], i, "results are in request order");
        let expected = if bad.contains(&format!("mx-{i:04}")) {
            "rejected"
        } else {
            "created"
        };
        assert_eq!(r["status"], expected, "{r}");
    }
    // Every accepted record is stored, none of the rejected ones.
    let changes = hub.all_changes(&town, 1000);
    assert_eq!(changes.len(), valid);
    for c in &changes {
        let id = c["source_record_id"].as_str().expect("id");
        assert!(
            !bad.contains(&id.to_string()),
            "{id} was rejected but stored"
        );
    }
    for id in &bad {
        hub.history(&town, id).problem(404, "not_found");
    }
    hub.history(&town, "mx-0001").ok();
    hub.history(&town, "mx-1498").ok();
}

fn atomic_batch_with_an_invalid_record_stores_nothing(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let batch = vec![
        subject("at-s", "C300", "田中 湊"),
        record("school-attendance", "at-1", "C300"),
        invalid("at-bad"),
        record("infant-checkup", "at-2", "C300"),
    ];
    let resp = hub.push_json_query(&town, "?atomic=true", &batch);
    let p = resp.problem(422, "atomic_batch_rejected");
    let report = &p["report"];
    assert_eq!(report["atomic"], true, "{p}");
    assert_eq!(report["received"], 4, "{p}");
    assert_eq!(report["rejected"], 1, "{p}");
    assert_eq!(report["created"], 0, "{p}");
    let rejected = results(report);
    assert_eq!(rejected.len(), 1, "{p}");
    assert_eq!(rejected[0]["index"], 2);
    assert_eq!(rejected[0]["errors"][0]["code"], "range");
    assert_eq!(rejected[0]["errors"][0]["pointer"], "/epds_total");

    for id in ["at-s", "at-1", "at-2", "at-bad"] {
        hub.history(&town, id).problem(404, "not_found");
    }
    hub.profile(&town, "C300").problem(404, "not_found");
    assert!(hub.all_changes(&town, 100).is_empty());

    // Atomic also for an update of stored records: the old version stays current.
    hub.push(&town, &[record("school-attendance", "at-1", "C300")]);
    let mut changed = record("school-attendance", "at-1", "C300");
    changed["absence_days"] = json!(30);
    hub.push_json_query(&town, "?atomic=true", &[changed.clone(), invalid("at-bad")])
        .problem(422, "atomic_batch_rejected");
    let history = hub.history(&town, "at-1").ok();
    assert_eq!(history["versions"].as_array().expect("versions").len(), 1);

    // Without the invalid record the atomic batch goes through completely.
    let report = hub
        .push_json_query(
            &town,
            "?atomic=true",
            &[changed, subject("at-s", "C300", "田中 湊")],
        )
        .ok();
    assert_eq!(report["atomic"], true);
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        hub.profile(&town, "C300").ok()["records"][0]["record"]["absence_days"],
        30
    );
}

/// Push `body` with an Idempotency-Key; returns the response.
fn push_keyed(hub: &Hub, town: &Town, content_type: &str, key: &str, body: &str) -> common::Resp {
    hub.post(
        &records_path(town),
        Some(&town.token),
        Some(content_type),
        &[("Idempotency-Key", key)],
        body.to_string(),
    )
}

fn check_idempotency(hub: &Hub, town: &Town, content_type: &str, body: &str, other: &str) {
    let first = push_keyed(hub, town, content_type, "key-1", body);
    let report = first.ok();
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(report["created"], 3, "{report}");
    let feed_before = hub.all_changes(town, 100).len();

    let second = push_keyed(hub, town, content_type, "key-1", body);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        second.body, first.body,
        "a replay returns the first answer byte for byte"
    );
    assert!(second.content_type().starts_with("application/json"));
    // A re-executed push would have answered "unchanged"; the replay still says "created",
    // and nothing new was written.
    assert_eq!(second.json()["created"], 3);
    assert_eq!(hub.all_changes(town, 100).len(), feed_before);
    for id in ["ik-1", "ik-2", "ik-3"] {
        let history = hub.history(town, id).ok();
        assert_eq!(history["versions"].as_array().expect("versions").len(), 1);
    }

    let reused = push_keyed(hub, town, content_type, "key-1", other);
    reused.problem(422, "idempotency_key_reused");
    hub.history(town, "ik-other").problem(404, "not_found");
    assert_eq!(hub.all_changes(town, 100).len(), feed_before);

    // Another key is another request: the same body now answers "unchanged".
    let fresh = push_keyed(hub, town, content_type, "key-2", body).ok();
    assert_eq!(fresh["unchanged"], 3, "{fresh}");
    assert_eq!(fresh["created"], 0);

    // A rejected atomic batch (422) is remembered as well.
    let path = format!("{}?atomic=true", records_path(town));
    let bad = match content_type {
        "application/json" => json!({"records": [invalid("ik-bad")]}).to_string(),
        _ => format!("{}\n", invalid("ik-bad")),
    };
    let send = || {
        hub.post(
            &path,
            Some(&town.token),
            Some(content_type),
            &[("Idempotency-Key", "key-3")],
            bad.clone(),
        )
    };
    let first = send();
    first.problem(422, "atomic_batch_rejected");
    let again = send();
    again.problem(422, "atomic_batch_rejected");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
}

fn three() -> Vec<Value> {
    vec![
        record("school-attendance", "ik-1", "C400"),
        record("school-health-exam", "ik-2", "C400"),
        record("infant-checkup", "ik-3", "C400"),
    ]
}

fn idempotency_key_json(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let body = json!({ "records": three() }).to_string();
    let other = json!({"records": [record("school-attendance", "ik-other", "C400")]}).to_string();
    check_idempotency(&hub, &town, "application/json", &body, &other);
}

fn idempotency_key_ndjson(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let body: String = three().iter().map(|r| format!("{r}\n")).collect();
    let other = format!("{}\n", record("school-attendance", "ik-other", "C400"));
    check_idempotency(&hub, &town, "application/x-ndjson", &body, &other);
}

/// Retries of one request that overlap (a client that timed out and retried) must not each
/// run: every 200 answer for the key is the first answer (the one that created the records),
/// and a retry still in flight may instead get 409 Conflict.
fn idempotency_key_concurrent_retries(backend: Backend) {
    let hub = Arc::new(Hub::start(backend));
    let town = hub.town(TOWN);
    let batch: Vec<Value> = (0..300)
        .map(|i| record("public-assistance", &format!("ir-{i:03}"), "G1"))
        .collect();
    let body = Arc::new(json!({ "records": batch }).to_string());
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (hub, town, body, barrier) =
                (hub.clone(), town.clone(), body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                hub.post(
                    &format!("{}?results=rejected", records_path(&town)),
                    Some(&town.token),
                    Some("application/json"),
                    &[("Idempotency-Key", "retry-1")],
                    body.as_str(),
                )
            })
        })
        .collect();
    let answers: Vec<common::Resp> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let ok: Vec<&common::Resp> = answers.iter().filter(|a| a.status == 200).collect();
    assert!(!ok.is_empty(), "no answer succeeded");
    for a in &answers {
        assert!(
            a.status == 200 || a.status == 409,
            "unexpected {}: {}",
            a.status,
            a.text()
        );
    }
    let summary: Vec<String> = answers
        .iter()
        .map(|a| {
            if a.status == 200 {
                let r = a.json();
                format!(
                    "200 created={} unchanged={} replayed={:?}",
                    r["created"],
                    r["unchanged"],
                    a.header("idempotent-replayed")
                )
            } else {
                a.status.to_string()
            }
        })
        .collect();
    for a in &ok {
        assert_eq!(
            a.json()["created"],
            300,
            "every successful answer for the key is the first answer: {summary:?}"
        );
        assert_eq!(a.body, ok[0].body, "{summary:?}");
    }
    // A later retry is a replay of that same first answer.
    let later = hub.post(
        &format!("{}?results=rejected", records_path(&town)),
        Some(&town.token),
        Some("application/json"),
        &[("Idempotency-Key", "retry-1")],
        body.as_str(),
    );
    assert_eq!(later.header("idempotent-replayed"), Some("true"));
    assert_eq!(later.json()["created"], 300, "{summary:?}");
}

fn concurrent_pushes_of_one_batch_create_each_record_once(backend: Backend) {
    let hub = Arc::new(Hub::start(backend));
    let town = hub.town(TOWN);
    let kinds = [
        "school-attendance",
        "school-wellbeing-check",
        "infant-checkup",
        "public-assistance",
        "postnatal-checkup",
    ];
    let batch: Vec<Value> = (0..300)
        .map(|i| {
            record(
                kinds[i % kinds.len()],
                &format!("cc-{i:03}"),
                &format!("C{i:03}"),
            )
        })
        .collect();
    let body = Arc::new(json!({ "records": batch }).to_string());
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (hub, town, body, barrier) =
                (hub.clone(), town.clone(), body.clone(), barrier.clone());
            std::thread::spawn(move || {
                let agent = common::agent();
                barrier.wait();
                let mut resp = agent
                    .post(hub.url(&records_path(&town)))
                    .header("Authorization", format!("Bearer {}", town.token))
                    .header("Content-Type", "application/json")
                    .send(body.as_str())
                    .expect("push");
                let status = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_string()
                    .expect("body");
                assert_eq!(status, 200, "{text}");
                serde_json::from_str::<Value>(&text).expect("json")
            })
        })
        .collect();
    let reports: Vec<Value> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();

    let total_created: u64 = reports
        .iter()
        .map(|r| r["created"].as_u64().expect("n"))
        .sum();
    let total_unchanged: u64 = reports
        .iter()
        .map(|r| r["unchanged"].as_u64().expect("n"))
        .sum();
    assert_eq!(total_created, 300, "each record created exactly once");
    assert_eq!(total_unchanged, 300 * (threads as u64 - 1));
    for r in &reports {
        assert_eq!(r["rejected"], 0);
        assert_eq!(r["updated"], 0, "no push saw a change: {}", r["updated"]);
    }
    for i in 0..300 {
        let statuses: Vec<String> = reports
            .iter()
            .map(|r| result_at(r, i)["status"].as_str().expect("s").to_string())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| *s == "created").count(),
            1,
            "record {i}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| *s == "unchanged").count(),
            threads - 1,
            "record {i}: {statuses:?}"
        );
    }
    let changes = hub.all_changes(&town, 1000);
    assert_eq!(changes.len(), 300, "one version per record in the feed");
    for i in [0, 1, 150, 299] {
        let history = hub.history(&town, &format!("cc-{i:03}")).ok();
        let versions = history["versions"].as_array().expect("versions");
        assert_eq!(versions.len(), 1, "{history}");
        assert_eq!(versions[0]["version"], 1);
    }
    let mut ids: Vec<&str> = changes
        .iter()
        .map(|c| c["source_record_id"].as_str().expect("id"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 300);
}

both_backends!(
    mixed_batch_keeps_every_valid_record,
    atomic_batch_with_an_invalid_record_stores_nothing,
    idempotency_key_json,
    idempotency_key_ndjson,
    idempotency_key_concurrent_retries,
    concurrent_pushes_of_one_batch_create_each_record_once,
);

/// `?record_type=` is typed (the OpenAPI enum of record types): an unknown one is refused
/// whatever the body, not only for CSV.
#[test]
fn an_unknown_record_type_in_the_query_is_refused_for_any_body() {
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(TOWN);
    let records = [record("school-attendance", "rt-1", "C001")];
    for query in ["?record_type=bogus", "?record_type=", "?record_type=null"] {
        hub.push_json_query(&town, query, &records)
            .problem(400, "record_type_unknown");
    }
    let stored = hub.push_json_query(&town, "?record_type=school-attendance", &records);
    assert_eq!(stored.status, 200, "{}", stored.text());
}
