//! The conformance kit's command line, run as a supplier would: real files, the real binary,
//! its exit codes and the three report files.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, describe};
use serde_json::Value;

fn kit(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("conformance")
        .args(args)
        .env_remove("KODOMO_CONFORMANCE_TOKEN")
        .output()
        .expect("run kodomo-hub conformance")
}

/// `conformance files --schema-version 1 --out OUT INPUT`.
fn check_files(out: &std::path::Path, input: &std::path::Path) -> Output {
    kit(&[
        "files",
        "--schema-version",
        "1",
        "--out",
        out.to_str().unwrap(),
        input.to_str().unwrap(),
    ])
}

fn vectors_files() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/vectors/v1/files")
}

fn copy(names: &[&str], dir: &Path) {
    for name in names {
        std::fs::copy(vectors_files().join(name), dir.join(name)).expect("copy vector file");
    }
}

fn result(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).expect("result.json"))
        .expect("result.json is JSON")
}

fn test<'a>(result: &'a Value, id: &str) -> &'a Value {
    result["tests"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("no test {id} in {result}"))
}

#[test]
fn valid_exports_in_utf8_bom_cp932_ndjson_and_json_are_conformant() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("exports");
    std::fs::create_dir(&input).unwrap();
    copy(
        &[
            "csv-utf8.csv",
            "csv-utf8-bom.csv",
            "csv-cp932.csv",
            "ndjson-valid.ndjson",
            "json-batch.json",
            "json-array.json",
        ],
        &input,
    );
    let out = dir.path().join("report");
    let run = check_files(&out, &input);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let result = result(&out);
    assert_eq!(result["verdict"], "conformant");
    assert_eq!(result["inputs"].as_array().unwrap().len(), 6);
    for input in result["inputs"].as_array().unwrap() {
        assert_eq!(input["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(test(&result, "KDL-FILE-003")["status"], "pass");
    assert_eq!(test(&result, "KDL-XFER-001")["status"], "not_applicable");
    assert_eq!(test(&result, "KDL-XFER-002")["status"], "not_applicable");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("適合") && !html.contains("不適合"));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let cases = junit.matches("<testcase ").count();
    assert_eq!(cases, result["tests"].as_array().unwrap().len());
}

#[test]
fn a_cp932_csv_with_errors_is_not_conformant_and_names_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    copy(&["csv-cp932-errors.csv"], dir.path());
    let out = dir.path().join("report");
    let file = dir.path().join("csv-cp932-errors.csv");
    let run = check_files(&out, &file);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let result = result(&out);
    assert_eq!(result["verdict"], "not_conformant");
    let cell = &test(&result, "KDL-FILE-005")["issues"][0];
    assert_eq!(cell["file"], file.to_str().unwrap());
    assert_eq!(cell["row"], 3);
    assert_eq!(cell["column"], "absence_days");
    assert_eq!(cell["code"], "csv_value");
    assert!(cell["message_ja"].as_str().unwrap().contains("セル"));
    let range = &test(&result, "KDL-REC-004")["issues"][0];
    assert_eq!(
        (range["row"].as_u64(), range["column"].as_str()),
        (Some(4), Some("absence_days"))
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("不適合"));
    assert!(
        std::fs::read_to_string(out.join("junit.xml"))
            .unwrap()
            .contains("<failure ")
    );
}

#[test]
fn reports_carry_locations_and_codes_but_no_input_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subjects.ndjson");
    // A synthetic name and a My Number-like value (check digit valid) that must not leak.
    let record = r#"{"record_type":"subject","schema_version":"1.0","source_record_id":"123456789018","subject":{"resident_no":"T-1"},"effective_date":"2021-04-01","household_no":"H-1","name":"試験用氏名甲","birth_date":"2099-01-01","sex":7,"role":"child"}"#;
    std::fs::write(&file, format!("{record}\n")).unwrap();
    let out = dir.path().join("report");
    let run = check_files(&out, &file);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let result = result(&out);
    assert_eq!(
        test(&result, "KDL-REC-011")["issues"][0]["pointer"],
        "/source_record_id"
    );
    assert_eq!(
        test(&result, "KDL-REC-006")["issues"][0]["code"],
        "future_date"
    );
    for report in ["result.json", "junit.xml", "report.html"] {
        let text = std::fs::read_to_string(out.join(report)).unwrap();
        for value in ["試験用氏名甲", "123456789018", "2099-01-01"] {
            assert!(
                !text.contains(value),
                "{report} contains the input value {value}"
            );
        }
    }
}

#[test]
fn transfer_packages_are_checked_with_their_signatures() {
    let dir = tempfile::tempdir().unwrap();
    copy(
        &[
            "transfer-valid.xml",
            "transfer-valid.xml.sig",
            "json-batch.json",
        ],
        dir.path(),
    );
    let out = dir.path().join("good");
    let run = check_files(&out, dir.path());
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let good = result(&out);
    assert_eq!(test(&good, "KDL-XFER-001")["status"], "pass");
    assert_eq!(test(&good, "KDL-XFER-002")["status"], "pass");
    let names: Vec<&str> = good["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("transfer-valid.xml.sig")),
        "the signature is an input: {names:?}"
    );

    // The same package in its JSON form (with the same detached signature) is a package too.
    let json_dir = dir.path().join("json-form");
    std::fs::create_dir(&json_dir).unwrap();
    let xml = std::fs::read(dir.path().join("transfer-valid.xml")).unwrap();
    let package = kodomo_hub::transfer::package::parse(&xml).unwrap();
    std::fs::write(
        json_dir.join("transfer-valid.json"),
        kodomo_hub::transfer::package::to_json(&package),
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("transfer-valid.xml.sig"),
        json_dir.join("transfer-valid.json.sig"),
    )
    .unwrap();
    let out = dir.path().join("json-report");
    let run = check_files(&out, &json_dir);
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let json_form = result(&out);
    assert_eq!(test(&json_form, "KDL-XFER-001")["status"], "pass");
    assert_eq!(test(&json_form, "KDL-XFER-002")["status"], "pass");
    assert_eq!(test(&json_form, "KDL-FILE-001")["status"], "not_applicable");

    // The same package with a record changed after signing, and without its signature.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    copy(
        &[
            "transfer-tampered.xml",
            "transfer-tampered.xml.sig",
            "transfer-unsigned.xml",
        ],
        &tampered,
    );
    let out = dir.path().join("bad");
    let run = check_files(&out, &tampered);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let bad = result(&out);
    let digest = &test(&bad, "KDL-XFER-001")["issues"][0];
    assert_eq!(
        (digest["code"].as_str(), digest["pointer"].as_str()),
        (Some("digest_mismatch"), Some("/manifest/1/sha256"))
    );
    assert!(
        digest["file"]
            .as_str()
            .unwrap()
            .ends_with("transfer-tampered.xml")
    );
    let unsigned = &test(&bad, "KDL-XFER-002")["issues"][0];
    assert_eq!(unsigned["code"], "signature_missing");
    assert!(
        unsigned["file"]
            .as_str()
            .unwrap()
            .ends_with("transfer-unsigned.xml")
    );
    assert_eq!(test(&bad, "KDL-FILE-001")["status"], "not_applicable");
}

#[test]
fn every_committed_vector_file_is_reported_with_its_requirement() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let run = check_files(&out, &vectors_files());
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    let result = result(&out);
    for id in [
        "KDL-FILE-001",
        "KDL-FILE-002",
        "KDL-FILE-003",
        "KDL-FILE-004",
        "KDL-FILE-005",
        "KDL-REC-001",
        "KDL-REC-003",
    ] {
        assert_eq!(test(&result, id)["status"], "fail", "{id}");
    }
    assert_eq!(test(&result, "KDL-REC-011")["status"], "pass");
}

#[test]
fn usage_errors_exit_with_3() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let cases: Vec<Vec<&str>> = vec![
        vec!["files", "--schema-version", "1"],
        vec!["files", "--schema-version", "1", missing.to_str().unwrap()],
        vec![
            "files",
            "--schema-version",
            "9",
            dir.path().to_str().unwrap(),
        ],
        vec![
            "files",
            "--schema-version",
            "1",
            dir.path().to_str().unwrap(),
        ],
        vec!["files", "--no-such-flag"],
        vec![
            "server",
            "--base-url",
            "http://127.0.0.1:9",
            "--token-env",
            "KODOMO_CONFORMANCE_TOKEN",
            "--municipality",
            "131016",
        ],
        vec!["explain", "KDL-NOPE-999"],
    ];
    for args in cases {
        let run = kit(&args);
        assert_eq!(run.status.code(), Some(3), "{args:?}: {}", describe(&run));
    }
}

#[test]
fn an_unreachable_server_is_incomplete_not_conformant() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = Command::new(BIN)
        .args([
            "conformance",
            "server",
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--token-env",
            "KH_TEST_TOKEN",
            "--municipality",
            "131016",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("KH_TEST_TOKEN", "khub_unused")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
    let result = result(&out);
    assert_eq!(test(&result, "KDL-API-001")["status"], "incomplete");
    assert_eq!(
        test(&result, "KDL-API-016")["status"],
        "not_applicable",
        "no capabilities file declares ndjson"
    );
}

#[test]
fn list_and_explain_show_ids_levels_and_requirements() {
    let list = kit(&["list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/requirements.csv"),
    )
    .unwrap();
    assert_eq!(text.lines().count(), csv.lines().count() - 1);
    assert!(text.contains("KDL-API-004") && text.contains("SHALL"));
    let explain = kit(&["explain", "KDL-API-018"]);
    assert!(explain.status.success());
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(
        text.contains("MAY") && text.contains("CP932") && text.contains("csv-cp932"),
        "{text}"
    );
}

#[test]
fn a_report_directory_that_cannot_be_written_is_a_tool_error() {
    let dir = tempfile::tempdir().unwrap();
    copy(&["json-batch.json"], dir.path());
    // --out names an existing file, so the reports cannot be written there.
    let out = dir.path().join("json-batch.json");
    let run = check_files(&out, &out);
    assert_eq!(run.status.code(), Some(4), "{}", describe(&run));
}

#[test]
fn the_printable_report_lists_the_first_issues_and_result_json_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(
        "record_type,schema_version,source_record_id,subject.resident_no,effective_date,school_year,period,absence_days\n",
    );
    for i in 0..300 {
        csv.push_str(&format!(
            "school-attendance,1.0,many-{i},T-1,2021-04-01,2021,term1,400\n"
        ));
    }
    let file = dir.path().join("many.csv");
    std::fs::write(&file, csv).unwrap();
    let out = dir.path().join("report");
    let run = check_files(&out, &file);
    assert_eq!(run.status.code(), Some(1), "{}", describe(&run));
    assert_eq!(
        test(&result(&out), "KDL-REC-004")["issues"]
            .as_array()
            .unwrap()
            .len(),
        300
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<td><code>range</code></td>").count(), 200);
    assert!(html.contains("KDL-REC-004 +100"));
}
