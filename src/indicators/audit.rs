//! The disclosure audit: what could an attacker who holds every published release derive
//! about a hidden cell?
//!
//! Every published figure becomes a linear constraint on the true, non-negative counts: an
//! exact count fixes its cell, a rounded total bounds it to its rounding interval, and the
//! relations of `table` (totals are sums of parts; a later funnel stage never exceeds an
//! earlier one; …) tie cells together. Releases of the same fiscal year share their unknowns
//! where the true count did not change between them, so a new release cannot be differenced
//! against an old one. For each hidden cell with a non-zero true count, linear programming
//! (good_lp with the pure-Rust microlp solver) gives the smallest and largest value consistent
//! with everything published; a cell whose interval is narrower than its floor is exposed,
//! and a release leaving any cell exposed is refused.
//!
//! The LP relaxation can only widen intervals compared with integer reasoning, so the audit
//! rounds its bounds inwards (ceil of the minimum, floor of the maximum) before comparing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use good_lp::{
    Expression, ProblemVariables, ResolutionError, Solution, SolverModel, microlp, variable,
};
use serde::Serialize;

use super::Catalogue;
use super::disclosure::{Cell, Unit};
use super::table::{self, CellKey, Relation, Town};

/// One release as the audit sees it.
pub struct AuditedRelease<'a> {
    /// `None` for the candidate being audited before it is stored.
    pub id: Option<i64>,
    pub fiscal_year: i32,
    pub towns: &'a [Town],
    pub cells: &'a [Cell],
    pub rounding_base: i64,
}

/// The tightest interval derivable for one hidden cell.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Interval {
    /// Release that hid the cell (absent for the candidate release).
    pub release: Option<i64>,
    pub fiscal_year: i32,
    pub level: String,
    pub geography: String,
    pub indicator: String,
    pub category: String,
    pub lower: i64,
    /// Absent when nothing bounds the cell from above.
    pub upper: Option<i64>,
    /// Width the cell needs (its floor).
    pub required_width: i64,
    #[serde(skip)]
    pub key: CellKey,
}

impl Interval {
    pub fn width(&self) -> Option<i64> {
        self.upper.map(|u| u - self.lower)
    }

    fn exposed(&self) -> bool {
        self.width().is_some_and(|w| w < self.required_width)
    }
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    pub releases: usize,
    /// Hidden count cells over all releases.
    pub hidden_cells: usize,
    /// Hidden cells with a non-zero true count, each bounded by linear programming.
    pub checked_cells: usize,
    /// Narrowest width found (absent when every checked cell is unbounded above).
    pub narrowest_width: Option<i64>,
    /// Cells an attacker could narrow below their floor: the release is refused.
    pub exposed: Vec<Interval>,
    /// Problems that stop the audit from proving anything (the release is refused too).
    pub errors: Vec<String>,
}

impl AuditReport {
    pub fn passed(&self) -> bool {
        self.exposed.is_empty() && self.errors.is_empty()
    }
}

/// What a release records about its audit (no counts, no intervals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditSummary {
    /// Releases audited together (this one and every earlier one).
    pub releases_audited: usize,
    pub hidden_cells: usize,
    /// Hidden cells bounded by linear programming.
    pub checked_cells: usize,
    /// Narrowest interval an attacker can derive for a hidden cell (never below its floor).
    pub narrowest_width: Option<i64>,
}

impl From<&AuditReport> for AuditSummary {
    fn from(report: &AuditReport) -> Self {
        AuditSummary {
            releases_audited: report.releases,
            hidden_cells: report.hidden_cells,
            checked_cells: report.checked_cells,
            narrowest_width: report.narrowest_width,
        }
    }
}

/// An unknown: a cell of a fiscal year with its true value (equal true values across releases
/// are the same unknown).
type Unknown = (i32, CellKey, i64);

#[derive(Clone, Copy)]
struct Bounds {
    lower: f64,
    upper: f64,
}

struct Linear {
    terms: Vec<(usize, f64)>,
    equal: bool,
    /// `Σ terms (= or ≤) rhs`
    rhs: f64,
}

const EPSILON: f64 = 1e-6;

pub fn audit(releases: &[AuditedRelease], catalogue: &Catalogue) -> AuditReport {
    let mut report = AuditReport {
        releases: releases.len(),
        ..AuditReport::default()
    };
    let mut index: HashMap<Unknown, usize> = HashMap::new();
    let mut bounds: Vec<Bounds> = Vec::new();
    let mut rows: Vec<(Vec<(usize, f64)>, bool)> = Vec::new();
    // Hidden cells to bound, by unknown: (release, fiscal year, required width, key).
    let mut targets: BTreeMap<usize, (Option<i64>, i32, i64, CellKey)> = BTreeMap::new();
    for release in releases {
        let half = release.rounding_base / 2;
        let mut here: HashMap<&CellKey, usize> = HashMap::new();
        for cell in release.cells.iter().filter(|c| c.unit == Unit::Count) {
            let Some(truth) = cell.true_value else {
                report
                    .errors
                    .push(format!("{} has no true value in the ledger", cell.key));
                continue;
            };
            let unknown = (release.fiscal_year, cell.key.clone(), truth);
            let next = bounds.len();
            let i = *index.entry(unknown).or_insert(next);
            if i == next {
                bounds.push(Bounds {
                    lower: 0.0,
                    upper: f64::INFINITY,
                });
            }
            let b = &mut bounds[i];
            match (cell.value, cell.rounded) {
                (Some(v), false) => {
                    b.lower = b.lower.max(v);
                    b.upper = b.upper.min(v);
                }
                (Some(v), true) => {
                    b.lower = b.lower.max(v - half as f64);
                    b.upper = b.upper.min(v + (release.rounding_base - half - 1) as f64);
                }
                (None, _) => {
                    report.hidden_cells += 1;
                    if truth > 0 {
                        let target = targets.entry(i).or_insert((
                            release.id,
                            release.fiscal_year,
                            cell.floor,
                            cell.key.clone(),
                        ));
                        target.0 = release.id;
                        target.2 = target.2.max(cell.floor);
                    }
                }
            }
            here.insert(&cell.key, i);
        }
        let present: BTreeSet<CellKey> = here.keys().map(|k| (*k).clone()).collect();
        for relation in table::relations(release.towns, catalogue, &present) {
            let at = |k: &CellKey| here[k];
            rows.push(match &relation {
                Relation::Sum { total, parts } => (
                    std::iter::once((at(total), 1.0))
                        .chain(parts.iter().map(|p| (at(p), -1.0)))
                        .collect(),
                    true,
                ),
                Relation::AtMost { lhs, rhs } => (
                    lhs.iter()
                        .map(|k| (at(k), 1.0))
                        .chain(rhs.iter().map(|k| (at(k), -1.0)))
                        .collect(),
                    false,
                ),
            });
        }
    }
    if bounds.iter().any(|b| b.lower > b.upper + EPSILON) {
        report.errors.push(
            "published figures contradict each other (a rounding interval or an earlier release)"
                .into(),
        );
        return report;
    }
    // Fixed unknowns become constants; what is left are the LP's variables.
    let fixed = |i: usize| bounds[i].upper - bounds[i].lower < EPSILON;
    let mut constraints = Vec::new();
    for (terms, equal) in rows {
        let constant: f64 = terms
            .iter()
            .filter(|(i, _)| fixed(*i))
            .map(|(i, k)| k * bounds[*i].lower)
            .sum();
        let free: Vec<(usize, f64)> = terms.into_iter().filter(|(i, _)| !fixed(*i)).collect();
        if !free.is_empty() {
            constraints.push(Linear {
                terms: free,
                equal,
                rhs: -constant,
            });
        }
    }
    let (root_of, groups) = components(bounds.len(), &constraints);
    report.checked_cells = targets.len();
    for (unknown, (release, fiscal_year, floor, key)) in targets {
        let (lower, upper) = if fixed(unknown) {
            (bounds[unknown].lower, Some(bounds[unknown].lower))
        } else {
            let members = &groups[&root_of[unknown]];
            match (
                solve(members, &bounds, &constraints, unknown, false),
                solve(members, &bounds, &constraints, unknown, true),
            ) {
                (Ok(Some(lo)), Ok(hi)) => (lo, hi),
                (Err(e), _) | (_, Err(e)) => {
                    report.errors.push(format!("{key}: the solver failed: {e}"));
                    continue;
                }
                (Ok(None), Ok(_)) => {
                    report.errors.push(format!("{key}: unbounded below"));
                    continue;
                }
            }
        };
        let interval = Interval {
            release,
            fiscal_year,
            level: key.level.as_str().to_string(),
            geography: key.geography.clone(),
            indicator: key.measure.indicator.clone(),
            category: key.measure.category.clone(),
            lower: (lower - EPSILON).ceil().max(0.0) as i64,
            upper: upper.map(|u| (u + EPSILON).floor() as i64),
            required_width: floor,
            key,
        };
        if let Some(width) = interval.width() {
            report.narrowest_width = Some(report.narrowest_width.map_or(width, |n| n.min(width)));
        }
        if interval.exposed() {
            report.exposed.push(interval);
        }
    }
    report
}

/// Unknowns linked by constraints, and the constraints among them.
#[derive(Default)]
struct Component {
    unknowns: Vec<usize>,
    constraints: Vec<usize>,
}

/// Connected groups of unknowns: each unknown's group representative, and the groups.
fn components(n: usize, constraints: &[Linear]) -> (Vec<usize>, HashMap<usize, Component>) {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut parent: Vec<usize> = (0..n).collect();
    for c in constraints {
        let first = root(&mut parent, c.terms[0].0);
        for (i, _) in &c.terms[1..] {
            let other = root(&mut parent, *i);
            parent[other] = first;
        }
    }
    let root_of: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    let mut groups: HashMap<usize, Component> = HashMap::new();
    for (i, r) in root_of.iter().enumerate() {
        groups.entry(*r).or_default().unknowns.push(i);
    }
    for (ci, c) in constraints.iter().enumerate() {
        groups
            .entry(root_of[c.terms[0].0])
            .or_default()
            .constraints
            .push(ci);
    }
    (root_of, groups)
}

/// Minimise or maximise one unknown subject to its component's constraints. `Ok(None)`: no
/// bound in that direction.
fn solve(
    component: &Component,
    bounds: &[Bounds],
    constraints: &[Linear],
    target: usize,
    maximise: bool,
) -> Result<Option<f64>, String> {
    let mut vars = ProblemVariables::new();
    let mut map = HashMap::new();
    for &i in &component.unknowns {
        let mut def = variable().min(bounds[i].lower);
        if bounds[i].upper.is_finite() {
            def = def.max(bounds[i].upper);
        }
        map.insert(i, vars.add(def));
    }
    let objective: Expression = map[&target].into();
    let unsolved = if maximise {
        vars.maximise(objective)
    } else {
        vars.minimise(objective)
    };
    let mut model = unsolved.using(microlp);
    for &ci in &component.constraints {
        let c = &constraints[ci];
        let expression: Expression = c.terms.iter().map(|(i, k)| *k * map[i]).sum();
        model = model.with(if c.equal {
            expression.eq(c.rhs)
        } else {
            expression.leq(c.rhs)
        });
    }
    match model.solve() {
        Ok(solution) => Ok(Some(solution.value(map[&target]))),
        Err(ResolutionError::Unbounded) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
