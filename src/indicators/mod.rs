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

use std::collections::BTreeMap;

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
    /// Japanese labels of indicators and categories (see [`Catalogue::indicator_label`]).
    pub labels: BTreeMap<String, String>,
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
        let mut labels = BTreeMap::new();
        let fixed: Value = version
            .file("indicators.json")
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        for (section, prefix) in [("indicators", "indicator:"), ("categories", "category:")] {
            for (code, label) in fixed[section].as_object().into_iter().flatten() {
                if let Some(label) = label.as_str() {
                    labels.insert(format!("{prefix}{code}"), label.to_string());
                }
            }
        }
        for rule in &version.applicability.rules {
            labels
                .entry(format!("category:{}", table::item_category(rule.item)))
                .or_insert_with(|| rule.title.clone());
        }
        for pointer in [
            "/properties/stage/x-enum-labels",
            "/properties/difficulty_types/items/x-enum-labels",
        ] {
            let prefix = if pointer.contains("stage") {
                "stage:"
            } else {
                "category:"
            };
            for (code, label) in outcome
                .pointer(pointer)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(label) = label.as_str() {
                    labels.insert(format!("{prefix}{code}"), label.to_string());
                }
            }
        }
        Catalogue {
            items,
            stages: enum_at(outcome, "/properties/stage/enum"),
            difficulties: enum_at(outcome, "/properties/difficulty_types/items/enum"),
            labels,
        }
    }

    /// The Japanese label of an indicator (a funnel stage's is the funnel's with the stage's,
    /// e.g. `スクリーニング・支援の段階別児童数(支援開始)`); the code itself when the standard
    /// has none.
    pub fn indicator_label(&self, indicator: &str) -> String {
        if let Some(stage) = indicator.strip_prefix(table::FUNNEL_PREFIX)
            && let (Some(funnel), Some(stage)) = (
                self.labels.get("indicator:funnel"),
                self.labels.get(&format!("stage:{stage}")),
            )
        {
            return format!("{funnel}({stage})");
        }
        self.labels
            .get(&format!("indicator:{indicator}"))
            .cloned()
            .unwrap_or_else(|| indicator.to_string())
    }

    /// The Japanese label of a category (`all`, `any`, a basic item, a difficulty type).
    pub fn category_label(&self, category: &str) -> String {
        self.labels
            .get(&format!("category:{category}"))
            .cloned()
            .unwrap_or_else(|| category.to_string())
    }

    /// Rank of a stage in the process (later stages imply the earlier ones were reached).
    pub fn stage_rank(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage)
    }
}
