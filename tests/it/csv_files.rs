//! CSV pushes: columns are the dotted paths listed by `GET /v1/schemas`; files come in CP932
//! (Shift_JIS) or UTF-8 with or without a BOM; problems carry the CSV row and column.

use crate::common;

use common::{Backend, Hub, TOWN, Town, assert_rejected, result_at};
use serde_json::{Value, json};

/// The CSV columns the hub publishes for `record_type`.
fn csv_columns(hub: &Hub, record_type: &str) -> Vec<String> {
    let schemas = hub.get("/v1/schemas", None).ok();
    let types = schemas["versions"][0]["record_types"]
        .as_array()
        .expect("record types");
    let entry = types
        .iter()
        .find(|t| t["record_type"] == record_type)
        .unwrap_or_else(|| panic!("{record_type} listed in {schemas}"));
    entry["csv_columns"]
        .as_array()
        .expect("csv_columns")
        .iter()
        .map(|c| c.as_str().expect("column").to_string())
        .collect()
}

/// A CSV file with the published columns for `record_type`, in the given order of
/// `(column, value)` rows; columns a row does not name are left empty.
fn csv_file(columns: &[String], rows: &[Vec<(&str, &str)>]) -> String {
    for row in rows {
        for (name, _) in row {
            assert!(
                columns.iter().any(|c| c == name),
                "{name} is not a published column: {columns:?}"
            );
        }
    }
    let mut out = String::new();
    out.push_str(&columns.join(","));
    out.push_str("\r\n");
    for row in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| {
                let v = row
                    .iter()
                    .find(|(name, _)| name == c)
                    .map(|(_, v)| *v)
                    .unwrap_or("");
                if v.contains(',') || v.contains('"') {
                    format!("\"{}\"", v.replace('"', "\"\""))
                } else {
                    v.to_string()
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn subject_row<'a>(id: &'a str, resident_no: &'a str, name: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("source_record_id", id),
        ("schema_version", "1.0"),
        ("effective_date", "2024-05-01"),
        ("subject.resident_no", resident_no),
        ("household_no", "H0100"),
        ("name", name),
        ("birth_date", "2019-07-07"),
        ("sex", "2"),
        ("role", "child"),
        ("address", "千代田1-1,2号"),
        ("guardians", "G0100;G0101"),
        ("support_measure", "false"),
    ]
}

fn push_csv(hub: &Hub, town: &Town, record_type: &str, content_type: &str, body: Vec<u8>) -> Value {
    hub.post(
        &format!(
            "/v1/municipalities/{}/records?record_type={record_type}",
            town.code
        ),
        Some(&town.token),
        Some(content_type),
        &[],
        body,
    )
    .ok()
}

fn cp932_csv_of_subjects_keeps_japanese_names(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let columns = csv_columns(&hub, "subject");
    for expected in [
        "source_record_id",
        "schema_version",
        "effective_date",
        "subject.resident_no",
        "household_no",
        "name",
        "guardians",
    ] {
        assert!(
            columns.iter().any(|c| c == expected),
            "{expected}: {columns:?}"
        );
    }
    assert!(!columns.iter().any(|c| c == "record_type"), "{columns:?}");
    let mut kana = subject_row("sj-3", "C503", "渡邉 凛");
    kana.push(("name_kana", "ワタナベ リン"));
    let text = csv_file(
        &columns,
        &[
            subject_row("sj-1", "C501", "山田 花子"),
            subject_row("sj-2", "C502", "髙橋 蓮"),
            kana,
            subject_row("sj-4", "C504", "山﨑 結菜"),
        ],
    );
    let (bytes, _, had_errors) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!had_errors, "the names are all in CP932");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the body really is not UTF-8"
    );
    let report = push_csv(
        &hub,
        &town,
        "subject",
        "text/csv; charset=shift_jis",
        bytes.into_owned(),
    );
    assert_eq!(report["created"], 4, "{report}");
    assert_eq!(result_at(&report, 0)["row"], 2, "{report}");

    for (resident_no, name) in [
        ("C501", "山田 花子"),
        ("C502", "髙橋 蓮"),
        ("C503", "渡邉 凛"),
        ("C504", "山﨑 結菜"),
    ] {
        let profile = hub.profile(&town, resident_no).ok();
        assert_eq!(profile["subject"]["name"], name, "{profile}");
        assert_eq!(profile["subject"]["address"], "千代田1-1,2号");
        assert_eq!(profile["subject"]["guardians"], json!(["G0100", "G0101"]));
        assert_eq!(profile["subject"]["sex"], 2);
        assert_eq!(profile["subject"]["support_measure"], false);
        assert!(profile["subject"].get("name_kana").is_none() || resident_no == "C503");
    }
    assert_eq!(
        hub.profile(&town, "C503").ok()["subject"]["name_kana"],
        "ワタナベ リン"
    );
    // The household is linked through household_no.
    let household = hub.profile(&town, "C501").ok()["household"].clone();
    assert_eq!(
        household.as_array().expect("household").len(),
        3,
        "{household}"
    );

    // Other spellings of the charset are accepted too.
    let text = csv_file(&columns, &[subject_row("sj-5", "C505", "齋藤 紬")]);
    let (bytes, _, had_errors) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!had_errors);
    let report = push_csv(
        &hub,
        &town,
        "subject",
        "text/csv; charset=\"Windows-31J\"",
        bytes.into_owned(),
    );
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        hub.profile(&town, "C505").ok()["subject"]["name"],
        "齋藤 紬"
    );

    // Pushing the same file again changes nothing.
    let text = csv_file(&columns, &[subject_row("sj-1", "C501", "山田 花子")]);
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let report = push_csv(
        &hub,
        &town,
        "subject",
        "text/csv; charset=shift_jis",
        bytes.into_owned(),
    );
    assert_eq!(report["unchanged"], 1, "{report}");
}

fn utf8_csv_with_bom(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let columns = csv_columns(&hub, "subject");
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(
        csv_file(&columns, &[subject_row("bom-1", "C601", "髙橋 蓮")]).as_bytes(),
    );
    let report = push_csv(
        &hub,
        &town,
        "subject",
        "text/csv; charset=utf-8",
        body.clone(),
    );
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        hub.profile(&town, "C601").ok()["subject"]["name"],
        "髙橋 蓮"
    );
    // Without a charset UTF-8 is assumed; the BOM is still dropped (the first column binds).
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(
        csv_file(&columns, &[subject_row("bom-2", "C602", "伊藤 蒼")]).as_bytes(),
    );
    let report = push_csv(&hub, &town, "subject", "text/csv", body);
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        hub.profile(&town, "C602").ok()["subject"]["name"],
        "伊藤 蒼"
    );

    // A CP932 body declared as UTF-8 is refused as a whole, with a hint.
    let text = csv_file(&columns, &[subject_row("bom-3", "C603", "山田 花子")]);
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let p = hub
        .post(
            &format!("/v1/municipalities/{TOWN}/records?record_type=subject"),
            Some(&town.token),
            Some("text/csv"),
            &[],
            bytes.into_owned(),
        )
        .problem(400, "encoding");
    assert!(
        p["detail"].as_str().expect("detail").contains("shift_jis"),
        "{p}"
    );

    // Other record types take their own columns, e.g. a school record with a boolean and
    // nested basic-info columns instead of a resident number.
    let columns = csv_columns(&hub, "school-attendance");
    let text = csv_file(
        &columns,
        &[vec![
            ("source_record_id", "att-1"),
            ("schema_version", "1.0"),
            ("effective_date", "2024-03-20"),
            ("subject.basic_info.name", "髙橋 蓮"),
            ("subject.basic_info.birth_date", "2015-06-01"),
            ("subject.basic_info.sex", "1"),
            ("subject.local_ids.student_no", "S-001"),
            ("school_year", "2023"),
            ("period", "year"),
            ("absence_days", "31"),
            ("school_days", "200"),
        ]],
    );
    let report = push_csv(
        &hub,
        &town,
        "school-attendance",
        "text/csv",
        text.into_bytes(),
    );
    assert_eq!(report["created"], 1, "{report}");
    let history = hub.history(&town, "att-1").ok();
    let stored = &history["versions"][0]["record"];
    assert_eq!(stored["absence_days"], 31, "{stored}");
    assert_eq!(stored["subject"]["basic_info"]["sex"], 1, "{stored}");
    assert_eq!(stored["subject"]["local_ids"]["student_no"], "S-001");
    assert_eq!(stored["record_type"], "school-attendance");
}

fn csv_value_error_names_row_and_column(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let columns = csv_columns(&hub, "subject");
    let mut bad_sex = subject_row("cv-2", "C702", "佐藤 陽翔");
    bad_sex.retain(|(c, _)| *c != "sex");
    bad_sex.push(("sex", "男"));
    let mut bad_bool = subject_row("cv-3", "C703", "鈴木 芽依");
    bad_bool.retain(|(c, _)| *c != "support_measure");
    bad_bool.push(("support_measure", "はい"));
    let text = csv_file(
        &columns,
        &[subject_row("cv-1", "C701", "山田 花子"), bad_sex, bad_bool],
    );
    let report = push_csv(&hub, &town, "subject", "text/csv", text.into_bytes());
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");

    let r = result_at(&report, 1);
    assert_eq!(r["row"], 3, "{r}");
    assert_rejected(&r, &[("csv_value", "/sex")]);
    assert_eq!(r["errors"][0]["row"], 3, "{r}");
    assert_eq!(r["errors"][0]["column"], "sex", "{r}");

    let r = result_at(&report, 2);
    assert_rejected(&r, &[("csv_value", "/support_measure")]);
    assert_eq!(r["errors"][0]["row"], 4, "{r}");
    assert_eq!(r["errors"][0]["column"], "support_measure", "{r}");
    hub.profile(&town, "C702").problem(404, "not_found");

    // An integer column with a decimal value.
    let columns = csv_columns(&hub, "postnatal-checkup");
    let text = csv_file(
        &columns,
        &[vec![
            ("source_record_id", "pn-1"),
            ("schema_version", "1.0"),
            ("effective_date", "2024-05-01"),
            ("subject.resident_no", "M1"),
            ("visited_on", "2024-05-01"),
            ("epds_total", "9.5"),
        ]],
    );
    let report = push_csv(
        &hub,
        &town,
        "postnatal-checkup",
        "text/csv",
        text.into_bytes(),
    );
    let r = result_at(&report, 0);
    assert_rejected(&r, &[("csv_value", "/epds_total")]);
    assert_eq!(r["errors"][0]["row"], 2, "{r}");
    assert_eq!(r["errors"][0]["column"], "epds_total", "{r}");
}

fn csv_validation_error_names_row_and_column(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let columns = csv_columns(&hub, "subject");
    let mut bad_role = subject_row("vr-2", "C802", "中村 大和");
    bad_role.retain(|(c, _)| *c != "role");
    bad_role.push(("role", "parent"));
    let mut no_name = subject_row("vr-3", "C803", "");
    no_name.retain(|(c, _)| *c != "name");
    let mut future = subject_row("vr-4", "C804", "小林 咲良");
    future.retain(|(c, _)| *c != "birth_date");
    future.push(("birth_date", "2999-01-01"));
    let text = csv_file(
        &columns,
        &[
            subject_row("vr-1", "C801", "加藤 悠真"),
            bad_role,
            no_name,
            future,
        ],
    );
    let report = push_csv(&hub, &town, "subject", "text/csv", text.into_bytes());
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["rejected"], 3, "{report}");

    let expectations = [
        (1, 3, "enum", "/role", "role"),
        (2, 4, "required", "/name", "name"),
        (3, 5, "future_date", "/birth_date", "birth_date"),
    ];
    for (index, row, code, pointer, column) in expectations {
        let r = result_at(&report, index);
        assert_eq!(r["row"], row, "{r}");
        let errors = r["errors"].as_array().expect("errors");
        let e = errors
            .iter()
            .find(|e| e["code"] == code && e["pointer"] == pointer)
            .unwrap_or_else(|| panic!("{code} at {pointer} in {r}"));
        assert_eq!(e["row"], row, "{r}");
        assert_eq!(e["column"], column, "{r}");
    }

    // Atomic CSV: nothing stored, and the located errors are in the problem's report.
    let columns_pa = csv_columns(&hub, "public-assistance");
    let text = csv_file(
        &columns_pa,
        &[
            vec![
                ("source_record_id", "pa-1"),
                ("schema_version", "1.0"),
                ("effective_date", "2024-01-01"),
                ("subject.resident_no", "G1"),
                ("started_on", "2024-01-01"),
            ],
            vec![
                ("source_record_id", "pa-2"),
                ("schema_version", "1.0"),
                ("effective_date", "2024-01-01"),
                ("subject.resident_no", "G2"),
                ("started_on", "2024-01-01"),
                ("ended_on", "2023-01-01"),
            ],
        ],
    );
    let p = hub
        .post(
            &format!("/v1/municipalities/{TOWN}/records?record_type=public-assistance&atomic=true"),
            Some(&town.token),
            Some("text/csv"),
            &[],
            text,
        )
        .problem(422, "atomic_batch_rejected");
    let e = &p["report"]["results"][0]["errors"][0];
    assert_eq!(e["code"], "field_order", "{p}");
    assert_eq!(e["row"], 3, "{p}");
    assert_eq!(e["column"], "ended_on", "{p}");
    hub.history(&town, "pa-1").problem(404, "not_found");
}

both_backends!(
    cp932_csv_of_subjects_keeps_japanese_names,
    utf8_csv_with_bom,
    csv_value_error_names_row_and_column,
    csv_validation_error_names_row_and_column,
);
