//! The linkage standard: the JSON Schema files under `schema/` are the single source of truth.
//! Validation, CSV layouts, applicability rules and served schemas all derive from them.

pub mod applicability;
pub mod csv_layout;
pub mod dictionary;
pub mod purposes;
pub mod rules;
pub mod strict_json;
pub mod validate;

use std::collections::BTreeMap;

use serde_json::Value;

pub use applicability::{ApplicableItem, RuleSet};
pub use csv_layout::CsvLayout;
pub use validate::{FieldError, RecordValidator};

include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// Base URI of every schema `$id`.
pub const SCHEMA_BASE: &str = "https://kodomo-hub.jp/schema/";
/// The record type whose records describe people (subjects) rather than facts about them.
pub const SUBJECT_TYPE: &str = "subject";

/// One major version of the standard, loaded from the embedded files.
pub struct SchemaVersion {
    pub major: u32,
    /// Highest minor version this hub understands (records may carry any minor up to it).
    pub minor: u32,
    /// Record type name → schema document.
    pub records: BTreeMap<String, Value>,
    /// Shared definitions (`common.json`).
    pub common: Value,
    pub validator: RecordValidator,
    pub csv: BTreeMap<String, CsvLayout>,
    pub applicability: RuleSet,
    /// Purposes a caller may declare on personal reads.
    pub purposes: Vec<purposes::Purpose>,
}

impl SchemaVersion {
    pub fn record_types(&self) -> impl Iterator<Item = &str> {
        self.records.keys().map(String::as_str)
    }

    /// Is `version` (e.g. "1.0") a version this hub accepts?
    pub fn accepts(&self, version: &str) -> bool {
        let mut parts = version.splitn(2, '.');
        let major = parts.next().and_then(|m| m.parse::<u32>().ok());
        let minor = parts.next().and_then(|m| m.parse::<u32>().ok());
        matches!((major, minor), (Some(ma), Some(mi)) if ma == self.major && mi <= self.minor)
    }

    /// Raw file contents under this version (e.g. `records/subject.json`).
    pub fn file(&self, relative: &str) -> Option<&'static str> {
        let wanted = format!("v{}/{relative}", self.major);
        SCHEMA_FILES
            .iter()
            .find(|(path, _)| *path == wanted)
            .map(|(_, text)| *text)
    }
}

/// Every supported major version of the standard.
pub struct Standard {
    pub versions: Vec<SchemaVersion>,
}

impl Standard {
    /// Load and compile the embedded schema files. Panics only if the build embedded broken
    /// schema files, which the test suite catches.
    pub fn load() -> Standard {
        let mut majors: BTreeMap<u32, BTreeMap<String, Value>> = BTreeMap::new();
        for (path, text) in SCHEMA_FILES {
            let (major, rest) = path.split_once('/').expect("schema files live in vN/");
            let major: u32 = major.trim_start_matches('v').parse().expect("vN directory");
            let doc: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("schema/{path} is not valid JSON: {e}"));
            majors
                .entry(major)
                .or_default()
                .insert(rest.to_string(), doc);
        }
        let versions = majors
            .into_iter()
            .map(|(major, files)| SchemaVersion::compile(major, files))
            .collect();
        Standard { versions }
    }

    pub fn latest(&self) -> &SchemaVersion {
        self.versions.last().expect("at least one schema version")
    }

    /// The version that accepts `schema_version` (e.g. "1.0"), if any.
    pub fn for_version(&self, schema_version: &str) -> Option<&SchemaVersion> {
        self.versions.iter().find(|v| v.accepts(schema_version))
    }

    pub fn major(&self, major: u32) -> Option<&SchemaVersion> {
        self.versions.iter().find(|v| v.major == major)
    }
}

impl SchemaVersion {
    fn compile(major: u32, files: BTreeMap<String, Value>) -> SchemaVersion {
        let common = files
            .get("common.json")
            .cloned()
            .expect("common.json in every version");
        let records: BTreeMap<String, Value> = files
            .iter()
            .filter_map(|(path, doc)| {
                let name = path.strip_prefix("records/")?.strip_suffix(".json")?;
                Some((name.to_string(), doc.clone()))
            })
            .collect();
        let minor = common
            .pointer("/$defs/envelope/properties/schema_version/x-current")
            .and_then(Value::as_str)
            .and_then(|v| v.split_once('.'))
            .and_then(|(_, minor)| minor.parse().ok())
            .unwrap_or(0);
        let validator = RecordValidator::compile(&common, &records);
        let csv = records
            .iter()
            .map(|(name, doc)| (name.clone(), CsvLayout::derive(doc, &common)))
            .collect();
        let applicability = files
            .get("applicability.json")
            .map(RuleSet::from_json)
            .unwrap_or_default();
        let purposes = files
            .get("access-purposes.json")
            .map(purposes::from_json)
            .unwrap_or_default();
        SchemaVersion {
            purposes,
            major,
            minor,
            records,
            common,
            validator,
            csv,
            applicability,
        }
    }
}

/// Resolve a `$ref` of this project's absolute form against the loaded documents.
pub(crate) fn resolve_ref<'a>(reference: &str, common: &'a Value) -> Option<&'a Value> {
    let (_, fragment) = reference.split_once('#')?;
    common.pointer(fragment)
}
