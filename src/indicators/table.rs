//! The indicator table of one fiscal year: which measures exist (fixed), which geographies
//! (municipality, prefecture, council, nation), the true totals, and the relations between
//! cells that anyone can know without seeing a count — totals are sums of their parts, a later
//! funnel stage never exceeds an earlier one, and so on. The audit treats these relations as
//! the attacker's knowledge, so every relation listed here must hold for the true counts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Catalogue;

pub const CHILDREN_IN_SCOPE: &str = "children_in_scope";
pub const CHILDREN_WITH_ITEM: &str = "children_with_item";
pub const ANY: &str = "any";
pub const ALL: &str = "all";
pub const TRANSFERS_SENT: &str = "transfers_sent";
pub const TRANSFERS_ACCEPTED: &str = "transfers_accepted";
pub const TRANSFERS_DECLINED: &str = "transfers_declined";
pub const TRANSFERS_ESCALATED: &str = "transfers_escalated";
pub const MOVED_ACCEPTED: &str = "moved_children_accepted";
pub const MOVED_SUPPORTED: &str = "moved_children_supported_90d";
pub const MEDIAN_DAYS: &str = "median_days_to_acceptance";
pub const RATE_ANY_ITEM: &str = "rate_children_with_any_item";
pub const RATE_CONTINUITY: &str = "rate_support_continuity_90d";
/// Geography code of the nation.
pub const NATION: &str = "JP";

/// Funnel indicators are this prefix and a support-outcome stage.
pub const FUNNEL_PREFIX: &str = "funnel_";

/// Funnel indicator of a support-outcome stage.
pub fn funnel(stage: &str) -> String {
    format!("{FUNNEL_PREFIX}{stage}")
}

/// Category of a basic item number ("01" … "19").
pub fn item_category(item: u32) -> String {
    format!("{item:02}")
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Nation,
    Prefecture,
    Council,
    Municipality,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Nation => "nation",
            Level::Prefecture => "prefecture",
            Level::Council => "council",
            Level::Municipality => "municipality",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        [
            Level::Nation,
            Level::Prefecture,
            Level::Council,
            Level::Municipality,
        ]
        .into_iter()
        .find(|l| l.as_str() == text)
    }
}

/// What is counted: an indicator and one of its fixed categories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Measure {
    pub indicator: String,
    pub category: String,
}

impl Measure {
    pub fn new(indicator: &str, category: &str) -> Measure {
        Measure {
            indicator: indicator.to_string(),
            category: category.to_string(),
        }
    }
}

/// One cell: a measure at a geography.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub level: Level,
    pub geography: String,
    pub measure: Measure,
}

impl std::fmt::Display for CellKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}/{}",
            self.level.as_str(),
            self.geography,
            self.measure.indicator,
            self.measure.category
        )
    }
}

/// A town as the indicators see it. Population is deployment configuration
/// (`admin municipality add --population`); it decides the town's floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Town {
    pub code: String,
    pub name: String,
    pub council: Option<String>,
    pub population: Option<i64>,
}

impl Town {
    /// The prefecture is the first two digits of the municipality code.
    pub fn prefecture(&self) -> &str {
        self.code.get(..2).unwrap_or(&self.code)
    }
}

/// Every count measure, in a fixed order.
pub fn count_measures(catalogue: &Catalogue) -> Vec<Measure> {
    let mut measures = vec![Measure::new(CHILDREN_IN_SCOPE, ALL)];
    measures.extend(
        catalogue
            .items
            .iter()
            .map(|i| Measure::new(CHILDREN_WITH_ITEM, &item_category(*i))),
    );
    measures.push(Measure::new(CHILDREN_WITH_ITEM, ANY));
    for stage in &catalogue.stages {
        let indicator = funnel(stage);
        measures.push(Measure::new(&indicator, ALL));
        measures.extend(
            catalogue
                .difficulties
                .iter()
                .map(|d| Measure::new(&indicator, d)),
        );
    }
    for indicator in [
        TRANSFERS_SENT,
        TRANSFERS_ACCEPTED,
        TRANSFERS_DECLINED,
        TRANSFERS_ESCALATED,
        MOVED_ACCEPTED,
        MOVED_SUPPORTED,
    ] {
        measures.push(Measure::new(indicator, ALL));
    }
    measures
}

/// The geographies of a set of towns: each town, its prefecture, its council, the nation.
pub fn geographies(towns: &[Town]) -> Vec<Place> {
    let mut geos = BTreeSet::new();
    geos.insert((Level::Nation, NATION.to_string()));
    for town in towns {
        geos.insert((Level::Municipality, town.code.clone()));
        geos.insert((Level::Prefecture, town.prefecture().to_string()));
        if let Some(council) = &town.council {
            geos.insert((Level::Council, council.clone()));
        }
    }
    geos.into_iter().collect()
}

/// A geography: its level and code.
pub type Place = (Level, String);

/// Parts that make up each aggregate geography.
pub fn hierarchy(towns: &[Town]) -> Vec<(Place, Vec<Place>)> {
    let mut prefectures: BTreeMap<String, Vec<Place>> = BTreeMap::new();
    let mut councils: BTreeMap<String, Vec<Place>> = BTreeMap::new();
    for town in towns {
        let part = (Level::Municipality, town.code.clone());
        prefectures
            .entry(town.prefecture().to_string())
            .or_default()
            .push(part.clone());
        if let Some(council) = &town.council {
            councils.entry(council.clone()).or_default().push(part);
        }
    }
    let nation_parts = prefectures
        .keys()
        .map(|p| (Level::Prefecture, p.clone()))
        .collect();
    let mut groups = vec![((Level::Nation, NATION.to_string()), nation_parts)];
    groups.extend(
        prefectures
            .into_iter()
            .map(|(p, parts)| ((Level::Prefecture, p), parts)),
    );
    groups.extend(
        councils
            .into_iter()
            .map(|(c, parts)| ((Level::Council, c), parts)),
    );
    groups
}

/// A relation between true counts that anyone may assume.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// `total` is exactly the sum of `parts`.
    Sum { total: CellKey, parts: Vec<CellKey> },
    /// The sum of `lhs` is at most the sum of `rhs`.
    AtMost {
        lhs: Vec<CellKey>,
        rhs: Vec<CellKey>,
    },
}

impl Relation {
    pub fn cells(&self) -> impl Iterator<Item = &CellKey> {
        let (a, b): (&[CellKey], &[CellKey]) = match self {
            Relation::Sum { total, parts } => (std::slice::from_ref(total), parts),
            Relation::AtMost { lhs, rhs } => (lhs, rhs),
        };
        a.iter().chain(b)
    }
}

/// Every relation among the cells of `towns`' geographies; relations naming a cell outside
/// `present` (e.g. a category a later standard added) are left out.
pub fn relations(
    towns: &[Town],
    catalogue: &Catalogue,
    present: &BTreeSet<CellKey>,
) -> Vec<Relation> {
    let measures = count_measures(catalogue);
    let mut out = Vec::new();
    for ((level, code), parts) in hierarchy(towns) {
        for measure in &measures {
            out.push(Relation::Sum {
                total: key(level, &code, measure.clone()),
                parts: parts
                    .iter()
                    .map(|(l, c)| key(*l, c, measure.clone()))
                    .collect(),
            });
        }
    }
    for (level, code) in geographies(towns) {
        let at =
            |indicator: &str, category: &str| key(level, &code, Measure::new(indicator, category));
        let at_most = |lhs: Vec<CellKey>, rhs: Vec<CellKey>| Relation::AtMost { lhs, rhs };
        for item in &catalogue.items {
            out.push(at_most(
                vec![at(CHILDREN_WITH_ITEM, &item_category(*item))],
                vec![at(CHILDREN_WITH_ITEM, ANY)],
            ));
        }
        out.push(at_most(
            vec![at(CHILDREN_WITH_ITEM, ANY)],
            vec![at(CHILDREN_IN_SCOPE, ALL)],
        ));
        let categories: Vec<&str> = std::iter::once(ALL)
            .chain(catalogue.difficulties.iter().map(String::as_str))
            .collect();
        for (i, stage) in catalogue.stages.iter().enumerate() {
            let indicator = funnel(stage);
            for category in &categories {
                if let Some(earlier) = i.checked_sub(1).map(|e| funnel(&catalogue.stages[e])) {
                    out.push(at_most(
                        vec![at(&indicator, category)],
                        vec![at(&earlier, category)],
                    ));
                }
                if *category != ALL {
                    out.push(at_most(
                        vec![at(&indicator, category)],
                        vec![at(&indicator, ALL)],
                    ));
                }
            }
            // Every support-outcome record names at least one difficulty type.
            out.push(at_most(
                vec![at(&indicator, ALL)],
                catalogue
                    .difficulties
                    .iter()
                    .map(|d| at(&indicator, d))
                    .collect(),
            ));
        }
        if let Some(first) = catalogue.stages.first() {
            out.push(at_most(
                vec![at(&funnel(first), ALL)],
                vec![at(CHILDREN_IN_SCOPE, ALL)],
            ));
        }
        out.push(at_most(
            vec![at(TRANSFERS_ACCEPTED, ALL), at(TRANSFERS_DECLINED, ALL)],
            vec![at(TRANSFERS_SENT, ALL)],
        ));
        out.push(at_most(
            vec![at(TRANSFERS_ESCALATED, ALL)],
            vec![at(TRANSFERS_SENT, ALL)],
        ));
        out.push(at_most(
            vec![at(MOVED_SUPPORTED, ALL)],
            vec![at(MOVED_ACCEPTED, ALL)],
        ));
    }
    out.retain(|r| r.cells().all(|c| present.contains(c)));
    out
}

pub fn key(level: Level, geography: &str, measure: Measure) -> CellKey {
    CellKey {
        level,
        geography: geography.to_string(),
        measure,
    }
}

/// The true table of one fiscal year: every count cell at every geography, and the days from
/// offer to acceptance behind each geography's median.
#[derive(Debug, Clone)]
pub struct TrueTable {
    pub fiscal_year: i32,
    pub towns: Vec<Town>,
    pub counts: BTreeMap<CellKey, i64>,
    pub acceptance_days: BTreeMap<Place, Vec<i64>>,
}

/// One town's counts for a fiscal year (see `compute`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TownCounts {
    pub counts: BTreeMap<Measure, i64>,
    /// Whole days from offer to acceptance of each accepted transfer the town sent.
    pub acceptance_days: Vec<i64>,
}

impl TrueTable {
    /// Aggregate towns' counts up the hierarchy (missing towns count zero).
    pub fn build(
        fiscal_year: i32,
        towns: Vec<Town>,
        by_town: &BTreeMap<String, TownCounts>,
        catalogue: &Catalogue,
    ) -> TrueTable {
        let measures = count_measures(catalogue);
        let empty = TownCounts::default();
        let mut counts = BTreeMap::new();
        let mut acceptance_days: BTreeMap<Place, Vec<i64>> = BTreeMap::new();
        for town in &towns {
            let own = by_town.get(&town.code).unwrap_or(&empty);
            let mut targets = vec![
                (Level::Municipality, town.code.clone()),
                (Level::Prefecture, town.prefecture().to_string()),
                (Level::Nation, NATION.to_string()),
            ];
            if let Some(council) = &town.council {
                targets.push((Level::Council, council.clone()));
            }
            for (level, code) in targets {
                for measure in &measures {
                    let value = own.counts.get(measure).copied().unwrap_or(0);
                    *counts
                        .entry(key(level, &code, measure.clone()))
                        .or_insert(0) += value;
                }
                acceptance_days
                    .entry((level, code))
                    .or_default()
                    .extend(&own.acceptance_days);
            }
        }
        TrueTable {
            fiscal_year,
            towns,
            counts,
            acceptance_days,
        }
    }
}

/// The median of whole days (`None` when empty).
pub fn median(values: &[i64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0),
    }
}
