//! Certificates: explicit alternative tables that prove hidden cells safe without a linear
//! program.
//!
//! Raising a town's counts by `δ` and lowering another town's by the same `δ` changes every
//! total of the first town's lineage (its council, prefecture, the nation) that the second
//! does not share by `+δ`, the second's by `−δ`, and the shared ones not at all — so every
//! "sum" relation still holds. What remains is that every moved cell is hidden (or moves
//! inside its rounding interval) and that the "at most" relations at the moved geographies
//! still hold. `δ` starts as the amount on the target cell's measure and grows along those
//! relations where their slack runs out (raising an item raises `any`, and so on).
//!
//! The construction is a heuristic; the proof is the check it ends with: the alternative
//! table satisfies every constraint touching a moved unknown and every moved unknown's
//! bounds, exactly, and the true table satisfies all the others (`build` refuses a ledger
//! whose true counts contradict a relation). Such a table is consistent with everything
//! published, so the attacker's interval of every cell it moves contains the moved value —
//! one certificate widens the proven interval of every cell it moves, not only its target's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{EPSILON, Layout, Model, Target, proven_wide};
use crate::indicators::table::{self, Level, Measure, NATION, Place};

/// Partner pairs tried per hidden cell and direction before it is left to the LP.
const PAIRS_TRIED: usize = 10;
/// Pairs on which the largest feasible amount is searched when the full need does not fit.
const PAIRS_SEARCHED: usize = 3;
/// Steps of `δ` growth before a construction gives up (each relieves one relation).
const GROWTH_STEPS: usize = 64;

/// A geography moving up (`+1`) or down (`−1`).
type Side = (Place, f64);

/// Moved unknowns and how far, in unknown order (so the audit is deterministic).
pub(super) type Moves = BTreeMap<usize, f64>;

/// The places whose cells move with a town's: itself, its council, its prefecture, the nation.
fn lineage(layout: &Layout, town: &str) -> Vec<Place> {
    let mut places = vec![(Level::Municipality, town.to_string())];
    if let Some(council) = layout.council_of.get(town) {
        places.push((Level::Council, council.clone()));
    }
    places.push((Level::Prefecture, town.get(..2).unwrap_or(town).to_string()));
    places.push((Level::Nation, NATION.to_string()));
    places
}

/// Raise `up`'s lineage and lower `down`'s (either may be absent); shared places cancel.
fn sides(layout: &Layout, up: Option<&str>, down: Option<&str>) -> Vec<Side> {
    let raised = up.map(|t| lineage(layout, t)).unwrap_or_default();
    let lowered = down.map(|t| lineage(layout, t)).unwrap_or_default();
    let only = |these: &[Place], those: &[Place], sign: f64| -> Vec<Side> {
        these
            .iter()
            .filter(|p| !those.contains(p))
            .map(|p| (p.clone(), sign))
            .collect()
    };
    let mut out = only(&raised, &lowered, 1.0);
    out.extend(only(&lowered, &raised, -1.0));
    out
}

fn sign_at(sides: &[Side], level: Level, geography: &str) -> Option<f64> {
    sides
        .iter()
        .find(|((l, g), _)| *l == level && g == geography)
        .map(|(_, s)| *s)
}

/// What stops an alternative table from being consistent.
enum Violation {
    /// An unknown left its bounds, a fixed one moved, or a total stopped adding up: growing
    /// `δ` cannot help.
    Final,
    /// An "at most" relation is exceeded by `excess`.
    Exceeded { constraint: usize, excess: f64 },
}

impl Model {
    /// The unknowns moved by `δ` over `sides`; `None` when a moved cell is published (fixed)
    /// or absent in some release.
    fn moves(&self, sides: &[Side], delta: &HashMap<Measure, f64>) -> Option<Moves> {
        let mut moves = Moves::new();
        for ((level, geography), sign) in sides {
            for (measure, amount) in delta.iter().filter(|(_, a)| **a != 0.0) {
                let key = table::key(*level, geography, measure.clone());
                let unknowns = self.by_key.get(&key)?;
                for &u in unknowns {
                    if self.fixed(u) {
                        return None;
                    }
                    moves.insert(u, sign * amount);
                }
            }
        }
        Some(moves)
    }

    /// The first way the true table moved by `moves` is inconsistent with the publications.
    fn violation(&self, moves: &Moves) -> Option<Violation> {
        for (&u, &d) in moves {
            let value = self.truth[u] + d;
            let b = self.bounds[u];
            if value < b.lower - EPSILON || value > b.upper + EPSILON {
                return Some(Violation::Final);
            }
        }
        let mut checked: Vec<usize> = moves
            .keys()
            .flat_map(|&u| self.touching[u].iter().copied())
            .collect();
        checked.sort_unstable();
        checked.dedup();
        for c in checked {
            let constraint = &self.constraints[c];
            let value: f64 = constraint
                .terms
                .iter()
                .map(|(j, k)| k * (self.truth[*j] + moves.get(j).copied().unwrap_or(0.0)))
                .sum();
            let excess = value - constraint.rhs;
            if constraint.equal && excess.abs() > EPSILON {
                return Some(Violation::Final);
            }
            if !constraint.equal && excess > EPSILON {
                return Some(Violation::Exceeded {
                    constraint: c,
                    excess,
                });
            }
        }
        None
    }

    /// How much further `measure` can move on every side before a moved cell leaves its
    /// bounds (0 when one is published).
    fn room(&self, sides: &[Side], measure: &Measure, already: f64) -> f64 {
        let mut room = f64::INFINITY;
        for ((level, geography), sign) in sides {
            let key = table::key(*level, geography, measure.clone());
            let Some(unknowns) = self.by_key.get(&key) else {
                return 0.0;
            };
            for &u in unknowns {
                if self.fixed(u) {
                    return 0.0;
                }
                let b = self.bounds[u];
                let free = if *sign > 0.0 {
                    b.upper - self.truth[u]
                } else {
                    self.truth[u] - b.lower
                };
                room = room.min(free);
            }
        }
        (room - already).max(0.0)
    }

    /// An alternative table moving `measure` by `amount` over `sides` (and whatever the
    /// "at most" relations drag along), checked; `None` when none was found.
    fn shifted(&self, sides: &[Side], measure: &Measure, amount: f64) -> Option<Moves> {
        let mut delta: HashMap<Measure, f64> = HashMap::from([(measure.clone(), amount)]);
        for _ in 0..GROWTH_STEPS {
            let moves = self.moves(sides, &delta)?;
            let (constraint, mut excess) = match self.violation(&moves) {
                None => return Some(moves),
                Some(Violation::Final) => return None,
                Some(Violation::Exceeded { constraint, excess }) => (constraint, excess),
            };
            // Measures whose growth lowers the exceeded side: a right-hand cell at a raised
            // place, a left-hand cell at a lowered one.
            let mut relief: Vec<(f64, Measure)> = self.constraints[constraint]
                .terms
                .iter()
                .filter_map(|(j, k)| {
                    let key = &self.identity[*j].1;
                    let sign = sign_at(sides, key.level, &key.geography)?;
                    (sign * k < 0.0).then(|| key.measure.clone())
                })
                .map(|m| {
                    let already = delta.get(&m).copied().unwrap_or(0.0);
                    (self.room(sides, &m, already), m)
                })
                .filter(|(room, _)| *room > EPSILON)
                .collect();
            relief.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            relief.dedup_by(|a, b| a.1 == b.1);
            if relief.is_empty() {
                return None;
            }
            for (room, m) in relief {
                let step = excess.min(room).ceil();
                *delta.entry(m).or_insert(0.0) += step;
                excess -= step;
                if excess <= EPSILON {
                    break;
                }
            }
        }
        None
    }
}

/// Towns whose cell of `measure` is free, with its true value (largest first).
fn free_towns<'a>(
    model: &Model,
    towns: impl Iterator<Item = &'a String>,
    measure: &Measure,
) -> Vec<(f64, String)> {
    let mut found: Vec<(f64, String)> = towns
        .filter_map(|t| {
            let key = table::key(Level::Municipality, t, measure.clone());
            let unknowns = model.by_key.get(&key)?;
            (!unknowns.iter().any(|&u| model.fixed(u)))
                .then(|| (unknowns.iter().map(|&u| model.truth[u]).sum(), t.clone()))
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found
}

fn free(model: &Model, place: &Place, measure: &Measure) -> bool {
    model
        .by_key
        .get(&table::key(place.0, &place.1, measure.clone()))
        .is_some_and(|us| !us.iter().any(|&u| model.fixed(u)))
}

/// Town pairs `(inside, outside)` whose opposite moves move the target's place: `inside` a
/// town whose lineage holds it, `outside` one whose lineage does not (or none: only the
/// inside lineage moves). Nearest partners first: same council, same prefecture, then towns
/// of other prefectures whose prefectural cell is hidden too.
fn pairs(model: &Model, layout: &Layout, place: &Place, measure: &Measure) -> Vec<Pair> {
    let largest_free = |towns: Option<&BTreeSet<String>>| -> Vec<String> {
        free_towns(model, towns.into_iter().flatten(), measure)
            .into_iter()
            .map(|(_, t)| t)
            .take(3)
            .collect()
    };
    let inside: Vec<String> = match place.0 {
        Level::Municipality => vec![place.1.clone()],
        Level::Council => largest_free(layout.towns_of_council.get(&place.1)),
        Level::Prefecture => largest_free(layout.towns_of.get(&place.1)),
        Level::Nation => layout
            .towns_of
            .iter()
            .filter(|(p, _)| free(model, &(Level::Prefecture, (*p).clone()), measure))
            .flat_map(|(_, towns)| free_towns(model, towns.iter(), measure).into_iter().take(1))
            .map(|(_, t)| t)
            .take(3)
            .collect(),
    };
    let mut out = Vec::new();
    for town in &inside {
        let own = lineage(layout, town);
        let prefecture = town.get(..2).unwrap_or(town).to_string();
        let mut outside: Vec<(u8, f64, String)> = Vec::new();
        let holds_place = |t: &str| lineage(layout, t).contains(place);
        if place.0 != Level::Prefecture && place.0 != Level::Nation {
            let council = layout.council_of.get(town);
            for (value, other) in free_towns(
                model,
                layout.towns_of.get(&prefecture).into_iter().flatten(),
                measure,
            ) {
                if other != *town && !holds_place(&other) {
                    let near = if layout.council_of.get(&other) == council {
                        0
                    } else {
                        1
                    };
                    outside.push((near, -value, other));
                }
            }
        }
        if place.0 != Level::Nation && free(model, &own[own.len() - 2], measure) {
            let mut prefectures: Vec<(f64, &String)> = layout
                .towns_of
                .keys()
                .filter(|p| **p != prefecture && **p != place.1)
                .filter_map(|p| {
                    let key = table::key(Level::Prefecture, p, measure.clone());
                    let unknowns = model.by_key.get(&key)?;
                    (!unknowns.iter().any(|&u| model.fixed(u)))
                        .then(|| (unknowns.iter().map(|&u| model.truth[u]).sum(), p))
                })
                .collect();
            prefectures.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            for (_, p) in prefectures.into_iter().take(3) {
                let towns = layout.towns_of.get(p).into_iter().flatten();
                for (value, other) in free_towns(model, towns, measure).into_iter().take(2) {
                    outside.push((2, -value, other));
                }
            }
        }
        outside.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then_with(|| a.2.cmp(&b.2))
        });
        out.extend(outside.into_iter().map(|(_, _, other)| Pair {
            inside: town.clone(),
            outside: Some(other),
        }));
        out.push(Pair {
            inside: town.clone(),
            outside: None,
        });
    }
    out.truncate(PAIRS_TRIED);
    out
}

struct Pair {
    inside: String,
    outside: Option<String>,
}

/// Prove `members` with certificates; widens `spans` (of targets) with every table found.
/// Returns how many certificates were found.
pub(super) fn certify(
    model: &Model,
    layout: &Layout,
    targets: &[Target],
    members: &[usize],
    spans: &mut HashMap<usize, (f64, f64)>,
) -> usize {
    let mut found = 0;
    let mut widen = |moves: &Moves, spans: &mut HashMap<usize, (f64, f64)>| {
        found += 1;
        for (&u, &d) in moves {
            if let Some(span) = spans.get_mut(&u) {
                let v = model.truth[u] + d;
                *span = (span.0.min(v), span.1.max(v));
            }
        }
    };
    for &t in members {
        let target = &targets[t];
        let i = target.unknown;
        let place: Place = (target.key.level, target.key.geography.clone());
        let measure = &target.key.measure;
        if proven_wide(spans[&i], target.floor) || model.fixed(i) {
            continue;
        }
        let pairs = pairs(model, layout, &place, measure);
        for up in [true, false] {
            for (n, pair) in pairs.iter().enumerate() {
                let (lo, hi) = spans[&i];
                let need = target.floor as f64 - (hi - lo);
                if need <= EPSILON {
                    break;
                }
                let (raised, lowered) = if up {
                    (Some(pair.inside.as_str()), pair.outside.as_deref())
                } else {
                    (pair.outside.as_deref(), Some(pair.inside.as_str()))
                };
                let sides = sides(layout, raised, lowered);
                if let Some(moves) = model.shifted(&sides, measure, need.ceil()) {
                    widen(&moves, spans);
                    continue;
                }
                if n >= PAIRS_SEARCHED {
                    continue;
                }
                // The largest amount that fits, by halving.
                let (mut fits, mut fails) = (0.0_f64, need.ceil());
                while fails - fits > 1.0 {
                    let amount = ((fits + fails) / 2.0).floor();
                    match model.shifted(&sides, measure, amount) {
                        Some(moves) => {
                            widen(&moves, spans);
                            fits = amount;
                        }
                        None => fails = amount,
                    }
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::indicators::disclosure::{self, DisclosureConfig, Pinned};
    use crate::indicators::table::{TownCounts, TrueTable, count_measures};
    use crate::schema::Standard;

    /// A city, a town and a large city of one prefecture; the town's one item count is 5.
    /// (Unlike the disclosure tests' tables, every other count is 0 beside the scope and item
    /// counts, so the true table satisfies every relation, as the audit requires.)
    /// Moving counts between the towns proves every hidden cell without a linear program.
    #[test]
    fn alternative_tables_prove_hidden_cells_without_linear_programs() {
        let standard = Standard::load();
        let catalogue = Catalogue::from_standard(standard.latest());
        let towns: Vec<Town> = ["131016", "131024", "131032"]
            .iter()
            .map(|code| Town {
                code: code.to_string(),
                name: code.to_string(),
                council: None,
                population: Some(100_000),
            })
            .collect();
        let small = Measure::new(
            table::CHILDREN_WITH_ITEM,
            &table::item_category(catalogue.items[0]),
        );
        let by_town = towns
            .iter()
            .zip([80, 14, 300])
            .enumerate()
            .map(|(t, (town, size))| {
                let counts = count_measures(&catalogue)
                    .into_iter()
                    .map(|m| {
                        let value = if t == 0 && m == small {
                            5
                        } else if m.indicator == table::CHILDREN_IN_SCOPE
                            || m.indicator == table::CHILDREN_WITH_ITEM
                        {
                            size
                        } else {
                            0
                        };
                        (m.clone(), value)
                    })
                    .collect();
                let counts = TownCounts {
                    counts,
                    acceptance_days: Vec::new(),
                };
                (town.code.clone(), counts)
            })
            .collect();
        let table = TrueTable::build(2025, towns, &by_town, &catalogue);
        let present = table.counts.keys().cloned().collect();
        let relations = table::relations(&table.towns, &catalogue, &present);
        let config = DisclosureConfig::default();
        let cells = disclosure::protect(&table, &config, &relations, &Pinned::new());
        let releases = [AuditedRelease {
            id: None,
            fiscal_year: 2025,
            towns: &table.towns,
            cells: &cells,
            rounding_base: config.rounding_base,
        }];
        let report = audit_within(
            &releases,
            &catalogue,
            &Proven::new(),
            &Progress::quiet(),
            Reach::Prefecture,
            0,
        );
        assert!(report.passed(), "{:?} {:?}", report.exposed, report.errors);
        assert!(report.checked_cells > 0);
        assert_eq!(report.certified_cells, report.checked_cells);
        assert!(report.certificates > 0);
        assert_eq!(report.linear_programs, 0);
        let (found, unsound) = unsound_certificates(&releases, &catalogue);
        assert!(found > 0);
        assert!(unsound.is_empty(), "{unsound:?}");
    }
}
