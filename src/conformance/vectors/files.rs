//! File vectors: CSV (UTF-8, BOM, CP932), NDJSON and JSON shapes, bad encodings and headers.

use super::Level;
use crate::schema::SchemaVersion;

use super::packages::transfer_packages;
use super::*;

pub(super) fn file_error(
    row: Option<u64>,
    column: Option<&str>,
    record: Option<usize>,
    pointer: &str,
    code: &str,
) -> ExpectedError {
    ExpectedError {
        row,
        column: column.map(str::to_string),
        record,
        pointer: pointer.to_string(),
        code: code.to_string(),
    }
}

fn cp932(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable, "file vectors use only CP932 characters");
    bytes.into_owned()
}

/// File-level cases (hand-written: they are about encodings and layouts, not schema rules).
pub fn generate_files(version: &SchemaVersion) -> Result<(FileVectors, Vec<VectorFile>), String> {
    const HEADER: &str = "record_type,schema_version,source_record_id,subject.resident_no,effective_date,school_year,period,absence_days\n";
    let row = |id: &str, absence: &str| {
        format!("school-attendance,1.0,{id},T-0000001,2021-04-01,2021,term1,{absence}\n")
    };
    let valid_csv = format!("{HEADER}{}{}", row("csv-0001", "3"), row("csv-0002", "0"));
    let wellbeing = "record_type,schema_version,source_record_id,subject.resident_no,effective_date,checked_on,instrument,result\n\
        school-wellbeing-check,1.0,sjis-0001,T-0000001,2021-04-01,2021-04-01,こころの健康観察（髙﨑式）,watch\n";
    let ndjson_line = |id: &str| {
        format!(
            "{{\"record_type\":\"school-attendance\",\"schema_version\":\"1.0\",\"source_record_id\":\"{id}\",\"subject\":{{\"resident_no\":\"T-0000001\"}},\"effective_date\":\"2021-04-01\",\"school_year\":2021,\"period\":\"term1\",\"absence_days\":3}}\n"
        )
    };
    let mut files: Vec<VectorFile> = Vec::new();
    let mut signatures: Vec<VectorFile> = Vec::new();
    let mut cases = Vec::new();
    let mut add = |file: &str,
                   bytes: Vec<u8>,
                   requirement: &str,
                   description: &str,
                   errors: Vec<ExpectedError>| {
        files.push((file.to_string(), bytes));
        cases.push(FileCase {
            id: format!(
                "files/{}",
                file.rsplit_once('.').map_or(file, |(stem, _)| stem)
            ),
            level: Level::Shall,
            requirement: requirement.to_string(),
            description: description.to_string(),
            file: file.to_string(),
            valid: errors.is_empty(),
            expected_errors: errors,
        });
    };
    add(
        "csv-utf8.csv",
        valid_csv.clone().into_bytes(),
        "KDL-FILE-003",
        "CSV in UTF-8",
        vec![],
    );
    add(
        "csv-utf8-bom.csv",
        [b"\xEF\xBB\xBF".as_slice(), valid_csv.as_bytes()].concat(),
        "KDL-FILE-003",
        "CSV in UTF-8 with a byte order mark",
        vec![],
    );
    add(
        "csv-cp932.csv",
        cp932(wellbeing),
        "KDL-FILE-003",
        "CSV in CP932 (Shift_JIS) with kanji variants",
        vec![],
    );
    add(
        "csv-cp932-errors.csv",
        cp932(&format!(
            "{HEADER}{}{}{}",
            row("sjis-0001", "3"),
            row("sjis-0002", "三日"),
            row("sjis-0003", "400")
        )),
        "KDL-FILE-005",
        "CP932 CSV: a cell that is not a number (row 3) and a number out of range (row 4)",
        vec![
            file_error(
                Some(3),
                Some("absence_days"),
                None,
                "/absence_days",
                "csv_value",
            ),
            file_error(
                Some(4),
                Some("absence_days"),
                None,
                "/absence_days",
                "range",
            ),
        ],
    );
    add(
        "csv-bad-encoding.csv",
        [
            HEADER.as_bytes(),
            b"school-attendance,1.0,\xFF\xFE,T-0000001\n",
        ]
        .concat(),
        "KDL-FILE-003",
        "bytes that are neither UTF-8 nor CP932",
        vec![file_error(None, None, None, "", "encoding")],
    );
    add(
        "csv-unknown-column.csv",
        format!(
            "record_type,schema_version,nickname\n{}",
            "school-attendance,1.0,x\n"
        )
        .into_bytes(),
        "KDL-FILE-004",
        "a header that is not a published column",
        vec![file_error(
            Some(1),
            Some("nickname"),
            None,
            "",
            "csv_header_unknown",
        )],
    );
    add(
        "csv-duplicate-column.csv",
        "record_type,schema_version,schema_version\nschool-attendance,1.0,1.0\n"
            .as_bytes()
            .to_vec(),
        "KDL-FILE-004",
        "a column named twice",
        vec![file_error(
            Some(1),
            Some("schema_version"),
            None,
            "",
            "csv_header_duplicate",
        )],
    );
    add(
        "csv-no-record-type.csv",
        "schema_version,source_record_id\n1.0,x\n"
            .as_bytes()
            .to_vec(),
        "KDL-FILE-004",
        "a CSV without a record_type column",
        vec![file_error(None, None, None, "", "record_type_required")],
    );
    add(
        "ndjson-valid.ndjson",
        format!("{}\n{}", ndjson_line("nd-0001"), ndjson_line("nd-0002")).into_bytes(),
        "KDL-FILE-002",
        "NDJSON with a blank line",
        vec![],
    );
    let mut lines = ndjson_line("nd-0001").into_bytes();
    lines.extend_from_slice(b"{\"record_type\": \n");
    lines.extend_from_slice(b"{\"record_type\":\"\xFF\"}\n");
    lines.extend_from_slice(
        ndjson_line("nd-0004")
            .replace(",\"absence_days\":3", "")
            .as_bytes(),
    );
    add(
        "ndjson-line-errors.ndjson",
        lines,
        "KDL-FILE-002",
        "NDJSON: bad JSON on line 2, bad UTF-8 on line 3, a record missing a field on line 4",
        vec![
            file_error(Some(2), None, None, "", "json_syntax"),
            file_error(Some(3), None, None, "", "utf8"),
            file_error(Some(4), None, None, "/absence_days", "required"),
        ],
    );
    let record = ndjson_line("js-0001");
    add(
        "json-batch.json",
        format!("{{\"records\":[{}]}}", record.trim()).into_bytes(),
        "KDL-FILE-001",
        "a JSON batch",
        vec![],
    );
    add(
        "json-array.json",
        format!("[{}]", record.trim()).into_bytes(),
        "KDL-FILE-001",
        "a JSON array of records",
        vec![],
    );
    add(
        "json-syntax.json",
        b"{\"records\": [".to_vec(),
        "KDL-FILE-001",
        "truncated JSON",
        vec![file_error(None, None, None, "", "json_syntax")],
    );
    add(
        "json-shape.json",
        b"{\"items\": []}".to_vec(),
        "KDL-FILE-001",
        "JSON that is neither a batch nor an array",
        vec![file_error(None, None, None, "", "batch_shape")],
    );
    add(
        "json-record-error.json",
        format!(
            "[{}, {}]",
            record.trim(),
            record.trim().replace("\"term1\"", "\"term4\"")
        )
        .into_bytes(),
        "KDL-REC-003",
        "the second record of a JSON array has a code outside its list",
        vec![file_error(None, None, Some(1), "/period", "enum")],
    );
    for (name, bytes, signature, requirement, description, errors) in transfer_packages(version)? {
        if let Some(signature) = signature {
            signatures.push((format!("{name}.sig"), signature));
        }
        add(&name, bytes, requirement, description, errors);
    }
    files.extend(signatures);
    Ok((
        FileVectors {
            schema_version: "1".into(),
            generated_by: GENERATED_BY.into(),
            cases,
        },
        files,
    ))
}
