//! Record lifecycle over HTTP: create every record type, unchanged re-push, update with
//! history, retraction (tombstone) and the change feed.

use crate::common;

use common::{Backend, Hub, RECORD_TYPES, TOWN, count_status, record, result_at, results};
use serde_json::{Value, json};

/// One valid record of every type, all about one child (id = record type).
fn every_type(child: &str) -> Vec<Value> {
    RECORD_TYPES
        .iter()
        .map(|t| record(t, &format!("{t}-1"), child))
        .collect()
}

fn every_record_type_is_created_then_unchanged(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let batch = every_type("C001");
    assert_eq!(batch.len(), 15);

    let report = hub.push(&town, &batch);
    assert_eq!(report["received"], 15, "{report}");
    assert_eq!(report["created"], 15, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(report["municipality_code"], TOWN);
    assert_eq!(report["schema_versions"], json!(["1.0"]));
    for (i, r) in batch.iter().enumerate() {
        let result = result_at(&report, i);
        assert_eq!(
            result["status"], "created",
            "{}: {result}",
            r["record_type"]
        );
        assert_eq!(result["version"], 1);
        assert_eq!(result["source_record_id"], r["source_record_id"]);
    }

    // The same batch again changes nothing.
    let again = hub.push(&town, &batch);
    assert_eq!(again["received"], 15);
    assert_eq!(again["unchanged"], 15, "{again}");
    assert_eq!(again["created"], 0);
    assert_eq!(again["updated"], 0);
    assert_eq!(count_status(&again, "unchanged"), 15);

    // The profile shows the child and its 14 non-subject records.
    let profile = hub.profile(&town, "C001").ok();
    assert_eq!(profile["resident_no"], "C001");
    assert_eq!(profile["subject"]["name"], "山田 花子");
    let types: Vec<&str> = profile["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["record_type"].as_str().expect("type"))
        .collect();
    assert_eq!(types.len(), 14, "{types:?}");
    for t in RECORD_TYPES.iter().filter(|t| **t != "subject") {
        assert!(types.contains(t), "profile lacks {t}: {types:?}");
    }
}

fn changed_field_updates_and_keeps_history(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let original = record("postnatal-checkup", "pn-1", "M001");
    let other = record("public-assistance", "pa-1", "M001");
    hub.push(&town, &[original.clone(), other.clone()]);

    let mut changed = original.clone();
    changed["epds_total"] = json!(12);
    let report = hub.push(&town, &[changed.clone(), other]);
    assert_eq!(report["updated"], 1, "{report}");
    assert_eq!(report["unchanged"], 1, "{report}");
    let first = result_at(&report, 0);
    assert_eq!(first["status"], "updated");
    assert_eq!(first["version"], 2);
    assert_eq!(result_at(&report, 1)["status"], "unchanged");

    let history = hub.history(&town, "pn-1").ok();
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[0]["record"]["epds_total"], 5);
    assert_eq!(versions[1]["record"]["epds_total"], 12);
    assert_eq!(versions[0]["retracted"], false);
    assert_ne!(versions[0]["content_hash"], versions[1]["content_hash"]);
    assert!(versions[0]["seq"].as_i64() < versions[1]["seq"].as_i64());

    // The unchanged record kept one version.
    let history = hub.history(&town, "pa-1").ok();
    assert_eq!(history["versions"].as_array().expect("versions").len(), 1);

    // A key repeated in one batch is applied in order, as if sent one after the other.
    let mut a = record("temporary-protection", "tp-dup", "C002");
    let mut b = a.clone();
    b["ended_on"] = json!("2024-05-01");
    a["ended_on"] = json!("2024-04-30");
    let report = hub.push(&town, &[a.clone(), b.clone(), b, a]);
    let statuses: Vec<(String, i64)> = results(&report)
        .iter()
        .map(|r| {
            (
                r["status"].as_str().expect("status").to_string(),
                r["version"].as_i64().expect("version"),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("created".to_string(), 1),
            ("updated".to_string(), 2),
            ("unchanged".to_string(), 2),
            ("updated".to_string(), 3),
        ]
    );
    let history = hub.history(&town, "tp-dup").ok();
    let ends: Vec<&str> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["record"]["ended_on"].as_str().expect("ended_on"))
        .collect();
    assert_eq!(ends, vec!["2024-04-30", "2024-05-01", "2024-04-30"]);

    // Unknown ids have no history.
    hub.history(&town, "no-such-record")
        .problem(404, "not_found");
}

fn retraction_removes_from_profile_and_appears_in_feed(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let checkup = {
        let mut r = record("infant-checkup", "ic-1", "C010");
        r["hit_emotionally"] = json!(true);
        r
    };
    let report = hub.push(
        &town,
        &[
            record("subject", "s-C010", "C010"),
            checkup,
            record("school-attendance", "sa-1", "C010"),
        ],
    );
    assert_eq!(report["created"], 3, "{report}");
    let before = hub.profile(&town, "C010").ok();
    let ids = |p: &Value| -> Vec<String> {
        p["records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|r| r["source_record_id"].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(ids(&before), vec!["ic-1", "sa-1"], "{before}");
    assert!(
        before["applicable_items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["item"] == 4),
        "hit_emotionally makes item 4 apply: {before}"
    );

    let retracted = hub.delete(
        &format!("/v1/municipalities/{TOWN}/records/ic-1"),
        Some(&town.token),
    );
    let body = retracted.ok();
    assert_eq!(body["status"], "retracted");
    assert_eq!(body["version"], 2);
    // Retracting twice is harmless.
    let again = hub
        .delete(
            &format!("/v1/municipalities/{TOWN}/records/ic-1"),
            Some(&town.token),
        )
        .ok();
    assert_eq!(again["version"], 2);
    hub.delete(
        &format!("/v1/municipalities/{TOWN}/records/never-pushed"),
        Some(&town.token),
    )
    .problem(404, "not_found");

    let after = hub.profile(&town, "C010").ok();
    assert_eq!(ids(&after), vec!["sa-1"], "{after}");
    assert!(
        after["applicable_items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["item"] != 4),
        "a retracted record no longer makes an item apply: {after}"
    );

    let changes = hub.all_changes(&town, 100);
    let tombstones: Vec<&Value> = changes
        .iter()
        .filter(|c| c["source_record_id"] == "ic-1" && c["retracted"] == true)
        .collect();
    assert_eq!(tombstones.len(), 1, "{changes:?}");
    assert_eq!(tombstones[0]["version"], 2);
    assert_eq!(tombstones[0]["record_type"], "infant-checkup");

    let history = hub.history(&town, "ic-1").ok();
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1]["retracted"], true);

    // Pushing it again revives it as a new version.
    let mut revived = record("infant-checkup", "ic-1", "C010");
    revived["hit_emotionally"] = json!(true);
    let report = hub.push(&town, &[revived]);
    let result = result_at(&report, 0);
    assert_eq!(result["status"], "updated", "{report}");
    assert_eq!(result["version"], 3);
    assert_eq!(ids(&hub.profile(&town, "C010").ok()), vec!["ic-1", "sa-1"]);
}

fn change_feed_paginates_with_cursor(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let batch: Vec<Value> = (0..7)
        .map(|i| record("school-wellbeing-check", &format!("wb-{i}"), "C020"))
        .collect();
    hub.push(&town, &batch);
    let mut changed = batch[3].clone();
    changed["result"] = json!("concern");
    hub.push(&town, &[changed]);
    hub.delete(
        &format!("/v1/municipalities/{TOWN}/records/wb-5"),
        Some(&town.token),
    )
    .ok();

    // 7 creations + 1 update + 1 retraction, paged 2 at a time.
    let first = hub
        .get(
            &format!("/v1/municipalities/{TOWN}/changes?after=0&limit=2"),
            Some(&town.token),
        )
        .ok();
    assert_eq!(first["changes"].as_array().expect("changes").len(), 2);
    assert_eq!(first["after"], 0);
    let all = hub.all_changes(&town, 2);
    assert_eq!(all.len(), 9, "{all:?}");
    let seqs: Vec<i64> = all
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    assert_eq!(seqs[1], first["next_cursor"].as_i64().expect("cursor"));
    let last = all.last().expect("last change");
    assert_eq!(last["source_record_id"], "wb-5");
    assert_eq!(last["retracted"], true);
    assert!(last.get("record").is_none() || last["record"].is_null());
    let update = &all[7];
    assert_eq!(update["source_record_id"], "wb-3");
    assert_eq!(update["version"], 2);
    assert_eq!(update["record"]["result"], "concern");

    // The same feed in one page, and nothing after its end.
    let whole = hub.all_changes(&town, 1000);
    assert_eq!(whole, all);
    let end = *seqs.last().expect("seq");
    let tail = hub
        .get(
            &format!("/v1/municipalities/{TOWN}/changes?after={end}"),
            Some(&town.token),
        )
        .ok();
    assert_eq!(tail["changes"], json!([]));
    assert_eq!(tail["next_cursor"], end);
    let from_middle = hub
        .get(
            &format!("/v1/municipalities/{TOWN}/changes?after={}", seqs[6]),
            Some(&town.token),
        )
        .ok();
    assert_eq!(from_middle["changes"].as_array().expect("changes").len(), 2);

    // Bad cursors and limits are problems, not empty pages.
    hub.get(
        &format!("/v1/municipalities/{TOWN}/changes?limit=0"),
        Some(&town.token),
    )
    .problem(400, "invalid_query");
    hub.get(
        &format!("/v1/municipalities/{TOWN}/changes?after=-1"),
        Some(&town.token),
    )
    .problem(400, "invalid_query");
    assert!(results(&hub.push(&town, &[])).is_empty());
}

both_backends!(
    every_record_type_is_created_then_unchanged,
    changed_field_updates_and_keeps_history,
    retraction_removes_from_profile_and_appears_in_feed,
    change_feed_paginates_with_cursor,
);
