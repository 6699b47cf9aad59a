//! One test per schema rule: each pushes records that break exactly one rule and asserts the
//! exact error code and JSON pointer in the per-record result (so removing the rule fails it).

use crate::common;

use common::{
    Backend, CliEnv, Hub, OTHER_TOWN, THIRD_TOWN, TOWN, Town, assert_rejected, describe, envelope,
    record, result_at,
};
use serde_json::{Value, json};

/// Push `cases` (each a record and the errors it must get) in one batch, plus a valid record
/// at the end that must still be created.
fn expect_rejections(backend: Backend, cases: Vec<(Value, Vec<(&str, &str)>)>) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    expect_rejections_on(&hub, &town, cases);
}

fn expect_rejections_on(hub: &Hub, town: &Town, cases: Vec<(Value, Vec<(&str, &str)>)>) {
    let mut batch: Vec<Value> = cases.iter().map(|(r, _)| r.clone()).collect();
    batch.push(record("public-assistance", "still-valid", "C999"));
    let report = hub.push(town, &batch);
    assert_eq!(report["received"], batch.len(), "{report}");
    assert_eq!(report["rejected"], cases.len(), "{report}");
    assert_eq!(report["created"], 1, "{report}");
    for (i, (_, expected)) in cases.iter().enumerate() {
        assert_rejected(&result_at(&report, i), expected);
    }
    assert_eq!(result_at(&report, cases.len())["status"], "created");
    // Nothing rejected was stored.
    for (r, _) in &cases {
        if let Some(id) = r["source_record_id"]
            .as_str()
            .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            hub.history(town, id).problem(404, "not_found");
        }
    }
}

fn with(mut r: Value, field: &str, value: Value) -> Value {
    r[field] = value;
    r
}

fn without(mut r: Value, field: &str) -> Value {
    r.as_object_mut().expect("object").remove(field);
    r
}

fn rule_required(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                without(record("postnatal-checkup", "r1", "M1"), "epds_total"),
                vec![("required", "/epds_total")],
            ),
            (
                without(record("subject", "r2", "C1"), "birth_date"),
                vec![("required", "/birth_date")],
            ),
            (
                without(record("school-attendance", "r3", "C1"), "effective_date"),
                vec![("required", "/effective_date")],
            ),
            (
                without(record("temporary-protection", "r4", "C1"), "subject"),
                vec![("required", "/subject")],
            ),
            (
                without(record("infant-checkup", "r5", "C1"), "record_type"),
                vec![("required", "/record_type")],
            ),
        ],
    );
}

fn rule_unknown_field(backend: Backend) {
    let mut nested = record("school-health-exam", "u2", "C1");
    nested["subject"]["nickname"] = json!("はなちゃん");
    let mut basic = record("school-health-exam", "u3", "C1");
    basic["subject"] = json!({"basic_info": {
        "name": "山田 花子", "birth_date": "2021-04-02", "sex": 2, "blood_type": "A"}});
    expect_rejections(
        backend,
        vec![
            (
                with(record("school-health-exam", "u1", "C1"), "bmi", json!(17.2)),
                vec![("unknown_field", "/bmi")],
            ),
            (nested, vec![("unknown_field", "/subject/nickname")]),
            // Pointers escape "~" and "/" (RFC 6901).
            (
                with(record("school-health-exam", "u4", "C1"), "a/b~c", json!(1)),
                vec![("unknown_field", "/a~1b~0c")],
            ),
            (
                basic,
                vec![("unknown_field", "/subject/basic_info/blood_type")],
            ),
        ],
    );
}

fn rule_enum(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(record("subject", "e1", "C1"), "sex", json!(3)),
                vec![("enum", "/sex")],
            ),
            (
                with(
                    record("child-rearing-allowance", "e2", "G1"),
                    "category",
                    json!("全部支給"),
                ),
                vec![("enum", "/category")],
            ),
            (
                with(record("infant-checkup", "e3", "C1"), "checkup", json!("2y")),
                vec![("enum", "/checkup")],
            ),
            (
                with(
                    record("support-outcome", "e4", "C1"),
                    "difficulty_types",
                    json!(["poverty", "laziness"]),
                ),
                vec![("enum", "/difficulty_types/1")],
            ),
        ],
    );
}

fn rule_type(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("postnatal-checkup", "t1", "M1"),
                    "epds_total",
                    json!("10"),
                ),
                vec![("type", "/epds_total")],
            ),
            (
                with(
                    record("prenatal-checkup", "t2", "M1"),
                    "attended",
                    json!("yes"),
                ),
                vec![("type", "/attended")],
            ),
            (
                with(
                    record("school-attendance", "t3", "C1"),
                    "absence_days",
                    json!(2.5),
                ),
                vec![("type", "/absence_days")],
            ),
        ],
    );
}

fn rule_pattern(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("mental-health-handbook", "p1", "G1"),
                    "main_disorder_code",
                    json!("G32"),
                ),
                vec![("pattern", "/main_disorder_code")],
            ),
            (
                with(
                    record("disabled-child-support", "p2", "C1"),
                    "certificate_no",
                    json!("12345"),
                ),
                vec![("pattern", "/certificate_no")],
            ),
            (
                record("temporary-protection", "p3 with space", "C1"),
                vec![("pattern", "/source_record_id")],
            ),
            (
                {
                    let mut r = record("temporary-protection", "p4", "C1");
                    r["subject"]["resident_no"] = json!("山田");
                    r
                },
                vec![("pattern", "/subject/resident_no")],
            ),
        ],
    );
}

fn rule_range(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("postnatal-checkup", "g1", "M1"),
                    "epds_total",
                    json!(31),
                ),
                vec![("range", "/epds_total")],
            ),
            (
                with(
                    record("pregnancy-notification", "g2", "M1"),
                    "gestational_weeks",
                    json!(46),
                ),
                vec![("range", "/gestational_weeks")],
            ),
            (
                with(
                    record("pregnancy-notification", "g3", "M1"),
                    "gestational_weeks",
                    json!(-1),
                ),
                vec![("range", "/gestational_weeks")],
            ),
            (
                with(
                    record("school-health-exam", "g4", "C1"),
                    "weight_kg",
                    json!(0),
                ),
                vec![("range", "/weight_kg")],
            ),
            (
                with(
                    record("postnatal-checkup", "g5", "M1"),
                    "epds_item10",
                    json!(4),
                ),
                vec![("range", "/epds_item10")],
            ),
        ],
    );
}

fn rule_date_format(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("postnatal-checkup", "d1", "M1"),
                    "visited_on",
                    json!("2024/05/01"),
                ),
                vec![("date_format", "/visited_on")],
            ),
            (
                with(
                    record("public-assistance", "d2", "G1"),
                    "effective_date",
                    json!("2021-02-29"),
                ),
                vec![("date_format", "/effective_date")],
            ),
            // Not zero-padded: a format error, not a date "in the future".
            (
                with(
                    without(record("subject", "d3", "C1"), "moved_in_on"),
                    "birth_date",
                    json!("2021-4-2"),
                ),
                vec![("date_format", "/birth_date")],
            ),
            (
                with(
                    record("school-health-exam", "d4", "C1"),
                    "examined_on",
                    json!("2024-05-01T10:00:00"),
                ),
                vec![("date_format", "/examined_on")],
            ),
        ],
    );
}

fn rule_future_date(backend: Backend) {
    // Two days ahead of UTC is in the future in Japan time too.
    let future = (chrono::Utc::now().date_naive() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("temporary-protection", "f1", "C1"),
                    "ended_on",
                    json!(future),
                ),
                vec![("future_date", "/ended_on")],
            ),
            (
                with(
                    record("school-wellbeing-check", "f2", "C1"),
                    "effective_date",
                    json!("2999-01-01"),
                ),
                vec![("future_date", "/effective_date")],
            ),
        ],
    );
}

fn rule_field_order(backend: Backend) {
    let mut attendance = record("school-attendance", "o4", "C1");
    attendance["absence_days"] = json!(71);
    attendance["school_days"] = json!(70);
    let mut late = record("school-attendance", "o5", "C1");
    late["late_days"] = json!(80);
    late["school_days"] = json!(70);
    let mut epds = record("postnatal-checkup", "o3", "M1");
    epds["epds_total"] = json!(2);
    epds["epds_item10"] = json!(3);
    let mut moved = record("subject", "o6", "C1");
    moved["moved_in_on"] = json!("2023-01-01");
    moved["moved_out_on"] = json!("2022-12-31");
    let mut born_after_move = record("subject", "o7", "C2");
    born_after_move["moved_in_on"] = json!("2021-04-01");
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("temporary-protection", "o1", "C1"),
                    "ended_on",
                    json!("2024-03-31"),
                ),
                vec![("field_order", "/ended_on")],
            ),
            (
                with(
                    record("public-assistance", "o1b", "G1"),
                    "ended_on",
                    json!("2021-12-31"),
                ),
                vec![("field_order", "/ended_on")],
            ),
            (
                with(
                    record("child-protection-case", "o2", "C1"),
                    "closed_on",
                    json!("2024-03-01"),
                ),
                vec![("field_order", "/closed_on")],
            ),
            // The pair's later field carries the error (epds_item10 ≤ epds_total).
            (epds, vec![("field_order", "/epds_total")]),
            (attendance, vec![("field_order", "/school_days")]),
            (late, vec![("field_order", "/school_days")]),
            (moved, vec![("field_order", "/moved_out_on")]),
            (born_after_move, vec![("field_order", "/moved_in_on")]),
        ],
    );
}

fn rule_infant_checkup_questionnaire(backend: Backend) {
    let mut covered_at_3y = without(record("infant-checkup", "q1", "C1"), "shook_violently");
    covered_at_3y["checkup"] = json!("3y");
    let mut shook_at_3y = without(record("infant-checkup", "q1b", "C1"), "covered_mouth");
    shook_at_3y["checkup"] = json!("3y");
    let mut percentile_at_4m = without(
        without(record("infant-checkup", "q2", "C1"), "covered_mouth"),
        "shook_violently",
    );
    percentile_at_4m["checkup"] = json!("4m");
    percentile_at_4m["covered_mouth"] = json!(false);
    let not_attended = json!({
        "record_type": "infant-checkup", "schema_version": "1.0", "source_record_id": "q3",
        "subject": {"resident_no": "C1"}, "effective_date": "2024-05-01",
        "checkup": "1y6m", "attended": false, "hit_emotionally": true,
        "weight_percentile": 30,
    });
    let not_attended_with_date = json!({
        "record_type": "infant-checkup", "schema_version": "1.0", "source_record_id": "q3b",
        "subject": {"resident_no": "C1"}, "effective_date": "2024-05-01",
        "checkup": "4m", "attended": false, "attended_on": "2024-05-01",
    });
    let attended_without_date = without(record("infant-checkup", "q4", "C1"), "attended_on");
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    expect_rejections_on(
        &hub,
        &town,
        vec![
            (covered_at_3y, vec![("not_allowed", "/covered_mouth")]),
            (shook_at_3y, vec![("not_allowed", "/shook_violently")]),
            (
                percentile_at_4m,
                vec![("not_allowed", "/weight_percentile")],
            ),
            (
                not_attended,
                vec![
                    ("not_allowed", "/hit_emotionally"),
                    ("not_allowed", "/weight_percentile"),
                ],
            ),
            (
                not_attended_with_date,
                vec![("not_allowed", "/attended_on")],
            ),
            (attended_without_date, vec![("required", "/attended_on")]),
        ],
    );
    // The allowed forms of each checkup are accepted.
    let mut at_4m = without(record("infant-checkup", "ok-4m", "C1"), "weight_percentile");
    at_4m["checkup"] = json!("4m");
    let mut at_3y = without(
        without(record("infant-checkup", "ok-3y", "C1"), "covered_mouth"),
        "shook_violently",
    );
    at_3y["checkup"] = json!("3y");
    let missed = json!({
        "record_type": "infant-checkup", "schema_version": "1.0", "source_record_id": "ok-missed",
        "subject": {"resident_no": "C1"}, "effective_date": "2024-05-01",
        "checkup": "3y", "attended": false,
    });
    let report = hub.push(&town, &[at_4m, at_3y, missed]);
    assert_eq!(report["created"], 3, "{report}");
}

fn rule_prenatal_checkup_attended(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    expect_rejections_on(
        &hub,
        &town,
        vec![
            (
                without(record("prenatal-checkup", "pc1", "M1"), "visited_on"),
                vec![("required", "/visited_on")],
            ),
            (
                with(
                    record("prenatal-checkup", "pc2", "M1"),
                    "attended",
                    json!(false),
                ),
                vec![("not_allowed", "/visited_on")],
            ),
            (
                without(record("prenatal-checkup", "pc3", "M1"), "attended"),
                vec![("required", "/attended")],
            ),
        ],
    );
    let missed = without(
        with(
            record("prenatal-checkup", "pc-ok", "M1"),
            "attended",
            json!(false),
        ),
        "visited_on",
    );
    assert_eq!(hub.push(&town, &[missed])["created"], 1);
}

fn rule_my_number_like(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let mut in_resident_no = record("school-attendance", "mn3", "C1");
    in_resident_no["subject"]["resident_no"] = json!("123456789018");
    expect_rejections_on(
        &hub,
        &town,
        vec![
            (
                with(
                    record("subject", "mn1", "C1"),
                    "name",
                    json!("123456789018"),
                ),
                vec![("my_number_like", "/name")],
            ),
            (
                with(
                    record("school-wellbeing-check", "mn2", "C1"),
                    "instrument",
                    json!("1234 5678 9018"),
                ),
                vec![("my_number_like", "/instrument")],
            ),
            (
                in_resident_no,
                vec![("my_number_like", "/subject/resident_no")],
            ),
        ],
    );
    // Twelve digits without a valid check digit are not a My Number.
    let report = hub.push(
        &town,
        &[with(
            record("subject", "mn-ok", "C1"),
            "name",
            json!("123456789012"),
        )],
    );
    assert_eq!(result_at(&report, 0)["status"], "created", "{report}");
}

fn rule_schema_version_unsupported(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                with(
                    record("subject", "v1", "C1"),
                    "schema_version",
                    json!("2.0"),
                ),
                vec![("schema_version_unsupported", "/schema_version")],
            ),
            (
                with(
                    record("subject", "v2", "C1"),
                    "schema_version",
                    json!("1.99"),
                ),
                vec![("schema_version_unsupported", "/schema_version")],
            ),
            (
                without(record("subject", "v3", "C1"), "schema_version"),
                vec![("schema_version_unsupported", "/schema_version")],
            ),
        ],
    );
}

fn rule_record_type_unknown(backend: Backend) {
    expect_rejections(
        backend,
        vec![
            (
                envelope("school-lunch", "rt1", "C1"),
                vec![("record_type_unknown", "/record_type")],
            ),
            (
                with(envelope("x", "rt2", "C1"), "record_type", json!(7)),
                vec![("required", "/record_type")],
            ),
        ],
    );
}

fn rule_record_type_not_allowed(backend: Backend) {
    let hub = Hub::start(backend);
    hub.add_town(TOWN, "千代田区");
    let token = hub.add_client(
        TOWN,
        "koumu",
        "source",
        Some("school-attendance,school-health-exam"),
    );
    let town = Town {
        code: TOWN.into(),
        token,
    };
    let report = hub.push(
        &town,
        &[
            record("school-attendance", "na1", "C1"),
            record("infant-checkup", "na2", "C1"),
            record("subject", "na3", "C1"),
        ],
    );
    assert_eq!(result_at(&report, 0)["status"], "created", "{report}");
    assert_rejected(
        &result_at(&report, 1),
        &[("record_type_not_allowed", "/record_type")],
    );
    assert_rejected(
        &result_at(&report, 2),
        &[("record_type_not_allowed", "/record_type")],
    );
    // The CLI refuses a record type that does not exist.
    let out = hub.cli(&[
        "admin",
        "client",
        "add",
        "--municipality",
        TOWN,
        "--name",
        "typo",
        "--role",
        "source",
        "--record-types",
        "school-atendance",
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
}

fn rule_subject_ref(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let mut empty_subject = record("school-attendance", "sr1", "C1");
    empty_subject["subject"] = json!({});
    let mut only_local_ids = record("school-attendance", "sr2", "C1");
    only_local_ids["subject"] = json!({"local_ids": {"student_no": "S-1"}});
    let mut subject_without_resident_no = record("subject", "sr3", "C1");
    subject_without_resident_no["subject"] = json!({"basic_info": {
        "name": "山田 花子", "birth_date": "2021-04-02", "sex": 2}});
    let mut incomplete_basic_info = record("school-attendance", "sr4", "C1");
    incomplete_basic_info["subject"] = json!({"basic_info": {"name": "山田 花子"}});
    expect_rejections_on(
        &hub,
        &town,
        vec![
            (empty_subject, vec![("alternatives", "/subject")]),
            (only_local_ids, vec![("alternatives", "/subject")]),
            (
                subject_without_resident_no,
                vec![("required", "/subject/resident_no")],
            ),
            (
                incomplete_basic_info,
                vec![
                    ("required", "/subject/basic_info/birth_date"),
                    ("required", "/subject/basic_info/sex"),
                ],
            ),
        ],
    );
    // A school record with the basic four items and a student number instead of a resident
    // number is accepted.
    let mut by_basic_info = record("school-attendance", "sr-ok", "C1");
    by_basic_info["subject"] = json!({
        "basic_info": {"name": "髙橋 蓮", "name_kana": "タカハシ レン",
                       "birth_date": "2015-06-01", "sex": 1, "address": "千代田1-1-1"},
        "local_ids": {"student_no": "S-2024-001"},
    });
    let report = hub.push(&town, &[by_basic_info]);
    assert_eq!(result_at(&report, 0)["status"], "created", "{report}");
}

/// The municipality-code rule is the admin CLI's: a bad check digit is refused.
fn cli_municipality_code_check_digit(backend: Backend) {
    let env = CliEnv::new(backend);
    let bad = env.run(&["admin", "municipality", "add", "131017", "X"]);
    assert!(
        !bad.status.success(),
        "131017 must be refused: {}",
        describe(&bad)
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("131017"), "{}", describe(&bad));
    for code in ["13101", "1310160", "13101a"] {
        let out = env.run(&["admin", "municipality", "add", code, "X"]);
        assert!(!out.status.success(), "{code}: {}", describe(&out));
    }
    for (code, name) in [
        ("131016", "千代田区"),
        (OTHER_TOWN, "札幌市"),
        (THIRD_TOWN, "姫路市"),
    ] {
        let good = env.run(&["admin", "municipality", "add", code, name]);
        assert!(good.status.success(), "{code}: {}", describe(&good));
    }
    let list = env.run(&["admin", "municipality", "list"]);
    assert!(list.status.success(), "{}", describe(&list));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("131016") && listed.contains("千代田区"),
        "{listed}"
    );
    assert!(!listed.contains("131017"), "{listed}");
    // Registering the same town twice fails too.
    let again = env.run(&["admin", "municipality", "add", "131016", "千代田区"]);
    assert!(!again.status.success(), "{}", describe(&again));
}

both_backends!(
    rule_required,
    rule_unknown_field,
    rule_enum,
    rule_type,
    rule_pattern,
    rule_range,
    rule_date_format,
    rule_future_date,
    rule_field_order,
    rule_infant_checkup_questionnaire,
    rule_prenatal_checkup_attended,
    rule_my_number_like,
    rule_schema_version_unsupported,
    rule_record_type_unknown,
    rule_record_type_not_allowed,
    rule_subject_ref,
    cli_municipality_code_check_digit,
);
