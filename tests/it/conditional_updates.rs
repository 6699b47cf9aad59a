//! Conditional updates over HTTP: every record read names its version (`ETag`), `If-Match`
//! makes a put or a retraction fail with 412 when someone else changed the record first, and
//! `If-None-Match: *` creates only.

use crate::common;

use common::{Backend, Hub, Resp, TOWN, Town, record};
use serde_json::{Value, json};

fn record_path(town: &Town, id: &str) -> String {
    format!("/v1/municipalities/{}/records/{id}", town.code)
}

fn put(hub: &Hub, town: &Town, record: &Value, condition: &[(&str, &str)]) -> Resp {
    let id = record["source_record_id"].as_str().expect("id");
    hub.put(
        &record_path(town, id),
        Some(&town.token),
        Some("application/json"),
        condition,
        record.to_string(),
    )
}

fn checkup(id: &str, epds_total: i64) -> Value {
    let mut r = record("postnatal-checkup", id, "M001");
    r["epds_total"] = json!(epds_total);
    r
}

/// The entity tag the history read names as current.
fn current_etag(hub: &Hub, town: &Town, id: &str) -> String {
    let history = hub.history(town, id);
    let body = history.ok();
    let tag = history
        .header("etag")
        .expect("history has an ETag")
        .to_string();
    let versions = body["versions"].as_array().expect("versions");
    assert_eq!(versions.last().expect("a version")["etag"], tag.as_str());
    tag
}

/// Two writers read the same version and write at once: exactly one wins, the other gets 412
/// with the version to read again, and no write is lost.
fn two_writers_racing_never_overwrite_each_other(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    assert_eq!(put(&hub, &town, &checkup("pn-race", 1), &[]).status, 201);
    for round in 0..4i64 {
        let seen = current_etag(&hub, &town, "pn-race");
        let barrier = std::sync::Barrier::new(2);
        let answers: Vec<(i64, Resp)> = std::thread::scope(|s| {
            let writers: Vec<_> = [10, 20]
                .into_iter()
                .map(|writer| {
                    let (hub, town, seen, barrier) = (&hub, &town, &seen, &barrier);
                    s.spawn(move || {
                        let total = writer + round;
                        barrier.wait();
                        let answer =
                            put(hub, town, &checkup("pn-race", total), &[("If-Match", seen)]);
                        (total, answer)
                    })
                })
                .collect();
            writers
                .into_iter()
                .map(|w| w.join().expect("writer"))
                .collect()
        });
        let (won, lost): (Vec<_>, Vec<_>) = answers.iter().partition(|(_, a)| a.status == 200);
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "round {round}: {answers:?}"
        );
        let (winner_total, winner) = won[0];
        let new_tag = winner
            .header("etag")
            .expect("ETag of the write")
            .to_string();
        assert_ne!(new_tag, seen);
        let problem = lost[0].1.problem(412, "precondition_failed");
        assert_eq!(problem["current"]["etag"], new_tag.as_str(), "{problem}");
        assert_eq!(lost[0].1.header("etag"), Some(new_tag.as_str()));
        assert_eq!(
            problem["current"]["version"],
            winner.json()["results"][0]["version"]
        );
        // The loser's content was not stored: the current version is the winner's.
        let history = hub.history(&town, "pn-race").ok();
        let latest = history["versions"]
            .as_array()
            .expect("versions")
            .last()
            .cloned();
        assert_eq!(
            latest.expect("latest")["record"]["epds_total"],
            *winner_total
        );
        // Read again, retry: now it succeeds on top of the winner's version.
        let (loser_total, _) = lost[0];
        let retried = put(
            &hub,
            &town,
            &checkup("pn-race", *loser_total),
            &[("If-Match", &new_tag)],
        );
        assert_eq!(retried.status, 200, "{}", retried.text());
    }
    // 1 creation + 4 rounds × (winner + retried loser): nothing was silently overwritten.
    let history = hub.history(&town, "pn-race").ok();
    assert_eq!(history["versions"].as_array().expect("versions").len(), 9);
}

/// `If-None-Match: *` creates only; a retracted record may be created again.
fn if_none_match_star_creates_only(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let created = put(
        &hub,
        &town,
        &checkup("pn-new", 3),
        &[("If-None-Match", "*")],
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("etag"), Some("\"v1\""));
    assert_eq!(created.json()["results"][0]["status"], "created");

    let again = put(
        &hub,
        &town,
        &checkup("pn-new", 4),
        &[("If-None-Match", "*")],
    );
    let problem = again.problem(412, "precondition_failed");
    assert_eq!(problem["current"]["version"], 1);
    assert_eq!(problem["current"]["etag"], "\"v1\"");
    assert_eq!(current_etag(&hub, &town, "pn-new"), "\"v1\"");

    hub.delete(&record_path(&town, "pn-new"), Some(&town.token))
        .ok();
    let revived = put(
        &hub,
        &town,
        &checkup("pn-new", 5),
        &[("If-None-Match", "*")],
    );
    assert_eq!(revived.status, 200, "{}", revived.text());
    assert_eq!(revived.header("etag"), Some("\"v3\""));
}

/// A retraction with a stale `If-Match` leaves the record live; with the current one it
/// retracts. `If-Match` on a record that does not exist fails with no current version.
fn if_match_guards_retraction_and_missing_records(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    put(&hub, &town, &checkup("pn-del", 1), &[]);
    let v1 = current_etag(&hub, &town, "pn-del");
    assert_eq!(
        put(&hub, &town, &checkup("pn-del", 2), &[("If-Match", &v1)]).status,
        200
    );

    let path = record_path(&town, "pn-del");
    let stale = hub.delete_with(&path, Some(&town.token), &[("If-Match", &v1)]);
    let problem = stale.problem(412, "precondition_failed");
    assert_eq!(problem["current"]["etag"], "\"v2\"");
    let history = hub.history(&town, "pn-del").ok();
    assert_eq!(history["versions"].as_array().expect("versions").len(), 2);

    // Several tags: one of them current is enough; a weak tag never matches.
    let retracted = hub.delete_with(
        &path,
        Some(&town.token),
        &[("If-Match", "W/\"v2\", \"v7\", \"v2\"")],
    );
    assert_eq!(retracted.ok()["version"], 3);
    assert_eq!(retracted.header("etag"), Some("\"v3\""));
    // `If-Match: *` asks for a live record; the tombstone is not one.
    let again = hub.delete_with(&path, Some(&town.token), &[("If-Match", "*")]);
    assert_eq!(
        again.problem(412, "precondition_failed")["current"]["version"],
        3
    );

    let missing = put(
        &hub,
        &town,
        &checkup("pn-none", 1),
        &[("If-Match", "\"v1\"")],
    );
    let problem = missing.problem(412, "precondition_failed");
    assert!(problem.get("current").is_none(), "{problem}");
    assert_eq!(hub.history(&town, "pn-none").status, 404);
}

/// Reads name versions with the same tags the conditions compare.
fn reads_carry_entity_tags(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    hub.push(
        &town,
        &[record("subject", "s-1", "M001"), checkup("pn-read", 1)],
    );
    hub.push(&town, &[checkup("pn-read", 2)]);
    assert_eq!(current_etag(&hub, &town, "pn-read"), "\"v2\"");
    let profile = hub.profile(&town, "M001").ok();
    let checkup = profile["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["source_record_id"] == "pn-read")
        .cloned()
        .expect("the checkup");
    assert_eq!(checkup["etag"], "\"v2\"", "{checkup}");
    let feed = hub.all_changes(&town, 100);
    let tags: Vec<&str> = feed
        .iter()
        .filter(|c| c["source_record_id"] == "pn-read")
        .map(|c| c["etag"].as_str().expect("etag"))
        .collect();
    assert_eq!(tags, ["\"v1\"", "\"v2\""]);
}

/// Bad conditions and a record under another id are refused precisely, storing nothing.
fn bad_conditions_are_refused_precisely(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let body = checkup("pn-other", 1).to_string();
    let wrong_id = hub.put(
        &record_path(&town, "pn-url"),
        Some(&town.token),
        Some("application/json"),
        &[],
        body,
    );
    let problem = wrong_id.problem(422, "record_rejected");
    assert_eq!(
        problem["errors"][0]["pointer"], "/source_record_id",
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["code"], "source_record_id_mismatch");
    assert_eq!(hub.history(&town, "pn-other").status, 404);

    let unquoted = put(&hub, &town, &checkup("pn-q", 1), &[("If-Match", "v1")]);
    assert!(
        unquoted.problem(400, "precondition_invalid")["detail"]
            .as_str()
            .expect("detail")
            .contains("quoted entity tags")
    );
    let both = put(
        &hub,
        &town,
        &checkup("pn-q", 1),
        &[("If-Match", "*"), ("If-None-Match", "*")],
    );
    both.problem(400, "precondition_invalid");
    put(&hub, &town, &checkup("pn-q", 1), &[]);
    let on_delete = hub.delete_with(
        &record_path(&town, "pn-q"),
        Some(&town.token),
        &[("If-None-Match", "*")],
    );
    on_delete.problem(400, "precondition_invalid");
    assert_eq!(current_etag(&hub, &town, "pn-q"), "\"v1\"");
}

both_backends!(
    two_writers_racing_never_overwrite_each_other,
    if_none_match_star_creates_only,
    if_match_guards_retraction_and_missing_records,
    reads_carry_entity_tags,
    bad_conditions_are_refused_precisely,
);
