//! Every operation of the OpenAPI document, called by a client of every scope that may not see
//! a child (the nation's analyst, a council's operator, other towns' staff): none may return a
//! personal field, and a child it may not see answers exactly like a missing one. The list of
//! operations comes from the committed document, so a route added later is checked without
//! anyone remembering to add it here.

use crate::common;

use common::{Backend, Hub};
use serde_json::{Value, json};

const TOWN: &str = "131016";
const OTHER: &str = "011002";
const CHILD: &str = "R-SECRET-1";
/// The council both towns belong to: its operator works over the very towns holding the
/// children, and still sees none of them.
const COUNCIL: &str = "north";
const SECRETS: [&str; 4] = ["秘密", CHILD, "ヒミツ", "秘密町"];

fn seed(hub: &Hub) {
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
}

/// A council of both towns; returns the tokens of the nation's analyst and the council's
/// operator.
fn scoped_callers(hub: &Hub) -> Vec<(String, String)> {
    let council = hub.cli(&["admin", "council", "add", COUNCIL, "北の協議会"]);
    assert!(council.status.success(), "{}", common::describe(&council));
    for town in [TOWN, OTHER] {
        let joined = hub.cli(&["admin", "council", "member", "add", COUNCIL, town]);
        assert!(joined.status.success(), "{}", common::describe(&joined));
    }
    vec![
        (
            "national-analyst@nation".into(),
            hub.add_scoped_client(&["--nation"], "analyst", "national-analyst"),
        ),
        (
            format!("council-admin@council:{COUNCIL}"),
            hub.add_scoped_client(&["--council", COUNCIL], "operator", "council-admin"),
        ),
    ]
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
    let code = if path.starts_with("/v1/councils/") {
        COUNCIL
    } else {
        TOWN
    };
    path.replace("{code}", code)
        .replace("{resident_no}", CHILD)
        .replace("{source_record_id}", "wb-secret")
        .replace("{id}", "1")
        .replace("{version}", "1")
        .replace("{run}", "1")
        .replace("{record_type}", "subject")
}

fn body_for(op: &Value) -> String {
    op.pointer("/requestBody/content/application~1json/example")
        .cloned()
        .unwrap_or_else(|| json!({}))
        .to_string()
}

fn council_and_national_scopes_see_no_personal_field(backend: Backend) {
    let hub = Hub::start(backend);
    seed(&hub);
    let callers = scoped_callers(&hub);
    let headers = [("X-Purpose", "case_handling"), ("X-Actor", "analyst-1")];
    let ops = operations();
    assert!(ops.len() >= 20, "the document lists the operations");
    let mut called = 0;
    for (who, token) in &callers {
        for (method, path, op) in &ops {
            let url = concrete(path);
            let url = if path == "/v1/audit" {
                format!("{url}?subject={CHILD}")
            } else {
                url
            };
            let response = call(&hub, method, &url, token, &headers, body_for(op));
            called += 1;
            let text = String::from_utf8_lossy(&response.body).into_owned();
            for secret in SECRETS {
                assert!(
                    !text.contains(secret),
                    "{method} {path} answered {who} with personal data ({secret}): {} {text}",
                    response.status
                );
            }
            let personal = path.contains("{resident_no}")
                || path.contains("/changes")
                || path.contains("/history")
                || path.contains("identity-reviews")
                || path.starts_with("/v1/transfers")
                || path.starts_with("/v1/audit")
                || path.starts_with("/v1/municipalities/{code}/screening-")
                || path.contains("/school-shares");
            if personal {
                assert!(
                    !(200..300).contains(&response.status),
                    "{method} {path} must refuse {who}, got {}: {text}",
                    response.status
                );
            }
        }
    }
    assert_eq!(called, ops.len() * callers.len());
    // The data is really there: the same routes answer a caseworker with it.
    let town = common::Town {
        code: TOWN.into(),
        token: hub.add_client(TOWN, "reader", "caseworker", None),
    };
    let profile = hub.profile(&town, CHILD).ok();
    assert_eq!(profile["subject"]["name"], "秘密 花子");
}

both_backends!(council_and_national_scopes_see_no_personal_field);

// ---------------------------------------------------------------------------------------
// Every operation × every role × every kind of child the caller may not see: the answer is
// exactly the answer for a child that does not exist. Operations, parameters and bodies come
// from the committed document, so a route added later is covered without editing this test.

const DV_CHILD: &str = "GA-DV";
const OPTED_CHILD: &str = "GA-OPT";
const OTHER_CHILD: &str = "GA-OTHER";
const MISSING_TRANSFER: &str = "999999";
/// The screening run `seed_hidden_children` makes (it holds the DV and the opted-out child).
const SCREENING_RUN: &str = "1";
/// Operations that write a source's own records (not reads of anyone's).
const INGESTION: [&str; 2] = ["push", "validate"];

/// What stands for the child in one request: path parameters, the audit query, bodies.
struct Subject<'a> {
    code: &'a str,
    resident_no: &'a str,
    record: String,
    transfer: &'a str,
    /// A screening run of the town holding every hidden child of it.
    run: &'a str,
}

impl Subject<'_> {
    fn url(&self, path: &str, op: &Value) -> String {
        let url = path
            .replace("{code}", self.code)
            .replace("{resident_no}", self.resident_no)
            .replace("{source_record_id}", &self.record)
            .replace("{id}", self.transfer)
            .replace("{run}", self.run)
            .replace("{version}", "1")
            .replace("{record_type}", "subject");
        let takes_subject = op["parameters"].as_array().is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == "query" && p["name"] == "subject")
        });
        if takes_subject {
            format!("{url}?subject={}", self.resident_no)
        } else {
            url
        }
    }

    /// The operation's example body with every child reference pointing at this subject.
    fn body(&self, op: &Value) -> String {
        let mut body = example_body(op);
        point_at(&mut body, self.resident_no);
        body.to_string()
    }
}

/// The example of an operation's JSON body: given inline or on the schema it refers to.
fn example_body(op: &Value) -> Value {
    let content = op.pointer("/requestBody/content/application~1json");
    let inline = content.and_then(|c| c.get("example")).cloned();
    let referenced = content
        .and_then(|c| c.pointer("/schema/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .and_then(|name| {
            DOCUMENT.with(|d| {
                d.pointer(&format!("/components/schemas/{name}/example"))
                    .cloned()
            })
        });
    inline.or(referenced).unwrap_or_else(|| json!({}))
}

thread_local! {
    static DOCUMENT: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"),
        )
        .expect("openapi.json"),
    )
    .expect("JSON");
}

/// Replace every resident number in an example body (children, placements, confirmations).
fn point_at(value: &mut Value, resident_no: &str) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match (key.as_str(), &mut *field) {
                    ("resident_no" | "origin_resident_no", Value::String(s)) => {
                        *s = resident_no.to_string()
                    }
                    ("children", Value::Array(items)) => {
                        *items = vec![json!(resident_no)];
                    }
                    _ => point_at(field, resident_no),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| point_at(i, resident_no)),
        _ => {}
    }
}

fn call(
    hub: &Hub,
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: String,
) -> common::Resp {
    match method {
        "GET" => hub.get_with(url, Some(token), headers),
        "DELETE" => hub.delete_with(url, Some(token), headers),
        "POST" => hub.post(url, Some(token), Some("application/json"), headers, body),
        "PUT" => hub.put(url, Some(token), Some("application/json"), headers, body),
        other => panic!("unexpected method {other}"),
    }
}

/// The answer with the volatile parts of an audit listing (sequence, time, hashes) and the
/// echoed subject removed, so two trails compare by what they disclose.
fn comparable(resp: &common::Resp, child: &str) -> common::Resp {
    let text = resp.text().replace(child, "<child>");
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(mut v) => {
            if let Some(entries) = v.get_mut("entries").and_then(Value::as_array_mut) {
                for e in entries.iter_mut().filter_map(Value::as_object_mut) {
                    for volatile in ["seq", "at", "hash", "prev_hash", "detail", "client_id"] {
                        e.remove(volatile);
                    }
                }
            }
            v.to_string().into_bytes()
        }
        Err(_) => text.into_bytes(),
    };
    let headers = resp
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .cloned()
        .collect();
    common::Resp {
        status: resp.status,
        headers,
        body,
    }
}

fn seed_hidden_children(hub: &Hub) -> String {
    let town = hub.town(TOWN);
    let other = hub.town(OTHER);
    let child = |id: &str, resident_no: &str, dv: bool| {
        json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": id,
            "subject": {"resident_no": resident_no}, "effective_date": "2019-04-01",
            "household_no": format!("H-{resident_no}"), "name": "見えない 子", "birth_date": "2019-04-01",
            "sex": 2, "role": "child", "support_measure": dv,
        })
    };
    let check = |id: &str, resident_no: &str| {
        json!({
            "record_type": "school-wellbeing-check", "schema_version": "1.0",
            "source_record_id": id, "subject": {"resident_no": resident_no},
            "effective_date": "2025-06-01", "checked_on": "2025-06-01",
            "instrument": "こころの健康観察", "result": "concern",
        })
    };
    let pushed = hub.push(
        &town,
        &[
            child("s-dv", DV_CHILD, true),
            child("s-opt", OPTED_CHILD, false),
            check(&record_of(DV_CHILD), DV_CHILD),
            check(&record_of(OPTED_CHILD), OPTED_CHILD),
        ],
    );
    assert_eq!(pushed["rejected"], 0, "{pushed}");
    let pushed = hub.push(
        &other,
        &[
            child("s-other", OTHER_CHILD, false),
            check(&record_of(OTHER_CHILD), OTHER_CHILD),
        ],
    );
    assert_eq!(pushed["rejected"], 0, "{pushed}");
    // A worklist holding the DV child and the child whose guardian objects afterwards.
    let rules = hub.post(
        &format!("/v1/municipalities/{TOWN}/screening-rules"),
        Some(&town.token),
        Some("application/json"),
        &[("X-Actor", "staff-1")],
        json!({"name": "t", "items": [{"item": 14, "points": 1}],
               "age_bands": [{"label": "全年齢", "min_age": 0, "max_age": 17, "threshold": 1}]})
        .to_string(),
    );
    assert_eq!(rules.status, 201, "{}", rules.text());
    let adopted = hub.post(
        &format!("/v1/municipalities/{TOWN}/screening-rules/1/adopt"),
        Some(&town.token),
        None,
        &[("X-Actor", "staff-1")],
        "",
    );
    assert_eq!(adopted.status, 200, "{}", adopted.text());
    let run = hub.post(
        &format!("/v1/municipalities/{TOWN}/screening-runs"),
        Some(&town.token),
        Some("application/json"),
        &[("X-Purpose", "screening_review"), ("X-Actor", "staff-1")],
        json!({"as_of": "2025-06-02"}).to_string(),
    );
    assert_eq!(run.status, 201, "{}", run.text());
    assert_eq!(run.json()["id"], 1, "the tests name run 1");
    let objected = hub.put(
        &format!("/v1/municipalities/{TOWN}/subjects/{OPTED_CHILD}/opt-out"),
        Some(&town.token),
        Some("application/json"),
        &[("X-Actor", "staff-1")],
        json!({"objected_on": "2025-04-01"}).to_string(),
    );
    assert_eq!(objected.status, 200, "{}", objected.text());
    // A transfer of the DV child, offered by an officer who may see it.
    let dv_officer = hub.add_client(
        TOWN,
        "dv-officer",
        "transfer-officer,support-measure-reader",
        None,
    );
    let offered = hub.post(
        "/v1/transfers",
        Some(&dv_officer),
        Some("application/json"),
        &[("X-Actor", "officer-1")],
        json!({"destination": OTHER, "children": [DV_CHILD], "legal_basis": "test",
               "reason": "refuge", "escalate_to": "chief"})
        .to_string(),
    );
    assert_eq!(offered.status, 201, "{}", offered.text());
    offered.json()["id"].as_i64().expect("id").to_string()
}

fn record_of(resident_no: &str) -> String {
    format!("rec-{resident_no}")
}

/// A kind of child a caller may not see: its name, the hidden child, a missing one, the
/// headers of the request, and which operations (method, path) it hides the child from.
type Kind<'a> = (
    &'a str,
    Subject<'a>,
    Subject<'a>,
    &'a [(&'a str, &'a str)],
    fn(&str, &str) -> bool,
);

fn hidden_children_answer_like_missing_ones(backend: Backend) {
    let hub = Hub::start(backend);
    let dv_transfer = seed_hidden_children(&hub);
    // Every role a town's client can hold, none of them with support-measure-reader; callers
    // of the other town too (the destination of the DV transfer); and the scopes above the
    // towns: the nation's analyst and the operator of a council of both towns.
    let roles = [
        "source",
        "caseworker",
        "transfer-officer",
        "auditor",
        "council-admin",
        "school",
        "source,caseworker,transfer-officer,auditor",
    ];
    let mut callers: Vec<(String, String)> = scoped_callers(&hub);
    for (i, role) in roles.iter().enumerate() {
        for town in [TOWN, OTHER] {
            let token = hub.add_client(town, &format!("ga-{i}-{town}"), role, None);
            callers.push((format!("{role}@{town}"), token));
        }
    }
    let here = |resident_no, transfer| Subject {
        code: TOWN,
        resident_no,
        record: record_of(resident_no),
        transfer,
        run: SCREENING_RUN,
    };
    let there = |resident_no| Subject {
        code: OTHER,
        resident_no,
        record: record_of(resident_no),
        transfer: MISSING_TRANSFER,
        run: SCREENING_RUN,
    };
    let case_handling = [("X-Purpose", "case_handling"), ("X-Actor", "staff-9")];
    let screening = [("X-Purpose", "screening_review"), ("X-Actor", "staff-9")];
    // (kind, the hidden child, the missing one, headers, which operations the kind hides from)
    let kinds: Vec<Kind> = vec![
        (
            "DV child",
            here(DV_CHILD, &dv_transfer),
            // Each kind has its own missing child, so both trails see the same requests.
            here("GA-NOPE-1", MISSING_TRANSFER),
            &case_handling,
            |_, _| true,
        ),
        (
            "another town's child",
            there(OTHER_CHILD),
            there("GA-NOPE-2"),
            &case_handling,
            |_, _| true,
        ),
        (
            "opted-out child in a screening view",
            here(OPTED_CHILD, MISSING_TRANSFER),
            here("GA-NOPE-3", MISSING_TRANSFER),
            &screening,
            |method, path| {
                method == "GET"
                    && (path.contains("{resident_no}") || path.contains("{source_record_id}"))
            },
        ),
    ];
    let ops = operations();
    let mut compared = 0;
    let mut covered = std::collections::BTreeSet::new();
    for (method, path, op) in &ops {
        // A source's pushes carry what it already holds and answer about its own records
        // only; they read nothing of the hub's (the source's record ids make them differ).
        if INGESTION.contains(&op["operationId"].as_str().unwrap_or_default()) {
            continue;
        }
        for (kind, hidden, missing, headers, applies) in &kinds {
            if !applies(method, path) {
                continue;
            }
            let (hidden_url, missing_url) = (hidden.url(path, op), missing.url(path, op));
            let (hidden_body, missing_body) = (hidden.body(op), missing.body(op));
            if hidden_url == missing_url && hidden_body == missing_body {
                continue; // The operation does not name a child.
            }
            for (who, token) in &callers {
                // The other town's own callers may see its child.
                if *kind == "another town's child" && who.ends_with(OTHER) {
                    continue;
                }
                let h = call(
                    &hub,
                    method,
                    &hidden_url,
                    token,
                    headers,
                    hidden_body.clone(),
                );
                let m = call(
                    &hub,
                    method,
                    &missing_url,
                    token,
                    headers,
                    missing_body.clone(),
                );
                common::assert_same_answer(
                    &comparable(&h, hidden.resident_no),
                    &comparable(&m, missing.resident_no),
                    &format!("{method} {path} by {who}, {kind}"),
                );
                compared += 1;
                covered.insert(format!("{method} {path}"));
            }
        }
    }
    // The operations that name a child are all covered (a new one joins by itself).
    for expected in [
        "GET /v1/municipalities/{code}/subjects/{resident_no}",
        "GET /v1/municipalities/{code}/records/{source_record_id}/history",
        "PUT /v1/municipalities/{code}/subjects/{resident_no}/opt-out",
        "GET /v1/transfers/{id}",
        "POST /v1/transfers",
        "POST /v1/transfers/{id}/accept",
        "POST /v1/transfers/{id}/claim",
        "GET /v1/transfers/{id}/package",
        "GET /v1/audit",
        "GET /v1/municipalities/{code}/screening-runs/{run}/entries/{resident_no}",
        "PUT /v1/municipalities/{code}/screening-runs/{run}/entries/{resident_no}/decision",
    ] {
        assert!(
            covered.contains(expected),
            "{expected} not compared: {covered:?}"
        );
    }
    assert!(compared > 300, "{compared} comparisons");
}

both_backends!(hidden_children_answer_like_missing_ones);
