//! Identity resolution (名寄せ, SPEC §5) end to end: CP932 files from a resident register and a
//! school system, imported with the `import` command, resolved inside the import, reviewed by a
//! person through the API, and taught by the review (remembered student numbers) and by the
//! council's 外字 table.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Backend, Hub, TOWN, Town, describe};
use serde_json::{Value, json};

const ACTOR: &str = "staff-007";

/// CP932 (Windows-31J) bytes of `text`. encoding_rs encodes the WHATWG Shift_JIS repertoire;
/// the user-defined area (外字, U+E000–U+E757 ↔ F040–F9FC) is decoded by it but not encoded, so
/// those characters are written by hand, as a vendor's CP932 export would.
fn cp932(text: &str) -> Vec<u8> {
    fn flush(plain: &mut String, out: &mut Vec<u8>) {
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(plain);
        assert!(!unmappable, "{plain:?} is not CP932");
        out.extend_from_slice(&bytes);
        plain.clear();
    }
    let mut out = Vec::new();
    let mut plain = String::new();
    for c in text.chars() {
        let code = u32::from(c);
        if (0xE000..=0xE757).contains(&code) {
            flush(&mut plain, &mut out);
            let pointer = 8836 + (code - 0xE000);
            let (lead, trail) = (pointer / 188, pointer % 188);
            out.push((lead + if lead < 0x1F { 0x81 } else { 0xC1 }) as u8);
            out.push((trail + if trail < 0x3F { 0x40 } else { 0x41 }) as u8);
        } else {
            plain.push(c);
        }
    }
    flush(&mut plain, &mut out);
    let (back, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(&out);
    assert!(!had_errors && back == text, "CP932 round trip of {text:?}");
    assert!(
        std::str::from_utf8(&out).is_err(),
        "the file must really be CP932, not UTF-8"
    );
    out
}

/// A CSV text (CRLF line ends, as Windows tools write) of a header and rows.
fn csv_text<T: AsRef<[u8]> + std::fmt::Debug>(header: &[&str], rows: &[Vec<T>]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(header).expect("header");
    for row in rows {
        assert_eq!(row.len(), header.len(), "row {row:?}");
        writer.write_record(row).expect("row");
    }
    String::from_utf8(writer.into_inner().expect("csv")).expect("utf-8")
}

fn write_cp932(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, cp932(text)).expect("write file");
    path
}

const SUBJECT_COLUMNS: [&str; 12] = [
    "record_type",
    "schema_version",
    "source_record_id",
    "subject.resident_no",
    "effective_date",
    "household_no",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "address",
    "role",
];

/// The resident register (住基): dates in 和暦, variant kanji, a full-width space, half-width
/// kana, two children with the same name and birthday.
fn register_csv() -> String {
    let row = |no: &str, name: &str, kana: &str, birth: &str, sex: &str, address: &str| {
        [
            "subject",
            "1.0",
            &format!("juki-{no}"),
            no,
            "R07.04.01",
            no,
            name,
            kana,
            birth,
            sex,
            address,
            "child",
        ]
        .map(str::to_string)
        .to_vec()
    };
    csv_text(
        &SUBJECT_COLUMNS,
        &[
            row(
                "1001",
                "髙橋　蓮",
                "タカハシ　レン",
                "平成27年5月1日",
                "1",
                "本町1丁目2番3号",
            ),
            row(
                "1002",
                "山﨑 陽葵",
                "ﾔﾏｻﾞｷ ﾋﾏﾘ",
                "令和元年5月1日",
                "2",
                "栄町2丁目3番4号",
            ),
            row(
                "1003",
                "佐藤 凛",
                "サトウ リン",
                "H31.4.30",
                "2",
                "旭町1丁目1番1号",
            ),
            row(
                "1004",
                "佐藤 凛",
                "サトウ リン",
                "平成31年4月30日",
                "2",
                "西町4丁目5番6号",
            ),
            row(
                "1005",
                "田中 陽翔",
                "タナカ ハルト",
                "H28.7.7",
                "1",
                "中央3丁目3番3号",
            ),
            row(
                "1006",
                "髙田 湊",
                "タカダ ミナト",
                "R02.01.15",
                "1",
                "東町1丁目1番1号",
            ),
            row(
                "1007",
                "髙木 紬",
                "タカギ ツムギ",
                "R03.03.03",
                "2",
                "東町2丁目2番2号",
            ),
            row(
                "1008",
                "伊藤 結菜",
                "イトウ ユイナ",
                "H30.8.8",
                "2",
                "緑町3丁目1番1号",
            ),
        ],
    )
}

const SCHOOL_COLUMNS: [&str; 12] = [
    "record_type",
    "schema_version",
    "source_record_id",
    "subject.basic_info.name",
    "subject.basic_info.name_kana",
    "subject.basic_info.birth_date",
    "subject.basic_info.sex",
    "subject.basic_info.address",
    "subject.local_ids.student_no",
    "effective_date",
    "examined_on",
    "weight_kg",
];

/// A school-health-exam row of the school system (校務支援): basic info only, no resident no.
fn school_row<'a>(
    id: &'a str,
    name: &'a str,
    kana: &'a str,
    birth: &'a str,
    sex: &'a str,
    address: &'a str,
    student_no: &'a str,
) -> Vec<&'a str> {
    vec![
        "school-health-exam",
        "1.0",
        id,
        name,
        kana,
        birth,
        sex,
        address,
        student_no,
        "R07.04.20",
        "令和7年4月20日",
        "24.5",
    ]
}

fn school_csv_first() -> String {
    csv_text(
        &SCHOOL_COLUMNS,
        &[
            // Variant kanji, half-width kana and address notation: the same child as 1001.
            school_row(
                "koumu-A",
                "高橋 蓮",
                "ﾀｶﾊｼ ﾚﾝ",
                "H27.5.1",
                "1",
                "本町１－２－３",
                "S-A",
            ),
            // 﨑/崎, full-width spaces, full-width kana against the register's half-width: 1002.
            school_row(
                "koumu-B",
                "山崎　陽葵",
                "ヤマザキ　ヒマリ",
                "令和元年5月1日",
                "2",
                "",
                "S-B",
            ),
            // Two register children agree on everything the school knows: a person decides.
            school_row("koumu-C", "佐藤　凛", "", "平成31年4月30日", "2", "", "S-C"),
            // One kana character differs from 1005: near match, a person decides.
            school_row(
                "koumu-D",
                "田中 陽翔",
                "タナカ ハルオ",
                "H28.7.7",
                "1",
                "中央3-3-3",
                "S-D",
            ),
            // The school's vendor 外字 for 髙 (U+E001), not yet in the council table: 1006.
            school_row("koumu-E", "\u{E001}田 湊", "", "R02.01.15", "1", "", "S-E"),
            // The family moved: only the address differs from 1008.
            school_row(
                "koumu-G",
                "伊藤 結菜",
                "イトウ ユイナ",
                "H30.8.8",
                "2",
                "西町5丁目5番5号",
                "S-G",
            ),
            // A child the register does not know (yet).
            school_row(
                "koumu-P",
                "森 大和",
                "モリ ヤマト",
                "H29.2.2",
                "1",
                "南台1-1-1",
                "S-P",
            ),
            // 平成31年5月1日 does not exist (令和 began that day): a bad row.
            school_row("koumu-X", "山本 花", "", "H31.5.1", "2", "", "S-X"),
        ],
    )
}

fn school_csv_second() -> String {
    csv_text(
        &SCHOOL_COLUMNS,
        &[
            // The same child as koumu-C, whose link a person confirmed: the student number is
            // remembered.
            school_row("koumu-C2", "佐藤 凛", "", "H31.4.30", "2", "", "S-C"),
            // The mapped 外字 now resolves at once: 1007.
            school_row("koumu-F", "\u{E001}木 紬", "", "R03.03.03", "2", "", "S-F"),
            // The rejected record's student number teaches nothing: review again.
            school_row(
                "koumu-D2",
                "田中 陽翔",
                "タナカ ハルオ",
                "H28.7.7",
                "1",
                "",
                "S-D",
            ),
        ],
    )
}

fn import(hub: &Hub, source: &str, file: &Path, encoding: Option<&str>) -> String {
    let file = file.to_string_lossy().to_string();
    let mut args = vec!["import", "--municipality", TOWN, "--source", source];
    if let Some(encoding) = encoding {
        args.extend(["--encoding", encoding]);
    }
    args.push(&file);
    let out = hub.cli(&args);
    assert!(out.status.success(), "import {file}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Queue items of the town with this status, through the caseworker API.
fn queue(hub: &Hub, town: &Town, status: &str) -> Vec<Value> {
    let answer = hub
        .get(
            &format!(
                "/v1/municipalities/{}/identity-reviews?status={status}",
                town.code
            ),
            Some(&town.token),
        )
        .ok();
    assert_eq!(answer["status"], status, "{answer}");
    answer["items"].as_array().expect("items").clone()
}

fn item<'a>(items: &'a [Value], source_record_id: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["source_record_id"] == source_record_id)
        .unwrap_or_else(|| panic!("{source_record_id} not in {items:#?}"))
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i["source_record_id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// `(resident_no, differing_fields)` of an item's candidates, sorted.
fn candidates(item: &Value) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = item["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("candidates in {item}"))
        .iter()
        .map(|c| {
            (
                c["resident_no"].as_str().expect("resident_no").to_string(),
                c["differing_fields"]
                    .as_array()
                    .expect("differing_fields")
                    .iter()
                    .map(|f| f.as_str().expect("field").to_string())
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The ids of the school records in a subject's profile.
fn linked_records(hub: &Hub, town: &Town, resident_no: &str) -> Vec<String> {
    let profile = hub.profile(town, resident_no).ok();
    let mut ids: Vec<String> = profile["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["source_record_id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

fn profile_record(hub: &Hub, town: &Town, resident_no: &str, id: &str) -> Value {
    let profile = hub.profile(town, resident_no).ok();
    profile["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["source_record_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the profile of {resident_no}: {profile}"))["record"]
        .clone()
}

fn decide(hub: &Hub, town: &Town, id: &Value, verdict: &str, body: Option<Value>) -> common::Resp {
    hub.post(
        &format!(
            "/v1/municipalities/{}/identity-reviews/{id}/{verdict}",
            town.code
        ),
        Some(&town.token),
        Some("application/json"),
        &[("X-Actor", ACTOR)],
        body.map(|b| b.to_string()).unwrap_or_default(),
    )
}

fn cp932_files_resolve_link_review_and_learn(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let dir = hub.data_dir().to_path_buf();

    // The register first (encoding detected), then the school's file (encoding named).
    let register = write_cp932(&dir, "juki.csv", &register_csv());
    let out = import(&hub, "juki", &register, None);
    assert!(out.contains("8 records, 8 created"), "{out}");
    let school = write_cp932(&dir, "koumu-2025.csv", &school_csv_first());
    let out = import(&hub, "koumu", &school, Some("cp932"));
    assert!(
        out.contains("8 records, 7 created, 0 updated, 0 unchanged, 1 rejected"),
        "{out}"
    );

    // The bad row is in the error file with its row, column and code; nothing else is.
    let errors = std::fs::read_to_string(dir.join("koumu-2025.csv.errors.csv")).expect("errors");
    let mut reader = csv::Reader::from_reader(errors.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, ["row", "column", "pointer", "code", "message"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 1, "{errors}");
    assert_eq!(&rows[0][0], "9", "{errors}");
    assert_eq!(&rows[0][1], "subject.basic_info.birth_date", "{errors}");
    assert_eq!(&rows[0][2], "/subject/basic_info/birth_date", "{errors}");
    assert_eq!(&rows[0][3], "date_format", "{errors}");
    assert!(rows[0][4].contains("H31.5.1"), "{errors}");
    let summary: Value = serde_json::from_slice(
        &std::fs::read(dir.join("koumu-2025.csv.summary.json")).expect("summary"),
    )
    .expect("summary JSON");
    assert_eq!(summary["records"], 8, "{summary}");
    assert_eq!(summary["created"], 7, "{summary}");
    assert_eq!(summary["rejected"], 1, "{summary}");

    // Exact after normalisation: linked, visible in the child's profile, original untouched
    // (only the 和暦 dates were read as ISO dates by the CSV reader).
    assert_eq!(linked_records(&hub, &town, "1001"), ["koumu-A"]);
    assert_eq!(linked_records(&hub, &town, "1002"), ["koumu-B"]);
    let a = profile_record(&hub, &town, "1001", "koumu-A");
    assert_eq!(
        a["subject"]["basic_info"],
        json!({"name": "高橋 蓮", "name_kana": "ﾀｶﾊｼ ﾚﾝ", "birth_date": "2015-05-01",
               "sex": 1, "address": "本町１－２－３"}),
        "{a}"
    );
    assert_eq!(a["effective_date"], "2025-04-20");
    assert_eq!(a["examined_on"], "2025-04-20");
    let b = profile_record(&hub, &town, "1002", "koumu-B");
    assert_eq!(b["subject"]["basic_info"]["name"], "山崎\u{3000}陽葵");
    assert_eq!(b["subject"]["basic_info"]["birth_date"], "2019-05-01");
    let register_1002 = hub.profile(&town, "1002").ok();
    assert_eq!(register_1002["subject"]["name"], "山﨑 陽葵");
    assert_eq!(register_1002["subject"]["birth_date"], "2019-05-01");
    let register_1003 = hub.profile(&town, "1003").ok();
    assert_eq!(register_1003["subject"]["birth_date"], "2019-04-30");
    for nobody_yet in ["1003", "1004", "1005", "1006", "1007", "1008"] {
        assert!(
            linked_records(&hub, &town, nobody_yet).is_empty(),
            "{nobody_yet} has nothing linked yet"
        );
    }

    // The ambiguous ones wait for a person, with their candidates and what differs.
    let review = queue(&hub, &town, "review");
    assert_eq!(
        ids(&review),
        ["koumu-C", "koumu-D", "koumu-E", "koumu-G"],
        "{review:#?}"
    );
    let c = item(&review, "koumu-C");
    assert_eq!(
        candidates(c),
        [("1003".to_string(), vec![]), ("1004".to_string(), vec![])],
        "{c}"
    );
    assert!(
        c["reason"].as_str().expect("reason").contains("2 subjects"),
        "{c}"
    );
    assert_eq!(c["basic_info"]["name"], "佐藤\u{3000}凛", "{c}");
    assert_eq!(c["birth_date"], "2019-04-30", "{c}");
    assert!(c["resident_no"].is_null(), "{c}");
    assert_eq!(
        candidates(item(&review, "koumu-D")),
        [("1005".to_string(), vec!["name_kana".to_string()])]
    );
    assert_eq!(
        candidates(item(&review, "koumu-G")),
        [("1008".to_string(), vec!["address".to_string()])]
    );
    // The unmapped 外字 cannot be compared at all: a person (or the council's table) decides.
    let e = item(&review, "koumu-E");
    let reason = e["reason"].as_str().expect("reason");
    assert!(reason.contains("U+E001"), "{e}");
    assert!(reason.contains("外字"), "{e}");
    assert_eq!(
        e["basic_info"]["name"], "\u{E001}田 湊",
        "the original is kept: {e}"
    );
    assert!(candidates(e).is_empty(), "{e}");

    // The CLI shows the same queue.
    let out = hub.cli(&["review", "list", "--municipality", TOWN]);
    assert!(out.status.success(), "{}", describe(&out));
    let listing = String::from_utf8_lossy(&out.stdout);
    let line = |id: &str| {
        listing
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{listing}"))
            .to_string()
    };
    assert!(
        line("koumu-C").contains("1003 (all agree)")
            && line("koumu-C").contains("1004 (all agree)"),
        "{listing}"
    );
    assert!(
        line("koumu-D").contains("1005 (differs: name_kana)"),
        "{listing}"
    );
    assert!(line("koumu-E").contains("U+E001"), "{listing}");

    let pending = queue(&hub, &town, "pending");
    assert_eq!(ids(&pending), ["koumu-P"]);
    assert_eq!(ids(&queue(&hub, &town, "linked")), ["koumu-A", "koumu-B"]);
    assert!(queue(&hub, &town, "rejected").is_empty());

    // Nothing is lost: every good row is a stored record with one version, and every one has
    // exactly one resolution state.
    for id in [
        "koumu-A", "koumu-B", "koumu-C", "koumu-D", "koumu-E", "koumu-G", "koumu-P",
    ] {
        let history = hub.history(&town, id).ok();
        assert_eq!(
            history["versions"].as_array().map(Vec::len),
            Some(1),
            "{id}: {history}"
        );
    }
    assert_eq!(hub.history(&town, "koumu-X").status, 404);

    // The council's 外字 table arrives: the record waiting on U+E001 is linked.
    let table = dir.join("gaiji.csv");
    std::fs::write(&table, "code_point,standard,note\nU+E001,髙,はしご高\n").expect("table");
    let out = hub.cli(&[
        "admin",
        "gaiji",
        "import",
        &table.to_string_lossy(),
        "--municipality",
        TOWN,
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(linked_records(&hub, &town, "1006"), ["koumu-E"]);
    let review = queue(&hub, &town, "review");
    assert_eq!(ids(&review), ["koumu-C", "koumu-D", "koumu-G"]);
    let linked = queue(&hub, &town, "linked");
    assert_eq!(item(&linked, "koumu-E")["resident_no"], "1006");

    // Decisions need the staff member's name.
    let c_id = item(&review, "koumu-C")["id"].clone();
    let d_id = item(&review, "koumu-D")["id"].clone();
    let anonymous = hub.post(
        &format!(
            "/v1/municipalities/{}/identity-reviews/{c_id}/confirm",
            town.code
        ),
        Some(&town.token),
        Some("application/json"),
        &[],
        json!({"resident_no": "1003"}).to_string(),
    );
    anonymous.problem(400, "actor_required");
    assert!(linked_records(&hub, &town, "1003").is_empty());

    // A person confirms koumu-C is 1003: linked there, not to the other 佐藤 凛.
    let confirmed = decide(
        &hub,
        &town,
        &c_id,
        "confirm",
        Some(json!({"resident_no": "1003"})),
    )
    .ok();
    assert_eq!(confirmed["status"], "linked", "{confirmed}");
    assert_eq!(confirmed["resident_no"], "1003", "{confirmed}");
    assert_eq!(confirmed["resolved_by"], ACTOR, "{confirmed}");
    assert_eq!(linked_records(&hub, &town, "1003"), ["koumu-C"]);
    assert!(linked_records(&hub, &town, "1004").is_empty());

    // A person rejects koumu-D: stored, unlinked, out of the review list.
    let rejected = decide(&hub, &town, &d_id, "reject", None).ok();
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert!(rejected["resident_no"].is_null(), "{rejected}");
    assert!(linked_records(&hub, &town, "1005").is_empty());
    assert_eq!(
        hub.history(&town, "koumu-D").ok()["versions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(ids(&queue(&hub, &town, "rejected")), ["koumu-D"]);
    assert_eq!(ids(&queue(&hub, &town, "review")), ["koumu-G"]);
    // Deciding otherwise afterwards is a conflict; the same decision again is harmless.
    decide(
        &hub,
        &town,
        &d_id,
        "confirm",
        Some(json!({"resident_no": "1005"})),
    )
    .problem(409, "conflict");
    assert_eq!(decide(&hub, &town, &d_id, "reject", None).status, 200);

    // The next file: the confirmed student number links at once, the mapped 外字 links, and
    // the rejected record's student number links nothing.
    let second = write_cp932(&dir, "koumu-2025-2.csv", &school_csv_second());
    let out = import(&hub, "koumu", &second, Some("cp932"));
    assert!(out.contains("3 records, 3 created"), "{out}");
    assert_eq!(linked_records(&hub, &town, "1003"), ["koumu-C", "koumu-C2"]);
    assert!(linked_records(&hub, &town, "1004").is_empty());
    let linked = queue(&hub, &town, "linked");
    let c2 = item(&linked, "koumu-C2");
    assert_eq!(c2["resident_no"], "1003", "{c2}");
    let reason = c2["reason"].as_str().expect("reason");
    assert!(
        reason.contains("remembered") && reason.contains("S-C"),
        "the link names the remembered student number: {c2}"
    );
    assert_eq!(linked_records(&hub, &town, "1007"), ["koumu-F"]);
    assert_eq!(item(&linked, "koumu-F")["reason"], "exact match");
    assert_eq!(ids(&queue(&hub, &town, "review")), ["koumu-D2", "koumu-G"]);
    assert!(linked_records(&hub, &town, "1005").is_empty());

    // Every stored school record has exactly one resolution state.
    let mut all: Vec<String> = ["review", "pending", "linked", "rejected"]
        .iter()
        .flat_map(|s| ids(&queue(&hub, &town, s)))
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            "koumu-A", "koumu-B", "koumu-C", "koumu-C2", "koumu-D", "koumu-D2", "koumu-E",
            "koumu-F", "koumu-G", "koumu-P"
        ]
    );

    // The decisions are in the audit trail: the auditor sees the confirmation about 1003, and
    // the log holds the rejection and the table import with who did them.
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    let trail = hub.get("/v1/audit?subject=1003", Some(&auditor)).ok();
    let confirm_entry = trail["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "identity.confirm")
        .unwrap_or_else(|| panic!("no identity.confirm about 1003: {trail}"))
        .clone();
    assert_eq!(confirm_entry["actor"], ACTOR, "{confirm_entry}");
    assert_eq!(confirm_entry["result"], "ok", "{confirm_entry}");
    let rows = hub.raw_db().audit_rows();
    let reject_entry = rows
        .iter()
        .find(|r| r.action == "identity.reject")
        .expect("identity.reject in the audit log");
    assert_eq!(reject_entry.actor.as_deref(), Some(ACTOR));
    assert_eq!(reject_entry.municipality_code, TOWN);
    assert!(
        reject_entry
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&d_id.to_string())),
        "{reject_entry:?}"
    );
    assert!(rows.iter().any(|r| r.action == "admin.gaiji.import"));
    // The anonymous attempt changed nothing and the chain is intact.
    let out = hub.cli(&["audit", "verify"]);
    assert!(out.status.success(), "{}", describe(&out));
}

/// A school record that went to review as a near match of one child (only the name differs:
/// the school file has no kana and no address) must be looked at again when the register entry
/// of the child it is really about arrives — as pending records are. Otherwise it stays in
/// review with a stale candidate list that does not even name the exact match.
fn late_register_entry_resolves_a_near_match_waiting_in_review(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let subject = |no: &str, name: &str| {
        let mut s = common::subject(&format!("juki-{no}"), no, name);
        s["name_kana"] = json!("カナ");
        s["birth_date"] = json!("2018-06-01");
        s["sex"] = json!(2);
        s
    };
    let report = hub.push(&town, &[subject("2001", "中村 芽依")]);
    assert_eq!(report["created"], 1, "{report}");
    let school = json!({
        "record_type": "school-health-exam", "schema_version": "1.0",
        "source_record_id": "koumu-L", "effective_date": "2025-04-20",
        "examined_on": "2025-04-20", "weight_kg": 20.5,
        "subject": {"basic_info": {"name": "佐藤 紬", "birth_date": "2018-06-01", "sex": 2},
                    "local_ids": {"student_no": "S-L"}},
    });
    assert_eq!(hub.push(&town, &[school])["created"], 1);
    // Nobody is 佐藤 紬 yet: the record waits (pending, or in review beside 中村 芽依).
    assert!(linked_records(&hub, &town, "2001").is_empty());

    // 佐藤 紬 moves in: the only exact match.
    let report = hub.push(&town, &[subject("2002", "佐藤 紬")]);
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        linked_records(&hub, &town, "2002"),
        ["koumu-L"],
        "review: {:#?}",
        queue(&hub, &town, "review")
    );
}

/// A remembered student number links at once — but not when the record now contradicts the
/// child it points to (a recycled number): that goes to a person.
fn remembered_id_that_contradicts_goes_to_review(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town("131016");
    let subject = |id: &str, resident: &str, name: &str, birth: &str, sex: i64| {
        serde_json::json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": id,
            "subject": {"resident_no": resident}, "effective_date": birth,
            "household_no": "H1", "name": name, "birth_date": birth, "sex": sex, "role": "child",
        })
    };
    let school = |id: &str, name: &str, birth: &str, sex: i64| {
        serde_json::json!({
            "record_type": "school-wellbeing-check", "schema_version": "1.0",
            "source_record_id": id, "effective_date": "2025-06-01",
            "subject": {"basic_info": {"name": name, "birth_date": birth, "sex": sex},
                        "local_ids": {"student_no": "S-77"}},
            "checked_on": "2025-06-01", "instrument": "check", "result": "watch",
        })
    };
    hub.push(
        &town,
        &[
            subject("s1", "A-1", "青木 蓮", "2015-04-01", 1),
            subject("s2", "B-2", "石井 凛", "2016-09-09", 2),
        ],
    );
    // Exact match: linked, and S-77 is remembered for A-1.
    hub.push(&town, &[school("w1", "青木 蓮", "2015-04-01", 1)]);
    assert_eq!(linked_records(&hub, &town, "A-1"), vec!["w1".to_string()]);
    // The same number now arrives with another child's birth date and sex.
    hub.push(&town, &[school("w2", "石井 凛", "2016-09-09", 2)]);
    let review = queue(&hub, &town, "review");
    let w2 = item(&review, "w2");
    assert!(
        w2["reason"].as_str().is_some_and(|r| r.contains("A-1")),
        "{w2}"
    );
    assert_eq!(linked_records(&hub, &town, "A-1"), vec!["w1".to_string()]);
}

both_backends!(
    cp932_files_resolve_link_review_and_learn,
    late_register_entry_resolves_a_near_match_waiting_in_review,
    remembered_id_that_contradicts_goes_to_review,
);
