//! The conformance vectors against the hub's own validator and decoders, their drift from the
//! generator, the coverage of every SHALL requirement, and schema mutations the vectors catch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kodomo_hub::conformance::files::{FileKind, check_bytes};
use kodomo_hub::conformance::vectors::{self, ExpectedError, RecordVectors};
use kodomo_hub::conformance::{Level, catalog, server};
use kodomo_hub::ingest::{Ingestor, Submission};
use kodomo_hub::schema::{RecordValidator, Standard};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/vectors/v1")
}

fn submission() -> Submission {
    Submission {
        municipality: String::new(),
        source: String::new(),
        allowed_types: None,
        client_id: None,
    }
}

fn actual(ingestor: &Ingestor, record: &Value) -> BTreeSet<ExpectedError> {
    match ingestor.prepare(&submission(), 0, record) {
        Ok(_) => BTreeSet::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| ExpectedError {
                row: None,
                column: None,
                record: None,
                pointer: e.pointer,
                code: e.code,
            })
            .collect(),
    }
}

/// Ids of the cases whose outcome under `check` differs from the vector, with the difference.
fn failing(
    all: &[RecordVectors],
    check: impl Fn(&Value) -> BTreeSet<ExpectedError>,
) -> Vec<String> {
    all.iter()
        .flat_map(|file| file.cases.iter())
        .filter_map(|case| {
            let expected: BTreeSet<ExpectedError> = case.expected_errors.iter().cloned().collect();
            let got = check(&case.data);
            (got != expected || expected.is_empty() != case.valid)
                .then(|| format!("{}: expected {:?}, got {:?}", case.id, expected, got))
        })
        .collect()
}

#[test]
fn every_record_vector_passes_against_the_hubs_validator() {
    let ingestor = Ingestor::new(Arc::new(Standard::load()));
    let all = vectors::load_records(&vectors_dir()).expect("committed vectors");
    let count: usize = all.iter().map(|f| f.cases.len()).sum();
    assert!(count > 1000, "only {count} record vectors");
    let failures = failing(&all, |record| actual(&ingestor, record));
    assert!(
        failures.is_empty(),
        "{} of {count} vectors fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
