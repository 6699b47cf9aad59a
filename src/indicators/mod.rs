//! Anonymised outcome indicators (成果指標, SPEC §7) with disclosure control the hub can prove.
//!
//! - [`compute`]: one town's counts for a fiscal year from its subjects, records and transfers
//!   (pure: testable without a database).
//! - [`table`]: the geography hierarchy (municipality → prefecture → nation, municipality →
//!   council), the totals, and the relations between cells that anyone can know.
//! - [`disclosure`]: count floors, small towns, complementary suppression, rounding, rates.
//! - [`audit`]: the linear-programming audit of a release together with every earlier one.
//! - [`pipeline`]: the steps above over the store — preview, release, re-audit.
//! - [`progress`]: phases, a progress bar on a terminal, durations in the log and the ledger.
//! - [`publication`]: a release as its readers get it (JSON, CSV with BOM).

pub mod audit;
pub mod compute;
pub mod disclosure;
pub mod pipeline;
pub mod progress;
pub mod publication;
pub mod table;

use chrono::NaiveDate;
use serde_json::Value;

use crate::schema::SchemaVersion;

/// The support-outcome record type: the screening funnel is counted from it.
pub const SUPPORT_OUTCOME: &str = "support-outcome";

/// A fiscal year (年度): fiscal year X runs from 1 April X to 31 March X+1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FiscalYear(pub i32);

impl FiscalYear {
    pub fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0, 4, 1).expect("1 April exists")
    }

    pub fn end(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.0 + 1, 3, 31).expect("31 March exists")
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        self.start() <= date && date <= self.end()
    }
}

/// The fixed categories of the indicators, taken from the standard itself so that they follow
/// it: basic item numbers from the applicability rules, stages and difficulty types from the
/// support-outcome schema. No free filters exist.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// Basic item numbers with at least one applicability rule, ascending.
    pub items: Vec<u32>,
    /// Support-outcome stages in process order (extracted → … ).
    pub stages: Vec<String>,
    /// Support-outcome difficulty types.
    pub difficulties: Vec<String>,
}

fn enum_at(doc: &Value, pointer: &str) -> Vec<String> {
    doc.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl Catalogue {
    pub fn from_standard(version: &SchemaVersion) -> Catalogue {
        let mut items: Vec<u32> = version.applicability.rules.iter().map(|r| r.item).collect();
        items.sort_unstable();
        items.dedup();
        let outcome = version
            .records
            .get(SUPPORT_OUTCOME)
            .expect("the standard defines support-outcome");
        Catalogue {
            items,
            stages: enum_at(outcome, "/properties/stage/enum"),
            difficulties: enum_at(outcome, "/properties/difficulty_types/items/enum"),
        }
    }

    /// Rank of a stage in the process (later stages imply the earlier ones were reached).
    pub fn stage_rank(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage)
    }
}
