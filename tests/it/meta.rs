//! Dry-run validation, the served schemas, health/readiness/metrics and the demo council.

use crate::common;

use common::{Backend, Hub, RECORD_TYPES, TOWN, assert_rejected, record};
use serde_json::{Value, json};

fn validate_stores_nothing(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let mut bad = record("postnatal-checkup", "v-2", "M1");
    bad["epds_total"] = json!(31);
    let body = json!({"records": [record("subject", "v-1", "C1"), bad]}).to_string();
    let resp = hub.post(
        "/v1/validate",
        Some(&town.token),
        Some("application/json"),
        &[],
        body,
    );
    let report = resp.ok();
    assert_eq!(report["stored"], false, "{report}");
    assert_eq!(report["received"], 2);
    assert_eq!(report["valid"], 1);
    assert_eq!(report["invalid"], 1);
    assert_eq!(report["results"][0]["valid"], true);
    let second = &report["results"][1];
    assert_eq!(second["valid"], false);
    assert_rejected(
        &json!({"status": "rejected", "errors": second["errors"].clone()}),
        &[("range", "/epds_total")],
    );

    hub.history(&town, "v-1").problem(404, "not_found");
    hub.profile(&town, "C1").problem(404, "not_found");
    assert!(hub.all_changes(&town, 100).is_empty());

    // Validation needs a token and a readable batch, like a push.
    hub.post(
        "/v1/validate",
        None,
        Some("application/json"),
        &[],
        r#"{"records": []}"#,
    )
    .problem(401, "unauthorized");
    hub.post(
        "/v1/validate",
        Some(&town.token),
        Some("application/json"),
        &[],
        r#"{"records": ["#,
    )
    .problem(400, "json_syntax");
}

fn schemas_are_served(backend: Backend) {
    let hub = Hub::start(backend);
    let list = hub.get("/v1/schemas", None).ok();
    let versions = list["versions"].as_array().expect("versions");
    let v1 = versions
        .iter()
        .find(|v| v["major"] == 1)
        .unwrap_or_else(|| panic!("v1 in {list}"));
    assert!(v1["version"].as_str().expect("version").starts_with("1."));
    let types: Vec<&str> = v1["record_types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| t["record_type"].as_str().expect("name"))
        .collect();
    assert_eq!(types.len(), RECORD_TYPES.len(), "{types:?}");
    for t in RECORD_TYPES {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let infant = v1["record_types"]
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["record_type"] == "infant-checkup")
        .expect("infant-checkup");
    assert_eq!(infant["basic_items"], json!([3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(infant["href"], "/v1/schemas/1/infant-checkup");
    let columns = infant["csv_columns"].as_array().expect("columns");
    for c in ["checkup", "attended", "attended_on", "subject.resident_no"] {
        assert!(columns.iter().any(|x| x == c), "{c} in {columns:?}");
    }

    for path in [
        "/v1/schemas/1/infant-checkup",
        "/v1/schemas/v1/infant-checkup",
        "/v1/schemas/1.0/infant-checkup.json",
    ] {
        let resp = hub.get(path, None);
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert!(
            resp.content_type().contains("json"),
            "{path}: {}",
            resp.content_type()
        );
        let schema = resp.json();
        assert_eq!(
            schema["$id"],
            "https://kodomo-hub.jp/schema/v1/records/infant-checkup.json"
        );
        assert_eq!(
            schema["properties"]["record_type"]["const"],
            "infant-checkup"
        );
        assert_eq!(schema["x-basic-item"], json!([3, 4, 5, 6, 7, 8, 9]));
    }
    // The served file is the committed schema file.
    let served = hub.get("/v1/schemas/1/infant-checkup", None).json();
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/v1/records/infant-checkup.json"
        ))
        .expect("schema file"),
    )
    .expect("schema JSON");
    assert_eq!(served, file);
    let common = hub.get("/v1/schemas/1/common", None).ok();
    assert!(common["$defs"]["envelope"].is_object());
    hub.get("/v1/schemas/2/infant-checkup", None)
        .problem(404, "not_found");
    hub.get("/v1/schemas/1/../common", None)
        .problem(404, "not_found");
}

fn health_readiness_and_metrics(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    assert_eq!(hub.get("/healthz", None).ok()["status"], "ok");
    assert_eq!(hub.get("/readyz", None).ok()["status"], "ready");

    let mut bad = record("postnatal-checkup", "m-2", "M1");
    bad["epds_total"] = json!(31);
    hub.push(&town, &[record("subject", "m-1", "C1"), bad]);
    hub.push(&town, &[record("subject", "m-1", "C1")]);

    let resp = hub.get("/metrics", None);
    assert_eq!(resp.status, 200);
    assert!(
        resp.content_type().starts_with("text/plain"),
        "{}",
        resp.content_type()
    );
    let text = resp.text();
    assert!(
        text.contains("# TYPE kodomo_hub_records_total counter"),
        "{text}"
    );
    let metric = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l[name.len()..].trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    assert_eq!(
        metric(r#"kodomo_hub_records_total{outcome="created"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"kodomo_hub_records_total{outcome="rejected"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"kodomo_hub_records_total{outcome="unchanged"}"#),
        1.0
    );
    assert_eq!(
        metric(r#"kodomo_hub_records_total{outcome="updated"}"#),
        0.0
    );
    // Every metric line is a Prometheus sample or comment.
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with('#') || line.starts_with("kodomo_hub_"),
            "{line}"
        );
    }
}

/// The demo council on an empty data dir: tokens are written out, and a caseworker can find
/// children for whom basic items apply, each with a reason.
#[test]
fn demo_council_shows_applicable_items_sqlite() {
    let hub = Hub::start_with(Backend::Sqlite, &["--demo"]);
    let env = std::fs::read_to_string(hub.data_dir().join("demo-tokens.env"))
        .expect("demo-tokens.env in the data dir");
    let var = |name: &str| -> String {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in demo-tokens.env:\n{env}"))
            .trim()
            .to_string()
    };
    let caseworker = var("KH_CASEWORKER");
    let town = var("KH_TOWN");
    assert_eq!(town.len(), 6, "{town}");

    let mut children = 0;
    let mut with_items = 0;
    let mut seen_items = std::collections::BTreeSet::new();
    'scan: for household in 1..=40u32 {
        for child in 0..3u32 {
            let resident_no = format!("{town}{household:05}1{child}");
            let resp = hub.get(
                &format!("/v1/municipalities/{town}/subjects/{resident_no}"),
                Some(&caseworker),
            );
            if resp.status == 404 {
                continue;
            }
            let profile = resp.ok();
            children += 1;
            assert_eq!(profile["subject"]["role"], "child", "{resident_no}");
            let items = profile["applicable_items"].as_array().expect("items");
            for item in items {
                let number = item["item"].as_u64().expect("item number");
                assert!((1..=19).contains(&number), "{item}");
                assert!(
                    item["title"].as_str().is_some_and(|t| !t.is_empty()),
                    "{item}"
                );
                assert!(
                    item["reason"]
                        .as_str()
                        .is_some_and(|r| !r.trim().is_empty()),
                    "{item}"
                );
                seen_items.insert(number);
            }
            if !items.is_empty() {
                with_items += 1;
            }
            if with_items >= 5 && children >= 30 {
                break 'scan;
            }
        }
    }
    assert!(children >= 10, "found {children} demo children");
    assert!(
        with_items >= 1,
        "no demo child among {children} has an applicable item"
    );
    println!("demo: {children} children read, {with_items} with applicable items {seen_items:?}");

    // Another demo town's caseworker cannot read these children.
    let other_town = env
        .lines()
        .find_map(|l| {
            l.strip_prefix("KH_CASEWORKER_")
                .and_then(|rest| rest.split_once('='))
                .filter(|(code, _)| *code != town)
        })
        .map(|(_, token)| token.trim().to_string())
        .expect("a second town's caseworker");
    let resp = hub.get(
        &format!("/v1/municipalities/{town}/subjects/{town}0000110"),
        Some(&other_town),
    );
    resp.problem(404, "not_found");
}

both_backends!(
    validate_stores_nothing,
    schemas_are_served,
    health_readiness_and_metrics,
);
