//! Screening worklists (issue 20) through the real server on both backends: rule-set
//! validation and versions, preview counts, determinism, opt-out and DV exclusion, decisions
//! as support-outcome records, closing, fairness counts, and what a school sees.

use crate::common;

use common::{Backend, Hub, Town};
use serde_json::{Value, json};

const TOWN: &str = common::TOWN;
const SCREEN: [(&str, &str); 2] = [("X-Purpose", "screening_review"), ("X-Actor", "staff-1")];
const ACTOR: [(&str, &str); 1] = [("X-Actor", "staff-1")];

fn subject(no: &str, birth: &str, sex: i64, dv: bool, guardians: &[&str]) -> Value {
    json!({
        "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("s-{no}"),
        "subject": {"resident_no": no}, "effective_date": birth, "household_no": format!("H-{no}"),
        "name": format!("児童 {no}"), "birth_date": birth, "sex": sex, "role": "child",
        "guardians": guardians, "support_measure": dv,
    })
}

fn guardian(no: &str) -> Value {
    json!({
        "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("s-{no}"),
        "subject": {"resident_no": no}, "effective_date": "1990-01-01", "household_no": format!("H-{no}"),
        "name": format!("保護者 {no}"), "birth_date": "1990-01-01", "sex": 2, "role": "guardian",
    })
}

fn wellbeing(id: &str, no: &str, school: &str) -> Value {
    json!({
        "record_type": "school-wellbeing-check", "schema_version": "1.0", "source_record_id": id,
        "subject": {"resident_no": no}, "effective_date": "2025-05-01", "checked_on": "2025-05-01",
        "instrument": "こころの健康観察", "result": "concern", "school_code": school,
    })
}

fn absence(id: &str, no: &str, days: i64, school: &str) -> Value {
    json!({
        "record_type": "school-attendance", "schema_version": "1.0", "source_record_id": id,
        "subject": {"resident_no": no}, "effective_date": "2025-03-25", "school_year": 2024,
        "period": "year", "absence_days": days, "school_code": school,
    })
}

fn epds(id: &str, mother: &str, total: i64) -> Value {
    json!({
        "record_type": "postnatal-checkup", "schema_version": "1.0", "source_record_id": id,
        "subject": {"resident_no": mother}, "effective_date": "2024-06-01",
        "visited_on": "2024-06-01", "epds_total": total,
    })
}

/// A town of seven children: five with points (one under a DV measure, one whose guardian
/// objects), two without; and a case already open for one of them.
fn seed(hub: &Hub) -> Town {
    let town = hub.town(TOWN);
    let pushed = hub.push(
        &town,
        &[
            guardian("M1"),
            subject("C1", "2013-05-01", 1, false, &[]),
            subject("C2", "2014-07-01", 2, false, &["M1"]),
            subject("C3", "2012-01-10", 2, false, &[]),
            subject("C4", "2015-09-09", 1, true, &[]),
            subject("C5", "2016-02-02", 1, false, &[]),
            subject("C6", "2013-03-03", 2, false, &[]),
            subject("C7", "2023-03-03", 2, false, &[]),
            wellbeing("w1", "C1", "SCH-A"),
            absence("a1", "C1", 40, "SCH-A"),
            wellbeing("w2", "C2", "SCH-B"),
            epds("p1", "M1", 14),
            absence("a3", "C3", 35, "SCH-A"),
            wellbeing("w3", "C3", "SCH-A"),
            json!({
                "record_type": "child-protection-case", "schema_version": "1.0",
                "source_record_id": "cp3", "subject": {"resident_no": "C3"},
                "effective_date": "2025-01-10", "registered_on": "2025-01-10",
                "case_class": "support_needed_child",
            }),
            wellbeing("w4", "C4", "SCH-A"),
            absence("a4", "C4", 50, "SCH-A"),
            wellbeing("w5", "C5", "SCH-A"),
            absence("a5", "C5", 31, "SCH-A"),
            absence("a6", "C6", 3, "SCH-A"),
        ],
    );
    assert_eq!(pushed["rejected"], 0, "{pushed}");
    town
}

fn rules_url(rest: &str) -> String {
    format!("/v1/municipalities/{TOWN}/screening-rules{rest}")
}

fn runs_url(rest: &str) -> String {
    format!("/v1/municipalities/{TOWN}/screening-runs{rest}")
}

fn post_json(
    hub: &Hub,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> common::Resp {
    hub.post(
        url,
        Some(token),
        Some("application/json"),
        headers,
        body.to_string(),
    )
}

/// Store `rules` as a new version and adopt it; returns the version.
fn adopt(hub: &Hub, token: &str, rules: Value) -> i64 {
    let stored = post_json(hub, &rules_url(""), token, &ACTOR, rules);
    assert_eq!(stored.status, 201, "{}", stored.text());
    let version = stored.json()["version"].as_i64().expect("version");
    let adopted = post_json(
        hub,
        &rules_url(&format!("/{version}/adopt")),
        token,
        &ACTOR,
        json!({}),
    );
    assert_eq!(adopted.status, 200, "{}", adopted.text());
    version
}

fn run(hub: &Hub, token: &str) -> i64 {
    run_as_of(hub, token, "2025-06-01")
}

fn run_as_of(hub: &Hub, token: &str, as_of: &str) -> i64 {
    let created = post_json(hub, &runs_url(""), token, &SCREEN, json!({"as_of": as_of}));
    assert_eq!(created.status, 201, "{}", created.text());
    created.json()["id"].as_i64().expect("run id")
}

fn listed(hub: &Hub, token: &str, run: i64) -> Vec<String> {
    hub.get_with(&runs_url(&format!("/{run}")), Some(token), &SCREEN)
        .ok()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["resident_no"].as_str().unwrap().to_string())
        .collect()
}

fn the_default(hub: &Hub, token: &str) -> Value {
    hub.get("/v1/screening-rules/default?min_items=2", Some(token))
        .ok()
}

fn rule_sets_are_validated_versioned_and_adopted(backend: Backend) {
    let hub = Hub::start(backend);
    let town = seed(&hub);
    let bad = post_json(
        &hub,
        &rules_url(""),
        &town.token,
        &ACTOR,
        json!({
            "name": "悪い例",
            "items": [{"item": 42, "points": 1}],
            "fields": [{"record_type": "postnatal-checkup", "field": "visited_on", "points_per_unit": 1}],
            "age_bands": [{"label": "全年齢", "min_age": 0, "max_age": 17, "threshold": 1}],
        }),
    );
    let problem = bad.problem(422, "invalid_document");
    assert_eq!(
        common::error_pairs(&problem),
        vec![
            ("not_scorable".to_string(), "/fields/0/field".to_string()),
            ("unknown_item".to_string(), "/items/0/item".to_string()),
        ]
    );
    let negative = post_json(
        &hub,
        &rules_url(""),
        &town.token,
        &ACTOR,
        json!({
            "name": "負の上限",
            "fields": [{"record_type": "school-attendance", "field": "absence_days", "points_per_unit": 0.1, "cap": -1}],
            "age_bands": [{"label": "全年齢", "min_age": 0, "max_age": 17, "threshold": 1}],
        }),
    );
    assert_eq!(
        common::error_pairs(&negative.problem(422, "invalid_document")),
        vec![("range".to_string(), "/fields/0/cap".to_string())]
    );
    // Nothing was stored; a run needs an adopted version.
    let listed = hub.get(&rules_url(""), Some(&town.token)).ok();
    assert_eq!(listed["versions"], json!([]));
    post_json(&hub, &runs_url(""), &town.token, &SCREEN, json!({}))
        .problem(409, "no_adopted_rule_set");

    let first = adopt(&hub, &town.token, the_default(&hub, &town.token));
    let second = adopt(
        &hub,
        &town.token,
        json!({"name": "v2", "items": [{"item": 14, "points": 1}],
               "age_bands": [{"label": "全年齢", "min_age": 0, "max_age": 17, "threshold": 1}]}),
    );
    assert_eq!((first, second), (1, 2));
    let listed = hub.get(&rules_url(""), Some(&town.token)).ok();
    assert_eq!(listed["adopted"], 2);
    assert_eq!(listed["versions"].as_array().unwrap().len(), 2);
    assert_eq!(listed["versions"][0]["adopted"], false);
    assert_eq!(listed["adoptions"].as_array().unwrap().len(), 2);
    // Versions are immutable in the database itself.
    let mut db = hub.raw_db();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.execute("UPDATE screening_rule_sets SET document = '{}' WHERE version = 1")
    }));
    assert!(refused.is_err(), "a stored version can be changed");
    // Adopting and adding are audited.
    let actions: Vec<String> = hub
        .raw_db()
        .audit_rows()
        .into_iter()
        .map(|r| r.action)
        .filter(|a| a.starts_with("screening.rules"))
        .collect();
    assert_eq!(
        actions,
        [
            "screening.rules.add",
            "screening.rules.adopt",
            "screening.rules.add",
            "screening.rules.adopt"
        ]
    );
    // Another town's staff and a national analyst see nothing.
    hub.add_town(common::OTHER_TOWN, "札幌市");
    let stranger = hub.add_client(common::OTHER_TOWN, "cw", "caseworker", None);
    hub.get(&rules_url(""), Some(&stranger))
        .problem(404, "not_found");
    let analyst = hub.add_scoped_client(&["--nation"], "analyst", "national-analyst");
    hub.get(&rules_url("/1"), Some(&analyst))
        .problem(404, "not_found");
}

both_backends!(rule_sets_are_validated_versioned_and_adopted);

/// Weights: wellbeing concern 2, 30+ days absent 2, EPDS 1 per point over 8 (cap 3), a
/// threshold of 3 for school age.
fn school_age_rules() -> Value {
    json!({
        "name": "学齢期",
        "items": [{"item": 14, "points": 2}, {"item": 12, "points": 2}, {"item": 1, "points": 1}],
        "fields": [{"record_type": "postnatal-checkup", "field": "epds_total", "points_per_unit": 1, "from": 8, "cap": 3}],
        "age_bands": [
            {"label": "乳幼児", "min_age": 0, "max_age": 5, "threshold": 3},
            {"label": "学齢期", "min_age": 6, "max_age": 17, "threshold": 3},
        ],
    })
}

fn preview_counts_and_runs_are_deterministic_and_hide_who_they_must(backend: Backend) {
    let hub = Hub::start(backend);
    let town = seed(&hub);
    let dv_desk = hub.add_client(TOWN, "dv-desk", "caseworker,support-measure-reader", None);
    let version = adopt(&hub, &town.token, school_age_rules());
    // The guardian of C5 objects: C5 is never screened.
    let objected = hub.put(
        &format!("/v1/municipalities/{TOWN}/subjects/C5/opt-out"),
        Some(&town.token),
        Some("application/json"),
        &ACTOR,
        json!({"objected_on": "2025-04-01"}).to_string(),
    );
    assert_eq!(objected.status, 200, "{}", objected.text());

    let preview = hub
        .get(
            &rules_url(&format!("/{version}/preview?as_of=2025-06-01")),
            Some(&town.token),
        )
        .ok();
    // Screened: C1, C2, C3, C6 at school age (C4 is DV, C5 objected), C7 an infant.
    let school = &preview["bands"][1];
    assert_eq!(
        (school["population"].as_u64(), school["extracted"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(
        school["extracted_known"], 1,
        "C3 has an open case: {preview}"
    );
    assert_eq!(preview["bands"][0]["population"], 1);
    let item14 = preview["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == 14)
        .unwrap();
    assert_eq!(item14["extracted"], 3);
    assert!(
        !preview.to_string().contains("C1"),
        "a preview names no child: {preview}"
    );
    let with_dv = hub
        .get(
            &rules_url(&format!("/{version}/preview?as_of=2025-06-01")),
            Some(&dv_desk),
        )
        .ok();
    assert_eq!(with_dv["bands"][1]["extracted"], 4);

    let first = run(&hub, &town.token);
    let second = run(&hub, &town.token);
    let worklist = hub
        .get_with(&runs_url(&format!("/{first}")), Some(&town.token), &SCREEN)
        .ok();
    // Highest score first: C1 (2 + 2), then C2 (2 + 3 for the mother's EPDS of 14 → capped
    // at 3 = 5), C3 (2 + 2 + 1).
    let order: Vec<(&str, f64)> = worklist["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resident_no"].as_str().unwrap(),
                e["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(order, vec![("C2", 5.0), ("C3", 5.0), ("C1", 4.0)]);
    assert_eq!(
        listed(&hub, &town.token, second),
        listed(&hub, &town.token, first)
    );
    let c2 = &worklist["entries"][0];
    let field = c2["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "field")
        .expect("EPDS contribution");
    assert_eq!(field["value"], 14.0);
    assert_eq!(field["points"], 3.0);
    assert_eq!(field["records"][0]["about"], "M1");
    assert_eq!(worklist["entries"][1]["known"], json!(["open_case"]));
    assert_eq!(worklist["entries"][1]["already_known"], true);
    assert!(
        worklist["caution"]
            .as_str()
            .unwrap()
            .contains("decides nothing")
    );
    assert_eq!(worklist["run"]["rule_version"], version);
    assert!(worklist["run"]["high_water_mark"].as_i64().unwrap() > 0);

    // The DV child is on the snapshot, but only the DV desk sees it.
    assert_eq!(listed(&hub, &dv_desk, first), ["C2", "C3", "C1", "C4"]);
    hub.get_with(
        &runs_url(&format!("/{first}/entries/C4")),
        Some(&town.token),
        &SCREEN,
    )
    .problem(404, "not_found");
    // An objection recorded after the run takes the child off at once.
    let objected = hub.put(
        &format!("/v1/municipalities/{TOWN}/subjects/C1/opt-out"),
        Some(&town.token),
        Some("application/json"),
        &ACTOR,
        json!({"objected_on": "2025-06-02"}).to_string(),
    );
    assert_eq!(objected.status, 200);
    assert_eq!(listed(&hub, &town.token, first), ["C2", "C3"]);
    // Every run entry and every child shown is audited with the child as subject.
    let audit = hub.raw_db().audit_rows();
    let subjects = |action: &str| -> Vec<String> {
        let mut s: Vec<String> = audit
            .iter()
            .filter(|r| r.action == action)
            .filter_map(|r| r.subject.clone())
            .collect();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(subjects("screening.run"), ["C1", "C2", "C3", "C4"]);
    assert_eq!(
        subjects("screening.worklist.read"),
        ["C1", "C2", "C3", "C4"]
    );
    assert!(subjects("screening.rules.preview").is_empty());
}

both_backends!(preview_counts_and_runs_are_deterministic_and_hide_who_they_must);

/// Seed the town, then put C1 under a DV measure and take it off again: C1's current subject
/// record carries no flag, an earlier version does.
fn seed_with_a_lifted_dv_measure(hub: &Hub) -> (Town, String) {
    let town = seed(hub);
    for dv in [true, false] {
        let pushed = hub.push(&town, &[subject("C1", "2013-05-01", 1, dv, &[])]);
        assert_eq!(pushed["updated"], 1, "{pushed}");
    }
    let dv_desk = hub.add_client(TOWN, "dv-desk", "caseworker,support-measure-reader", None);
    adopt(hub, &town.token, school_age_rules());
    (town, dv_desk)
}

/// On the lists of the town's staff without the DV role, and of the DV desk.
const WITHOUT_LIFTED_DV: [&str; 3] = ["C2", "C3", "C5"];
const WITH_LIFTED_DV: [&str; 5] = ["C2", "C3", "C1", "C4", "C5"];

/// A child once under a DV measure stays off the worklists of staff without the DV role after
/// its subject record drops the flag (a lifted measure may still protect the family), as the
/// current DV child does; the DV desk sees both.
fn a_lifted_dv_measure_still_hides_the_child(backend: Backend) {
    let hub = Hub::start(backend);
    let (town, dv_desk) = seed_with_a_lifted_dv_measure(&hub);
    let run = run(&hub, &town.token);
    assert_eq!(listed(&hub, &town.token, run), WITHOUT_LIFTED_DV);
    assert_eq!(listed(&hub, &dv_desk, run), WITH_LIFTED_DV);
}

both_backends!(a_lifted_dv_measure_still_hides_the_child);

/// The SQL of the migration that records who was ever under a DV measure as versions are
/// stored, to take a database back to the shape it had before.
fn support_measure_subjects_down_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => include_str!(
            "../../migrations/sqlite/2026-12-08-000070_support_measure_subjects/down.sql"
        ),
        Backend::Postgres => include_str!(
            "../../migrations/postgres/2026-12-08-000070_support_measure_subjects/down.sql"
        ),
    }
}

/// A database from before the hub kept who was ever under a DV measure is filled from the
/// versions it holds when it is migrated: the child whose measure was lifted stays hidden.
fn dv_measures_stored_before_the_migration_still_hide(backend: Backend) {
    let hub = Hub::start(backend);
    let (town, dv_desk) = seed_with_a_lifted_dv_measure(&hub);
    let mut db = hub.raw_db();
    db.batch(support_measure_subjects_down_sql(backend));
    db.execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261208000070'");
    drop(db);
    // The next command migrates the database.
    let out = hub.cli(&[
        "screening",
        "run",
        "--municipality",
        TOWN,
        "--as-of",
        "2025-06-01",
        "--actor",
        "staff-1",
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let run = serde_json::from_slice::<Value>(&out.stdout).expect("JSON summary")["id"]
        .as_i64()
        .expect("run id");
    assert_eq!(listed(&hub, &town.token, run), WITHOUT_LIFTED_DV);
    assert_eq!(listed(&hub, &dv_desk, run), WITH_LIFTED_DV);
}

both_backends!(dv_measures_stored_before_the_migration_still_hide);

fn decision(class: &str, shared: bool) -> Value {
    json!({
        "review_outcome": class, "decided_on": "2025-06-10",
        "meeting_participants": ["staff-1", "nurse-2"], "difficulty_types": ["school_refusal"],
        "support_plan": format!("{class} の支援方針"), "plan_shared_with_school": shared,
    })
}

fn decisions_become_support_outcome_records_and_schools_see_their_own(backend: Backend) {
    let hub = Hub::start(backend);
    let town = seed(&hub);
    adopt(
        &hub,
        &town.token,
        json!({"name": "v", "items": [{"item": 14, "points": 1}],
               "age_bands": [{"label": "全年齢", "min_age": 0, "max_age": 17, "threshold": 1}]}),
    );
    let id = run(&hub, &town.token);
    assert_eq!(listed(&hub, &town.token, id), ["C1", "C2", "C3", "C5"]);
    let put = |no: &str, body: Value| {
        hub.put(
            &runs_url(&format!("/{id}/entries/{no}/decision")),
            Some(&town.token),
            Some("application/json"),
            &ACTOR,
            body.to_string(),
        )
    };
    // Precise problems, before anything is stored.
    let mut bad = decision("maybe", true);
    bad["support_plan"] = json!("");
    bad.as_object_mut().unwrap().remove("meeting_participants");
    let problem = put("C1", bad).problem(422, "invalid_document");
    assert_eq!(
        common::error_pairs(&problem),
        vec![("required".to_string(), "/meeting_participants".to_string())]
    );
    let problem = put(
        "C1",
        json!({"review_outcome": "maybe", "decided_on": "2025-06-10",
        "meeting_participants": ["s"], "difficulty_types": ["poverty"]}),
    )
    .problem(422, "invalid_document");
    assert_eq!(
        common::error_pairs(&problem),
        vec![("enum".to_string(), "/review_outcome".to_string())]
    );

    let recorded = put("C1", decision("preventive_support", true));
    let recorded = recorded.ok();
    assert_eq!(recorded["stage"], "support_needed");
    put("C2", decision("watch", true)).ok();
    put("C3", decision("accepted_case", false)).ok();
    // The DV child is not on this caseworker's list: its decision answers like a stranger's.
    put("C4", decision("watch", true)).problem(404, "not_found");
    put("ZZ", decision("watch", true)).problem(404, "not_found");

    // The records: history, change feed and the profile follow.
    let history = hub
        .history(&town, recorded["source_record_id"].as_str().unwrap())
        .ok();
    let record = &history["versions"][0]["record"];
    assert_eq!(record["record_type"], "support-outcome");
    assert_eq!(record["review_outcome"], "preventive_support");
    assert_eq!(record["screening_run_id"], id);
    assert_eq!(
        record["meeting_participants"],
        json!(["staff-1", "nurse-2"])
    );
    assert_eq!(history["versions"][0]["source"], "screening:case-meeting");
    // A correction is a new version of the same record.
    put("C1", decision("accepted_case", true)).ok();
    let history = hub
        .history(&town, recorded["source_record_id"].as_str().unwrap())
        .ok();
    assert_eq!(history["versions"].as_array().unwrap().len(), 2);
    // A run as of a date after the meeting knows them: reviewed, and C1 in support.
    let before = listed(&hub, &town.token, run(&hub, &town.token));
    assert_eq!(before, ["C1", "C2", "C3", "C5"]);
    let next = run_as_of(&hub, &town.token, "2025-06-30");
    let worklist = hub
        .get_with(&runs_url(&format!("/{next}")), Some(&town.token), &SCREEN)
        .ok();
    let c1 = worklist["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resident_no"] == "C1")
        .unwrap();
    assert_eq!(c1["known"], json!(["in_support", "reviewed"]));

    // Closing: C5 is undecided.
    let close = |body: Value| {
        post_json(
            &hub,
            &runs_url(&format!("/{id}/close")),
            &town.token,
            &ACTOR,
            body,
        )
    };
    let refused = close(json!({})).problem(409, "undecided_entries");
    assert!(
        refused["detail"].as_str().unwrap().starts_with("1 "),
        "{refused}"
    );
    let closed = close(json!({"reason": "C5 は次回の会議で扱う"})).ok();
    assert_eq!(closed["close_reason"], "C5 は次回の会議で扱う");
    put("C5", decision("watch", true)).problem(409, "run_closed");

    // Fairness: counts only.
    let fairness = hub
        .get(&runs_url(&format!("/{id}/fairness")), Some(&town.token))
        .ok();
    let by_sex = fairness["by_sex"].as_array().unwrap();
    let girls = by_sex.iter().find(|g| g["sex"] == 2).unwrap();
    assert_eq!(
        (girls["population"].as_u64(), girls["extracted"].as_u64()),
        (Some(4), Some(2))
    );
    assert!(!fairness.to_string().contains("C1"));

    // A school sees only its own pupils' shared decisions: class and plan, nothing else.
    let school_a = hub.add_client(TOWN, "school-a", "school", None);
    let school_b = hub.add_client(TOWN, "school-b", "school", None);
    for (name, code) in [("school-a", "SCH-A"), ("school-b", "SCH-B")] {
        let out = hub.cli(&[
            "screening",
            "school",
            "link",
            "--municipality",
            TOWN,
            "--client",
            name,
            "--school",
            code,
        ]);
        assert!(out.status.success(), "{}", common::describe(&out));
    }
    // Only a client holding the school role speaks for a school.
    hub.add_client(TOWN, "desk", "caseworker", None);
    let out = hub.cli(&[
        "screening",
        "school",
        "link",
        "--municipality",
        TOWN,
        "--client",
        "desk",
        "--school",
        "SCH-A",
    ]);
    assert!(!out.status.success(), "{}", common::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hold the school role"),
        "{}",
        common::describe(&out)
    );
    let read = [("X-Purpose", "case_handling"), ("X-Actor", "teacher-1")];
    let shares_url = format!("/v1/municipalities/{TOWN}/school-shares");
    let a = hub.get_with(&shares_url, Some(&school_a), &read).ok();
    let pupils: Vec<(&str, &str)> = a["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["resident_no"].as_str().unwrap(),
                d["review_outcome"].as_str().unwrap(),
            )
        })
        .collect();
    // C3 attends SCH-A but its plan was not shared; C2 attends SCH-B.
    assert_eq!(pupils, vec![("C1", "accepted_case")]);
    assert_eq!(
        a["decisions"][0]["support_plan"],
        "accepted_case の支援方針"
    );
    for secret in ["score", "contributions", "known", "C2", "C3"] {
        assert!(!a.to_string().contains(secret), "{secret} in {a}");
    }
    let b = hub.get_with(&shares_url, Some(&school_b), &read).ok();
    assert_eq!(b["decisions"][0]["resident_no"], "C2");
    assert_eq!(b["decisions"].as_array().unwrap().len(), 1);
    // A school sees no worklist, and a caseworker no school view.
    hub.get_with(&runs_url(&format!("/{id}")), Some(&school_a), &SCREEN)
        .problem(404, "not_found");
    hub.get_with(&shares_url, Some(&town.token), &read)
        .problem(404, "not_found");
    let audited: Vec<String> = hub
        .raw_db()
        .audit_rows()
        .into_iter()
        .filter(|r| {
            r.action == "screening.share.read" && r.client_name.as_deref() == Some("school-a")
        })
        .filter_map(|r| r.subject)
        .collect();
    assert_eq!(audited, ["C1"]);
    let decided: Vec<String> = hub
        .raw_db()
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "screening.decision" && r.result == "ok")
        .filter_map(|r| r.subject)
        .collect();
    assert_eq!(decided, ["C1", "C2", "C3", "C1"]);
}

both_backends!(decisions_become_support_outcome_records_and_schools_see_their_own);

fn the_cli_runs_and_lists_a_worklist_over_the_demo_council(backend: Backend) {
    let hub = Hub::start_with(backend, &["--demo"]);
    let town = hub
        .raw_db()
        .strings("SELECT municipality_code AS v FROM municipalities ORDER BY municipality_code");
    let code = town.first().expect("a demo town").clone();
    let out = hub.cli(&[
        "screening",
        "adopt-default",
        "--municipality",
        &code,
        "--min-items",
        "1",
        "--actor",
        "staff-1",
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let out = hub.cli(&[
        "screening",
        "run",
        "--municipality",
        &code,
        "--as-of",
        "2025-06-01",
        "--actor",
        "staff-1",
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    let entries = summary["entries"].as_u64().expect("entries");
    assert!(
        entries > 0,
        "the demo council has children with items: {summary}"
    );
    let id = summary["id"].as_i64().unwrap().to_string();
    let out = hub.cli(&[
        "screening",
        "list",
        "--municipality",
        &code,
        "--run",
        &id,
        "--actor",
        "staff-1",
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let worklist: Value = serde_json::from_slice(&out.stdout).expect("JSON worklist");
    assert_eq!(
        worklist["entries"].as_array().unwrap().len() as u64,
        entries
    );
    // The same run over HTTP lists the same children for a caseworker with the DV role (the
    // console operator holds it).
    let token = hub.add_client(
        &code,
        "screening-desk",
        "caseworker,support-measure-reader",
        None,
    );
    let http: Vec<Value> = hub
        .get_with(
            &format!("/v1/municipalities/{code}/screening-runs/{id}"),
            Some(&token),
            &SCREEN,
        )
        .ok()["entries"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(http, worklist["entries"].as_array().unwrap().clone());
}

both_backends!(the_cli_runs_and_lists_a_worklist_over_the_demo_council);

/// The demo council's worklists are exactly those the hub computed before runs read only the
/// record types and fields a rule set scores, slice by slice (stored under
/// tests/it/screening_worklists, written by the earlier whole-town computation): the default
/// rule set, and a weighted one with scorable fields, a score cap, a top share and an
/// exclusion.
fn the_demo_council_worklists_are_unchanged(backend: Backend) {
    let hub = Hub::start_with(backend, &["--demo"]);
    let code = hub
        .raw_db()
        .strings("SELECT municipality_code AS v FROM municipalities ORDER BY municipality_code")
        .first()
        .expect("a demo town")
        .clone();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/screening_worklists");
    let cli = |args: &[&str]| -> Value {
        let out = hub.cli(args);
        assert!(out.status.success(), "{}", common::describe(&out));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let listed = |as_of: &str| -> Value {
        let run = cli(&[
            "screening",
            "run",
            "--municipality",
            &code,
            "--as-of",
            as_of,
            "--actor",
            "staff-1",
        ]);
        let id = run["id"].as_i64().expect("run id").to_string();
        cli(&[
            "screening",
            "list",
            "--municipality",
            &code,
            "--run",
            &id,
            "--actor",
            "staff-1",
        ])["entries"]
            .clone()
    };
    let expected = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(fixtures.join(name)).expect("fixture"))
            .expect("fixture is JSON")
    };
    cli(&[
        "screening",
        "adopt-default",
        "--municipality",
        &code,
        "--min-items",
        "1",
        "--actor",
        "staff-1",
    ]);
    assert_eq!(
        listed("2025-06-01"),
        expected("demo-default-min1-2025-06-01.json")
    );
    let weighted = fixtures.join("weighted-rules.json");
    cli(&[
        "screening",
        "adopt",
        "--municipality",
        &code,
        "--actor",
        "staff-1",
        &weighted.to_string_lossy(),
    ]);
    let worklist = listed("2026-03-31");
    assert!(
        worklist.to_string().contains(r#""kind":"field""#),
        "the weighted list scores fields: {worklist}"
    );
    assert_eq!(worklist, expected("demo-weighted-2026-03-31.json"));
}

both_backends!(the_demo_council_worklists_are_unchanged);

/// `bench screening` through the CLI on a small town: every child is screened, the run's
/// extraction and the worklist read back are timed, and the run is in the town's trail.
fn bench_screens_a_whole_town(backend: Backend) {
    let hub = Hub::start(backend);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out_path = out_dir.path().to_string_lossy().to_string();
    let out = hub.cli(&[
        "bench",
        "screening",
        "--households",
        "200",
        "--out",
        out_path.as_str(),
    ]);
    assert!(out.status.success(), "{}", common::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    // The demo generator gives every household one to three children.
    let children = report["children"].as_u64().expect("children");
    assert!((200..=600).contains(&children), "{report}");
    let extracted = report["extracted"].as_u64().expect("extracted");
    assert!(extracted > 0 && extracted < children, "{report}");
    for timing in [
        "seed_seconds",
        "run_seconds",
        "worklist_seconds",
        "peak_rss_mb",
    ] {
        assert!(report[timing].as_f64() > Some(0.0), "{timing}: {report}");
    }
    let mut db = hub.raw_db();
    let run_entries = db.strings(
        "SELECT CAST(COUNT(*) AS TEXT) AS v FROM audit_log WHERE action = 'screening.run' AND subject IS NOT NULL",
    );
    assert_eq!(
        run_entries,
        [extracted.to_string()],
        "one audit entry per extracted child"
    );
}
both_backends!(bench_screens_a_whole_town);
