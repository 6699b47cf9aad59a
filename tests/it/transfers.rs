//! Transfers between towns of one hub (転出入時の引継ぎ, SPEC §6): a household moving from one
//! town to another, declines and cancellations, transfers held until the destination is known
//! and then claimed, escalation past the deadline, the audit trail of every step, and
//! acceptance surviving a `kill -9` of the server half-way through (all or nothing).

use crate::common;

use std::time::{Duration, Instant};

use common::{
    AuditRow, Backend, Hub, OTHER_TOWN, RawDb, Resp, THIRD_TOWN, TOWN, Town, assert_same_answer,
    describe, record, subject,
};
use serde_json::{Value, json};

const ORIGIN: &str = TOWN;
const DEST: &str = OTHER_TOWN;
const THIRD: &str = THIRD_TOWN;
/// A valid municipality code (check digit correct) that no test registers.
const UNREGISTERED: &str = "271004";

const LEGAL_BASIS: &str = "個人情報保護法第69条第2項第3号";
/// Records pushed by a town's "system" client arrive at the destination under this source.
fn transferred_source() -> String {
    format!("transfer:{ORIGIN}:system")
}

const GUARDIAN: &str = "G-100";
const CHILD_A: &str = "C-101";
/// Under a DV support measure (支援措置).
const CHILD_B: &str = "C-102";
/// The destination's own resident numbers for the two children.
const DEST_A: &str = "D-501";
const DEST_B: &str = "D-502";
const ORIGIN_ADDRESS: &str = "千代田1-1-1";
const DEST_ADDRESS: &str = "札幌市中央区北1条西2丁目3";

/// Records of the household's children (subject records aside), by child.
const RECORDS_A: [(&str, &str); 3] = [
    ("infant-checkup", "ic-101"),
    ("school-attendance", "sa-101"),
    ("school-health-exam", "she-101"),
];
const RECORDS_B: [(&str, &str); 3] = [
    ("temporary-protection", "tp-102"),
    ("child-protection-case", "cpc-102"),
    ("school-wellbeing-check", "swc-102"),
];
/// The children's two subject records and their six records.
const FROZEN: usize = 8;

// ---------------------------------------------------------------------------------------
// The world: three towns, their officers and caseworkers

struct World {
    hub: Hub,
    /// Source + caseworker clients ("system") of the origin and the destination.
    origin: Town,
    dest: Town,
    origin_officer: String,
    dest_officer: String,
    third_officer: String,
    /// Caseworkers who may see children under a support measure.
    origin_reader: String,
    dest_reader: String,
    /// A caseworker of the destination without that right.
    dest_plain: String,
}

fn world(backend: Backend) -> World {
    let hub = Hub::start(backend);
    let origin = hub.town(ORIGIN);
    let dest = hub.town(DEST);
    hub.add_town(THIRD, "町三");
    // The household includes a child under a DV support measure: the officers handling it
    // hold support-measure-reader (without it the transfer does not exist for them).
    let dv_officer = "transfer-officer,support-measure-reader";
    let origin_officer = hub.add_client(ORIGIN, "o-officer", dv_officer, None);
    let dest_officer = hub.add_client(DEST, "d-officer", dv_officer, None);
    let third_officer = hub.add_client(THIRD, "t-officer", dv_officer, None);
    let origin_reader = hub.add_client(
        ORIGIN,
        "o-dv-desk",
        "caseworker,support-measure-reader",
        None,
    );
    let dest_reader = hub.add_client(DEST, "d-dv-desk", "caseworker,support-measure-reader", None);
    let dest_plain = hub.add_client(DEST, "d-desk", "caseworker", None);
    World {
        hub,
        origin,
        dest,
        origin_officer,
        dest_officer,
        third_officer,
        origin_reader,
        dest_reader,
        dest_plain,
    }
}

fn person(
    id: &str,
    resident_no: &str,
    name: &str,
    kana: &str,
    birth: &str,
    sex: i64,
    role: &str,
) -> Value {
    let mut s = subject(id, resident_no, name);
    s["name_kana"] = json!(kana);
    s["birth_date"] = json!(birth);
    s["moved_in_on"] = json!(birth);
    s["sex"] = json!(sex);
    s["role"] = json!(role);
    s["address"] = json!(ORIGIN_ADDRESS);
    s["household_no"] = json!("H-7");
    s["guardians"] = json!([GUARDIAN]);
    s
}

fn child_a_subject() -> Value {
    person(
        "s-101",
        CHILD_A,
        "山田 花子",
        "ヤマダ ハナコ",
        "2021-04-02",
        2,
        "child",
    )
}

fn child_b_subject() -> Value {
    let mut s = person(
        "s-102",
        CHILD_B,
        "山田 一郎",
        "ヤマダ イチロウ",
        "2016-07-07",
        1,
        "child",
    );
    s["support_measure"] = json!(true);
    s
}

/// The origin's household: a guardian, two children (one under a support measure) and
/// records of several types.
fn push_household(w: &World) {
    let mut guardian = person(
        "s-100",
        GUARDIAN,
        "山田 太郎",
        "ヤマダ タロウ",
        "1985-06-01",
        1,
        "guardian",
    );
    guardian["guardians"] = json!([]);
    let mut records = vec![guardian, child_a_subject(), child_b_subject()];
    records.extend(RECORDS_A.iter().map(|(t, id)| record(t, id, CHILD_A)));
    records.extend(RECORDS_B.iter().map(|(t, id)| record(t, id, CHILD_B)));
    records.push(record("public-assistance", "pa-100", GUARDIAN));
    let report = w.hub.push(&w.origin, &records);
    assert_eq!(report["rejected"], 0, "household pushed: {report}");
}

/// The destination's own resident-register record of child A (same basic four items, its new
/// address and household there).
fn dest_child_a() -> Value {
    let mut s = subject("d-501", DEST_A, "山田 花子");
    s["name_kana"] = json!("ヤマダ ハナコ");
    s["birth_date"] = json!("2021-04-02");
    s["moved_in_on"] = json!("2025-04-01");
    s["sex"] = json!(2);
    s["address"] = json!(DEST_ADDRESS);
    s["household_no"] = json!("DH-9");
    s["guardians"] = json!([]);
    s
}

// ---------------------------------------------------------------------------------------
// Calls

fn offer(hub: &Hub, token: &str, actor: &str, body: &Value) -> Resp {
    hub.post(
        "/v1/transfers",
        Some(token),
        Some("application/json"),
        &[("X-Actor", actor)],
        body.to_string(),
    )
}

fn offer_body(destination: Option<&str>, children: &[&str]) -> Value {
    json!({
        "destination": destination,
        "children": children,
        "legal_basis": LEGAL_BASIS,
        "reason": "moved",
        "note": "転居のため引継ぎ",
        "escalate_to": "課長 山本",
    })
}

/// Offer (or hold) and return the created transfer.
fn offered(hub: &Hub, token: &str, body: &Value) -> Value {
    let r = offer(hub, token, "officer-o1", body);
    assert_eq!(r.status, 201, "offer: {}", r.text());
    r.json()
}

/// Offer the household's two children to `destination` (or hold them); returns the id.
fn offer_household(w: &World, destination: Option<&str>) -> i64 {
    let view = offered(
        &w.hub,
        &w.origin_officer,
        &offer_body(destination, &[CHILD_A, CHILD_B]),
    );
    view["id"].as_i64().expect("transfer id")
}

fn step(hub: &Hub, token: &str, id: i64, what: &str, actor: &str, body: Option<Value>) -> Resp {
    hub.post(
        &format!("/v1/transfers/{id}/{what}"),
        Some(token),
        Some("application/json"),
        &[("X-Actor", actor)],
        body.map(|b| b.to_string()).unwrap_or_default(),
    )
}

fn accept_body(placements: &[(&str, &str)], declined: &[&str]) -> Value {
    json!({
        "placements": placements
            .iter()
            .map(|(o, d)| json!({"origin_resident_no": o, "destination_resident_no": d}))
            .collect::<Vec<_>>(),
        "declined_records": declined,
    })
}

fn accept(hub: &Hub, token: &str, id: i64, placements: &[(&str, &str)], declined: &[&str]) -> Resp {
    step(
        hub,
        token,
        id,
        "accept",
        "officer-d1",
        Some(accept_body(placements, declined)),
    )
}

const PLACEMENTS: [(&str, &str); 2] = [(CHILD_A, DEST_A), (CHILD_B, DEST_B)];

fn decline(hub: &Hub, token: &str, id: i64, reason: &str) -> Resp {
    step(
        hub,
        token,
        id,
        "decline",
        "officer-d2",
        Some(json!({ "reason": reason })),
    )
}

fn show(hub: &Hub, token: &str, id: i64) -> Resp {
    hub.get_with(
        &format!("/v1/transfers/{id}"),
        Some(token),
        &[("X-Purpose", "transfer"), ("X-Actor", "officer-read")],
    )
}

/// The transfers of one box, as the caller sees them.
fn list(hub: &Hub, token: &str, which: &str) -> Vec<Value> {
    let body = hub
        .get_with(&format!("/v1/transfers?box={which}"), Some(token), &[])
        .ok();
    body["transfers"]
        .as_array()
        .unwrap_or_else(|| panic!("transfers in {body}"))
        .clone()
}

fn ids(transfers: &[Value]) -> Vec<i64> {
    transfers
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect()
}

fn status_of(hub: &Hub, token: &str, id: i64) -> String {
    show(hub, token, id).ok()["status"]
        .as_str()
        .expect("status")
        .to_string()
}

fn profile(hub: &Hub, town: &str, token: &str, resident_no: &str) -> Resp {
    hub.get(
        &format!("/v1/municipalities/{town}/subjects/{resident_no}"),
        Some(token),
    )
}

/// `(source, source_record_id)` of a profile's own records.
fn profile_records(profile: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = profile["records"]
        .as_array()
        .unwrap_or_else(|| panic!("records in {profile}"))
        .iter()
        .map(|r| {
            (
                r["source"].as_str().expect("source").to_string(),
                r["source_record_id"].as_str().expect("id").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(source: &str, ids: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ids
        .iter()
        .map(|id| (source.to_string(), id.to_string()))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------
// Direct reads of the database

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    s: Option<String>,
}

/// `sql` must select one integer column named `n`.
fn count(db: &mut RawDb, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    let rows = match db {
        RawDb::Sqlite(c) => diesel::sql_query(sql).load::<Count>(c),
        RawDb::Postgres(c) => diesel::sql_query(sql).load::<Count>(c),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.first().map_or(0, |r| r.n)
}

/// `sql` must select one text column named `s`.
fn texts(db: &mut RawDb, sql: &str) -> Vec<Option<String>> {
    use diesel::RunQueryDsl;
    match db {
        RawDb::Sqlite(c) => diesel::sql_query(sql).load::<Text>(c),
        RawDb::Postgres(c) => diesel::sql_query(sql).load::<Text>(c),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
    .into_iter()
    .map(|t| t.s)
    .collect()
}

/// Records of `town` that share a unique key with another (must never exist).
fn duplicated_keys(db: &mut RawDb, town: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM (SELECT source, source_record_id FROM records \
             WHERE municipality_code = '{town}' GROUP BY source, source_record_id \
             HAVING COUNT(*) > 1) d"
        ),
    )
}

/// Current records of `town` that arrived by transfer.
fn transferred_records(db: &mut RawDb, town: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM records WHERE municipality_code = '{town}' \
             AND source LIKE 'transfer:%' AND retracted = false"
        ),
    )
}

/// Versions of `town`'s records (= its change feed).
fn versions(db: &mut RawDb, town: &str) -> i64 {
    count(
        db,
        &format!("SELECT COUNT(*) AS n FROM record_versions WHERE municipality_code = '{town}'"),
    )
}

/// `resident_no=moved_out_to` of the origin's subjects, in order.
fn moved_out(db: &mut RawDb) -> Vec<String> {
    texts(
        db,
        &format!(
            "SELECT resident_no || '=' || COALESCE(moved_out_to, '-') AS s FROM subjects \
             WHERE municipality_code = '{ORIGIN}' ORDER BY resident_no"
        ),
    )
    .into_iter()
    .flatten()
    .collect()
}

// ---------------------------------------------------------------------------------------
// 1. A household moves

fn household_moves_to_another_town(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    // The destination's resident register already knows child A (same basic four items).
    let report = hub.push(&w.dest, &[dest_child_a()]);
    assert_eq!(report["created"], 1, "{report}");

    // The origin offers the two children.
    let offer = offered(
        hub,
        &w.origin_officer,
        &offer_body(Some(DEST), &[CHILD_A, CHILD_B]),
    );
    let id = offer["id"].as_i64().expect("id");
    assert_eq!(offer["status"], "offered", "{offer}");
    assert_eq!(offer["municipality_code"], ORIGIN, "{offer}");
    assert_eq!(offer["destination_code"], DEST, "{offer}");
    assert_eq!(offer["reason_code"], "moved", "{offer}");
    assert_eq!(offer["legal_basis"], LEGAL_BASIS, "{offer}");
    assert_eq!(offer["offered_by"], "officer-o1", "{offer}");
    assert_eq!(offer["escalate_to"], "課長 山本", "{offer}");
    assert_eq!(offer["record_count"], FROZEN, "frozen records: {offer}");
    assert_eq!(offer["accepted_records"], 0, "{offer}");
    assert!(offer["escalated_at"].is_null(), "{offer}");

    // The destination sees it in its inbox; the origin in its outbox; nobody else.
    assert_eq!(ids(&list(hub, &w.dest_officer, "inbox")), vec![id]);
    assert_eq!(ids(&list(hub, &w.origin_officer, "outbox")), vec![id]);
    assert!(list(hub, &w.origin_officer, "inbox").is_empty());
    assert!(list(hub, &w.dest_officer, "outbox").is_empty());
    assert!(list(hub, &w.third_officer, "inbox").is_empty());
    assert!(list(hub, &w.third_officer, "held").is_empty());
    // Without a box, the inbox.
    let default = hub
        .get_with("/v1/transfers", Some(&w.dest_officer), &[])
        .ok();
    assert_eq!(
        ids(default["transfers"].as_array().expect("list")),
        vec![id]
    );

    // The destination reads it: children, frozen records by type, suggestions.
    let r = show(hub, &w.dest_officer, id);
    let view = r.ok();
    assert!(
        !r.text().contains(ORIGIN_ADDRESS),
        "a transfer view never shows an address: {view}"
    );
    let children = view["children"].as_array().expect("children");
    assert_eq!(children.len(), 2, "{view}");
    let a = children
        .iter()
        .find(|c| c["origin_resident_no"] == CHILD_A)
        .expect("child A");
    let b = children
        .iter()
        .find(|c| c["origin_resident_no"] == CHILD_B)
        .expect("child B");
    assert_eq!(a["basic_info"]["name"], "山田 花子", "{a}");
    assert_eq!(a["basic_info"]["birth_date"], "2021-04-02", "{a}");
    assert_eq!(a["support_measure"], false, "{a}");
    assert_eq!(b["support_measure"], true, "{b}");
    assert_eq!(
        a["records"],
        json!({"infant-checkup": 1, "school-attendance": 1, "school-health-exam": 1, "subject": 1}),
        "{a}"
    );
    assert_eq!(
        b["records"],
        json!({"child-protection-case": 1, "school-wellbeing-check": 1, "subject": 1, "temporary-protection": 1}),
        "{b}"
    );
    assert_eq!(
        a["candidates"],
        json!([{"resident_no": DEST_A, "differing_fields": []}]),
        "the destination's subject with the same basic four is suggested: {a}"
    );
    assert_eq!(b["candidates"], json!([]), "{b}");
    assert!(a["destination_resident_no"].is_null(), "{a}");

    // Accept with the destination's resident numbers, declining one record.
    let accepted = accept(hub, &w.dest_officer, id, &PLACEMENTS, &["she-101"]).ok();
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    assert_eq!(accepted["decided_by"], "officer-d1", "{accepted}");
    assert!(accepted["decided_at"].is_string(), "{accepted}");
    assert_eq!(accepted["record_count"], FROZEN, "{accepted}");
    assert_eq!(accepted["accepted_records"], FROZEN - 1, "{accepted}");
    assert_eq!(accepted["declined_records"], 1, "{accepted}");
    for (origin_no, dest_no) in PLACEMENTS {
        let child = accepted["children"]
            .as_array()
            .expect("children")
            .iter()
            .find(|c| c["origin_resident_no"] == origin_no)
            .expect("child")
            .clone();
        assert_eq!(child["destination_resident_no"], dest_no, "{child}");
    }

    // The destination's caseworker sees the copied records under the transfer source, about
    // its own resident numbers, without the declined one.
    let source = transferred_source();
    let pa = profile(hub, DEST, &w.dest_reader, DEST_A).ok();
    assert_eq!(
        profile_records(&pa),
        pairs(&source, &["ic-101", "sa-101"]),
        "child A at the destination: {pa}"
    );
    for r in pa["records"].as_array().expect("records") {
        assert_eq!(r["record"]["subject"]["resident_no"], DEST_A, "{r}");
    }
    let pb = profile(hub, DEST, &w.dest_reader, DEST_B).ok();
    assert_eq!(
        profile_records(&pb),
        pairs(&source, &["cpc-102", "swc-102", "tp-102"]),
        "child B at the destination: {pb}"
    );
    // The support measure travels with the child: still hidden from ordinary caseworkers.
    assert_eq!(pb["subject"]["support_measure"], true, "{pb}");
    profile(hub, DEST, &w.dest_plain, DEST_B).problem(404, "not_found");
    profile(hub, DEST, &w.dest.token, DEST_B).problem(404, "not_found");
    // Provenance of every copied record.
    let mut db = hub.raw_db();
    assert_eq!(
        count(
            &mut db,
            &format!(
                "SELECT COUNT(*) AS n FROM record_provenance WHERE municipality_code = '{DEST}' \
                 AND transfer_id = {id} AND origin_municipality_code = '{ORIGIN}' \
                 AND origin_source = 'system' AND source = '{source}'"
            )
        ),
        // All but the declined record and child A's subject record: the destination already
        // knows child A and keeps its own subject record.
        (FROZEN - 2) as i64
    );

    // The origin keeps its copy; its children are marked moved out, the guardian is not.
    let oa = profile(hub, ORIGIN, &w.origin.token, CHILD_A).ok();
    assert_eq!(
        profile_records(&oa),
        pairs("system", &["ic-101", "sa-101", "she-101"]),
        "{oa}"
    );
    let ob = profile(hub, ORIGIN, &w.origin_reader, CHILD_B).ok();
    assert_eq!(
        profile_records(&ob),
        pairs("system", &["cpc-102", "swc-102", "tp-102"]),
        "{ob}"
    );
    assert_eq!(
        moved_out(&mut db),
        vec![
            format!("{CHILD_A}={DEST}"),
            format!("{CHILD_B}={DEST}"),
            format!("{GUARDIAN}=-")
        ]
    );

    // Accepting again answers the same and writes nothing.
    let dest_feed = Town {
        code: DEST.into(),
        token: w.dest_reader.clone(),
    };
    let feed_before = hub.all_changes(&dest_feed, 1000).len();
    assert_eq!(
        feed_before,
        1 + FROZEN - 2,
        "own subject + copies (not the declined record, not A's origin subject record)"
    );
    let versions_before = versions(&mut db, DEST);
    let again = accept(hub, &w.dest_officer, id, &PLACEMENTS, &["she-101"]).ok();
    assert_eq!(again, accepted, "a retried accept answers the same");
    // Even with other dispositions: the transfer is decided.
    let other = accept(hub, &w.dest_officer, id, &PLACEMENTS, &[]).ok();
    assert_eq!(other, accepted, "a retried accept changes nothing");
    assert_eq!(hub.all_changes(&dest_feed, 1000).len(), feed_before);
    assert_eq!(versions(&mut db, DEST), versions_before);
    assert_eq!(status_of(hub, &w.dest_officer, id), "accepted");

    // Offering the same children again and accepting never duplicates a record: only the
    // record declined the first time is new.
    let second = offer_household(&w, Some(DEST));
    assert_ne!(second, id);
    let accepted2 = accept(hub, &w.dest_officer, second, &PLACEMENTS, &[]).ok();
    assert_eq!(accepted2["accepted_records"], FROZEN, "{accepted2}");
    assert_eq!(duplicated_keys(&mut db, DEST), 0);
    // Every frozen record but child A's origin subject record (A is known here).
    assert_eq!(transferred_records(&mut db, DEST), (FROZEN - 1) as i64);
    assert_eq!(versions(&mut db, DEST), versions_before + 1);
    assert_eq!(hub.all_changes(&dest_feed, 1000).len(), feed_before + 1);
    let pa = profile(hub, DEST, &w.dest_reader, DEST_A).ok();
    assert_eq!(
        profile_records(&pa),
        pairs(&source, &["ic-101", "sa-101", "she-101"]),
        "{pa}"
    );
    // The origin still has everything.
    assert_eq!(
        count(
            &mut db,
            &format!(
                "SELECT COUNT(*) AS n FROM records WHERE municipality_code = '{ORIGIN}' \
                 AND retracted = false"
            )
        ),
        (FROZEN + 2) as i64,
        "guardian subject + guardian record + the children's eight"
    );
}

/// A child the destination already registered: accepting must not replace the destination's
/// own resident-register entry (its current address, household and support measure) with the
/// origin's stale, origin-local one; a support measure known to either town must hold.
fn accepting_keeps_the_destinations_own_subject(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    // The destination registered both children on arrival. Child A was put under a support
    // measure there (the origin does not know); child B's entry does not carry the origin's.
    let mut dest_a = dest_child_a();
    dest_a["support_measure"] = json!(true);
    let mut dest_b = subject("d-502", DEST_B, "山田 一郎");
    dest_b["name_kana"] = json!("ヤマダ イチロウ");
    dest_b["birth_date"] = json!("2016-07-07");
    dest_b["sex"] = json!(1);
    dest_b["address"] = json!(DEST_ADDRESS);
    dest_b["household_no"] = json!("DH-9");
    dest_b["guardians"] = json!([]);
    hub.push(&w.dest, &[dest_a, dest_b]);
    profile(hub, DEST, &w.dest_plain, DEST_A).problem(404, "not_found");

    let id = offer_household(&w, Some(DEST));
    accept(hub, &w.dest_officer, id, &PLACEMENTS, &[]).ok();

    let mut problems = Vec::new();
    let plain_a = profile(hub, DEST, &w.dest_plain, DEST_A);
    if plain_a.status != 404 {
        problems.push(format!(
            "child A lost the destination's support measure: an ordinary caseworker now gets \
             {} {}",
            plain_a.status,
            plain_a.text()
        ));
    }
    let plain_b = profile(hub, DEST, &w.dest_plain, DEST_B);
    if plain_b.status != 404 {
        problems.push(format!(
            "child B lost the origin's support measure: an ordinary caseworker gets {}",
            plain_b.status
        ));
    }
    for resident_no in [DEST_A, DEST_B] {
        let p = profile(hub, DEST, &w.dest_reader, resident_no).ok();
        if p["subject"]["address"] != DEST_ADDRESS || p["subject"]["household_no"] != "DH-9" {
            problems.push(format!(
                "{resident_no}: the destination's register entry was replaced by the origin's: \
                 address {}, household {}",
                p["subject"]["address"], p["subject"]["household_no"]
            ));
        }
        if p["records"].as_array().is_none_or(|r| r.len() != 3) {
            problems.push(format!("{resident_no}: the three copied records: {p}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A child new to the destination: the origin's household number and guardians' resident
/// numbers mean nothing there and must not link the child to unrelated residents who happen
/// to carry the same numbers.
fn transferred_child_is_not_linked_to_strangers(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    // Unrelated destination residents: one with the origin guardian's resident number (and a
    // record), one in a household with the origin's household number.
    let mut stranger = subject("d-g100", GUARDIAN, "佐藤 次郎");
    stranger["role"] = json!("guardian");
    stranger["household_no"] = json!("DH-1");
    stranger["guardians"] = json!([]);
    stranger["birth_date"] = json!("1979-01-01");
    let mut neighbour = subject("d-x1", "X-1", "鈴木 三郎");
    neighbour["household_no"] = json!("H-7");
    neighbour["guardians"] = json!([]);
    neighbour["birth_date"] = json!("2015-01-01");
    hub.push(
        &w.dest,
        &[
            stranger,
            neighbour,
            record("public-assistance", "pa-stranger", GUARDIAN),
        ],
    );

    let id = offer_household(&w, Some(DEST));
    accept(hub, &w.dest_officer, id, &PLACEMENTS, &[]).ok();

    let pa = profile(hub, DEST, &w.dest_reader, DEST_A).ok();
    let household: Vec<&str> = pa["household"]
        .as_array()
        .expect("household")
        .iter()
        .filter_map(|m| m["resident_no"].as_str())
        .collect();
    let mut problems = Vec::new();
    if household.contains(&"X-1") {
        problems.push(format!(
            "unrelated resident X-1 (household H-7 at the destination) is listed in the \
             transferred child's household: {household:?}"
        ));
    }
    if pa["guardian_records"].to_string().contains("pa-stranger") {
        problems.push(
            "the record of unrelated resident G-100 of the destination is shown as the \
             child's guardian's record"
                .to_string(),
        );
    }
    assert!(problems.is_empty(), "{problems:#?}\nprofile: {pa}");
}

// ---------------------------------------------------------------------------------------
// 2. Decline, cancel, wrong towns

fn decline_cancel_and_wrong_towns(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let mut db = hub.raw_db();

    // Decline with a coded reason.
    let declined = offer_household(&w, Some(DEST));
    decline(hub, &w.dest_officer, declined, "bogus").problem(400, "invalid_request");
    step(
        hub,
        &w.dest_officer,
        declined,
        "decline",
        "",
        Some(json!({"reason": "not_resident"})),
    )
    .problem(400, "actor_required");
    assert_eq!(status_of(hub, &w.dest_officer, declined), "offered");
    let d = decline(hub, &w.dest_officer, declined, "not_resident").ok();
    assert_eq!(d["status"], "declined", "{d}");
    assert_eq!(d["decline_reason"], "not_resident", "{d}");
    assert_eq!(d["decided_by"], "officer-d2", "{d}");
    // Declining again is harmless; accepting or cancelling a declined transfer conflicts.
    let again = decline(hub, &w.dest_officer, declined, "not_resident").ok();
    assert_eq!(again["status"], "declined");
    assert_eq!(again["decided_at"], d["decided_at"], "{again}");
    accept(hub, &w.dest_officer, declined, &PLACEMENTS, &[]).problem(409, "conflict");
    step(
        hub,
        &w.origin_officer,
        declined,
        "cancel",
        "officer-o1",
        None,
    )
    .problem(409, "conflict");
    assert_eq!(status_of(hub, &w.origin_officer, declined), "declined");
    assert_eq!(transferred_records(&mut db, DEST), 0);

    // Cancel by the origin before acceptance; then nobody can accept or decline it.
    let cancelled = offer_household(&w, Some(DEST));
    step(
        hub,
        &w.dest_officer,
        cancelled,
        "cancel",
        "officer-d1",
        None,
    )
    .problem(404, "not_found");
    let c = step(
        hub,
        &w.origin_officer,
        cancelled,
        "cancel",
        "officer-o2",
        None,
    )
    .ok();
    assert_eq!(c["status"], "cancelled", "{c}");
    assert_eq!(c["decided_by"], "officer-o2", "{c}");
    step(
        hub,
        &w.origin_officer,
        cancelled,
        "cancel",
        "officer-o2",
        None,
    )
    .ok();
    accept(hub, &w.dest_officer, cancelled, &PLACEMENTS, &[]).problem(409, "conflict");
    decline(hub, &w.dest_officer, cancelled, "other").problem(409, "conflict");
    assert_eq!(status_of(hub, &w.dest_officer, cancelled), "cancelled");
    assert_eq!(transferred_records(&mut db, DEST), 0);

    // A third town can neither see, accept, decline, cancel nor claim it; the origin cannot
    // accept or decline its own transfer.
    let open = offer_household(&w, Some(DEST));
    show(hub, &w.third_officer, open).problem(404, "not_found");
    accept(hub, &w.third_officer, open, &PLACEMENTS, &[]).problem(404, "not_found");
    decline(hub, &w.third_officer, open, "wrong_destination").problem(404, "not_found");
    step(hub, &w.third_officer, open, "cancel", "officer-t1", None).problem(404, "not_found");
    step(hub, &w.third_officer, open, "claim", "officer-t1", None).problem(404, "not_found");
    accept(hub, &w.origin_officer, open, &PLACEMENTS, &[]).problem(404, "not_found");
    decline(hub, &w.origin_officer, open, "other").problem(404, "not_found");
    // A transfer that does not exist answers the same.
    accept(hub, &w.dest_officer, 987_654, &PLACEMENTS, &[]).problem(404, "not_found");
    show(hub, &w.dest_officer, 987_654).problem(404, "not_found");
    // Caseworkers are not transfer officers.
    show(hub, &w.dest.token, open).problem(404, "not_found");
    accept(hub, &w.dest.token, open, &PLACEMENTS, &[]).problem(403, "forbidden");
    let r = offer(
        hub,
        &w.origin.token,
        "staff-001",
        &offer_body(Some(DEST), &[CHILD_A]),
    );
    r.problem(403, "forbidden");
    // Steps name the officer.
    let r = hub.post(
        &format!("/v1/transfers/{open}/accept"),
        Some(&w.dest_officer),
        Some("application/json"),
        &[],
        accept_body(&PLACEMENTS, &[]).to_string(),
    );
    r.problem(400, "actor_required");
    // Every child needs a destination resident number; nothing is copied otherwise.
    accept(hub, &w.dest_officer, open, &PLACEMENTS[..1], &[]).problem(422, "unprocessable");
    assert_eq!(status_of(hub, &w.dest_officer, open), "offered");
    assert_eq!(transferred_records(&mut db, DEST), 0);
    assert_eq!(versions(&mut db, DEST), 0);
    // None of that changed anything: the destination still accepts.
    let a = accept(hub, &w.dest_officer, open, &PLACEMENTS, &[]).ok();
    assert_eq!(a["status"], "accepted", "{a}");
    assert_eq!(transferred_records(&mut db, DEST), FROZEN as i64);
    // An accepted transfer can no longer be cancelled or declined.
    step(hub, &w.origin_officer, open, "cancel", "officer-o1", None).problem(409, "conflict");
    decline(hub, &w.dest_officer, open, "other").problem(409, "conflict");
    assert_eq!(status_of(hub, &w.origin_officer, open), "accepted");
}

/// Offers that cannot be made are refused with a problem, and nothing is stored.
fn bad_offers_are_refused(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    for (label, body) in [
        ("no child", offer_body(Some(DEST), &[])),
        ("unknown child", offer_body(Some(DEST), &[CHILD_A, "NOPE"])),
        ("to itself", offer_body(Some(ORIGIN), &[CHILD_A])),
    ] {
        offer(hub, &w.origin_officer, "officer-o1", &body).problem(422, "unprocessable");
        assert!(list(hub, &w.origin_officer, "outbox").is_empty(), "{label}");
    }
    let mut unknown_reason = offer_body(Some(DEST), &[CHILD_A]);
    unknown_reason["reason"] = json!("eloped");
    offer(hub, &w.origin_officer, "officer-o1", &unknown_reason).problem(400, "invalid_request");
    let mut unknown_field = offer_body(Some(DEST), &[CHILD_A]);
    unknown_field["priority"] = json!("high");
    offer(hub, &w.origin_officer, "officer-o1", &unknown_field).problem(400, "invalid_request");
    offer(
        hub,
        &w.origin_officer,
        "",
        &offer_body(Some(DEST), &[CHILD_A]),
    )
    .problem(400, "actor_required");
    // A destination that is not a town of this hub is the caller's mistake, not a server
    // error.
    for destination in [UNREGISTERED, "12345"] {
        let r = offer(
            hub,
            &w.origin_officer,
            "officer-o1",
            &offer_body(Some(destination), &[CHILD_A]),
        );
        assert!(
            (400..500).contains(&r.status)
                && r.content_type().starts_with("application/problem+json"),
            "offer to {destination}: expected a 4xx problem, got {}: {}",
            r.status,
            r.text()
        );
    }
    assert!(list(hub, &w.origin_officer, "outbox").is_empty());
}

/// Dispositions and placements that cannot be right are refused, and nothing is copied: a
/// declined record that is not in the transfer (a typo would otherwise copy the record the
/// officer meant to leave behind), a placement of a child not in the transfer, and one
/// destination resident number for two children (their records would merge into one child).
fn accept_refuses_unknown_records_and_shared_numbers(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let mut db = hub.raw_db();
    let mut problems = Vec::new();
    for (label, placements, declined) in [
        (
            "unknown declined record",
            PLACEMENTS.to_vec(),
            vec!["she-10l"],
        ),
        (
            "placement of a child not in the transfer",
            vec![(CHILD_A, DEST_A), (CHILD_B, DEST_B), (GUARDIAN, "D-500")],
            vec![],
        ),
        (
            "two children, one resident number",
            vec![(CHILD_A, DEST_A), (CHILD_B, DEST_A)],
            vec![],
        ),
    ] {
        let id = offer_household(&w, Some(DEST));
        let before = versions(&mut db, DEST);
        let r = accept(hub, &w.dest_officer, id, &placements, &declined);
        if r.status == 422 {
            r.problem(422, "unprocessable");
        } else {
            problems.push(format!("{label}: expected 422, got {}", r.status));
        }
        let status = status_of(hub, &w.dest_officer, id);
        let written = versions(&mut db, DEST) - before;
        if status != "offered" || written != 0 {
            problems.push(format!(
                "{label}: transfer {status}, {written} record versions written"
            ));
        }
        step(hub, &w.origin_officer, id, "cancel", "officer-o1", None);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let id = offer_household(&w, Some(DEST));
    let a = accept(hub, &w.dest_officer, id, &PLACEMENTS, &["she-101"]).ok();
    assert_eq!(a["declined_records"], 1, "{a}");
}

/// Steps on one transfer that arrive together are applied one after the other: parallel
/// accepts copy once and all answer the same; an accept racing a decline leaves exactly one
/// of them done, with the records to match.
fn concurrent_steps_serialize(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let mut db = hub.raw_db();

    let id = offer_household(&w, Some(DEST));
    let answers: Vec<Resp> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| accept(hub, &w.dest_officer, id, &PLACEMENTS, &["she-101"])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("accept thread"))
            .collect()
    });
    let first = answers[0].ok();
    for a in &answers {
        assert_eq!(a.ok(), first, "every parallel accept answers the same");
    }
    assert_eq!(transferred_records(&mut db, DEST), (FROZEN - 1) as i64);
    assert_eq!(versions(&mut db, DEST), (FROZEN - 1) as i64);
    assert_eq!(duplicated_keys(&mut db, DEST), 0);

    for round in 0..3 {
        let id = offer_household(&w, Some(DEST));
        let before = versions(&mut db, DEST);
        let (accepted, declined) = std::thread::scope(|scope| {
            let a = scope.spawn(|| accept(hub, &w.dest_officer, id, &PLACEMENTS, &[]));
            let d = scope.spawn(|| decline(hub, &w.dest_officer, id, "other"));
            (
                a.join().expect("accept thread"),
                d.join().expect("decline thread"),
            )
        });
        let status = status_of(hub, &w.dest_officer, id);
        match status.as_str() {
            "accepted" => {
                assert_eq!(accepted.status, 200, "round {round}: {}", accepted.text());
                declined.problem(409, "conflict");
                // Only the record the first transfer declined can be new.
                let she_101_was_missing = before == (FROZEN - 1) as i64;
                assert_eq!(
                    versions(&mut db, DEST),
                    before + i64::from(she_101_was_missing)
                );
                assert_eq!(transferred_records(&mut db, DEST), FROZEN as i64);
            }
            "declined" => {
                assert_eq!(declined.status, 200, "round {round}: {}", declined.text());
                accepted.problem(409, "conflict");
                assert_eq!(versions(&mut db, DEST), before);
            }
            other => panic!("round {round}: {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Held, then claimed

fn held_then_claimed(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let held = offered(
        hub,
        &w.origin_officer,
        &offer_body(None, &[CHILD_A, CHILD_B]),
    );
    let id = held["id"].as_i64().expect("id");
    assert_eq!(held["status"], "held", "{held}");
    assert!(held["destination_code"].is_null(), "{held}");
    assert_eq!(held["record_count"], FROZEN, "{held}");

    // Every officer sees held transfers, to find the family among its arrivals.
    for officer in [&w.third_officer, &w.dest_officer, &w.origin_officer] {
        assert_eq!(ids(&list(hub, officer, "held")), vec![id]);
    }
    assert!(list(hub, &w.third_officer, "inbox").is_empty());
    let view = show(hub, &w.third_officer, id).ok();
    assert_eq!(view["status"], "held", "{view}");
    // The family arrives in the third town: its register now holds child A (same basic four
    // items, new number). The hub matches the held transfer against the arrival; a person
    // confirms by claiming. Towns without such an arrival are not pointed at it.
    assert!(list(hub, &w.third_officer, "arrivals").is_empty());
    let third = Town {
        code: THIRD.to_string(),
        token: hub.add_client(THIRD, "t-system", "source,caseworker", None),
    };
    let mut arrived = dest_child_a();
    arrived["source_record_id"] = json!("t-501");
    assert_eq!(hub.push(&third, &[arrived])["rejected"], 0);
    assert_eq!(ids(&list(hub, &w.third_officer, "arrivals")), vec![id]);
    assert!(list(hub, &w.dest_officer, "arrivals").is_empty());
    assert!(list(hub, &w.origin_officer, "arrivals").is_empty());
    // Nobody may accept or decline it before it is claimed.
    accept(hub, &w.third_officer, id, &PLACEMENTS, &[]).problem(404, "not_found");
    decline(hub, &w.third_officer, id, "other").problem(404, "not_found");
    // The origin cannot claim its own transfer.
    step(hub, &w.origin_officer, id, "claim", "officer-o1", None).problem(404, "not_found");

    // The third town claims it: now offered to it.
    let claimed = step(hub, &w.third_officer, id, "claim", "officer-t1", None).ok();
    assert_eq!(claimed["status"], "offered", "{claimed}");
    assert_eq!(claimed["destination_code"], THIRD, "{claimed}");
    // Claiming again is harmless; another town can no longer claim or see it.
    step(hub, &w.third_officer, id, "claim", "officer-t1", None).ok();
    step(hub, &w.dest_officer, id, "claim", "officer-d1", None).problem(404, "not_found");
    show(hub, &w.dest_officer, id).problem(404, "not_found");
    for officer in [&w.third_officer, &w.dest_officer, &w.origin_officer] {
        assert!(list(hub, officer, "held").is_empty());
    }
    assert_eq!(ids(&list(hub, &w.third_officer, "inbox")), vec![id]);
    assert_eq!(ids(&list(hub, &w.origin_officer, "outbox")), vec![id]);

    // And accepts it.
    let a = accept(
        hub,
        &w.third_officer,
        id,
        &[(CHILD_A, "T-1"), (CHILD_B, "T-2")],
        &[],
    )
    .ok();
    assert_eq!(a["status"], "accepted", "{a}");
    let mut db = hub.raw_db();
    assert_eq!(transferred_records(&mut db, THIRD), FROZEN as i64);
    assert_eq!(transferred_records(&mut db, DEST), 0);
    assert_eq!(
        moved_out(&mut db),
        vec![
            format!("{CHILD_A}={THIRD}"),
            format!("{CHILD_B}={THIRD}"),
            format!("{GUARDIAN}=-")
        ]
    );

    // A held transfer can be cancelled by its origin, and is then gone from the held box.
    let other = offer_household(&w, None);
    step(hub, &w.third_officer, other, "cancel", "officer-t1", None).problem(404, "not_found");
    step(hub, &w.origin_officer, other, "cancel", "officer-o1", None).ok();
    assert!(list(hub, &w.third_officer, "held").is_empty());
    step(hub, &w.third_officer, other, "claim", "officer-t1", None).problem(404, "not_found");
}

// ---------------------------------------------------------------------------------------
// 4. Escalation past the deadline

fn unanswered_transfers_are_escalated(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let mut due = offer_body(Some(DEST), &[CHILD_A]);
    due["deadline_days"] = json!(1);
    let due = offered(hub, &w.origin_officer, &due)["id"]
        .as_i64()
        .expect("id");
    let mut held = offer_body(None, &[CHILD_B]);
    held["deadline_days"] = json!(1);
    held["escalate_to"] = json!("係長 佐藤");
    let held = offered(hub, &w.origin_officer, &held)["id"]
        .as_i64()
        .expect("id");
    // Not due for two weeks.
    let later = offer_household(&w, Some(DEST));
    // A day passes for the two (the shortest deadline an offer may set is one day).
    let updated = hub.raw_db().execute(&format!(
        "UPDATE transfers SET deadline = '2020-01-01T00:00:00.000000Z' WHERE id IN ({due}, {held})"
    ));
    assert_eq!(updated, 2);

    let escalated = list(hub, &w.origin_officer, "escalated");
    assert_eq!(ids(&escalated), vec![due, held], "{escalated:?}");
    for t in &escalated {
        assert!(t["escalated_at"].is_string(), "{t}");
        assert!(
            ["offered", "held"].contains(&t["status"].as_str().unwrap_or("")),
            "escalated transfers stay open: {t}"
        );
    }
    assert_eq!(escalated[0]["escalate_to"], "課長 山本");
    assert_eq!(escalated[1]["escalate_to"], "係長 佐藤");
    let first_mark = escalated[0]["escalated_at"].clone();
    // The destination sees the one addressed to it; a third town sees none.
    assert_eq!(ids(&list(hub, &w.dest_officer, "escalated")), vec![due]);
    assert!(list(hub, &w.third_officer, "escalated").is_empty());
    // Listing again does not move the mark.
    let again = list(hub, &w.origin_officer, "escalated");
    assert_eq!(again[0]["escalated_at"], first_mark);

    // The command line lists them too, with the named officer.
    let out = hub.cli(&[
        "transfer",
        "list",
        "--municipality",
        ORIGIN,
        "--box",
        "escalated",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(&format!("{due}\t")), "{text}");
    assert!(
        lines[0].contains("課長 山本") && lines[0].contains("ESCALATED"),
        "{text}"
    );
    assert!(lines[1].starts_with(&format!("{held}\t")), "{text}");
    assert!(
        lines[1].contains("係長 佐藤") && lines[1].contains("ESCALATED"),
        "{text}"
    );
    assert!(!text.contains(&format!("\n{later}\t")) && !text.starts_with(&format!("{later}\t")));
    let bad = hub.cli(&[
        "transfer",
        "list",
        "--municipality",
        ORIGIN,
        "--box",
        "trash",
    ]);
    assert!(!bad.status.success(), "{}", describe(&bad));

    // Nothing is deleted: the escalated transfer is whole and can still be accepted.
    let view = show(hub, &w.dest_officer, due).ok();
    assert_eq!(view["status"], "offered", "{view}");
    assert_eq!(view["record_count"], 4, "{view}");
    assert_eq!(ids(&list(hub, &w.dest_officer, "inbox")), vec![due, later]);
    accept(hub, &w.dest_officer, due, &[(CHILD_A, DEST_A)], &[]).ok();
    // Decided transfers are no longer escalated.
    assert_eq!(ids(&list(hub, &w.origin_officer, "escalated")), vec![held]);
    let mut db = hub.raw_db();
    assert_eq!(
        count(&mut db, "SELECT COUNT(*) AS n FROM transfers"),
        3,
        "no transfer is ever deleted"
    );
}

/// `kodomo-hub transfer offer` and `transfer list` work on the hub's database directly.
fn command_line_offers_and_lists(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let offer_args = |destination: Option<&str>, children: &str| {
        let mut args = vec![
            "transfer",
            "offer",
            "--municipality",
            ORIGIN,
            "--children",
            children,
            "--legal-basis",
            LEGAL_BASIS,
            "--reason",
            "refuge",
            "--escalate-to",
            "課長 山本",
            "--actor",
            "officer-cli",
        ];
        if let Some(d) = destination {
            args.extend(["--destination", d]);
        }
        hub.cli(&args)
    };
    let out = offer_args(Some(DEST), &format!("{CHILD_A},{CHILD_B}"));
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let id: i64 = stdout
        .trim()
        .strip_prefix("transfer ")
        .and_then(|rest| rest.strip_suffix(" offered"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`transfer N offered`, got {stdout:?}"));
    let inbox = list(hub, &w.dest_officer, "inbox");
    assert_eq!(ids(&inbox), vec![id]);
    assert_eq!(inbox[0]["reason_code"], "refuge", "{inbox:?}");
    assert_eq!(inbox[0]["offered_by"], "officer-cli", "{inbox:?}");
    assert_eq!(show(hub, &w.dest_officer, id).ok()["record_count"], FROZEN);

    let out = offer_args(None, CHILD_A);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .ends_with(" held"),
        "{}",
        describe(&out)
    );
    let out = hub.cli(&["transfer", "list", "--municipality", THIRD, "--box", "held"]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("(unknown)") && text.contains("held"),
        "{text}"
    );
    let out = hub.cli(&[
        "transfer",
        "list",
        "--municipality",
        ORIGIN,
        "--box",
        "outbox",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    // A child the origin does not know: refused, nothing stored.
    let out = offer_args(Some(DEST), "NOPE");
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(list(hub, &w.origin_officer, "outbox").len(), 2);
    let rows = hub.raw_db().audit_rows();
    assert!(
        rows.iter().any(|r| r.action == "transfer.offer"
            && r.actor.as_deref() == Some("officer-cli")
            && r.municipality_code == ORIGIN),
        "the command line's offer is audited"
    );
}

// ---------------------------------------------------------------------------------------
// 5. The audit trail

fn every_step_is_audited(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let accepted = offer_household(&w, Some(DEST));
    show(hub, &w.dest_officer, accepted).ok();
    accept(hub, &w.dest_officer, accepted, &PLACEMENTS, &["she-101"]).ok();
    let declined = offer_household(&w, Some(DEST));
    decline(hub, &w.dest_officer, declined, "insufficient_legal_basis").ok();
    let cancelled = offer_household(&w, Some(DEST));
    step(
        hub,
        &w.origin_officer,
        cancelled,
        "cancel",
        "officer-o2",
        None,
    )
    .ok();
    let claimed = offer_household(&w, None);
    step(hub, &w.third_officer, claimed, "claim", "officer-t1", None).ok();
    // A read by a town that may not see it is audited as refused.
    show(hub, &w.dest_officer, claimed).problem(404, "not_found");

    let rows = hub.raw_db().audit_rows();
    // Every step is filed once per child concerned, with the child as the subject.
    let per_child = |action: &str, id: i64, town: &str, actor: &str| -> Vec<AuditRow> {
        rows.iter()
            .filter(|r| {
                r.action == action
                    && r.municipality_code == town
                    && r.actor.as_deref() == Some(actor)
                    && r.detail.as_deref().is_some_and(|d| {
                        serde_json::from_str::<Value>(d).is_ok_and(|d| d["transfer"] == id)
                    })
            })
            .cloned()
            .collect()
    };
    let find = |action: &str, id: i64, town: &str, actor: &str, children: [&str; 2]| {
        let found = per_child(action, id, town, actor);
        let mut subjects: Vec<&str> = found.iter().filter_map(|r| r.subject.as_deref()).collect();
        subjects.sort();
        assert_eq!(
            subjects,
            children,
            "{action} of transfer {id} by {actor} of {town}: one entry per child: {:#?}",
            rows.iter()
                .filter(|r| r.action.starts_with("transfer."))
                .collect::<Vec<_>>()
        );
        found[0].clone()
    };
    let origin_children = [CHILD_A, CHILD_B];
    for id in [accepted, declined, cancelled, claimed] {
        let offer = find("transfer.offer", id, ORIGIN, "officer-o1", origin_children);
        assert_eq!(offer.result, "ok");
        assert_eq!(offer.legal_basis.as_deref(), Some(LEGAL_BASIS));
        assert_eq!(offer.client_name.as_deref(), Some("o-officer"));
    }
    // The destination's read is filed under the origin's children (an external read there).
    let read = find(
        "transfer.read",
        accepted,
        ORIGIN,
        "officer-read",
        origin_children,
    );
    assert_eq!(read.result, "ok");
    assert_eq!(read.purpose.as_deref(), Some("transfer"));
    assert_eq!(read.client_name.as_deref(), Some("d-officer"));
    assert!(read.legal_basis.is_some(), "{read:?}");
    let acc = find(
        "transfer.accept",
        accepted,
        DEST,
        "officer-d1",
        [DEST_A, DEST_B],
    );
    assert_eq!(acc.result, "ok");
    let detail: Value = serde_json::from_str(acc.detail.as_deref().unwrap_or("{}")).expect("json");
    assert_eq!(detail["copied"], FROZEN - 1, "{detail}");
    assert_eq!(detail["declined"], 1, "{detail}");
    let provided = find(
        "transfer.provided",
        accepted,
        ORIGIN,
        "officer-d1",
        origin_children,
    );
    assert_eq!(provided.legal_basis.as_deref(), Some(LEGAL_BASIS));
    let detail: Value =
        serde_json::from_str(provided.detail.as_deref().unwrap_or("{}")).expect("json");
    assert_eq!(detail["destination"], DEST, "{detail}");
    let declined_step = find(
        "transfer.decline",
        declined,
        ORIGIN,
        "officer-d2",
        origin_children,
    );
    assert_eq!(declined_step.result, "ok");
    assert_eq!(
        find(
            "transfer.cancel",
            cancelled,
            ORIGIN,
            "officer-o2",
            origin_children
        )
        .result,
        "ok"
    );
    assert_eq!(
        find(
            "transfer.claim",
            claimed,
            ORIGIN,
            "officer-t1",
            origin_children
        )
        .result,
        "ok"
    );
    let refused = rows
        .iter()
        .find(|r| {
            r.action == "transfer.read"
                && r.municipality_code == DEST
                && r.detail
                    .as_deref()
                    .is_some_and(|d| d.contains(&format!("\"transfer\":{claimed}")))
        })
        .expect("the refused read is audited");
    assert_eq!(refused.result, "denied:not_party");

    // A disclosure request at the origin lists the provision to the destination, and the
    // origin's auditor is told of the destination's reads.
    let auditor = hub.add_client(ORIGIN, "o-auditor", "auditor,support-measure-reader", None);
    let trail = hub.get(&format!("/v1/audit?subject={CHILD_A}"), Some(&auditor));
    assert_eq!(trail.status, 200, "{}", trail.text());
    let actions: Vec<String> = trail.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    for action in [
        "transfer.offer",
        "transfer.read",
        "transfer.provided",
        "transfer.decline",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
    let external = hub.get("/v1/audit/external-reads", Some(&auditor));
    assert_eq!(external.status, 200, "{}", external.text());
    assert!(
        external.json()["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "transfer.read" && e["client_name"] == "d-officer"),
        "{}",
        external.text()
    );
    // No personal data beyond resident numbers: never a name or an address.
    for row in rows.iter().filter(|r| r.action.starts_with("transfer.")) {
        for text in row.texts() {
            assert!(
                !text.contains("山田") && !text.contains(ORIGIN_ADDRESS),
                "personal data in the audit trail: {row:?}"
            );
        }
    }
    // The chain is intact.
    let out = hub.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", describe(&out));
}

// ---------------------------------------------------------------------------------------
// 6. kill -9 during acceptance

/// Records pushed for the crash test (besides the two subject records).
const MANY: usize = 3000;
const CRASH_TYPES: [&str; 4] = [
    "school-attendance",
    "school-wellbeing-check",
    "infant-checkup",
    "support-outcome",
];

/// Is a write transaction open in the hub's database (other than ours)?
fn writer_active(db: &mut RawDb) -> bool {
    use diesel::RunQueryDsl;
    match db {
        RawDb::Sqlite(c) => {
            // With no busy timeout, taking the write lock fails at once while a writer holds it.
            match diesel::sql_query("BEGIN IMMEDIATE").execute(c) {
                Ok(_) => {
                    diesel::sql_query("ROLLBACK")
                        .execute(c)
                        .expect("release the probe's lock");
                    false
                }
                Err(_) => true,
            }
        }
        RawDb::Postgres(c) => {
            let rows = diesel::sql_query(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL",
            )
            .load::<Count>(c)
            .expect("read pg_stat_activity");
            rows.first().is_some_and(|r| r.n > 0)
        }
    }
}

fn probe(hub: &Hub) -> RawDb {
    use diesel::RunQueryDsl;
    let mut db = hub.raw_db();
    if let RawDb::Sqlite(c) = &mut db {
        diesel::sql_query("PRAGMA busy_timeout = 0")
            .execute(c)
            .expect("no busy timeout for the probe");
    }
    db
}

/// What the databases say about the crash transfer.
#[derive(Debug, PartialEq)]
struct Observed {
    status: String,
    dest_records: i64,
    dest_versions: i64,
    provenance: i64,
    dispositions: i64,
    moved_out: i64,
    placed: i64,
}

fn observe(db: &mut RawDb, id: i64) -> Observed {
    let status = texts(
        db,
        &format!("SELECT status AS s FROM transfers WHERE id = {id}"),
    )
    .into_iter()
    .flatten()
    .next()
    .expect("the transfer exists");
    Observed {
        status,
        dest_records: transferred_records(db, DEST),
        dest_versions: versions(db, DEST),
        provenance: count(
            db,
            &format!("SELECT COUNT(*) AS n FROM record_provenance WHERE transfer_id = {id}"),
        ),
        dispositions: count(
            db,
            &format!(
                "SELECT COUNT(*) AS n FROM transfer_records WHERE transfer_id = {id} \
                 AND disposition IS NOT NULL"
            ),
        ),
        moved_out: count(
            db,
            &format!(
                "SELECT COUNT(*) AS n FROM subjects WHERE municipality_code = '{ORIGIN}' \
                 AND moved_out_to IS NOT NULL"
            ),
        ),
        placed: count(
            db,
            &format!(
                "SELECT COUNT(*) AS n FROM transfer_children WHERE transfer_id = {id} \
                 AND destination_resident_no IS NOT NULL"
            ),
        ),
    }
}

fn crash_during_acceptance_is_all_or_nothing(backend: Backend) {
    let started = Instant::now();
    let mut w = world(backend);
    let children = ["K-1", "K-2"];
    let mut subjects = Vec::new();
    for (i, resident_no) in children.iter().enumerate() {
        let mut s = subject(&format!("s-k{i}"), resident_no, "川口 蓮");
        s["household_no"] = json!("H-K");
        s["guardians"] = json!([]);
        subjects.push(s);
    }
    w.hub.push(&w.origin, &subjects);
    let all: Vec<Value> = (0..MANY)
        .map(|i| {
            record(
                CRASH_TYPES[i % CRASH_TYPES.len()],
                &format!("k-{i:05}"),
                children[i % 2],
            )
        })
        .collect();
    for batch in all.chunks(1000) {
        let report = w.hub.push(&w.origin, batch);
        assert_eq!(report["created"], batch.len(), "pushed");
    }
    let frozen = (MANY + 2) as i64;
    let declined: Vec<String> = (0..10).map(|i| format!("k-{:05}", i * 7)).collect();
    let declined_refs: Vec<&str> = declined.iter().map(String::as_str).collect();
    let accepted = frozen - declined.len() as i64;
    let view = offered(
        &w.hub,
        &w.origin_officer,
        &offer_body(Some(DEST), &children),
    );
    let id = view["id"].as_i64().expect("id");
    assert_eq!(view["record_count"], frozen, "{view}");
    let setup = started.elapsed();

    let placements = [("K-1", "DK-1"), ("K-2", "DK-2")];
    let body = accept_body(&placements, &declined_refs).to_string();
    let nothing = Observed {
        status: "offered".into(),
        dest_records: 0,
        dest_versions: 0,
        provenance: 0,
        dispositions: 0,
        moved_out: 0,
        placed: 0,
    };
    let everything = Observed {
        status: "accepted".into(),
        dest_records: accepted,
        dest_versions: accepted,
        provenance: accepted,
        dispositions: frozen,
        moved_out: 2,
        placed: 2,
    };

    // Kill the server at several moments after it began writing the acceptance.
    let mut killed_mid_acceptance = 0;
    let mut attempts = Vec::new();
    let mut done = false;
    for delay_ms in [0u64, 5, 30, 120, 400, 1500] {
        let mut db = probe(&w.hub);
        // A PostgreSQL backend of the killed server may still be finishing its statement.
        let wait = Instant::now();
        while writer_active(&mut db) {
            assert!(wait.elapsed() < Duration::from_secs(60), "stale writer");
            std::thread::sleep(Duration::from_millis(10));
        }
        let url = w.hub.url(&format!("/v1/transfers/{id}/accept"));
        let token = w.dest_officer.clone();
        let request_body = body.clone();
        let sent = Instant::now();
        let request = std::thread::spawn(move || {
            common::agent()
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .header("X-Actor", "officer-d1")
                .send(request_body)
                .ok()
                .map(|r| r.status().as_u16())
        });
        let mut seen_writing = false;
        while !request.is_finished() && sent.elapsed() < Duration::from_secs(120) {
            if writer_active(&mut db) {
                seen_writing = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(db);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let killed_at = sent.elapsed();
        w.hub.kill_server();
        let answer = request.join().expect("request thread");
        w.hub.restart();
        let mut db = probe(&w.hub);
        let wait = Instant::now();
        while writer_active(&mut db) {
            assert!(wait.elapsed() < Duration::from_secs(60), "stale writer");
            std::thread::sleep(Duration::from_millis(10));
        }
        let seen = observe(&mut db, id);
        attempts.push(format!(
            "delay {delay_ms} ms: writing seen {seen_writing}, killed after {killed_at:?}, \
             answer {answer:?}, then {}",
            seen.status
        ));
        if seen == everything {
            assert!(answer.is_none() || answer == Some(200), "{attempts:?}");
            done = true;
            break;
        }
        assert_eq!(
            seen, nothing,
            "after kill -9 a transfer is fully accepted or untouched: {attempts:?}"
        );
        assert_eq!(answer, None, "no answer from a server killed before commit");
        if seen_writing {
            killed_mid_acceptance += 1;
        }
    }
    assert!(
        killed_mid_acceptance >= 1,
        "no run killed the server in the middle of an acceptance: {attempts:?}"
    );

    // Accept again (or for the first time): complete, and harmless to repeat.
    let mut db = w.hub.raw_db();
    let first = accept(&w.hub, &w.dest_officer, id, &placements, &declined_refs).ok();
    assert_eq!(first["accepted_records"], accepted, "after {attempts:?}");
    assert_eq!(first["declined_records"], declined.len(), "{attempts:?}");
    assert_eq!(observe(&mut db, id), everything, "{attempts:?}");
    let again = accept(&w.hub, &w.dest_officer, id, &placements, &declined_refs).ok();
    assert_eq!(again, first);
    assert_eq!(observe(&mut db, id), everything);
    assert_eq!(duplicated_keys(&mut db, DEST), 0);
    // The origin kept everything.
    assert_eq!(
        count(
            &mut db,
            &format!("SELECT COUNT(*) AS n FROM records WHERE municipality_code = '{ORIGIN}'")
        ),
        frozen
    );
    println!(
        "crash test ({backend:?}): setup {setup:?}, total {:?}, accepted while killing: {done}; {attempts:#?}",
        started.elapsed()
    );
}

/// A record the origin retracts after the offer (it was an error) does not travel on: the
/// acceptance leaves it with the origin, marked withdrawn, and copies the rest.
fn retracted_after_offer_is_not_copied(backend: Backend) {
    let w = world(backend);
    push_household(&w);
    let id = offer_household(&w, Some(DEST));
    let retracted = w.hub.delete(
        &format!("/v1/municipalities/{ORIGIN}/records/{}", RECORDS_A[0].1),
        Some(&w.origin.token),
    );
    assert_eq!(retracted.status, 200, "retract: {}", retracted.text());
    let view = accept(&w.hub, &w.dest_officer, id, &PLACEMENTS, &[]).ok();
    assert_eq!(view["withdrawn_records"], 1, "{view}");
    assert_eq!(view["accepted_records"], FROZEN - 1, "{view}");
    let copied = profile(&w.hub, DEST, &w.dest.token, DEST_A).ok();
    let ids: Vec<String> = profile_records(&copied)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert!(!ids.contains(&RECORDS_A[0].1.to_string()), "{ids:?}");
    assert!(ids.contains(&RECORDS_A[1].1.to_string()), "{ids:?}");
}

both_backends!(
    retracted_after_offer_is_not_copied,
    household_moves_to_another_town,
    accepting_keeps_the_destinations_own_subject,
    transferred_child_is_not_linked_to_strangers,
    decline_cancel_and_wrong_towns,
    bad_offers_are_refused,
    accept_refuses_unknown_records_and_shared_numbers,
    concurrent_steps_serialize,
    held_then_claimed,
    unanswered_transfers_are_escalated,
    command_line_offers_and_lists,
    every_step_is_audited,
    crash_during_acceptance_is_all_or_nothing,
);

/// The store documents (src/store/mod.rs) that SQLite runs in WAL mode with foreign keys
/// enforced; crash safety and the transfers' references to towns rely on it. The journal
/// mode is persistent, so it can be read from outside.
#[test]
fn sqlite_store_runs_in_wal_mode() {
    let hub = Hub::start(Backend::Sqlite);
    hub.town(ORIGIN);
    let mut db = hub.raw_db();
    let mode = texts(
        &mut db,
        "SELECT journal_mode AS s FROM pragma_journal_mode()",
    )
    .into_iter()
    .flatten()
    .next();
    assert_eq!(
        mode.as_deref(),
        Some("wal"),
        "journal mode of the hub's SQLite file"
    );
}

// ---------------------------------------------------------------------------------------
// 7. DV-safe transfers: a transfer with a child under a support measure exists only for
//    officers holding support-measure-reader, in every box, step and read.

fn plain_officers(w: &World) -> (String, String, String) {
    let hub = &w.hub;
    (
        hub.add_client(ORIGIN, "o-plain", "transfer-officer", None),
        hub.add_client(DEST, "d-plain", "transfer-officer", None),
        hub.add_client(THIRD, "t-plain", "transfer-officer", None),
    )
}

fn dv_transfers_are_hidden_from_officers_without_the_role(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let (origin_plain, dest_plain, third_plain) = plain_officers(&w);

    // Offering the DV child answers exactly like offering a child that does not exist, and
    // stores nothing.
    let with_dv = offer(
        hub,
        &origin_plain,
        "o-plain-1",
        &offer_body(Some(DEST), &[CHILD_A, CHILD_B]),
    );
    let with_unknown = offer(
        hub,
        &origin_plain,
        "o-plain-1",
        &offer_body(Some(DEST), &[CHILD_A, "NOPE-1"]),
    );
    assert_eq!(with_dv.status, 422, "{}", with_dv.text());
    assert_same_answer(
        &with_dv,
        &with_unknown,
        "offer naming a DV child without the role",
    );
    assert!(list(hub, &w.origin_officer, "outbox").is_empty());
    // The child without a measure can be offered by the plain officer.
    let plain_only = offered(hub, &origin_plain, &offer_body(Some(DEST), &[CHILD_A]));
    assert_eq!(plain_only["children"].as_array().map(Vec::len), Some(1));

    // A household transfer with the DV child, offered by an officer with the role.
    let id = offer_household(&w, Some(DEST));
    let missing_id = 999_999;
    for (who, token) in [("origin", &origin_plain), ("destination", &dest_plain)] {
        assert_same_answer(
            &show(hub, token, id),
            &show(hub, token, missing_id),
            &format!("{who} officer without the role reads the DV transfer"),
        );
        for which in ["inbox", "outbox", "held", "arrivals", "escalated"] {
            assert!(
                !ids(&list(hub, token, which)).contains(&id),
                "{who} officer lists the DV transfer in {which}"
            );
        }
    }
    assert_same_answer(
        &accept(hub, &dest_plain, id, &PLACEMENTS, &[]),
        &accept(hub, &dest_plain, missing_id, &PLACEMENTS, &[]),
        "accept without the role",
    );
    assert_same_answer(
        &decline(hub, &dest_plain, id, "not_resident"),
        &decline(hub, &dest_plain, missing_id, "not_resident"),
        "decline without the role",
    );
    assert_same_answer(
        &step(hub, &origin_plain, id, "cancel", "o-plain-1", None),
        &step(hub, &origin_plain, missing_id, "cancel", "o-plain-1", None),
        "cancel without the role",
    );
    // Nothing changed, and officers with the role see and accept it.
    assert!(ids(&list(hub, &w.dest_officer, "inbox")).contains(&id));
    let view = show(hub, &w.dest_officer, id).ok();
    assert_eq!(view["status"], "offered", "{view}");

    // Held (a family fleeing): never listed to other towns' officers without the role, and
    // never matched against their arrivals, even when the child has arrived there.
    let held = offered(
        hub,
        &w.origin_officer,
        &json!({"children": [CHILD_A, CHILD_B], "legal_basis": LEGAL_BASIS,
                "reason": "refuge", "escalate_to": "課長 山本"}),
    )["id"]
        .as_i64()
        .expect("id");
    let third = Town {
        code: THIRD.to_string(),
        token: hub.add_client(THIRD, "t-system", "source,caseworker", None),
    };
    let mut arrived = dest_child_a();
    arrived["source_record_id"] = json!("t-900");
    assert_eq!(hub.push(&third, &[arrived])["rejected"], 0);
    for which in ["held", "arrivals"] {
        assert!(
            !ids(&list(hub, &third_plain, which)).contains(&held),
            "{which}"
        );
        assert!(
            ids(&list(hub, &w.third_officer, which)).contains(&held),
            "{which} with the role"
        );
    }
    assert_same_answer(
        &step(hub, &third_plain, held, "claim", "t-plain-1", None),
        &step(hub, &third_plain, missing_id, "claim", "t-plain-1", None),
        "claim without the role",
    );
    assert_same_answer(
        &show(hub, &third_plain, held),
        &show(hub, &third_plain, missing_id),
        "held DV transfer read by another town without the role",
    );
}

fn objection_and_move_travel_with_the_child(backend: Backend) {
    let w = world(backend);
    let hub = &w.hub;
    push_household(&w);
    let caseworker = |town: &str, name: &str| {
        hub.add_client(town, name, "caseworker,support-measure-reader", None)
    };
    let origin_cw = caseworker(ORIGIN, "o-cw");
    let dest_cw = caseworker(DEST, "d-cw");
    let put = hub.put(
        &format!("/v1/municipalities/{ORIGIN}/subjects/{CHILD_A}/opt-out"),
        Some(&origin_cw),
        Some("application/json"),
        &[("X-Actor", "staff-1")],
        json!({"objected_on": "2025-04-01", "legal_note": "不同意書"}).to_string(),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let id = offer_household(&w, Some(DEST));
    accept(hub, &w.dest_officer, id, &PLACEMENTS, &[]).ok();

    let profile = |token: &str, town: &str, child: &str, purpose: &str| {
        hub.get_with(
            &format!("/v1/municipalities/{town}/subjects/{child}"),
            Some(token),
            &[("X-Purpose", purpose), ("X-Actor", "staff-1")],
        )
    };
    // The destination honours the objection from acceptance on: out of screening views.
    let screening = profile(&dest_cw, DEST, DEST_A, "screening_review");
    let missing = profile(&dest_cw, DEST, "D-NOPE", "screening_review");
    assert_same_answer(
        &screening,
        &missing,
        "opted-out child in the destination's screening",
    );
    let handled = profile(&dest_cw, DEST, DEST_A, "case_handling").ok();
    assert_eq!(handled["opt_out"]["objected_on"], "2025-04-01", "{handled}");
    assert_eq!(handled["applicable_items"], json!([]), "{handled}");
    // The sibling without an objection stays in screening views.
    profile(&dest_cw, DEST, DEST_B, "screening_review").ok();
    // The origin's profile says the child moved out, where and when.
    let origin_view = profile(&origin_cw, ORIGIN, CHILD_A, "case_handling").ok();
    assert_eq!(origin_view["moved_out"]["to"], DEST, "{origin_view}");
    assert_eq!(origin_view["moved_out"]["transfer_id"], id, "{origin_view}");
    assert!(
        origin_view["moved_out"]["on"]
            .as_str()
            .is_some_and(|on| on.len() >= 10),
        "{origin_view}"
    );
}

both_backends!(
    dv_transfers_are_hidden_from_officers_without_the_role,
    objection_and_move_travel_with_the_child,
);
