//! Disclosure control (秘匿処理): which cells of the true table may be published and how.
//!
//! 1. Primary suppression: a count in 1 … floor−1 is hidden (zero may be shown); towns under
//!    `no_counts_below_population` people (or whose population is not configured) show no
//!    counts at all; towns under `small_town_population` have the stricter `small_town_floor`.
//! 2. Complementary suppression: in every total-and-parts group (town → prefecture → nation,
//!    town → council) whose hidden parts add up to less than the protection they need, or that
//!    has a single hidden part, the smallest non-zero published part is hidden too (or the
//!    total, when no part is left), until no group can be solved by subtraction.
//! 3. Prefectural and national totals are rounded to `rounding_base`.
//! 4. Rates and medians are shown only when the counts they rest on are published.
//!
//! The rules are a heuristic; the proof is the audit (`audit`), which the release pipeline
//! runs on the result together with every earlier release, hiding more where it must.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::table::{
    self, ALL, ANY, CHILDREN_IN_SCOPE, CHILDREN_WITH_ITEM, CellKey, Level, MEDIAN_DAYS,
    MOVED_ACCEPTED, MOVED_SUPPORTED, Measure, RATE_ANY_ITEM, RATE_CONTINUITY, Relation,
    TRANSFERS_ACCEPTED, Town, TrueTable,
};

/// Disclosure rules of a deployment. The defaults follow public agency practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DisclosureConfig {
    /// Smallest non-zero count that may be shown (default 10).
    pub floor: i64,
    /// Whether a true zero may be shown (default yes: zero identifies nobody).
    pub show_zero: bool,
    /// Towns with fewer people show no counts at all (default 2,000).
    pub no_counts_below_population: i64,
    /// Towns with fewer people have the small-town floor (default 25,000).
    pub small_town_population: i64,
    /// Floor for small towns (default 20).
    pub small_town_floor: i64,
    /// Prefectural and national totals are rounded to a multiple of this (default 10).
    pub rounding_base: i64,
    /// Hide further cells so hidden ones cannot be recovered from totals (default on;
    /// turning it off exists only to show that the audit then refuses the release).
    pub complementary_suppression: bool,
}

impl Default for DisclosureConfig {
    fn default() -> Self {
        DisclosureConfig {
            floor: 10,
            show_zero: true,
            no_counts_below_population: 2_000,
            small_town_population: 25_000,
            small_town_floor: 20,
            rounding_base: 10,
            complementary_suppression: true,
        }
    }
}

/// What hiding cost a release: count cells and the sum of their true values hidden by
/// primary suppression (below the floor, small towns) and by secondary suppression
/// (complementary cells and the audit's repairs). Rates and medians are not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InformationLoss {
    pub count_cells: usize,
    pub primary_cells: usize,
    pub primary_value: i64,
    pub secondary_cells: usize,
    pub secondary_value: i64,
}

impl InformationLoss {
    pub fn of(cells: &[Cell]) -> InformationLoss {
        let mut loss = InformationLoss::default();
        for cell in cells.iter().filter(|c| c.unit == Unit::Count) {
            loss.count_cells += 1;
            let value = cell.true_value.unwrap_or(0);
            match cell.suppressed {
                Some(Suppression::BelowFloor | Suppression::SmallPopulation) => {
                    loss.primary_cells += 1;
                    loss.primary_value += value;
                }
                Some(Suppression::Complementary | Suppression::Basis) => {
                    loss.secondary_cells += 1;
                    loss.secondary_value += value;
                }
                None => {}
            }
        }
        loss
    }
}

/// Why a cell shows a symbol instead of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// A count between 1 and the floor − 1.
    BelowFloor,
    /// A town too small for any count to be shown.
    SmallPopulation,
    /// Hidden so that another hidden cell cannot be recovered from totals.
    Complementary,
    /// A rate or median whose underlying counts are not both published.
    Basis,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::BelowFloor => "below_floor",
            Suppression::SmallPopulation => "small_population",
            Suppression::Complementary => "complementary",
            Suppression::Basis => "basis",
        }
    }

    pub fn parse(text: &str) -> Option<Suppression> {
        [
            Suppression::BelowFloor,
            Suppression::SmallPopulation,
            Suppression::Complementary,
            Suppression::Basis,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What a cell's number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Children or transfers.
    Count,
    /// A share between 0 and 1.
    Rate,
    /// Days.
    Days,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "count",
            Unit::Rate => "rate",
            Unit::Days => "days",
        }
    }

    pub fn parse(text: &str) -> Option<Unit> {
        [Unit::Count, Unit::Rate, Unit::Days]
            .into_iter()
            .find(|u| u.as_str() == text)
    }
}

/// A cell as released: its published value (or why not), and — for counts, kept only in the
/// ledger for the audit and never served — the true value.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub key: CellKey,
    pub unit: Unit,
    /// `None` when suppressed or when there is nothing to show (a rate over zero).
    pub value: Option<f64>,
    /// The value is rounded to the rounding base.
    pub rounded: bool,
    pub suppressed: Option<Suppression>,
    /// The protection the audit requires for this cell when hidden (0: none).
    pub floor: i64,
    pub true_value: Option<i64>,
}

impl Cell {
    pub fn hidden(&self) -> bool {
        self.suppressed.is_some()
    }

    fn hide(&mut self, why: Suppression) {
        self.value = None;
        self.rounded = false;
        self.suppressed = Some(why);
    }
}

/// The floor of a geography, and whether it may show counts at all.
fn floor_of(config: &DisclosureConfig, level: Level, town: Option<&Town>) -> (i64, bool) {
    if level != Level::Municipality {
        return (config.floor, true);
    }
    match town.and_then(|t| t.population) {
        Some(p) if p >= config.small_town_population => (config.floor, true),
        Some(p) if p >= config.no_counts_below_population => (config.small_town_floor, true),
        _ => (config.small_town_floor.max(config.floor), false),
    }
}

fn round_to(value: i64, base: i64) -> i64 {
    if base <= 1 {
        value
    } else {
        (value + base / 2).div_euclid(base) * base
    }
}

/// Cells whose true count an earlier release of the same fiscal year already showed or hid,
/// unchanged since, with that status (`None`: published). A revision keeps the status: a
/// published figure is published again (hiding it would protect nothing, it is public) and
/// no suppression — primary, complementary or repair — may hide it; a hidden one stays
/// hidden (publishing it now could narrow the cells it protected then).
pub type Pinned = BTreeMap<CellKey, Option<Suppression>>;

/// Protect a true table: suppression (primary and, if configured, complementary), rounding,
/// rates and medians. The pipeline audits the result.
pub fn protect(
    table: &TrueTable,
    config: &DisclosureConfig,
    relations: &[Relation],
    pinned: &Pinned,
) -> Vec<Cell> {
    let towns: BTreeMap<&str, &Town> = table.towns.iter().map(|t| (t.code.as_str(), t)).collect();
    let mut cells: BTreeMap<CellKey, Cell> = BTreeMap::new();
    for (key, &value) in &table.counts {
        let town = (key.level == Level::Municipality)
            .then(|| towns.get(key.geography.as_str()).copied())
            .flatten();
        let (floor, may_show) = floor_of(config, key.level, town);
        let suppressed = if let Some(earlier) = pinned.get(key) {
            *earlier
        } else if !may_show {
            Some(Suppression::SmallPopulation)
        } else if (value == 0 && !config.show_zero) || (value > 0 && value < floor) {
            Some(Suppression::BelowFloor)
        } else {
            None
        };
        cells.insert(
            key.clone(),
            Cell {
                key: key.clone(),
                unit: Unit::Count,
                value: suppressed.is_none().then_some(value as f64),
                rounded: false,
                suppressed,
                floor,
                true_value: Some(value),
            },
        );
    }
    if config.complementary_suppression {
        complementary(&mut cells, relations, pinned);
    }
    finish(cells, table, config)
}

/// Hide more until no total-and-parts group can be solved by subtraction. The cell hidden
/// is the cheapest one that can be (see [`cost`]): a small part before a large one, a part
/// before the total.
fn complementary(cells: &mut BTreeMap<CellKey, Cell>, relations: &[Relation], pinned: &Pinned) {
    loop {
        let mut changed = false;
        for relation in relations {
            let Relation::Sum { total, parts } = relation else {
                continue;
            };
            let hidden: Vec<&Cell> = parts
                .iter()
                .map(|p| &cells[p])
                .filter(|c| c.hidden())
                .collect();
            let total_hidden = cells[total].hidden();
            let needs = hidden
                .iter()
                .filter(|c| c.true_value.unwrap_or(0) > 0)
                .map(|c| c.floor)
                .max();
            let exposed = match needs {
                // A hidden total with every part published is their sum.
                None => total_hidden && hidden.is_empty() && cells[total].true_value > Some(0),
                Some(needs) => {
                    let sum: i64 = hidden.iter().map(|c| c.true_value.unwrap_or(0)).sum();
                    !total_hidden && (hidden.len() < 2 || sum < needs)
                }
            };
            if exposed {
                let target = cheapest_published(cells, parts, pinned)
                    .or_else(|| cheapest_published(cells, std::slice::from_ref(total), pinned));
                if let Some(cell) = target.and_then(|t| cells.get_mut(&t)) {
                    cell.hide(Suppression::Complementary);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// The information lost by hiding a published count: its value (τ-ARGUS's "cell value"
/// cost), so a choice between cells that protect the same hidden cells hides the smaller
/// ones, and never a count at or above the floor when a smaller one would do. Ties go to
/// the lower level (a town before its prefecture) and then to key order, so the choice is
/// deterministic.
pub fn cost(cell: &Cell) -> (i64, std::cmp::Reverse<Level>, CellKey) {
    (
        cell.true_value.unwrap_or(0),
        std::cmp::Reverse(cell.key.level),
        cell.key.clone(),
    )
}

/// The cheapest published, non-zero, not pinned cell among `keys`.
fn cheapest_published(
    cells: &BTreeMap<CellKey, Cell>,
    keys: &[CellKey],
    pinned: &Pinned,
) -> Option<CellKey> {
    keys.iter()
        .filter_map(|k| cells.get(k))
        .filter(|c| hideable(c, pinned))
        .min_by_key(|c| cost(c))
        .map(|c| c.key.clone())
}

fn hideable(cell: &Cell, pinned: &Pinned) -> bool {
    !cell.hidden() && cell.true_value.unwrap_or(0) > 0 && !pinned.contains_key(&cell.key)
}

/// After the audit found `exposed` cells, hide more around each: the cheapest published cell
/// (see [`cost`]) that takes part in a relation with it, or with a hidden cell linked to it
/// through relations, nearest first — a sibling in a total-and-parts group, the total, a cell
/// bounding it in an "at most" relation. A cell still exposed after `stubborn_after` rounds
/// gets every published cell of its relations hidden (the old, lossier rule), so repair
/// always terminates. Pinned cells are never hidden. `None` when nothing more can be hidden.
#[allow(clippy::too_many_arguments)]
pub fn hide_more(
    cells: &[Cell],
    relations: &[Relation],
    exposed: &[CellKey],
    table: &TrueTable,
    config: &DisclosureConfig,
    pinned: &Pinned,
    stubborn: &BTreeSet<CellKey>,
) -> Option<Vec<Cell>> {
    let mut counts: BTreeMap<CellKey, Cell> = cells
        .iter()
        .filter(|c| c.unit == Unit::Count)
        .map(|c| (c.key.clone(), c.clone()))
        .collect();
    let mut touching: BTreeMap<&CellKey, Vec<&Relation>> = BTreeMap::new();
    for relation in relations {
        for cell in relation.cells() {
            touching.entry(cell).or_default().push(relation);
        }
    }
    let mut chosen: BTreeSet<CellKey> = BTreeSet::new();
    for key in exposed {
        // Breadth first through hidden cells: the first distance with a candidate decides.
        let mut frontier = vec![key.clone()];
        let mut seen: BTreeSet<CellKey> = frontier.iter().cloned().collect();
        while !frontier.is_empty() {
            let mut candidates: Vec<&Cell> = Vec::new();
            let mut next = Vec::new();
            for at in &frontier {
                for relation in touching.get(at).into_iter().flatten() {
                    for other in relation.cells() {
                        let Some(cell) = counts.get(other) else {
                            continue;
                        };
                        if hideable(cell, pinned) {
                            candidates.push(cell);
                        } else if cell.hidden() && seen.insert(other.clone()) {
                            next.push(other.clone());
                        }
                    }
                }
            }
            if !candidates.is_empty() {
                if stubborn.contains(key) {
                    chosen.extend(candidates.iter().map(|c| c.key.clone()));
                } else if let Some(cheapest) = candidates.into_iter().min_by_key(|c| cost(c)) {
                    chosen.insert(cheapest.key.clone());
                }
                break;
            }
            frontier = next;
        }
    }
    if chosen.is_empty() {
        return None;
    }
    for key in &chosen {
        if let Some(cell) = counts.get_mut(key) {
            cell.hide(Suppression::Complementary);
        }
    }
    // Rounding, rates and medians follow the new suppression.
    for cell in counts.values_mut().filter(|c| !c.hidden()) {
        cell.value = cell.true_value.map(|v| v as f64);
        cell.rounded = false;
    }
    Some(finish(counts, table, config))
}

/// Round published aggregate counts, then add rates and medians on top of what is published.
fn finish(
    mut cells: BTreeMap<CellKey, Cell>,
    table: &TrueTable,
    config: &DisclosureConfig,
) -> Vec<Cell> {
    for cell in cells.values_mut() {
        let rounds = matches!(cell.key.level, Level::Nation | Level::Prefecture);
        if rounds && !cell.hidden() && config.rounding_base > 1 {
            cell.value = cell
                .true_value
                .map(|v| round_to(v, config.rounding_base) as f64);
            cell.rounded = true;
        }
    }
    let mut derived = Vec::new();
    for (level, code) in table::geographies(&table.towns) {
        let published = |indicator: &str, category: &str| {
            cells
                .get(&table::key(level, &code, Measure::new(indicator, category)))
                .and_then(|c| c.value.map(|v| (v, c.rounded)))
        };
        let rate = |num: Option<(f64, bool)>, den: Option<(f64, bool)>, indicator: &str| {
            let (value, suppressed, rounded) = match (num, den) {
                (Some((n, rn)), Some((d, rd))) if d > 0.0 => {
                    (Some((n / d * 1000.0).round() / 1000.0), None, rn || rd)
                }
                (Some(_), Some(_)) => (None, None, false),
                _ => (None, Some(Suppression::Basis), false),
            };
            Cell {
                key: table::key(level, &code, Measure::new(indicator, ALL)),
                unit: Unit::Rate,
                value,
                rounded,
                suppressed,
                floor: 0,
                true_value: None,
            }
        };
        derived.push(rate(
            published(CHILDREN_WITH_ITEM, ANY),
            published(CHILDREN_IN_SCOPE, ALL),
            RATE_ANY_ITEM,
        ));
        derived.push(rate(
            published(MOVED_SUPPORTED, ALL),
            published(MOVED_ACCEPTED, ALL),
            RATE_CONTINUITY,
        ));
        let accepted = published(TRANSFERS_ACCEPTED, ALL);
        let days = table.acceptance_days.get(&(level, code.clone()));
        let (value, suppressed) = match accepted {
            Some((n, _)) if n > 0.0 => (days.and_then(|d| table::median(d)), None),
            Some(_) => (None, None),
            None => (None, Some(Suppression::Basis)),
        };
        derived.push(Cell {
            key: table::key(level, &code, Measure::new(MEDIAN_DAYS, ALL)),
            unit: Unit::Days,
            value,
            rounded: false,
            suppressed,
            floor: 0,
            true_value: None,
        });
    }
    let mut out: Vec<Cell> = cells.into_values().collect();
    out.extend(derived);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::Catalogue;
    use crate::indicators::table::{TownCounts, count_measures};
    use crate::schema::Standard;

    /// One prefecture of three large towns: `sizes` children in scope each, and the same
    /// numbers at every other count (so every cell is large) except `small` at town 0.
    fn table_with(sizes: [i64; 3], small: (&Measure, i64), catalogue: &Catalogue) -> TrueTable {
        let towns: Vec<Town> = ["131016", "131024", "131032"]
            .iter()
            .map(|code| Town {
                code: code.to_string(),
                name: code.to_string(),
                council: None,
                population: Some(100_000),
            })
            .collect();
        let by_town = towns
            .iter()
            .zip(sizes)
            .enumerate()
            .map(|(t, (town, size))| {
                let counts = count_measures(catalogue)
                    .into_iter()
                    .map(|m| {
                        let value = if t == 0 && m == *small.0 {
                            small.1
                        } else {
                            size
                        };
                        (m, value)
                    })
                    .collect();
                let own = TownCounts {
                    counts,
                    acceptance_days: Vec::new(),
                };
                (town.code.clone(), own)
            })
            .collect();
        TrueTable::build(2025, towns, &by_town, catalogue)
    }

    /// Repair hides the cheapest cell related to the exposed one — a town's 14 rather than a
    /// city's headline 300 — and one cell per exposed cell and round.
    #[test]
    fn repair_hides_the_cheapest_related_cell() {
        let standard = Standard::load();
        let catalogue = Catalogue::from_standard(standard.latest());
        let item = Measure::new(
            CHILDREN_WITH_ITEM,
            &table::item_category(catalogue.items[0]),
        );
        let table = table_with([300, 14, 12], (&item, 4), &catalogue);
        let present = table.counts.keys().cloned().collect();
        let relations = table::relations(&table.towns, &catalogue, &present);
        let config = DisclosureConfig::default();
        let cells = protect(&table, &config, &relations, &Pinned::new());
        let exposed = table::key(Level::Municipality, "131016", item.clone());
        let hidden_before: BTreeSet<CellKey> = cells
            .iter()
            .filter(|c| c.hidden())
            .map(|c| c.key.clone())
            .collect();
        let repaired = hide_more(
            &cells,
            &relations,
            std::slice::from_ref(&exposed),
            &table,
            &config,
            &Pinned::new(),
            &BTreeSet::new(),
        )
        .expect("something to hide");
        let newly: Vec<&CellKey> = repaired
            .iter()
            .filter(|c| c.hidden() && !hidden_before.contains(&c.key) && c.unit == Unit::Count)
            .map(|c| &c.key)
            .collect();
        let town_of_14 = table::key(Level::Municipality, "131024", item.clone());
        assert_eq!(newly, vec![&town_of_14]);
        let cheapest_related = cells
            .iter()
            .filter(|c| hideable(c, &Pinned::new()))
            .filter(|c| {
                relations
                    .iter()
                    .any(|r| r.cells().any(|k| *k == exposed) && r.cells().any(|k| *k == c.key))
            })
            .filter_map(|c| c.true_value)
            .min();
        assert_eq!(cheapest_related, Some(14));
        let headline = table::key(
            Level::Municipality,
            "131016",
            Measure::new(CHILDREN_WITH_ITEM, ANY),
        );
        assert!(
            repaired.iter().any(|c| c.key == headline && !c.hidden()),
            "the city's 300 stays"
        );
    }

    /// Complementary suppression hides the smallest part that protects the group.
    #[test]
    fn complementary_prefers_small_parts() {
        let standard = Standard::load();
        let catalogue = Catalogue::from_standard(standard.latest());
        let in_scope = Measure::new(CHILDREN_IN_SCOPE, ALL);
        let table = table_with([80, 14, 300], (&in_scope, 5), &catalogue);
        let present = table.counts.keys().cloned().collect();
        let relations = table::relations(&table.towns, &catalogue, &present);
        let cells = protect(
            &table,
            &DisclosureConfig::default(),
            &relations,
            &Pinned::new(),
        );
        let status = |town: &str| {
            cells
                .iter()
                .find(|c| c.key == table::key(Level::Municipality, town, in_scope.clone()))
                .and_then(|c| c.suppressed)
        };
        assert_eq!(status("131016"), Some(Suppression::BelowFloor));
        assert_eq!(status("131024"), Some(Suppression::Complementary));
        assert_eq!(status("131032"), None);
    }
}
