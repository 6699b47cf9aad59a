//! The conformance vectors against the hub's own validator and decoders, their drift from the
//! generator, the coverage of every SHALL requirement, and schema mutations the vectors catch.

use std::collections::{BTreeMap, BTreeSet};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kodomo_hub::conformance::files::{FileKind, check_bytes};
use kodomo_hub::conformance::vectors::{self, ExpectedError, RecordVectors};
use kodomo_hub::conformance::{Level, catalog, client, server};
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

#[test]
fn every_file_vector_passes_against_the_hubs_decoders() {
    let standard = Arc::new(Standard::load());
    let ingestor = Ingestor::new(standard.clone());
    let version = standard.major(1).expect("v1");
    let index = vectors::load_files(&vectors_dir()).expect("committed file vectors");
    assert!(
        index.cases.len() >= 15,
        "{} file vectors",
        index.cases.len()
    );
    let mut failures = Vec::new();
    for case in &index.cases {
        let path = vectors_dir().join("files").join(&case.file);
        let bytes = std::fs::read(&path).expect("vector file");
        let kind = FileKind::of(&path).expect("known kind");
        let check = check_bytes(&ingestor, version, kind, &path, &bytes);
        assert!(check.unverified.is_none(), "{}: unverified", case.id);
        let got: BTreeSet<ExpectedError> = check
            .issues
            .into_iter()
            .map(|(_, issue)| ExpectedError {
                row: issue.row,
                column: issue.column,
                record: issue.record,
                pointer: issue.pointer,
                code: issue.code,
            })
            .collect();
        let expected: BTreeSet<ExpectedError> = case.expected_errors.iter().cloned().collect();
        if got != expected || case.valid != expected.is_empty() {
            failures.push(format!("{}: expected {expected:?}, got {got:?}", case.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).expect("vectors directory") {
        let entry = entry.expect("entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            tree(&entry.path(), &format!("{name}/"), out);
        } else {
            out.insert(name, std::fs::read(entry.path()).expect("read"));
        }
    }
}

#[test]
fn committed_vectors_are_what_the_generator_makes_from_the_schemas() {
    let standard = Standard::load();
    let generated: BTreeMap<String, Vec<u8>> =
        vectors::generate_all(standard.major(1).expect("v1"))
            .expect("generator")
            .into_iter()
            .collect();
    let mut committed = BTreeMap::new();
    tree(&vectors_dir(), "", &mut committed);
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&generated),
        "vector files differ; run `cargo run -- conformance generate-vectors`"
    );
    for (name, bytes) in &generated {
        assert!(
            committed[name] == *bytes,
            "conformance/vectors/v1/{name} drifted from the schemas; run `cargo run -- conformance generate-vectors`"
        );
    }
}

#[test]
fn every_shall_requirement_has_a_test_or_a_stated_reason() {
    let all = vectors::load_records(&vectors_dir()).expect("committed vectors");
    let files = vectors::load_files(&vectors_dir()).expect("file vectors");
    let mut tested: BTreeSet<String> = all
        .iter()
        .flat_map(|f| f.cases.iter().map(|c| c.requirement.clone()))
        .chain(files.cases.iter().map(|c| c.requirement.clone()))
        .collect();
    let vectored = tested.clone();
    let scenarios = server::scenario_ids();
    tested.extend(scenarios.iter().map(|id| id.to_string()));
    let client_checks: Vec<&str> = client::judge::checks().iter().map(|(id, _)| *id).collect();
    tested.extend(client_checks.iter().map(|id| id.to_string()));
    let requirements = catalog::requirements();
    let known: BTreeSet<&str> = requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(known.len(), requirements.len(), "duplicate requirement ids");
    for id in &tested {
        assert!(
            known.contains(id.as_str()),
            "a vector or scenario names {id}, which is not in requirements.csv"
        );
    }
    let retired: Vec<String> = catalog::retired_ids().into_iter().map(|r| r.id).collect();
    for requirement in &requirements {
        assert!(
            catalog::well_formed_id(&requirement.id),
            "{} is not KDL-<AREA>-<NNN>",
            requirement.id
        );
        assert!(
            !retired.contains(&requirement.id),
            "{} is retired and must not be reused",
            requirement.id
        );
        assert!(
            !requirement.text_ja.is_empty()
                && !requirement.text_en.is_empty()
                && !requirement.source.is_empty(),
            "{} lacks text or source",
            requirement.id
        );
        let has_test = tested.contains(&requirement.id);
        if requirement.level == Level::Shall {
            assert!(
                has_test || requirement.untested_reason.is_some(),
                "SHALL requirement {} has no vector or scenario and no stated reason",
                requirement.id
            );
        }
        assert!(
            !(has_test && requirement.untested_reason.is_some()),
            "{} is tested but states a reason why it is not",
            requirement.id
        );
        if requirement.suites.contains("server") {
            assert!(
                scenarios.contains(&requirement.id.as_str()),
                "{} names the server suite but no scenario verifies it",
                requirement.id
            );
        }
        if requirement.suites.contains("client") {
            assert!(
                client_checks.contains(&requirement.id.as_str()),
                "{} names the client suite but no check of the sandbox verifies it",
                requirement.id
            );
        }
        if requirement.suites.contains("vectors") {
            assert!(
                vectored.contains(&requirement.id),
                "{} names the vectors but no vector verifies it",
                requirement.id
            );
        }
        if requirement.level != Level::Shall {
            assert!(
                requirement.feature.is_some(),
                "{} is optional but names no feature of the capabilities file",
                requirement.id
            );
        }
    }
}

/// A copy of the v1 schemas with one rule changed.
struct Mutation {
    name: &'static str,
    apply: fn(&mut Value, &mut BTreeMap<String, Value>),
}

fn mutations() -> Vec<Mutation> {
    vec![
        Mutation {
            name: "postnatal-checkup: epds_total no longer required",
            apply: |_, records| {
                let required = records.get_mut("postnatal-checkup").unwrap()["required"]
                    .as_array_mut()
                    .unwrap();
                required.retain(|f| f != "epds_total");
            },
        },
        Mutation {
            name: "basic_info.name: maxLength widened from 100 to 101",
            apply: |common, _| {
                common["$defs"]["basic_info"]["properties"]["name"]["maxLength"] = 101.into()
            },
        },
        Mutation {
            name: "school-attendance.period: code term3 dropped",
            apply: |_, records| {
                let codes =
                    records.get_mut("school-attendance").unwrap()["properties"]["period"]["enum"]
                        .as_array_mut()
                        .unwrap();
                codes.retain(|c| c != "term3");
            },
        },
        Mutation {
            name: "public-assistance: ended_on no longer ordered after started_on",
            apply: |_, records| {
                records
                    .get_mut("public-assistance")
                    .unwrap()
                    .as_object_mut()
                    .unwrap()
                    .remove("x-field-order");
            },
        },
        Mutation {
            name: "infant-checkup: the 3-year checkup may carry covered_mouth",
            apply: |_, records| {
                records.get_mut("infant-checkup").unwrap()["allOf"]
                    .as_array_mut()
                    .unwrap()
                    .remove(3);
            },
        },
        Mutation {
            name: "school-health-exam.weight_kg: exclusiveMinimum 0 became minimum 0",
            apply: |_, records| {
                let weight =
                    &mut records.get_mut("school-health-exam").unwrap()["properties"]["weight_kg"];
                weight.as_object_mut().unwrap().remove("exclusiveMinimum");
                weight["minimum"] = 0.into();
            },
        },
        Mutation {
            name: "envelope: My Number check removed",
            apply: |common, _| {
                common["$defs"]["envelope"]
                    .as_object_mut()
                    .unwrap()
                    .remove("x-no-my-number");
            },
        },
        Mutation {
            name: "subject_ref: unknown fields allowed",
            apply: |common, _| {
                common["$defs"]["subject_ref"]
                    .as_object_mut()
                    .unwrap()
                    .remove("additionalProperties");
            },
        },
    ]
}

/// Cases about the schema's own rules (not the hub's dispatch on record_type and version).
fn schema_cases(all: &[RecordVectors]) -> Vec<RecordVectors> {
    all.iter()
        .map(|file| RecordVectors {
            cases: file
                .cases
                .iter()
                .filter(|c| {
                    !c.id.contains("/record_type/")
                        && !c.id.contains("/schema_version/")
                        && !c.id.ends_with("required/record_type")
                })
                .cloned()
                .collect(),
            ..file.clone()
        })
        .collect()
}

fn direct_check(validator: &RecordValidator) -> impl Fn(&Value) -> BTreeSet<ExpectedError> + '_ {
    move |record| {
        let record_type = record["record_type"].as_str().unwrap_or_default();
        validator
            .validate(record_type, record)
            .into_iter()
            .map(|e| ExpectedError {
                row: None,
                column: None,
                record: None,
                pointer: e.pointer,
                code: e.code,
            })
            .collect()
    }
}

#[test]
fn each_single_rule_mutation_of_the_schemas_makes_a_vector_fail() {
    let standard = Standard::load();
    let version = standard.major(1).expect("v1");
    let all = schema_cases(&vectors::load_records(&vectors_dir()).expect("committed vectors"));
    let unmutated = RecordValidator::compile(&version.common, &version.records);
    let baseline = failing(&all, direct_check(&unmutated));
    assert!(
        baseline.is_empty(),
        "the unmutated schemas fail vectors:\n{}",
        baseline.join("\n")
    );
    for mutation in mutations() {
        let (mut common, mut records) = (version.common.clone(), version.records.clone());
        (mutation.apply)(&mut common, &mut records);
        let mutated = RecordValidator::compile(&common, &records);
        let caught = failing(&all, direct_check(&mutated));
        assert!(
            !caught.is_empty(),
            "no vector catches the mutation {:?}",
            mutation.name
        );
        println!(
            "{}: caught by {} vector(s), e.g. {}",
            mutation.name,
            caught.len(),
            caught[0].split(':').next().unwrap_or("")
        );
    }
}
