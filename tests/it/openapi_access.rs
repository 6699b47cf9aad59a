//! Every operation of the OpenAPI document, called with a national-analyst token: none may
//! return a personal field. The list of operations comes from the committed document, so a
//! route added later is checked without anyone remembering to add it here.

use crate::common;

use common::{Backend, Hub};
use serde_json::{Value, json};

const TOWN: &str = "131016";
const OTHER: &str = "011002";
const CHILD: &str = "R-SECRET-1";
const SECRETS: [&str; 4] = ["秘密", CHILD, "ヒミツ", "秘密町"];

fn seed(hub: &Hub) -> String {
    let town = hub.town(TOWN);
    hub.add_town(OTHER, "札幌市");
    let pushed = hub.push(
        &town,
        &[
            json!({
                "record_type": "subject", "schema_version": "1.0", "source_record_id": "s-secret",
                "subject": {"resident_no": CHILD}, "effective_date": "2019-04-01",
                "household_no": "H-SECRET", "name": "秘密 花子", "name_kana": "ヒミツ ハナコ",
                "birth_date": "2019-04-01", "sex": 2, "address": "秘密町1-2-3", "role": "child",
            }),
            json!({
                "record_type": "school-wellbeing-check", "schema_version": "1.0",
                "source_record_id": "wb-secret", "subject": {"resident_no": CHILD},
                "effective_date": "2025-06-01", "checked_on": "2025-06-01",
                "instrument": "こころの健康観察", "result": "concern",
            }),
            json!({
                "record_type": "school-attendance", "schema_version": "1.0",
                "source_record_id": "sa-unknown",
                "subject": {"basic_info": {"name": "秘密 次郎", "birth_date": "2018-01-01", "sex": 1}},
                "effective_date": "2026-03-20", "school_year": 2025, "period": "year",
                "absence_days": 40,
            }),
        ],
    );
    assert_eq!(pushed["rejected"], 0, "{pushed}");
    // A transfer exists, so `{id}` routes reach a real transfer.
    let officer = hub.add_client(TOWN, "officer", "transfer-officer", None);
    let offered = hub.post(
        "/v1/transfers",
        Some(&officer),
        Some("application/json"),
        &[("X-Actor", "officer-1")],
        json!({"destination": OTHER, "children": [CHILD], "legal_basis": "test",
               "reason": "moved", "escalate_to": "chief"})
        .to_string(),
    );
    assert_eq!(offered.status, 201, "{}", offered.text());
    hub.add_client(TOWN, "analyst", "national-analyst", None)
}

fn operations() -> Vec<(String, String, Value)> {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"),
        )
        .expect("openapi.json"),
    )
    .expect("JSON");
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    path.replace("{code}", TOWN)
        .replace("{resident_no}", CHILD)
        .replace("{source_record_id}", "wb-secret")
        .replace("{id}", "1")
        .replace("{version}", "1")
        .replace("{record_type}", "subject")
}

fn body_for(op: &Value) -> String {
    op.pointer("/requestBody/content/application~1json/example")
        .cloned()
        .unwrap_or_else(|| json!({}))
        .to_string()
}

fn national_analyst_sees_no_personal_field(backend: Backend) {
    let hub = Hub::start(backend);
    let analyst = seed(&hub);
    let headers = [("X-Purpose", "case_handling"), ("X-Actor", "analyst-1")];
    let ops = operations();
    assert!(ops.len() >= 20, "the document lists the operations");
    let mut called = 0;
    for (method, path, op) in &ops {
        let url = concrete(path);
        let url = if path == "/v1/audit" {
            format!("{url}?subject={CHILD}")
        } else {
            url
        };
        let response = match method.as_str() {
            "GET" => hub.get_with(&url, Some(&analyst), &headers),
            "DELETE" => hub.delete_with(&url, Some(&analyst), &headers),
            "POST" => hub.post(
                &url,
                Some(&analyst),
                Some("application/json"),
                &headers,
                body_for(op),
            ),
            "PUT" => hub.put(
                &url,
                Some(&analyst),
                Some("application/json"),
                &headers,
                body_for(op),
            ),
            other => panic!("unexpected method {other}"),
        };
        called += 1;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        for secret in SECRETS {
            assert!(
                !text.contains(secret),
                "{method} {path} answered the national analyst with personal data ({secret}): {} {text}",
                response.status
            );
        }
        let personal = path.contains("{resident_no}")
            || path.contains("/changes")
            || path.contains("/history")
            || path.contains("identity-reviews")
            || path.starts_with("/v1/transfers")
            || path.starts_with("/v1/audit");
        if personal {
            assert!(
                !(200..300).contains(&response.status),
                "{method} {path} must refuse a national analyst, got {}: {text}",
                response.status
            );
        }
    }
    assert_eq!(called, ops.len());
    // The data is really there: the same routes answer a caseworker with it.
    let town = common::Town {
        code: TOWN.into(),
        token: hub.add_client(TOWN, "reader", "caseworker", None),
    };
    let profile = hub.profile(&town, CHILD).ok();
    assert_eq!(profile["subject"]["name"], "秘密 花子");
}

both_backends!(national_analyst_sees_no_personal_field);
