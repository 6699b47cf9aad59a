//! The requirements table (`conformance/requirements.csv`) and the registry of retired ids
//! (`conformance/retired-ids.csv`), embedded in the binary so a supplier needs nothing else.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::Level;

const REQUIREMENTS_CSV: &str = include_str!("../../conformance/requirements.csv");
const RETIRED_CSV: &str = include_str!("../../conformance/retired-ids.csv");

/// One requirement; its id is also the id of the test that verifies it.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub id: String,
    pub level: Level,
    /// Where it is verified: `vectors`, `files`, `server` (joined with `+`), or `none`.
    pub suites: BTreeSet<String>,
    /// The optional feature (capabilities file) a SHOULD/MAY requirement belongs to.
    pub feature: Option<String>,
    pub text_ja: String,
    pub text_en: String,
    pub source: String,
    /// Why a requirement has no test yet (required for SHALL requirements without one).
    pub untested_reason: Option<String>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    level: String,
    suite: String,
    feature: String,
    text_ja: String,
    text_en: String,
    source: String,
    untested_reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetiredId {
    pub id: String,
    pub retired_in_suite: String,
    pub reason: String,
}

fn non_empty(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

/// Every requirement, in file order. Panics on a malformed table, which the test suite catches.
pub fn requirements() -> Vec<Requirement> {
    csv::Reader::from_reader(REQUIREMENTS_CSV.as_bytes())
        .deserialize::<Row>()
        .map(|row| {
            let row = row.expect("conformance/requirements.csv is well-formed");
            Requirement {
                level: Level::parse(&row.level)
                    .unwrap_or_else(|| panic!("{}: unknown level {}", row.id, row.level)),
                suites: row
                    .suite
                    .split('+')
                    .filter(|s| *s != "none")
                    .map(str::to_string)
                    .collect(),
                feature: non_empty(row.feature),
                untested_reason: non_empty(row.untested_reason),
                id: row.id,
                text_ja: row.text_ja,
                text_en: row.text_en,
                source: row.source,
            }
        })
        .collect()
}

pub fn retired_ids() -> Vec<RetiredId> {
    csv::Reader::from_reader(RETIRED_CSV.as_bytes())
        .deserialize::<RetiredId>()
        .map(|row| row.expect("conformance/retired-ids.csv is well-formed"))
        .collect()
}

pub fn requirement(id: &str) -> Option<Requirement> {
    requirements().into_iter().find(|r| r.id == id)
}

/// Requirements a suite verifies, in table order.
pub fn of_suite(suite: &str) -> Vec<Requirement> {
    requirements()
        .into_iter()
        .filter(|r| r.suites.contains(suite))
        .collect()
}

/// Is `id` of the form `KDL-<AREA>-<NNN>`?
pub fn well_formed_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 3
        && parts[0] == "KDL"
        && !parts[1].is_empty()
        && parts[1].chars().all(|c| c.is_ascii_uppercase())
        && parts[2].len() == 3
        && parts[2].chars().all(|c| c.is_ascii_digit())
}
