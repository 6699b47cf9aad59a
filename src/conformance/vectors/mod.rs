//! Test vectors derived mechanically from the schemas (the single source of truth), in the
//! spirit of the JSON Schema Test Suite: for every record type, valid minimal and maximal
//! records, every constraint violated once, and boundary values; plus file-level cases (CSV in
//! UTF-8, UTF-8 with BOM and CP932, bad encodings and headers, NDJSON line errors, JSON shapes).
//!
//! The expected errors are predicted from what each schema keyword means, not by running the
//! hub's validator, so the self-test that runs the vectors against the validator checks it. A
//! schema keyword the generator does not know is an error: no rule can be added unnoticed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Level;
use crate::schema::SchemaVersion;

use self::rules::{RecordRules, strings};

mod files;
mod packages;
mod records;
mod rules;

pub use files::generate_files;
pub use records::generate_records;

/// The index of the file cases, beside the record vectors (their data lives in `files/`).
pub const FILES_INDEX: &str = "files.json";

pub const GENERATED_BY: &str = "kodomo-hub conformance generate-vectors";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedError {
    /// CSV row or NDJSON line (file cases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Position of the record in a JSON file (file cases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    pub pointer: String,
    pub code: String,
}

impl ExpectedError {
    fn at(pointer: &str, code: &str) -> ExpectedError {
        ExpectedError {
            row: None,
            column: None,
            record: None,
            pointer: pointer.to_string(),
            code: code.to_string(),
        }
    }
}

/// One record case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub level: Level,
    pub requirement: String,
    pub description: String,
    pub data: Value,
    pub valid: bool,
    pub expected_errors: Vec<ExpectedError>,
}

/// The cases of one record type (`conformance/vectors/v<N>/<record-type>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordVectors {
    pub schema_version: String,
    pub record_type: String,
    pub schema: String,
    pub generated_by: String,
    pub cases: Vec<Case>,
}

/// One file case (`conformance/vectors/v<N>/files.json`); `file` is under `files/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileCase {
    pub id: String,
    pub level: Level,
    pub requirement: String,
    pub description: String,
    pub file: String,
    pub valid: bool,
    pub expected_errors: Vec<ExpectedError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileVectors {
    pub schema_version: String,
    pub generated_by: String,
    pub cases: Vec<FileCase>,
}

/// A file of the vectors directory: its path relative to `v<N>/` and its bytes.
pub type VectorFile = (String, Vec<u8>);

/// Dates of generated records: all equal, so every ordered pair of fields holds at equality.
const BASE_DATE: &str = "2021-04-01";
const EARLY_DATE: &str = "2000-01-01";
/// A synthetic value that passes the My Number check digit (never a real person's number).
const MY_NUMBER_LIKE: &str = "123456789018";
/// The same My Number disguised as people and systems write it (issue 14, finding 5): name,
/// text, and how it is written.
const MY_NUMBER_DISGUISES: [(&str, &str, &str); 7] = [
    (
        "full-width",
        "１２３４５６７８９０１８",
        "in full-width digits",
    ),
    ("dots", "1234.5678.9018", "with dots between the groups"),
    (
        "zwj",
        "1234\u{200D}5678\u{200D}9018",
        "with zero-width joiners between the groups",
    ),
    (
        "nbsp",
        "1234\u{00A0}5678\u{00A0}9018",
        "with no-break spaces between the groups",
    ),
    ("prefix", "MN:123456789018", "after a label (MN:)"),
    (
        "choon-dash",
        "1234ー5678ー9018",
        "with the prolonged sound mark ー as a dash",
    ),
    (
        "in-sentence",
        "個人番号は１２３４－５６７８－９０１８です",
        "inside a Japanese sentence",
    ),
];

fn pretty(value: &impl Serialize) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).expect("vectors serialise");
    text.push('\n');
    text.into_bytes()
}

/// Every file of `conformance/vectors/v<N>/` as (relative path, bytes).
pub fn generate_all(version: &SchemaVersion) -> Result<Vec<VectorFile>, String> {
    let mut out = Vec::new();
    for vectors in generate_records(version)? {
        out.push((format!("{}.json", vectors.record_type), pretty(&vectors)));
    }
    let (index, files) = generate_files(version)?;
    out.push((FILES_INDEX.into(), pretty(&index)));
    out.extend(
        files
            .into_iter()
            .map(|(name, bytes)| (format!("files/{name}"), bytes)),
    );
    Ok(out)
}

/// Write the vectors of `version` under `dir` (`conformance/vectors/v<N>`), replacing it.
pub fn write_all(version: &SchemaVersion, dir: &Path) -> Result<usize, String> {
    let files = generate_all(version)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
    }
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("inside dir")).map_err(|e| e.to_string())?;
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files.len())
}

/// The committed record vectors under `dir`.
pub fn load_records(dir: &Path) -> Result<Vec<RecordVectors>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.ends_with(FILES_INDEX))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

pub fn load_files(dir: &Path) -> Result<FileVectors, String> {
    let path = dir.join(FILES_INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A valid record of `record_type` with only its required fields (the minimal vector).
pub fn sample_record(version: &SchemaVersion, record_type: &str) -> Result<Value, String> {
    let schema = version
        .records
        .get(record_type)
        .ok_or(format!("unknown record type {record_type}"))?;
    RecordRules::new(record_type, schema, &version.common)?.record(false)
}

/// The fields `record_type` itself requires (beyond the envelope), in schema order.
pub fn own_required_fields(version: &SchemaVersion, record_type: &str) -> Vec<String> {
    version
        .records
        .get(record_type)
        .map(|schema| strings(schema.get("required")))
        .unwrap_or_default()
}
