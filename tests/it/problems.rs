//! Batch-level problems: RFC 9457 problem details (application/problem+json with type, title,
//! status, detail and code) for inputs that cannot be read as a whole, for authentication and
//! authorization failures, and for unknown routes.

use crate::common;

use common::{Backend, Hub, OTHER_TOWN, TOWN, record, subject};
use serde_json::{Value, json};

fn records_path(town: &str) -> String {
    format!("/v1/municipalities/{town}/records")
}

fn malformed_json_batches(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let path = records_path(TOWN);
    let post = |body: &[u8]| {
        hub.post(
            &path,
            Some(&town.token),
            Some("application/json"),
            &[],
            body.to_vec(),
        )
    };

    let p = post(br#"{"records": [ {"record_type": "subject",  "#).problem(400, "json_syntax");
    assert!(
        p["type"].as_str().expect("type").ends_with("json_syntax"),
        "{p}"
    );
    assert_eq!(p["title"], "Bad Request");
    assert_eq!(p["errors"][0]["code"], "json_syntax", "{p}");

    let mut not_utf8 = br#"{"records": [{"record_type": "subject", "name": ""#.to_vec();
    not_utf8.extend_from_slice(&[0x82, 0xa0, 0xff]);
    not_utf8.extend_from_slice(br#""}]}"#);
    post(&not_utf8).problem(400, "utf8");

    // Wrong shapes: not an object, no records, records not an array.
    for body in [
        r#"[{"record_type": "subject"}]"#,
        r#"{"items": []}"#,
        r#"{"records": {"record_type": "subject"}}"#,
        r#""records""#,
        "{}",
    ] {
        post(body.as_bytes()).problem(400, "batch_shape");
    }
    post(r#"[1, 2]"#.as_bytes()).problem(400, "batch_shape");
    post(r#"{"records": 5}"#.as_bytes()).problem(400, "batch_shape");

    // Unknown top-level batch fields are rejected, never ignored.
    let p = post(br#"{"records": [], "atomic": true}"#).problem(400, "unknown_field");
    assert_eq!(p["errors"][0]["pointer"], "/atomic", "{p}");

    // Nothing of a malformed batch was stored.
    assert!(hub.all_changes(&town, 100).is_empty());
}

fn content_type_and_size_limits(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let path = records_path(TOWN);
    let batch = json!({"records": [record("subject", "s1", "C1")]}).to_string();

    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let resp = hub.post(&path, Some(&town.token), content_type, &[], batch.clone());
        resp.problem(415, "unsupported_media_type");
    }
    // Content types are case-insensitive and may carry parameters.
    let resp = hub.post(
        &path,
        Some(&town.token),
        Some("Application/JSON; charset=utf-8"),
        &[],
        batch.clone(),
    );
    assert_eq!(resp.ok()["created"], 1);

    // 10,000 records is the JSON batch limit (the schema's maxItems); one more is 422 with the
    // pointer to the array, before any record is validated.
    let records = vec![json!({}); 10_001];
    let body = json!({ "records": records }).to_string();
    let p = hub
        .post(
            &path,
            Some(&town.token),
            Some("application/json"),
            &[],
            body,
        )
        .problem(422, "batch_too_large");
    assert!(
        p["detail"].as_str().expect("detail").contains("10000"),
        "{p}"
    );
    assert_eq!(p["errors"][0]["pointer"], "/records", "{p}");
    assert_eq!(hub.all_changes(&town, 100).len(), 1);

    // Exactly at the limit is read (and each empty record rejected on its own).
    let records = vec![json!({}); 10_000];
    let body = json!({ "records": records }).to_string();
    let report = hub
        .post(
            &format!("{path}?results=rejected"),
            Some(&town.token),
            Some("application/json"),
            &[],
            body,
        )
        .ok();
    assert_eq!(report["received"], 10_000);
    assert_eq!(report["rejected"], 10_000);

    // Unknown query parameters are problems too.
    hub.post(
        &format!("{path}?atomc=true"),
        Some(&town.token),
        Some("application/json"),
        &[],
        batch,
    )
    .problem(400, "invalid_request");
}

fn csv_batch_problems(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let path = records_path(TOWN);
    let csv = "source_record_id,schema_version,effective_date,subject.resident_no,household_no,\
               name,birth_date,sex,role,blood_type\n\
               s1,1.0,2024-05-01,C1,H1,山田 花子,2021-04-02,2,child,A\n";
    let p = hub
        .post(
            &format!("{path}?record_type=subject"),
            Some(&town.token),
            Some("text/csv"),
            &[],
            csv,
        )
        .problem(400, "csv_header");
    let errors = p["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{p}");
    assert_eq!(errors[0]["column"], "blood_type", "{p}");
    assert_eq!(errors[0]["row"], 1, "{p}");
    assert!(
        errors[0]["message"]
            .as_str()
            .expect("message")
            .contains("blood_type"),
        "{p}"
    );

    let good = "source_record_id,schema_version,effective_date,subject.resident_no,household_no,\
                name,birth_date,sex,role\n\
                s1,1.0,2024-05-01,C1,H1,山田 花子,2021-04-02,2,child\n";
    hub.post(&path, Some(&town.token), Some("text/csv"), &[], good)
        .problem(422, "record_type_required");
    hub.post(
        &format!("{path}?record_type=school-lunch"),
        Some(&town.token),
        Some("text/csv"),
        &[],
        good,
    )
    .problem(400, "record_type_unknown");
    hub.post(
        &format!("{path}?record_type=subject"),
        Some(&town.token),
        Some("text/csv; charset=latin-9"),
        &[],
        good,
    )
    .problem(400, "encoding");
    assert!(hub.all_changes(&town, 100).is_empty());
}

fn authentication_and_town_boundaries(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let other = hub.town(OTHER_TOWN);
    let body = json!({"records": [record("subject", "s1", "C1")]}).to_string();
    let path = records_path(TOWN);

    for token in [None, Some("khub_not_a_real_token"), Some("")] {
        let resp = hub.post(&path, token, Some("application/json"), &[], body.clone());
        resp.problem(401, "unauthorized");
        assert_eq!(resp.header("www-authenticate"), Some("Bearer"), "{token:?}");
    }
    let resp = hub.get(&format!("/v1/municipalities/{TOWN}/subjects/C1"), None);
    resp.problem(401, "unauthorized");
    let resp = hub.post(
        &path,
        None,
        Some("application/json"),
        &[("Authorization", &format!("Basic {}", town.token))],
        body.clone(),
    );
    resp.problem(401, "unauthorized");

    // A source of another town may not push here.
    let resp = hub.post(
        &path,
        Some(&other.token),
        Some("application/json"),
        &[],
        body.clone(),
    );
    resp.problem(403, "forbidden");
    // A caseworker-only client may not push.
    let reader = hub.add_client(TOWN, "reader", "caseworker", None);
    hub.post(
        &path,
        Some(&reader),
        Some("application/json"),
        &[],
        body.clone(),
    )
    .problem(403, "forbidden");
    // A source of another town may not retract here either.
    hub.push(&town, &[record("subject", "s1", "C1")]);
    let resp = hub.delete(&format!("{path}/s1"), Some(&other.token));
    assert!(
        resp.status == 403 || resp.status == 404,
        "retract by another town: {}",
        resp.text()
    );
    assert_eq!(
        hub.history(&town, "s1").ok()["versions"]
            .as_array()
            .expect("v")
            .len(),
        1
    );
    assert_eq!(hub.all_changes(&other, 100).len(), 0);
}

fn other_towns_child_and_missing_child_look_the_same(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let other = hub.town(OTHER_TOWN);
    // A child that exists in the other town.
    hub.push(&other, &[subject("s-x", "C777", "佐藤 蓮")]);
    hub.push(&town, &[subject("s-y", "C100", "鈴木 陽葵")]);
    assert_eq!(
        hub.profile(&other, "C777").ok()["subject"]["name"],
        "佐藤 蓮"
    );

    let caseworker = hub.add_client(TOWN, "caseworker", "caseworker", None);
    let foreign = hub.get(
        &format!("/v1/municipalities/{OTHER_TOWN}/subjects/C777"),
        Some(&caseworker),
    );
    let missing = hub.get(
        &format!("/v1/municipalities/{TOWN}/subjects/C404"),
        Some(&caseworker),
    );
    foreign.problem(404, "not_found");
    missing.problem(404, "not_found");
    assert_eq!(foreign.status, missing.status);
    assert_eq!(foreign.body, missing.body, "bodies must be byte-identical");
    assert_eq!(foreign.content_type(), missing.content_type());

    // The same for a source-only client in its own town (it may not read profiles).
    let source_only = hub.add_client(TOWN, "koumu", "source", None);
    let denied = hub.get(
        &format!("/v1/municipalities/{TOWN}/subjects/C100"),
        Some(&source_only),
    );
    assert_eq!(denied.status, 404);
    assert_eq!(denied.body, missing.body);

    // Record history of another town: the same answer as a record that does not exist.
    let foreign = hub.get(
        &format!("/v1/municipalities/{OTHER_TOWN}/records/s-x/history"),
        Some(&caseworker),
    );
    let missing = hub.get(
        &format!("/v1/municipalities/{TOWN}/records/nothing/history"),
        Some(&caseworker),
    );
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body, missing.body);
}

fn unknown_routes_are_problems(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    for path in [
        "/",
        "/v1",
        "/v2/municipalities/131016/records",
        "/v1/municipalities/131016/nothing",
        "/v1/schemas/1/no-such-type",
        "/v1/schemas/9/subject",
    ] {
        let resp = hub.get(path, Some(&town.token));
        let p: Value = resp.problem(404, "not_found");
        assert_eq!(p["status"], 404, "{path}");
    }
    let resp = hub.post(
        "/v1/nothing",
        Some(&town.token),
        Some("application/json"),
        &[],
        "{}",
    );
    resp.problem(404, "not_found");
}

both_backends!(
    malformed_json_batches,
    content_type_and_size_limits,
    csv_batch_problems,
    authentication_and_town_boundaries,
    other_towns_child_and_missing_child_look_the_same,
    unknown_routes_are_problems,
);
