//! Who may do what: the role matrix over every route family, declared purpose and actor on
//! personal reads, the audit trail an auditor reads, guardians' objections (opt-out), children
//! under a DV support measure (支援措置), and revoking or rotating a client's token.

use crate::common;

use common::{Backend, Hub, OTHER_TOWN, Resp, TOWN, Town, describe, record, subject};
use serde_json::{Value, json};

/// The published purposes, as the test reads them (not as the hub serves them).
const PURPOSES: &str = include_str!("../../schema/v1/access-purposes.json");

/// The legal basis published for `purpose`.
fn legal_basis(purpose: &str) -> String {
    let doc: Value = serde_json::from_str(PURPOSES).expect("access-purposes.json is JSON");
    doc["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["code"] == purpose)
        .and_then(|p| p["legal_basis"].as_str())
        .unwrap_or_else(|| panic!("purpose {purpose} is published"))
        .to_string()
}

fn purpose_codes() -> Vec<String> {
    let doc: Value = serde_json::from_str(PURPOSES).expect("access-purposes.json is JSON");
    doc["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .map(|p| p["code"].as_str().expect("code").to_string())
        .collect()
}

fn profile_path(resident_no: &str) -> String {
    format!("/v1/municipalities/{TOWN}/subjects/{resident_no}")
}

fn history_path(id: &str) -> String {
    format!("/v1/municipalities/{TOWN}/records/{id}/history")
}

fn opt_out_path(resident_no: &str) -> String {
    format!("/v1/municipalities/{TOWN}/subjects/{resident_no}/opt-out")
}

/// The whole change feed of the town (one page).
fn changes_path() -> String {
    format!("/v1/municipalities/{TOWN}/changes?after=0&limit=1000")
}

fn records_path() -> String {
    format!("/v1/municipalities/{TOWN}/records")
}

/// A personal read declaring `purpose` and `actor`.
fn read(hub: &Hub, path: &str, token: Option<&str>, purpose: &str, actor: &str) -> Resp {
    hub.get_with(path, token, &[("X-Purpose", purpose), ("X-Actor", actor)])
}

fn push_as(hub: &Hub, token: &str, records: &[Value]) -> Resp {
    hub.post(
        &records_path(),
        Some(token),
        Some("application/json"),
        &[],
        json!({ "records": records }).to_string(),
    )
}

fn put_opt_out(hub: &Hub, token: Option<&str>, resident_no: &str, body: &Value) -> Resp {
    hub.put(
        &opt_out_path(resident_no),
        token,
        Some("application/json"),
        &[("X-Actor", "staff-001")],
        body.to_string(),
    )
}

fn objection() -> Value {
    json!({"objected_on": "2025-04-01", "legal_note": "不同意書 第3号様式"})
}

/// The auditor's view of one child's trail.
fn audit_trail(hub: &Hub, auditor: &str, resident_no: &str) -> Vec<Value> {
    let body = hub
        .get_with(
            &format!("/v1/audit?subject={resident_no}"),
            Some(auditor),
            &[],
        )
        .ok();
    assert_eq!(body["subject"], resident_no, "{body}");
    body["entries"].as_array().expect("entries").clone()
}

/// The exact answer for a child that does not exist, as a caseworker who may read gets it.
fn missing_child(hub: &Hub, town: &Town, purpose: &str) -> Resp {
    let r = read(
        hub,
        &profile_path("NO-SUCH-CHILD"),
        Some(&town.token),
        purpose,
        "staff-001",
    );
    r.problem(404, "not_found");
    r
}

/// `resp` is a 404 byte-identical to `missing` (same status, content type and body).
fn assert_same_as_missing(resp: &Resp, missing: &Resp, context: &str) {
    assert_eq!(
        resp.status,
        404,
        "{context}: expected 404, got {}: {}",
        resp.status,
        resp.text()
    );
    assert_eq!(resp.content_type(), missing.content_type(), "{context}");
    assert_eq!(
        resp.body,
        missing.body,
        "{context}: the refusal must be indistinguishable from a missing child: {} vs {}",
        resp.text(),
        missing.text()
    );
}

// ---------------------------------------------------------------------------------------
// 1. The role matrix

/// Values of the matrix child that no caller without the right to read may ever receive.
const MATRIX_CHILD: &str = "RM-0001";
const MATRIX_NAME: &str = "行列 太郎";
const MATRIX_ADDRESS: &str = "松本町7-7-7";
const MATRIX_BIRTH: &str = "2019-08-15";
const PERSONAL_VALUES: [&str; 4] = [MATRIX_CHILD, MATRIX_NAME, MATRIX_ADDRESS, MATRIX_BIRTH];
/// JSON keys that only personal data has.
const PERSONAL_KEYS: [&str; 8] = [
    "resident_no",
    "name",
    "address",
    "birth_date",
    "records",
    "subject",
    "household",
    "guardian_records",
];

fn matrix_child() -> Value {
    let mut s = subject("s-matrix", MATRIX_CHILD, MATRIX_NAME);
    s["address"] = json!(MATRIX_ADDRESS);
    s["birth_date"] = json!(MATRIX_BIRTH);
    s["moved_in_on"] = json!(MATRIX_BIRTH);
    s["household_no"] = json!("H-MATRIX");
    s["guardians"] = json!([]);
    s
}

fn json_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                json_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| json_keys(v, out)),
        _ => {}
    }
}

/// No personal value of the matrix child in `resp`, and (unless it is a published schema
/// document, which names fields) no personal key either.
fn assert_no_personal_data(resp: &Resp, context: &str, check_keys: bool) {
    let text = String::from_utf8_lossy(&resp.body);
    for value in PERSONAL_VALUES {
        assert!(
            !text.contains(value),
            "{context}: the answer carries the personal value {value:?}: {text}"
        );
    }
    if check_keys && let Ok(body) = serde_json::from_slice::<Value>(&resp.body) {
        let mut keys = Vec::new();
        json_keys(&body, &mut keys);
        for key in PERSONAL_KEYS {
            assert!(
                !keys.iter().any(|k| k == key),
                "{context}: the answer carries the personal field {key:?}: {text}"
            );
        }
    }
}

/// One caller of the matrix.
struct Caller {
    label: &'static str,
    token: Option<String>,
}

/// Column order of [`MATRIX`].
const CALLERS: [&str; 10] = [
    "source",
    "caseworker",
    "transfer-officer",
    "council-admin",
    "national-analyst",
    "auditor",
    "support-measure-reader",
    "other-town caseworker",
    "anonymous",
    "unknown token",
];

/// Expected status per route family and caller (columns as in [`CALLERS`]).
#[rustfmt::skip]
const MATRIX: [(&str, [u16; 10]); 17] = [
    //                            src  cw   tro  ca   na   aud  smr  xcw  anon bad
    ("push",                     [200, 403, 403, 403, 403, 403, 403, 403, 401, 401]),
    ("retract",                  [200, 403, 403, 403, 403, 403, 403, 403, 401, 401]),
    ("profile",                  [404, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("profile (missing child)",  [404, 404, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("history (own source)",     [200, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("history (other source)",   [404, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("changes",                  [404, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("opt-out PUT",              [404, 200, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("opt-out DELETE",           [404, 204, 404, 404, 404, 404, 404, 404, 401, 401]),
    ("audit",                    [403, 403, 403, 403, 403, 200, 403, 403, 401, 401]),
    ("validate",                 [200, 200, 200, 200, 200, 200, 200, 200, 401, 401]),
    ("schemas",                  [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("schema document",          [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("access purposes",          [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("healthz",                  [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("readyz",                   [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("metrics",                  [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
];

/// The matrix world: the system client (source + caseworker) that seeds data and checks
/// state, and the callers.
struct World {
    hub: Hub,
    system: Town,
    callers: Vec<Caller>,
}

fn matrix_world(backend: Backend) -> World {
    let hub = Hub::start(backend);
    let system = hub.town(TOWN);
    let mut callers = Vec::new();
    for role in [
        "source",
        "caseworker",
        "transfer-officer",
        "council-admin",
        "national-analyst",
        "auditor",
        "support-measure-reader",
    ] {
        // National staff are bound to the nation, every other caller to the town.
        let token = if role == "national-analyst" {
            hub.add_scoped_client(&["--nation"], role, role)
        } else {
            hub.add_client(TOWN, role, role, None)
        };
        callers.push(Caller {
            label: role,
            token: Some(token),
        });
    }
    hub.add_town(OTHER_TOWN, "別の町");
    callers.push(Caller {
        label: "other-town caseworker",
        token: Some(hub.add_client(OTHER_TOWN, "caseworker", "caseworker", None)),
    });
    callers.push(Caller {
        label: "anonymous",
        token: None,
    });
    callers.push(Caller {
        label: "unknown token",
        token: Some(format!("khub_{}", "0f".repeat(32))),
    });
    assert_eq!(
        callers.iter().map(|c| c.label).collect::<Vec<_>>(),
        CALLERS.to_vec()
    );

    // The child and a record of the system source; a record of the `source` client.
    hub.push(
        &system,
        &[
            matrix_child(),
            record("temporary-protection", "tp-system", MATRIX_CHILD),
        ],
    );
    let source = callers[0].token.as_deref().expect("source token");
    push_as(
        &hub,
        source,
        &[record("school-attendance", "sa-own", MATRIX_CHILD)],
    )
    .ok();
    World {
        hub,
        system,
        callers,
    }
}

impl World {
    /// The opt-out of the matrix child, as the system caseworker sees it.
    fn opt_out(&self) -> Value {
        read(
            &self.hub,
            &profile_path(MATRIX_CHILD),
            Some(&self.system.token),
            "case_handling",
            "staff-001",
        )
        .ok()["opt_out"]
            .clone()
    }

    /// The current version of a record of any source, as the system caseworker sees it.
    fn last_version(&self, id: &str) -> Option<Value> {
        let r = read(
            &self.hub,
            &history_path(id),
            Some(&self.system.token),
            "case_handling",
            "staff-001",
        );
        if r.status == 404 {
            return None;
        }
        r.ok()["versions"]
            .as_array()
            .and_then(|v| v.last().cloned())
    }

    /// Call route family `route` as `caller`; for a refused write, check nothing changed.
    fn call(&self, route: &str, caller: &Caller) -> Resp {
        let hub = &self.hub;
        let token = caller.token.as_deref();
        let id = format!("pushed-by-{}", caller.label.replace(' ', "-"));
        match route {
            "push" => {
                let r = hub.post(
                    &records_path(),
                    token,
                    Some("application/json"),
                    &[],
                    json!({"records": [record("school-attendance", &id, MATRIX_CHILD)]})
                        .to_string(),
                );
                if r.status != 200 {
                    assert_eq!(
                        self.last_version(&id),
                        None,
                        "{route} refused, nothing stored"
                    );
                }
                r
            }
            "retract" => {
                // A record of the `source` client for this caller to retract.
                let id = format!("retract-{}", caller.label.replace(' ', "-"));
                let source = self.callers[0].token.as_deref().expect("source token");
                push_as(
                    hub,
                    source,
                    &[record("school-health-exam", &id, MATRIX_CHILD)],
                )
                .ok();
                let r = hub.delete(&format!("{}/{id}", records_path()), token);
                let last = self.last_version(&id).expect("the record exists");
                assert_eq!(
                    last["retracted"],
                    r.status == 200,
                    "{route} as {}: retracted only when allowed",
                    caller.label
                );
                r
            }
            "profile" => read(
                hub,
                &profile_path(MATRIX_CHILD),
                token,
                "case_handling",
                "staff-001",
            ),
            "profile (missing child)" => read(
                hub,
                &profile_path("NO-SUCH-CHILD"),
                token,
                "case_handling",
                "staff-001",
            ),
            "history (own source)" => read(
                hub,
                &history_path("sa-own"),
                token,
                "case_handling",
                "staff-001",
            ),
            "history (other source)" => read(
                hub,
                &history_path("tp-system"),
                token,
                "case_handling",
                "staff-001",
            ),
            "changes" => read(hub, &changes_path(), token, "case_handling", "staff-001"),
            "opt-out PUT" => {
                // Start from no objection; a refused PUT must leave it so.
                let _ = hub.delete(&opt_out_path(MATRIX_CHILD), Some(&self.system.token));
                assert_eq!(self.opt_out(), Value::Null);
                let r = put_opt_out(hub, token, MATRIX_CHILD, &objection());
                if r.status != 200 {
                    assert_eq!(self.opt_out(), Value::Null, "{route} refused, nothing set");
                }
                r
            }
            "opt-out DELETE" => {
                // Start from a recorded objection; a refused DELETE must keep it.
                put_opt_out(hub, Some(&self.system.token), MATRIX_CHILD, &objection()).ok();
                let r = hub.delete_with(
                    &opt_out_path(MATRIX_CHILD),
                    token,
                    &[("X-Actor", "staff-001")],
                );
                if r.status != 204 {
                    assert_ne!(self.opt_out(), Value::Null, "{route} refused, kept");
                } else {
                    assert_eq!(self.opt_out(), Value::Null, "{route} removed it");
                }
                r
            }
            "audit" => hub.get_with(&format!("/v1/audit?subject={MATRIX_CHILD}"), token, &[]),
            "validate" => hub.post(
                "/v1/validate",
                token,
                Some("application/json"),
                &[],
                json!({"records": [record("school-attendance", "v-1", "V-0001")]}).to_string(),
            ),
            "schemas" => hub.get_with("/v1/schemas", token, &[]),
            "schema document" => hub.get_with("/v1/schemas/1/subject", token, &[]),
            "access purposes" => hub.get_with("/v1/access-purposes", token, &[]),
            "healthz" => hub.get_with("/healthz", token, &[]),
            "readyz" => hub.get_with("/readyz", token, &[]),
            "metrics" => hub.get_with("/metrics", token, &[]),
            other => panic!("no route family {other}"),
        }
    }
}

fn role_matrix(backend: Backend) {
    let world = matrix_world(backend);
    let missing = missing_child(&world.hub, &world.system, "case_handling");
    let mut failures = Vec::new();
    for (route, expected) in MATRIX {
        for (caller, want) in world.callers.iter().zip(expected) {
            let r = world.call(route, caller);
            let context = format!("{route} as {}", caller.label);
            if r.status != want {
                failures.push(format!(
                    "{context}: expected {want}, got {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                continue;
            }
            match r.status {
                404 => assert_same_as_missing(&r, &missing, &context),
                401 => {
                    r.problem(401, "unauthorized");
                    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{context}");
                }
                403 => {
                    r.problem(403, "forbidden");
                }
                _ => {}
            }
            if !(200..300).contains(&r.status) {
                assert_no_personal_data(&r, &context, true);
            }
            if caller.label == "national-analyst" {
                let schema = route.starts_with("schema");
                assert_no_personal_data(&r, &context, !schema);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "role matrix mismatches:\n{}",
        failures.join("\n")
    );

    // The allowed answers carry what they should.
    let caseworker = world.callers[1].token.as_deref();
    let profile = read(
        &world.hub,
        &profile_path(MATRIX_CHILD),
        caseworker,
        "case_handling",
        "staff-001",
    )
    .ok();
    assert_eq!(profile["subject"]["name"], MATRIX_NAME, "{profile}");

    // A national analyst gets nothing personal whatever purpose it declares, and the same
    // answer for an existing child as for a missing one.
    let analyst = world.callers[4].token.as_deref();
    for purpose in purpose_codes() {
        for path in [
            profile_path(MATRIX_CHILD),
            history_path("tp-system"),
            changes_path(),
        ] {
            let r = read(&world.hub, &path, analyst, &purpose, "analyst-1");
            assert_same_as_missing(&r, &missing, &format!("analyst {path} for {purpose}"));
        }
    }
    // Nor without declaring one.
    let r = world
        .hub
        .get_with(&profile_path(MATRIX_CHILD), analyst, &[]);
    r.problem(400, "purpose_required");
    assert_no_personal_data(&r, "analyst without purpose", true);

    // An auditor of another town sees nothing of this town's trail.
    world.hub.add_client(OTHER_TOWN, "auditor", "auditor", None);
    let other_auditor = world
        .hub
        .add_client(OTHER_TOWN, "auditor-2", "auditor", None);
    let trail = audit_trail(&world.hub, &other_auditor, MATRIX_CHILD);
    assert!(trail.is_empty(), "{trail:?}");
}

// ---------------------------------------------------------------------------------------
// 2. Purpose and actor

/// Headers of a refused read, the problem code and a text its detail must contain.
type Refusal<'a> = (Vec<(&'a str, &'a str)>, &'static str, &'static str);

fn purpose_and_actor_are_required(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    hub.push(
        &town,
        &[
            subject("s-P001", "P001", "目的 花子"),
            record("temporary-protection", "tp-P001", "P001"),
        ],
    );
    let long_actor = "a".repeat(101);
    let refusals: [Refusal; 6] = [
        (
            vec![("X-Actor", "staff-001")],
            "purpose_required",
            "X-Purpose",
        ),
        (
            vec![("X-Purpose", "curiosity"), ("X-Actor", "staff-001")],
            "purpose_required",
            "curiosity",
        ),
        (
            vec![("X-Purpose", ""), ("X-Actor", "staff-001")],
            "purpose_required",
            "X-Purpose",
        ),
        (
            vec![("X-Purpose", "case_handling")],
            "actor_required",
            "X-Actor",
        ),
        (
            vec![("X-Purpose", "case_handling"), ("X-Actor", "")],
            "actor_required",
            "X-Actor",
        ),
        (
            vec![("X-Purpose", "case_handling"), ("X-Actor", &long_actor)],
            "actor_required",
            "X-Actor",
        ),
    ];
    let routes = [
        ("subject.read", profile_path("P001")),
        ("record.history", history_path("tp-P001")),
        ("changes.read", changes_path()),
    ];
    let before = hub.raw_db().audit_rows().len();
    for (_, path) in &routes {
        for (headers, code, mentions) in &refusals {
            let r = hub.get_with(path, Some(&town.token), headers);
            let p = r.problem(400, code);
            let detail = p["detail"].as_str().expect("detail");
            assert!(
                detail.contains(mentions),
                "{path} with {headers:?}: detail must mention {mentions:?}: {p}"
            );
            let text = r.text();
            assert!(
                !text.contains("目的 花子") && !text.contains("temporary-protection"),
                "a refused read returns no data: {text}"
            );
        }
    }

    // Every refusal is in the trail, and nothing was read.
    let rows = hub.raw_db().audit_rows();
    let new_rows = &rows[before..];
    for (action, path) in &routes {
        let refused: Vec<&str> = new_rows
            .iter()
            .filter(|r| &r.action == action)
            .map(|r| r.result.as_str())
            .collect();
        assert_eq!(
            refused,
            vec![
                "refused:purpose_required",
                "refused:purpose_required",
                "refused:purpose_required",
                "refused:actor_required",
                "refused:actor_required",
                "refused:actor_required",
            ],
            "audit entries of the refused reads of {path}"
        );
        for r in new_rows.iter().filter(|r| &r.action == action) {
            assert_eq!(r.client_name.as_deref(), Some("system"), "{r:?}");
            assert_eq!(r.municipality_code, TOWN, "{r:?}");
        }
    }

    // The auditor finds the refused profile reads under the child.
    let trail = audit_trail(&hub, &auditor, "P001");
    let refused: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "subject.read")
        .collect();
    assert_eq!(refused.len(), 6, "{trail:?}");
    for e in &refused {
        let result = e["result"].as_str().expect("result");
        assert!(result.starts_with("refused:"), "{e}");
    }
    assert_eq!(refused[1]["purpose"], "curiosity", "{}", refused[1]);
    assert_eq!(refused[1]["actor"], "staff-001", "{}", refused[1]);
    assert_eq!(refused[3]["result"], "refused:actor_required");
    assert_eq!(refused[3]["purpose"], "case_handling", "{}", refused[3]);

    // Declared properly, each read answers.
    for (_, path) in &routes {
        read(&hub, path, Some(&town.token), "case_handling", "staff-001").ok();
    }
}

/// The legal basis a caller states instead of the published one is what the trail records,
/// including a Japanese one sent as UTF-8 (never silently replaced by the default).
fn stated_legal_basis_is_recorded(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    hub.push(&town, &[subject("s-L001", "L001", "根拠 一郎")]);

    let ascii = "Child Welfare Act art. 25-3";
    hub.get_with(
        &profile_path("L001"),
        Some(&town.token),
        &[
            ("X-Purpose", "transfer"),
            ("X-Actor", "staff-007"),
            ("X-Legal-Basis", ascii),
        ],
    )
    .ok();
    let trail = audit_trail(&hub, &auditor, "L001");
    let entry = trail
        .iter()
        .find(|e| e["action"] == "subject.read" && e["actor"] == "staff-007")
        .unwrap_or_else(|| panic!("read in trail: {trail:?}"));
    assert_eq!(entry["legal_basis"], ascii, "{entry}");
    assert_eq!(entry["purpose"], "transfer", "{entry}");

    // A Japanese legal basis, as UTF-8 bytes in the header.
    let japanese = "児童福祉法第25条の3";
    let value = ureq::http::HeaderValue::from_bytes(japanese.as_bytes()).expect("header bytes");
    let mut response = hub
        .agent
        .get(hub.url(&profile_path("L001")))
        .header("Authorization", format!("Bearer {}", town.token))
        .header("X-Purpose", "transfer")
        .header("X-Actor", "staff-008")
        .header("X-Legal-Basis", value)
        .call()
        .expect("GET profile");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    let trail = audit_trail(&hub, &auditor, "L001");
    let entry = trail
        .iter()
        .find(|e| e["action"] == "subject.read" && e["actor"] == "staff-008");
    match status {
        // Refusing an unreadable header is fine…
        400 => {}
        // …answering is fine if the trail holds what the caller stated.
        200 => {
            let entry = entry.unwrap_or_else(|| panic!("read in trail: {trail:?}"));
            assert_eq!(
                entry["legal_basis"], japanese,
                "the stated legal basis was replaced by the published default: {entry}"
            );
        }
        other => panic!("unexpected {other}: {body}"),
    }
}

// ---------------------------------------------------------------------------------------
// 3. The audit trail

fn reads_pushes_and_failed_logins_are_audited(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    let desk = hub.add_client(TOWN, "case-desk", "caseworker", None);
    let analyst = hub.add_scoped_client(&["--nation"], "analyst", "national-analyst");
    hub.push(
        &town,
        &[
            subject("s-C042", "C042", "監査 次郎"),
            record("temporary-protection", "tp-C042", "C042"),
        ],
    );

    // A caseworker's read.
    read(
        &hub,
        &profile_path("C042"),
        Some(&desk),
        "case_handling",
        "staff-042",
    )
    .ok();
    // A refused read (role) is recorded too.
    let r = read(
        &hub,
        &profile_path("C042"),
        Some(&analyst),
        "case_handling",
        "analyst-9",
    );
    r.problem(404, "not_found");

    let trail = audit_trail(&hub, &auditor, "C042");
    let reads: Vec<&Value> = trail
        .iter()
        .filter(|e| e["action"] == "subject.read")
        .collect();
    assert_eq!(reads.len(), 2, "{trail:?}");
    let ok = reads[0];
    assert_eq!(ok["actor"], "staff-042", "{ok}");
    assert_eq!(ok["purpose"], "case_handling", "{ok}");
    assert_eq!(ok["legal_basis"], legal_basis("case_handling"), "{ok}");
    assert_eq!(ok["result"], "ok", "{ok}");
    assert_eq!(ok["client_name"], "case-desk", "{ok}");
    assert_eq!(ok["roles"], "caseworker", "{ok}");
    assert_eq!(ok["municipality_code"], TOWN, "{ok}");
    assert_eq!(ok["subject"], "C042", "{ok}");
    assert!(ok["client_id"].as_i64().is_some(), "{ok}");
    assert!(ok["at"].as_str().is_some_and(|a| !a.is_empty()), "{ok}");
    for field in ["hash", "prev_hash"] {
        assert!(
            ok[field]
                .as_str()
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{field} of {ok}"
        );
    }
    let denied = reads[1];
    // The national analyst is refused for its scope, before any role is looked at.
    assert_eq!(denied["result"], "denied:scope", "{denied}");
    assert_eq!(denied["actor"], "analyst-9", "{denied}");
    assert_eq!(denied["client_name"], "analyst", "{denied}");
    // Entries hold no personal data beyond the resident number.
    assert!(
        !Value::Array(trail.clone())
            .to_string()
            .contains("監査 次郎")
    );
    // The auditor's own read is in the trail the next time.
    let again = audit_trail(&hub, &auditor, "C042");
    assert!(
        again
            .iter()
            .any(|e| e["action"] == "audit.read" && e["client_name"] == "auditor"),
        "{again:?}"
    );

    // A push writes one entry per chunk (1000 records), with counts.
    let before = hub.raw_db().audit_rows().len();
    let mut batch: Vec<Value> = (0..1000)
        .map(|i| {
            record(
                "school-attendance",
                &format!("sa-{i:04}"),
                &format!("B{i:04}"),
            )
        })
        .collect();
    let mut invalid = record("school-attendance", "sa-bad", "B9999");
    invalid["absence_days"] = json!("many");
    batch.push(invalid);
    batch.push(record("school-attendance", "sa-last", "B9998"));
    let report = hub.push(&town, &batch);
    assert_eq!(report["created"], 1001, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let rows = hub.raw_db().audit_rows();
    let pushes: Vec<_> = rows[before..]
        .iter()
        .filter(|r| r.action == "records.push")
        .collect();
    assert_eq!(pushes.len(), 2, "one entry per chunk: {pushes:?}");
    let details: Vec<Value> = pushes
        .iter()
        .map(|r| serde_json::from_str(r.detail.as_deref().expect("detail")).expect("JSON"))
        .collect();
    assert_eq!(
        details[0],
        json!({"received": 1000, "created": 1000, "updated": 0, "unchanged": 0, "rejected": 0})
    );
    assert_eq!(
        details[1],
        json!({"received": 2, "created": 1, "updated": 0, "unchanged": 0, "rejected": 1})
    );
    for p in &pushes {
        assert_eq!(p.result, "ok");
        assert_eq!(p.client_name.as_deref(), Some("system"));
        assert!(p.client_id.is_some(), "{p:?}");
        assert_eq!(p.municipality_code, TOWN);
    }

    // A failed authentication: one more entry, and the presented token is not stored.
    let count = |hub: &Hub| -> u64 {
        let out = hub.cli(&["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", describe(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("intact"), "{stdout}");
        stdout
            .split_whitespace()
            .skip_while(|w| *w != "intact:")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("entry count in {stdout:?}"))
    };
    let entries = count(&hub);
    let bad = format!("khub_{}", "ab".repeat(32));
    let r = read(
        &hub,
        &profile_path("C042"),
        Some(&bad),
        "case_handling",
        "x",
    );
    r.problem(401, "unauthorized");
    assert_eq!(count(&hub), entries + 1);
    let rows = hub.raw_db().audit_rows();
    let last = rows.last().expect("an entry");
    assert_eq!(last.result, "failed:authentication", "{last:?}");
    assert_eq!(last.municipality_code, TOWN, "{last:?}");
    assert_eq!(last.client_id, None, "{last:?}");
    assert!(last.action.starts_with("GET "), "{last:?}");
    for row in &rows {
        for text in row.texts() {
            assert!(!text.contains(&bad), "the token is in the trail: {row:?}");
            assert!(
                !text.contains(&town.token),
                "a token is in the trail: {row:?}"
            );
        }
    }
}

/// A history read concerns the child the record is about, so the auditor answering a
/// disclosure request (開示請求) finds it under that child, like a profile read.
fn history_reads_are_in_the_childs_trail(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    hub.push(
        &town,
        &[
            subject("s-H001", "H001", "履歴 三郎"),
            record("temporary-protection", "tp-H001", "H001"),
        ],
    );
    read(
        &hub,
        &history_path("tp-H001"),
        Some(&town.token),
        "disclosure_request",
        "staff-077",
    )
    .ok();
    // The read itself is audited…
    let rows = hub.raw_db().audit_rows();
    let row = rows
        .iter()
        .find(|r| r.action == "record.history" && r.actor.as_deref() == Some("staff-077"))
        .unwrap_or_else(|| panic!("the history read is audited: {rows:?}"));
    assert_eq!(row.result, "ok", "{row:?}");
    assert_eq!(
        row.purpose.as_deref(),
        Some("disclosure_request"),
        "{row:?}"
    );
    assert_eq!(
        row.legal_basis.as_deref(),
        Some(legal_basis("disclosure_request").as_str())
    );
    // …and found under the child it concerns.
    let trail = audit_trail(&hub, &auditor, "H001");
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "record.history" && e["actor"] == "staff-077"),
        "the history read of the child's record is missing from the child's trail: {trail:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Opt-out

fn opt_out_hides_child_from_screening_only(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    hub.push(
        &town,
        &[
            subject("s-O001", "O001", "同意 しない子"),
            record("temporary-protection", "tp-O001", "O001"),
        ],
    );
    let screening = |hub: &Hub| {
        read(
            hub,
            &profile_path("O001"),
            Some(&town.token),
            "screening_review",
            "staff-001",
        )
    };
    let handling = |hub: &Hub| {
        read(
            hub,
            &profile_path("O001"),
            Some(&town.token),
            "case_handling",
            "staff-001",
        )
    };
    let before = screening(&hub).ok();
    assert_eq!(before["opt_out"], Value::Null);
    assert!(
        !before["applicable_items"]
            .as_array()
            .expect("items")
            .is_empty(),
        "temporary protection makes an item apply: {before}"
    );

    let answer = put_opt_out(&hub, Some(&town.token), "O001", &objection()).ok();
    assert_eq!(answer["resident_no"], "O001");
    assert_eq!(answer["opt_out"]["objected_on"], "2025-04-01", "{answer}");

    // Screening: the child does not exist.
    let missing = missing_child(&hub, &town, "screening_review");
    assert_same_as_missing(&screening(&hub), &missing, "screening read after opt-out");
    // Case handling: the child, its objection and no applicable items.
    let profile = handling(&hub).ok();
    assert_eq!(profile["opt_out"]["objected_on"], "2025-04-01", "{profile}");
    assert_eq!(
        profile["opt_out"]["legal_note"], "不同意書 第3号様式",
        "{profile}"
    );
    assert_eq!(profile["applicable_items"], json!([]), "{profile}");
    assert_eq!(profile["records"].as_array().expect("records").len(), 1);

    // Records are still accepted.
    let report = hub.push(&town, &[record("school-attendance", "sa-O001", "O001")]);
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        handling(&hub).ok()["records"].as_array().expect("r").len(),
        2
    );

    // A new objection replaces the old one.
    put_opt_out(
        &hub,
        Some(&town.token),
        "O001",
        &json!({"objected_on": "2025-05-10"}),
    )
    .ok();
    let profile = handling(&hub).ok();
    assert_eq!(profile["opt_out"]["objected_on"], "2025-05-10", "{profile}");
    assert_eq!(profile["opt_out"]["legal_note"], Value::Null, "{profile}");

    // The trail shows the objection and the excluded screening read.
    let trail = audit_trail(&hub, &auditor, "O001");
    let results: Vec<(String, String)> = trail
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for wanted in [
        ("subject.opt_out.set", "ok"),
        ("subject.read", "excluded:opt_out"),
    ] {
        assert!(
            results.iter().any(|(a, r)| a == wanted.0 && r == wanted.1),
            "{wanted:?} in {results:?}"
        );
    }
    let set = trail
        .iter()
        .find(|e| e["action"] == "subject.opt_out.set")
        .expect("set");
    assert_eq!(set["actor"], "staff-001", "{set}");

    // Withdrawing restores screening; withdrawing twice finds nothing.
    let r = hub.delete(&opt_out_path("O001"), Some(&town.token));
    assert_eq!(r.status, 204, "{}", r.text());
    let after = screening(&hub).ok();
    assert_eq!(after["opt_out"], Value::Null);
    assert_eq!(after["applicable_items"], before["applicable_items"]);
    let r = hub.delete(&opt_out_path("O001"), Some(&town.token));
    assert_same_as_missing(&r, &missing, "withdrawing twice");
    assert!(
        audit_trail(&hub, &auditor, "O001")
            .iter()
            .any(|e| e["action"] == "subject.opt_out.clear" && e["result"] == "ok")
    );

    // Bad dates.
    for bad in ["2025-13-01", "2025-02-30", "01/04/2025", "2999-01-01", ""] {
        let r = put_opt_out(
            &hub,
            Some(&town.token),
            "O001",
            &json!({"objected_on": bad}),
        );
        let p = r.problem(400, "date_format");
        assert_eq!(p["errors"][0]["pointer"], "/objected_on", "{p}");
    }
    put_opt_out(&hub, Some(&town.token), "O001", &json!({"legal_note": "x"}))
        .problem(400, "invalid_request");
    put_opt_out(
        &hub,
        Some(&town.token),
        "O001",
        &json!({"objected_on": "2025-04-01", "extra": 1}),
    )
    .problem(400, "invalid_request");
    assert_eq!(handling(&hub).ok()["opt_out"], Value::Null);

    // An unknown child.
    let r = put_opt_out(&hub, Some(&town.token), "NO-SUCH-CHILD", &objection());
    assert_same_as_missing(&r, &missing, "opt-out of an unknown child");
    let r = hub.delete(&opt_out_path("NO-SUCH-CHILD"), Some(&town.token));
    assert_same_as_missing(&r, &missing, "withdrawal for an unknown child");
}

/// Recording and withdrawing an objection are both attributed to the staff member named in
/// X-Actor.
fn opt_out_changes_record_the_actor(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    hub.push(&town, &[subject("s-A001", "A001", "取下 花子")]);
    hub.put(
        &opt_out_path("A001"),
        Some(&town.token),
        Some("application/json"),
        &[("X-Actor", "staff-031")],
        objection().to_string(),
    )
    .ok();
    let r = hub.delete_with(
        &opt_out_path("A001"),
        Some(&town.token),
        &[("X-Actor", "staff-032")],
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let trail = audit_trail(&hub, &auditor, "A001");
    let actor_of = |action: &str| {
        trail
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {trail:?}"))["actor"]
            .clone()
    };
    assert_eq!(actor_of("subject.opt_out.set"), "staff-031");
    assert_eq!(
        actor_of("subject.opt_out.clear"),
        "staff-032",
        "the withdrawal does not record who withdrew the objection"
    );
}

// ---------------------------------------------------------------------------------------
// 6. DV support measure

const DV_CHILD: &str = "DV-0001";
const DV_NAME: &str = "支援 措置子";

fn dv_child(household: &str) -> Value {
    let mut s = subject("s-dv", DV_CHILD, DV_NAME);
    s["support_measure"] = json!(true);
    s["household_no"] = json!(household);
    s["guardians"] = json!([]);
    s
}

fn dv_world(backend: Backend) -> (Hub, Town, String, String) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let reader = hub.add_client(TOWN, "dv-desk", "caseworker,support-measure-reader", None);
    let plain = hub.add_client(TOWN, "desk", "caseworker", None);
    (hub, town, reader, plain)
}

/// Does any change of the feed concern the DV child?
fn feed_mentions(changes: &[Value], resident_no: &str) -> bool {
    changes
        .iter()
        .any(|c| c.to_string().contains(resident_no) || c["source_record_id"] == "tp-dv")
}

fn feed(hub: &Hub, token: &str) -> Vec<Value> {
    read(
        hub,
        &changes_path(),
        Some(token),
        "case_handling",
        "staff-001",
    )
    .ok()["changes"]
        .as_array()
        .expect("changes")
        .clone()
}

fn support_measure_child_exists_only_for_its_readers(backend: Backend) {
    let (hub, town, reader, plain) = dv_world(backend);
    let mut plain_child = subject("s-plain", "PL-0001", "普通 一郎");
    plain_child["household_no"] = json!("H-PLAIN");
    hub.push(
        &town,
        &[
            dv_child("H-DV"),
            record("temporary-protection", "tp-dv", DV_CHILD),
            plain_child,
            record("school-attendance", "sa-plain", "PL-0001"),
        ],
    );
    let missing = missing_child(&hub, &town, "case_handling");

    // Profile.
    for (label, token) in [
        ("plain caseworker", &plain),
        ("source+caseworker", &town.token),
    ] {
        let r = read(
            &hub,
            &profile_path(DV_CHILD),
            Some(token),
            "case_handling",
            "staff-001",
        );
        assert_same_as_missing(&r, &missing, label);
    }
    let profile = read(
        &hub,
        &profile_path(DV_CHILD),
        Some(&reader),
        "case_handling",
        "staff-002",
    )
    .ok();
    assert_eq!(profile["subject"]["name"], DV_NAME, "{profile}");
    assert_eq!(profile["subject"]["support_measure"], true, "{profile}");
    // The reader role alone is not a caseworker.
    let alone = hub.add_client(TOWN, "smr-only", "support-measure-reader", None);
    let r = read(
        &hub,
        &profile_path(DV_CHILD),
        Some(&alone),
        "case_handling",
        "x",
    );
    assert_same_as_missing(&r, &missing, "support-measure-reader alone");

    // Change feed.
    let plain_feed = feed(&hub, &plain);
    assert!(
        !feed_mentions(&plain_feed, DV_CHILD),
        "the plain caseworker's feed shows the DV child: {plain_feed:?}"
    );
    assert!(feed_mentions(&plain_feed, "PL-0001"), "{plain_feed:?}");
    let reader_feed = feed(&hub, &reader);
    assert!(feed_mentions(&reader_feed, DV_CHILD), "{reader_feed:?}");
    assert_eq!(reader_feed.len(), 4, "{reader_feed:?}");
    assert_eq!(plain_feed.len(), 2, "{plain_feed:?}");

    // History.
    let r = read(
        &hub,
        &history_path("tp-dv"),
        Some(&plain),
        "case_handling",
        "staff-001",
    );
    assert_same_as_missing(&r, &missing, "history of a DV child's record");
    read(
        &hub,
        &history_path("tp-dv"),
        Some(&reader),
        "case_handling",
        "staff-002",
    )
    .ok();

    // The refusals are audited with their reason, shown to an auditor who may see the child.
    let subject_reads = |trail: &[Value]| -> Vec<String> {
        trail
            .iter()
            .filter(|e| e["action"] == "subject.read")
            .map(|e| e["result"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let dv_auditor = hub.add_client(TOWN, "dv-auditor", "auditor,support-measure-reader", None);
    assert_eq!(
        subject_reads(&audit_trail(&hub, &dv_auditor, DV_CHILD)),
        vec![
            "denied:support_measure",
            "denied:support_measure",
            "ok",
            "denied:role"
        ]
    );
    // An auditor without the role sees the trail a child that does not exist would have:
    // no successful read, and no result that discloses the measure.
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    let trail = audit_trail(&hub, &auditor, DV_CHILD);
    assert_eq!(
        subject_reads(&trail),
        vec!["not_found", "not_found", "denied:role"],
        "{trail:?}"
    );
    assert!(
        !serde_json::to_string(&trail)
            .expect("json")
            .contains("support_measure"),
        "{trail:?}"
    );
}

/// The opt-out routes answer for a hidden child exactly as for a missing one.
fn support_measure_child_is_hidden_from_opt_out_routes(backend: Backend) {
    let (hub, town, reader, plain) = dv_world(backend);
    hub.push(&town, &[dv_child("H-DV")]);
    let missing = missing_child(&hub, &town, "case_handling");
    let r = put_opt_out(&hub, Some(&plain), DV_CHILD, &objection());
    assert_same_as_missing(&r, &missing, "plain caseworker PUT opt-out of a DV child");
    put_opt_out(&hub, Some(&reader), DV_CHILD, &objection()).ok();
    let r = hub.delete(&opt_out_path(DV_CHILD), Some(&plain));
    assert_same_as_missing(
        &r,
        &missing,
        "plain caseworker DELETE opt-out of a DV child",
    );
}

/// A sibling's profile does not list a household member under a support measure.
fn support_measure_child_is_not_in_siblings_household(backend: Backend) {
    let (hub, town, reader, plain) = dv_world(backend);
    let mut sibling = subject("s-sib", "SIB-0001", "兄弟 一郎");
    sibling["household_no"] = json!("H-DV");
    sibling["guardians"] = json!([]);
    hub.push(&town, &[dv_child("H-DV"), sibling]);
    let profile = read(
        &hub,
        &profile_path("SIB-0001"),
        Some(&plain),
        "case_handling",
        "staff-001",
    )
    .ok();
    let text = profile.to_string();
    assert!(
        !text.contains(DV_CHILD) && !text.contains(DV_NAME),
        "the sibling's profile reveals the DV child to a plain caseworker: {}",
        profile["household"]
    );
    let profile = read(
        &hub,
        &profile_path("SIB-0001"),
        Some(&reader),
        "case_handling",
        "staff-002",
    )
    .ok();
    assert!(profile.to_string().contains(DV_CHILD), "{profile}");
}

/// Retracting the subject record of a child under a support measure (e.g. when the family
/// moves away) does not expose the child's past records.
fn support_measure_outlives_subject_retraction(backend: Backend) {
    let (hub, town, reader, plain) = dv_world(backend);
    hub.push(
        &town,
        &[
            dv_child("H-DV"),
            record("temporary-protection", "tp-dv", DV_CHILD),
        ],
    );
    assert!(!feed_mentions(&feed(&hub, &plain), DV_CHILD));
    let r = hub.delete(&format!("{}/s-dv", records_path()), Some(&town.token));
    assert_eq!(r.status, 200, "{}", r.text());
    let plain_feed = feed(&hub, &plain);
    assert!(
        !feed_mentions(&plain_feed, DV_CHILD),
        "after the subject record was retracted, the plain caseworker's feed shows the DV \
         child's records: {plain_feed:?}"
    );
    let missing = missing_child(&hub, &town, "case_handling");
    let r = read(
        &hub,
        &history_path("tp-dv"),
        Some(&plain),
        "case_handling",
        "staff-001",
    );
    assert_same_as_missing(&r, &missing, "history after the subject retraction");
    assert!(feed_mentions(&feed(&hub, &reader), DV_CHILD));
}

// ---------------------------------------------------------------------------------------
// 7. Revoke and rotate

fn revoke_and_rotate_take_effect_at_once(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    hub.add_town(OTHER_TOWN, "別の町");
    let works = |token: &str| read(&hub, &changes_path(), Some(token), "case_handling", "s").status;
    let refused = |token: &str| {
        let r = read(&hub, &changes_path(), Some(token), "case_handling", "s");
        r.problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    };

    // Revoke.
    let desk = hub.add_client(TOWN, "desk", "caseworker", None);
    let namesake = hub.add_client(OTHER_TOWN, "desk", "caseworker", None);
    assert_eq!(works(&desk), 200);
    let out = hub.cli(&[
        "admin",
        "client",
        "revoke",
        "--municipality",
        TOWN,
        "--name",
        "desk",
    ]);
    assert!(out.status.success(), "revoke: {}", describe(&out));
    refused(&desk);
    // Only that town's client of that name.
    let r = hub.get_with(
        "/v1/municipalities/011002/changes",
        Some(&namesake),
        &[("X-Purpose", "case_handling"), ("X-Actor", "s")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(works(&town.token), 200);
    // Revoking again, or an unknown client, fails.
    for name in ["desk", "nobody"] {
        let out = hub.cli(&[
            "admin",
            "client",
            "revoke",
            "--municipality",
            TOWN,
            "--name",
            name,
        ]);
        assert!(!out.status.success(), "revoke {name}: {}", describe(&out));
    }
    let list = hub.cli(&["admin", "client", "list"]);
    let listing = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listing
            .lines()
            .any(|l| l.contains(TOWN) && l.contains("\tdesk\t") && l.ends_with("revoked")),
        "{listing}"
    );

    // Rotate.
    let old = hub.add_client(TOWN, "rotating", "caseworker", None);
    assert_eq!(works(&old), 200);
    let out = hub.cli(&[
        "admin",
        "token",
        "rotate",
        "--municipality",
        TOWN,
        "--name",
        "rotating",
    ]);
    assert!(out.status.success(), "rotate: {}", describe(&out));
    let new = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("khub_"))
        .unwrap_or_else(|| panic!("a new token: {}", describe(&out)))
        .to_string();
    assert_ne!(new, old);
    assert_eq!(new.len(), old.len());
    refused(&old);
    assert_eq!(works(&new), 200);
    // A revoked client cannot be given a new token; an unknown one neither.
    for name in ["desk", "nobody"] {
        let out = hub.cli(&[
            "admin",
            "token",
            "rotate",
            "--municipality",
            TOWN,
            "--name",
            name,
        ]);
        assert!(!out.status.success(), "rotate {name}: {}", describe(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("khub_"),
            "no token printed for {name}: {}",
            describe(&out)
        );
    }
    refused(&desk);

    // Both actions are audited, without the tokens.
    let rows = hub.raw_db().audit_rows();
    for action in ["admin.client.revoke", "admin.token.rotate"] {
        let row = rows
            .iter()
            .find(|r| r.action == action)
            .unwrap_or_else(|| panic!("{action} in {rows:?}"));
        assert_eq!(row.municipality_code, TOWN, "{row:?}");
        assert_eq!(row.result, "ok", "{row:?}");
    }
    for row in &rows {
        for text in row.texts() {
            for token in [&desk, &old, &new] {
                assert!(!text.contains(token.as_str()), "a token in {row:?}");
            }
        }
    }
}

/// Guessing tokens from one address: answered 401 and audited up to the limit, then 429 with
/// Retry-After and no further audit rows; a valid token from that address is still served.
fn failed_authentication_is_throttled_per_address(backend: Backend) {
    let hub = Hub::start_with(backend, &["--failed-auth-per-minute", "5"]);
    let town = hub.town(TOWN);
    let before = hub.raw_db().audit_rows().len();
    let path = format!("/v1/municipalities/{TOWN}/changes");
    let statuses: Vec<u16> = (0..12)
        .map(|i| hub.get(&path, Some(&format!("khub_guess_{i}"))).status)
        .collect();
    assert_eq!(
        statuses,
        [vec![401; 5], vec![429; 7]].concat(),
        "{statuses:?}"
    );
    let throttled = hub.get(&path, Some("khub_guess_x"));
    assert!(
        throttled
            .header("Retry-After")
            .is_some_and(|s| s.parse::<u32>().is_ok_and(|s| (1..=60).contains(&s))),
        "{:?}",
        throttled.headers
    );
    throttled.problem(429, "rate_limited");
    let failures = hub
        .raw_db()
        .audit_rows()
        .into_iter()
        .skip(before)
        .filter(|r| r.result.starts_with("failed:"))
        .count();
    assert_eq!(
        failures, 5,
        "one audit row per answered failure, none while throttled"
    );
    // A request without a token guessed nothing: still 401 (and no audit row), so clients
    // are told what is missing.
    let bare = hub.get(&path, None);
    bare.problem(401, "unauthorized");
    // A valid token from the same address (a neighbour behind one proxy) is served.
    let r = hub.get(&path, Some(&town.token));
    assert_eq!(r.status, 200, "{}", r.text());
    let failures_after = hub
        .raw_db()
        .audit_rows()
        .into_iter()
        .skip(before)
        .filter(|r| r.result.starts_with("failed:"))
        .count();
    assert_eq!(
        failures_after, 5,
        "nothing audited while the address is over"
    );
}

/// The authentication scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_scheme_is_case_insensitive(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let path = format!("/v1/municipalities/{TOWN}/changes");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("{scheme} {}", town.token);
        let r = hub.get_with(
            &path,
            None,
            &[
                ("Authorization", auth.as_str()),
                ("X-Purpose", "case_handling"),
                ("X-Actor", "s-1"),
            ],
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.text());
    }
}

both_backends!(
    bearer_scheme_is_case_insensitive,
    failed_authentication_is_throttled_per_address,
    role_matrix,
    purpose_and_actor_are_required,
    stated_legal_basis_is_recorded,
    reads_pushes_and_failed_logins_are_audited,
    history_reads_are_in_the_childs_trail,
    opt_out_hides_child_from_screening_only,
    opt_out_changes_record_the_actor,
    support_measure_child_exists_only_for_its_readers,
    support_measure_child_is_hidden_from_opt_out_routes,
    support_measure_child_is_not_in_siblings_household,
    support_measure_outlives_subject_retraction,
    revoke_and_rotate_take_effect_at_once,
);
