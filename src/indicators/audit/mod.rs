//! The disclosure audit: what could an attacker who holds every published release derive
//! about a hidden cell?
//!
//! Every published figure becomes a linear constraint on the true, non-negative counts: an
//! exact count fixes its cell, a rounded total bounds it to its rounding interval, and the
//! relations of `table` (totals are sums of parts; a later funnel stage never exceeds an
//! earlier one; …) tie cells together. Releases of the same fiscal year share their unknowns
//! where the true count did not change between them, so a new release cannot be differenced
//! against an old one. The attacker's interval for a hidden cell is the smallest and largest
//! value it takes over every table consistent with all of that (linear programming: the LP
//! relaxation can only widen intervals compared with integer reasoning, and the audit rounds
//! its bounds inwards before comparing). A hidden non-zero cell whose interval is narrower
//! than its floor is exposed, and a release leaving any cell exposed is refused.
//!
//! **How the proof stays affordable for 1,741 towns.** The audit does not need the exact
//! interval of a safe cell, only a proof that it is at least the floor wide, and every table
//! consistent with the publications is such a proof for every cell at once: the interval of
//! each cell contains its value in that table and its true value. So:
//!
//! 1. *Restriction is sound.* Fixing every unknown outside a sub-table at its true value
//!    leaves only tables that are consistent with everything published (the true table is), so
//!    an interval found in the sub-table lies inside the attacker's interval.
//! 2. *Sub-tables follow the hierarchy* (HiTaS): one per prefecture and block of linked
//!    measures (its towns, councils and the prefecture itself), and for a hidden prefectural
//!    or national cell the nation with the sub-tables of at most two prefectures. They are
//!    independent, so they are solved in parallel.
//! 3. *One model per sub-table.* Its LP is solved once; each hidden cell is then maximised and
//!    minimised by adding one row to that solved model (`z ≤ x` or `z ≤ −x` under the fixed
//!    objective `max z`), which the dual simplex re-optimises from the solved basis instead of
//!    starting again. Every solution widens the proven interval of every cell of the
//!    sub-table, so most cells are proven by other cells' programs and need none of their own.
//! 4. *Bounded work.* A cell not proven in its sub-table is bounded exactly over its whole
//!    connected component when that has at most `EXACT_COMPONENT_LIMIT` free unknowns (every
//!    small hub, every test); otherwise it is reported as exposed — not proven — and the
//!    release hides more or is refused. The audit can err only towards hiding.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use microlp::{ComparisonOp, OptimizationDirection, Problem, Variable};
use serde::Serialize;

use super::Catalogue;
use super::disclosure::{Cell, InformationLoss, Unit};
use super::progress::{PhaseDuration, Progress};
use super::table::{self, CellKey, Level, Measure, NATION, Place, Relation, Town};

mod certificate;

/// Free unknowns up to which a cell that its sub-table cannot prove safe is bounded exactly
/// over its whole component (beyond that, one LP costs seconds and is not tried).
pub const EXACT_COMPONENT_LIMIT: usize = 4_000;

/// One release as the audit sees it.
pub struct AuditedRelease<'a> {
    /// `None` for the candidate being audited before it is stored.
    pub id: Option<i64>,
    pub fiscal_year: i32,
    pub towns: &'a [Town],
    pub cells: &'a [Cell],
    pub rounding_base: i64,
}

/// The interval derived for a hidden cell the audit could not prove safe.
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
    /// The attacker's exact interval (bounded over the whole component); otherwise the widest
    /// interval the audit could prove within its work bound, and the cell may be safe.
    pub exact: bool,
    #[serde(skip)]
    pub key: CellKey,
}

impl Interval {
    pub fn width(&self) -> Option<i64> {
        self.upper.map(|u| u - self.lower)
    }
}

/// Proven intervals of hidden cells, by unknown. Valid for a later audit whose publications
/// only hide more (the repair rounds of one release): its consistent tables include these.
pub type Proven = HashMap<Unknown, (f64, f64)>;

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AuditReport {
    pub releases: usize,
    /// Hidden count cells over all releases.
    pub hidden_cells: usize,
    /// Hidden cells with a non-zero true count, each proven at least its floor wide.
    pub checked_cells: usize,
    /// Narrowest proven width of a checked cell (a lower bound of the attacker's; absent
    /// when every checked cell is unbounded above).
    pub narrowest_width: Option<i64>,
    /// Alternative tables found and checked without a linear program (see `certificate`).
    pub certificates: usize,
    /// Checked cells proven safe before any linear program: by the certificates, or by an
    /// earlier repair round's audit.
    pub certified_cells: usize,
    /// Linear programs solved (a sub-table's base solve and every re-optimisation).
    pub linear_programs: usize,
    /// Sub-tables (prefecture × block of measures, or the nation's row) solved.
    pub sub_tables: usize,
    /// Cells bounded exactly over their whole component because their sub-table did not
    /// prove them safe.
    pub exact_cells: usize,
    /// Cells an attacker could (or the audit cannot prove they could not) narrow below their
    /// floor: the release hides more or is refused.
    pub exposed: Vec<Interval>,
    /// Problems that stop the audit from proving anything (the release is refused too).
    pub errors: Vec<String>,
    /// Intervals proven in this audit, for the next repair round.
    #[serde(skip)]
    pub proven: Proven,
}

impl AuditReport {
    pub fn passed(&self) -> bool {
        self.exposed.is_empty() && self.errors.is_empty()
    }
}

/// What a release records about its audit (no counts, no intervals).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditSummary {
    /// Releases audited together (this one and every earlier one).
    pub releases_audited: usize,
    pub hidden_cells: usize,
    /// Hidden cells proven at least their floor wide.
    pub checked_cells: usize,
    /// Narrowest proven interval of a hidden cell (never below its floor).
    pub narrowest_width: Option<i64>,
    /// Hidden cells proven safe by explicit alternative tables, without a linear program.
    #[serde(default)]
    pub certified_cells: usize,
    #[serde(default)]
    pub linear_programs: usize,
    /// Cells and value hidden by primary and by secondary suppression (absent in releases
    /// stored before it was recorded).
    #[serde(default)]
    pub information_loss: Option<InformationLoss>,
    /// How long each phase of the release took.
    #[serde(default)]
    #[schema(max_items = 32)]
    pub phases: Vec<PhaseDuration>,
}

impl From<&AuditReport> for AuditSummary {
    fn from(report: &AuditReport) -> Self {
        AuditSummary {
            releases_audited: report.releases,
            hidden_cells: report.hidden_cells,
            checked_cells: report.checked_cells,
            narrowest_width: report.narrowest_width,
            certified_cells: report.certified_cells,
            linear_programs: report.linear_programs,
            information_loss: None,
            phases: Vec::new(),
        }
    }
}

/// An unknown: a cell of a fiscal year with its true value (equal true values across releases
/// are the same unknown).
pub type Unknown = (i32, CellKey, i64);

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

/// A hidden non-zero cell to prove.
struct Target {
    unknown: usize,
    release: Option<i64>,
    fiscal_year: i32,
    floor: i64,
    key: CellKey,
}

/// Everything published, as linear constraints over the unknowns.
struct Model {
    identity: Vec<Unknown>,
    bounds: Vec<Bounds>,
    truth: Vec<f64>,
    constraints: Vec<Linear>,
    /// Constraints each unknown appears in.
    touching: Vec<Vec<usize>>,
    /// Free (not fixed by a publication) unknowns of each cell key.
    free_by_key: HashMap<CellKey, Vec<usize>>,
    /// Every unknown of each cell key (one per release whose true count differs).
    by_key: HashMap<CellKey, Vec<usize>>,
}

impl Model {
    fn fixed(&self, i: usize) -> bool {
        self.bounds[i].upper - self.bounds[i].lower < EPSILON
    }
}

/// The geography the audit splits along: towns of each prefecture, councils, and which
/// measures are linked by "at most" relations (a block).
#[derive(Default)]
struct Layout {
    towns_of: BTreeMap<String, BTreeSet<String>>,
    council_of: HashMap<String, String>,
    towns_of_council: BTreeMap<String, BTreeSet<String>>,
    /// Prefectures each council has towns in.
    council_prefectures: BTreeMap<String, BTreeSet<String>>,
    /// Block number of each measure, and the measures of each block.
    block_of: HashMap<Measure, usize>,
    blocks: Vec<Vec<Measure>>,
}

impl Layout {
    fn region(&self, place: &Place) -> String {
        match place.0 {
            Level::Municipality => place.1.get(..2).unwrap_or(&place.1).to_string(),
            Level::Prefecture => place.1.clone(),
            Level::Council => self.council_prefectures[&place.1]
                .first()
                .cloned()
                .unwrap_or_default(),
            Level::Nation => NATION.to_string(),
        }
    }

    /// A prefecture's sub-table: its towns, the councils with towns in it, itself.
    fn prefecture_places(&self, prefecture: &str) -> Vec<Place> {
        let mut places: Vec<Place> = self.towns_of[prefecture]
            .iter()
            .map(|t| (Level::Municipality, t.clone()))
            .collect();
        places.extend(
            self.council_prefectures
                .iter()
                .filter(|(_, ps)| ps.contains(prefecture))
                .map(|(c, _)| (Level::Council, c.clone())),
        );
        places.push((Level::Prefecture, prefecture.to_string()));
        places
    }
}

/// A sub-table to solve: places × the measures of one block, and the cells to prove in it.
struct SubTable {
    places: Vec<Place>,
    block: usize,
    targets: Vec<usize>,
}

impl SubTable {
    fn targets(&self) -> &[usize] {
        &self.targets
    }
}

/// How far the sub-tables reach for a town's or council's cell its prefecture's sub-table
/// does not prove.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reach {
    /// Stop at the prefecture: what it leaves is repaired by hiding more (cheap, and repair
    /// usually helps).
    Prefecture,
    /// Also trade with other prefectures under the national total — dearer, for the few
    /// cells repair can no longer help and for re-audits.
    Nation,
}

pub fn audit(releases: &[AuditedRelease], catalogue: &Catalogue) -> AuditReport {
    audit_with(
        releases,
        catalogue,
        &Proven::new(),
        &Progress::quiet(),
        Reach::Nation,
    )
}

/// Audit `releases` together. `known`: intervals proven by an earlier audit whose
/// publications hid no more than these (see [`Proven`]).
pub fn audit_with(
    releases: &[AuditedRelease],
    catalogue: &Catalogue,
    known: &Proven,
    progress: &Progress,
    reach: Reach,
) -> AuditReport {
    audit_within(
        releases,
        catalogue,
        known,
        progress,
        reach,
        EXACT_COMPONENT_LIMIT,
    )
}

/// [`audit_with`], bounding cells exactly only in components of at most `exact_limit` free
/// unknowns.
pub fn audit_within(
    releases: &[AuditedRelease],
    catalogue: &Catalogue,
    known: &Proven,
    progress: &Progress,
    reach: Reach,
    exact_limit: usize,
) -> AuditReport {
    let mut report = AuditReport {
        releases: releases.len(),
        ..AuditReport::default()
    };
    let Some((model, targets, layout)) = build(releases, catalogue, &mut report) else {
        return report;
    };
    report.checked_cells = targets.len();
    let mut spans: HashMap<usize, (f64, f64)> = HashMap::new();
    let mut open: Vec<usize> = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        let i = target.unknown;
        let span = known
            .get(&model.identity[i])
            .copied()
            .unwrap_or((model.truth[i], model.truth[i]));
        spans.insert(i, span);
        if model.fixed(i) {
            spans.insert(i, (model.bounds[i].lower, model.bounds[i].upper));
        }
        if !proven_wide(span, target.floor) {
            open.push(t);
        }
    }
    progress.phase("audit: certificates", open.len());
    report.certificates = certify_all(&model, &layout, &targets, &open, &mut spans, progress);
    open.retain(|&t| !proven_wide(spans[&targets[t].unknown], targets[t].floor));
    report.certified_cells = report.checked_cells - open.len();
    let programs = AtomicUsize::new(0);
    // Council groups first (a few towns, solved in a millisecond), then what they left over
    // whole prefectures, then (when asked) over pairs of prefectures under the nation.
    let scopes = match reach {
        Reach::Prefecture => &[Scope::Council, Scope::Prefecture][..],
        Reach::Nation => &[Scope::Council, Scope::Prefecture, Scope::Nation][..],
    };
    for &scope in scopes {
        let sub_tables = sub_tables(&model, &targets, &open, &layout, scope);
        report.sub_tables += sub_tables.len();
        progress.phase(
            scope.phase(),
            sub_tables.iter().map(|s| s.targets.len()).sum(),
        );
        let failures = prove_sub_tables(
            &model,
            &targets,
            &sub_tables,
            &layout,
            &mut spans,
            &programs,
            progress,
        );
        report.errors.extend(failures);
        open.retain(|&t| !proven_wide(spans[&targets[t].unknown], targets[t].floor));
    }
    // Cells their sub-table did not prove: exactly over their component when it is small.
    let unproven: Vec<usize> = (0..targets.len())
        .filter(|&t| !proven_wide(spans[&targets[t].unknown], targets[t].floor))
        .collect();
    progress.phase("audit: exact components", unproven.len());
    let (root_of, sizes) = components(&model);
    let mut free_of_component: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, root) in root_of.iter().enumerate() {
        if !model.fixed(i) && sizes.get(root).is_some_and(|n| *n <= exact_limit) {
            free_of_component.entry(*root).or_default().push(i);
        }
    }
    let mut by_component: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &t in &unproven {
        by_component
            .entry(root_of[targets[t].unknown])
            .or_default()
            .push(t);
    }
    let mut exact: HashSet<usize> = HashSet::new();
    for (root, members) in by_component {
        // A hidden cell an earlier release published (same true count) is simply known.
        let (known_cells, members): (Vec<usize>, Vec<usize>) = members
            .into_iter()
            .partition(|&t| model.fixed(targets[t].unknown));
        exact.extend(known_cells);
        if members.is_empty() {
            continue;
        }
        if sizes.get(&root).copied().unwrap_or(0) > exact_limit {
            progress.advance(members.len());
            continue;
        }
        let unknowns = free_of_component.get(&root).cloned().unwrap_or_default();
        let mut local: HashMap<usize, (f64, f64)> = HashMap::new();
        match exact_intervals(
            &model, &unknowns, &targets, &members, &mut local, &programs, progress,
        ) {
            Ok(()) => {
                for &t in &members {
                    spans.insert(targets[t].unknown, local[&targets[t].unknown]);
                    exact.insert(t);
                }
            }
            Err(e) => report.errors.push(e),
        }
    }
    report.exact_cells = exact.len();
    report.linear_programs = programs.load(Ordering::Relaxed);
    for (t, target) in targets.iter().enumerate() {
        let (lo, hi) = spans[&target.unknown];
        let interval = Interval {
            release: target.release,
            fiscal_year: target.fiscal_year,
            level: target.key.level.as_str().to_string(),
            geography: target.key.geography.clone(),
            indicator: target.key.measure.indicator.clone(),
            category: target.key.measure.category.clone(),
            lower: (lo - EPSILON).ceil().max(0.0) as i64,
            upper: hi.is_finite().then(|| (hi + EPSILON).floor() as i64),
            required_width: target.floor,
            exact: exact.contains(&t),
            key: target.key.clone(),
        };
        if let Some(width) = interval.width() {
            report.narrowest_width = Some(report.narrowest_width.map_or(width, |n| n.min(width)));
        }
        if proven_wide((lo, hi), target.floor) {
            report
                .proven
                .insert(model.identity[target.unknown].clone(), (lo, hi));
        } else {
            report.exposed.push(interval);
        }
    }
    progress.end_phase();
    report
}

/// Solve `sub_tables` in parallel; widens `spans` with every table found. Returns the
/// solver's failures.
fn prove_sub_tables(
    model: &Model,
    targets: &[Target],
    sub_tables: &[SubTable],
    layout: &Layout,
    spans: &mut HashMap<usize, (f64, f64)>,
    programs: &AtomicUsize,
    progress: &Progress,
) -> Vec<String> {
    let members = SubTable::targets;
    let (_, failures) = widen_in_parallel(sub_tables, members, targets, spans, |sub, local| {
        let unknowns = unknowns_of(model, &sub.places, &layout.blocks[sub.block]);
        let started = std::time::Instant::now();
        let before = programs.load(Ordering::Relaxed);
        let outcome = prove_in(
            model,
            &unknowns,
            targets,
            &sub.targets,
            local,
            programs,
            progress,
        );
        tracing::debug!(
            places = sub.places.len(),
            unknowns = unknowns.len(),
            targets = sub.targets.len(),
            programs = programs.load(Ordering::Relaxed) - before,
            seconds = started.elapsed().as_secs_f64(),
            "indicators: sub-table proven"
        );
        outcome.map(|()| 0)
    });
    failures
}

/// Run the certificates over the `open` targets, one prefecture (region) at a time and in
/// parallel. Returns how many certificates were found.
fn certify_all(
    model: &Model,
    layout: &Layout,
    targets: &[Target],
    open: &[usize],
    spans: &mut HashMap<usize, (f64, f64)>,
    progress: &Progress,
) -> usize {
    let mut regions: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &t in open {
        let key = &targets[t].key;
        let region = layout.region(&(key.level, key.geography.clone()));
        regions.entry(region).or_default().push(t);
    }
    let regions: Vec<Vec<usize>> = regions.into_values().collect();
    let (found, _) =
        widen_in_parallel(&regions, Vec::as_slice, targets, spans, |members, local| {
            let found = certificate::certify(model, layout, targets, members, local);
            progress.advance(members.len());
            Ok(found)
        });
    found
}

/// Run `work` over `groups` on every core. Each group starts from `spans` of its own targets
/// and widens only those, so the outcome does not depend on which thread takes which group; a
/// group whose work fails widens nothing. Returns the sum of what the work counted and its
/// failures.
fn widen_in_parallel<G: Sync>(
    groups: &[G],
    members: fn(&G) -> &[usize],
    targets: &[Target],
    spans: &mut HashMap<usize, (f64, f64)>,
    work: impl Fn(&G, &mut HashMap<usize, (f64, f64)>) -> Result<usize, String> + Sync,
) -> (usize, Vec<String>) {
    let next = AtomicUsize::new(0);
    let counted = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, (f64, f64))>> = Mutex::new(Vec::new());
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start: &HashMap<usize, (f64, f64)> = spans;
    std::thread::scope(|scope| {
        for _ in 0..workers.min(groups.len()).max(1) {
            scope.spawn(|| {
                while let Some(group) = groups.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut local: HashMap<usize, (f64, f64)> = members(group)
                        .iter()
                        .map(|&t| (targets[t].unknown, start[&targets[t].unknown]))
                        .collect();
                    match work(group, &mut local) {
                        Ok(n) => {
                            counted.fetch_add(n, Ordering::Relaxed);
                            results.lock().expect("results").extend(local);
                        }
                        Err(e) => failures.lock().expect("failures").push(e),
                    }
                }
            });
        }
    });
    for (i, span) in results.into_inner().expect("results") {
        let entry = spans.get_mut(&i).expect("target");
        *entry = (entry.0.min(span.0), entry.1.max(span.1));
    }
    (
        counted.into_inner(),
        failures.into_inner().expect("failures"),
    )
}

/// An interval (LP bounds, rounded inwards) at least `floor` wide.
fn proven_wide((lo, hi): (f64, f64), floor: i64) -> bool {
    !hi.is_finite() || (hi + EPSILON).floor() - (lo - EPSILON).ceil().max(0.0) >= floor as f64
}

/// The unknowns, their bounds and constraints, the cells to prove, and the layout.
fn build(
    releases: &[AuditedRelease],
    catalogue: &Catalogue,
    report: &mut AuditReport,
) -> Option<(Model, Vec<Target>, Layout)> {
    let mut index: HashMap<Unknown, usize> = HashMap::new();
    let mut identity: Vec<Unknown> = Vec::new();
    let mut bounds: Vec<Bounds> = Vec::new();
    let mut truth: Vec<f64> = Vec::new();
    let mut rows: Vec<(Vec<(usize, f64)>, bool)> = Vec::new();
    let mut layout = Layout::default();
    let mut block_parent: HashMap<Measure, Measure> = HashMap::new();
    // Hidden cells to bound, by unknown: (release, fiscal year, required width, key).
    let mut wanted: BTreeMap<usize, (Option<i64>, i32, i64, CellKey)> = BTreeMap::new();
    for release in releases {
        let half = release.rounding_base / 2;
        let mut here: HashMap<&CellKey, usize> = HashMap::new();
        for town in release.towns {
            layout
                .towns_of
                .entry(town.prefecture().to_string())
                .or_default()
                .insert(town.code.clone());
            if let Some(council) = &town.council {
                layout.council_of.insert(town.code.clone(), council.clone());
                layout
                    .towns_of_council
                    .entry(council.clone())
                    .or_default()
                    .insert(town.code.clone());
                layout
                    .council_prefectures
                    .entry(council.clone())
                    .or_default()
                    .insert(town.prefecture().to_string());
            }
        }
        for cell in release.cells.iter().filter(|c| c.unit == Unit::Count) {
            let Some(value) = cell.true_value else {
                report
                    .errors
                    .push(format!("{} has no true value in the ledger", cell.key));
                continue;
            };
            let unknown = (release.fiscal_year, cell.key.clone(), value);
            let next = bounds.len();
            let i = *index.entry(unknown.clone()).or_insert(next);
            if i == next {
                identity.push(unknown);
                bounds.push(Bounds {
                    lower: 0.0,
                    upper: f64::INFINITY,
                });
                truth.push(value as f64);
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
                    if value > 0 {
                        let target = wanted.entry(i).or_insert((
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
                Relation::AtMost { lhs, rhs } => {
                    let mut cells = lhs.iter().chain(rhs);
                    if let Some(first) = cells.next() {
                        for other in cells {
                            union_measures(&mut block_parent, &first.measure, &other.measure);
                        }
                    }
                    (
                        lhs.iter()
                            .map(|k| (at(k), 1.0))
                            .chain(rhs.iter().map(|k| (at(k), -1.0)))
                            .collect(),
                        false,
                    )
                }
            });
        }
    }
    let violated = bounds.iter().zip(&truth).any(|(b, t)| {
        b.lower > b.upper + EPSILON || *t < b.lower - EPSILON || *t > b.upper + EPSILON
    });
    if violated {
        report.errors.push(
            "published figures contradict each other or the ledger's true counts (a rounding interval or an earlier release)"
                .into(),
        );
        return None;
    }
    // Blocks of measures linked by "at most" relations (a measure in none is its own block).
    let mut measures: BTreeSet<Measure> = identity.iter().map(|u| u.1.measure.clone()).collect();
    measures.extend(block_parent.keys().cloned());
    let mut block_number: HashMap<Measure, usize> = HashMap::new();
    for measure in measures {
        let root = measure_root(&mut block_parent, &measure);
        let next = layout.blocks.len();
        let block = *block_number.entry(root).or_insert(next);
        if block == next {
            layout.blocks.push(Vec::new());
        }
        layout.blocks[block].push(measure.clone());
        layout.block_of.insert(measure, block);
    }
    // Fixed unknowns become constants; what is left are the LP's variables.
    let fixed = |i: usize| bounds[i].upper - bounds[i].lower < EPSILON;
    let mut constraints = Vec::new();
    // Certificates and sub-tables move a few unknowns and check only the relations they
    // touch: every other relation must hold at the true counts. If the ledger's counts do not
    // satisfy them, nothing can be proven from them.
    let contradicted = rows.iter().any(|(terms, equal)| {
        let value: f64 = terms.iter().map(|(i, k)| k * truth[*i]).sum();
        if *equal {
            value.abs() > EPSILON
        } else {
            value > EPSILON
        }
    });
    if contradicted {
        report
            .errors
            .push("the true counts contradict a relation between cells".into());
        return None;
    }
    let mut touching = vec![Vec::new(); bounds.len()];
    for (terms, equal) in rows {
        let constant: f64 = terms
            .iter()
            .filter(|(i, _)| fixed(*i))
            .map(|(i, k)| k * bounds[*i].lower)
            .sum();
        let free: Vec<(usize, f64)> = terms.into_iter().filter(|(i, _)| !fixed(*i)).collect();
        if !free.is_empty() {
            for (i, _) in &free {
                touching[*i].push(constraints.len());
            }
            constraints.push(Linear {
                terms: free,
                equal,
                rhs: -constant,
            });
        }
    }
    let mut free_by_key: HashMap<CellKey, Vec<usize>> = HashMap::new();
    let mut by_key: HashMap<CellKey, Vec<usize>> = HashMap::new();
    for (i, unknown) in identity.iter().enumerate() {
        if !fixed(i) {
            free_by_key.entry(unknown.1.clone()).or_default().push(i);
        }
        by_key.entry(unknown.1.clone()).or_default().push(i);
    }
    let targets = wanted
        .into_iter()
        .map(|(unknown, (release, fiscal_year, floor, key))| Target {
            unknown,
            release,
            fiscal_year,
            floor,
            key,
        })
        .collect();
    let model = Model {
        identity,
        bounds,
        truth,
        constraints,
        touching,
        free_by_key,
        by_key,
    };
    Some((model, targets, layout))
}

fn measure_root(parent: &mut HashMap<Measure, Measure>, measure: &Measure) -> Measure {
    let mut current = measure.clone();
    while let Some(up) = parent.get(&current).filter(|up| **up != current) {
        current = up.clone();
    }
    current
}

fn union_measures(parent: &mut HashMap<Measure, Measure>, a: &Measure, b: &Measure) {
    let (ra, rb) = (measure_root(parent, a), measure_root(parent, b));
    parent.entry(ra.clone()).or_insert_with(|| ra.clone());
    if ra != rb {
        parent.insert(rb, ra);
    }
}

/// The sub-tables that prove the open targets: one per prefecture and block for towns and
/// councils; for a prefectural or national cell, the nation's cell of that block with the
/// sub-tables of its prefecture and of the prefecture hiding the most of the same measure
/// (the one that can absorb a change under a published national total), every other
/// prefecture fixed.
fn sub_tables(
    model: &Model,
    targets: &[Target],
    open: &[usize],
    layout: &Layout,
    scope: Scope,
) -> Vec<SubTable> {
    if scope == Scope::Council {
        return council_sub_tables(targets, open, layout);
    }
    let mut grouped: BTreeMap<(Vec<String>, usize), Vec<usize>> = BTreeMap::new();
    for &t in open {
        let key = &targets[t].key;
        let place: Place = (key.level, key.geography.clone());
        let block = layout.block_of[&key.measure];
        let local = matches!(key.level, Level::Municipality | Level::Council);
        let prefectures = match scope {
            Scope::Prefecture if local => vec![layout.region(&place)],
            _ => {
                // The cell's own prefecture trades with the largest other hidden one.
                let carriers = hidden_prefectures(model, layout, &key.measure);
                let mut chosen: Vec<String> = Vec::new();
                if key.level != Level::Nation {
                    chosen.push(layout.region(&place));
                }
                for p in carriers {
                    if chosen.len() >= 2 {
                        break;
                    }
                    if !chosen.contains(&p) {
                        chosen.push(p);
                    }
                }
                chosen.sort();
                chosen.insert(0, NATION.to_string());
                chosen
            }
        };
        grouped.entry((prefectures, block)).or_default().push(t);
    }
    let mut out: Vec<SubTable> = grouped
        .into_iter()
        .map(|((prefectures, block), targets)| {
            let mut places: Vec<Place> = Vec::new();
            for p in &prefectures {
                if p == NATION {
                    // The other prefectures stay at their true values under the national
                    // total: only the chosen ones trade with each other.
                    places.push((Level::Nation, NATION.to_string()));
                } else {
                    places.extend(layout.prefecture_places(p));
                }
            }
            places.sort();
            places.dedup();
            SubTable {
                places,
                block,
                targets,
            }
        })
        .collect();
    // Largest first, so that the last sub-table a worker takes is a small one.
    out.sort_by_key(|s| std::cmp::Reverse(s.places.len() * s.targets.len()));
    out
}

/// How far a sub-table reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The towns of one council, the council's own cells at their true values: a town's
    /// cell trades only with its council's other towns.
    Council,
    /// A prefecture's towns, councils and total (with the nation for national cells).
    Prefecture,
    /// Two prefectures with hidden cells and the nation: every cell left open.
    Nation,
}

impl Scope {
    fn phase(self) -> &'static str {
        match self {
            Scope::Council => "audit: council sub-tables",
            Scope::Prefecture => "audit: prefecture sub-tables",
            Scope::Nation => "audit: national sub-tables",
        }
    }
}

/// Town targets grouped by council and block (towns outside a council wait for their
/// prefecture).
fn council_sub_tables(targets: &[Target], open: &[usize], layout: &Layout) -> Vec<SubTable> {
    let mut grouped: BTreeMap<(&String, usize), Vec<usize>> = BTreeMap::new();
    for &t in open {
        let key = &targets[t].key;
        if key.level != Level::Municipality {
            continue;
        }
        if let Some(council) = layout.council_of.get(&key.geography) {
            let block = layout.block_of[&key.measure];
            grouped.entry((council, block)).or_default().push(t);
        }
    }
    grouped
        .into_iter()
        .map(|((council, block), targets)| SubTable {
            places: layout.towns_of_council[council]
                .iter()
                .map(|t| (Level::Municipality, t.clone()))
                .collect(),
            block,
            targets,
        })
        .collect()
}

/// Prefectures whose cell of `measure` is hidden (free), largest true value first.
fn hidden_prefectures(model: &Model, layout: &Layout, measure: &Measure) -> Vec<String> {
    let mut found: Vec<(f64, String)> = layout
        .towns_of
        .keys()
        .filter_map(|p| {
            let key = table::key(Level::Prefecture, p, measure.clone());
            let largest = model
                .free_by_key
                .get(&key)?
                .iter()
                .map(|&i| model.truth[i])
                .fold(0.0, f64::max);
            Some((largest, p.clone()))
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Free unknowns of `places` × `measures`.
fn unknowns_of(model: &Model, places: &[Place], measures: &[Measure]) -> Vec<usize> {
    let mut out = Vec::new();
    for (level, code) in places {
        for measure in measures {
            if let Some(found) = model
                .free_by_key
                .get(&table::key(*level, code, measure.clone()))
            {
                out.extend(found);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// One solved LP over some unknowns (every other unknown fixed at its true value), ready to
/// be re-optimised for one cell after another.
///
/// Each unknown is written as its true value plus `up − down` (both ≥ 0). At `up = down = 0`
/// every constraint holds — the true table is consistent with everything published — and
/// that is exactly where the simplex starts (non-basic variables at their lower bound 0), so
/// the model needs no search for a first feasible table, which on a large sub-table costs
/// more than all its cells' re-optimisations together.
struct SubModel {
    unknowns: Vec<usize>,
    /// Per unknown: its `up` and (when it can go below its true value) `down` columns.
    column: HashMap<usize, (Variable, Option<Variable>)>,
    /// `max z`; a cell is maximised by adding `z ≤ x`, minimised by adding `z ≤ −x`.
    z: Variable,
    /// Bound of `z`: any value above it proves the cell unbounded enough.
    big: f64,
    truth: HashMap<usize, f64>,
    solved: microlp::Solution,
}

impl SubModel {
    fn new(model: &Model, unknowns: &[usize], programs: &AtomicUsize) -> Result<SubModel, String> {
        let largest = unknowns.iter().map(|&i| model.truth[i]).fold(0.0, f64::max);
        let big = 2.0 * largest + 1_000.0;
        let mut problem = Problem::new(OptimizationDirection::Maximize);
        let mut column = HashMap::with_capacity(unknowns.len());
        for &i in unknowns {
            let (b, t) = (model.bounds[i], model.truth[i]);
            let up = problem.add_var(0.0, (0.0, (b.upper - t).max(0.0)));
            let down = (t - b.lower > EPSILON).then(|| problem.add_var(0.0, (0.0, t - b.lower)));
            column.insert(i, (up, down));
        }
        let z = problem.add_var(1.0, (-big, big));
        let mut seen: HashSet<usize> = HashSet::new();
        for &i in unknowns {
            for &ci in &model.touching[i] {
                if !seen.insert(ci) {
                    continue;
                }
                let c = &model.constraints[ci];
                // Outside the sub-table every unknown keeps its true value; inside, the
                // true value moves to the right-hand side with the rest.
                let at_truth: f64 = c.terms.iter().map(|(j, k)| k * model.truth[*j]).sum();
                let mut expression: Vec<(Variable, f64)> = Vec::new();
                for (j, k) in &c.terms {
                    if let Some((up, down)) = column.get(j) {
                        expression.push((*up, *k));
                        if let Some(down) = down {
                            expression.push((*down, -*k));
                        }
                    }
                }
                let op = if c.equal {
                    ComparisonOp::Eq
                } else {
                    ComparisonOp::Le
                };
                // The true table satisfies every relation (`build` checked).
                let slack = c.rhs - at_truth;
                // Equalities hold exactly at the truth; keep float noise out of them.
                let rhs = if c.equal { 0.0 } else { slack.max(0.0) };
                problem.add_constraint(expression, op, rhs);
            }
        }
        programs.fetch_add(1, Ordering::Relaxed);
        let solved = problem
            .solve()
            .and_then(|outcome| {
                outcome
                    .into_solution()
                    .map_err(|_| microlp::Error::InternalError("interrupted".into()))
            })
            .map_err(|e| {
                format!(
                    "the solver failed on a sub-table of {} unknowns: {e}",
                    unknowns.len()
                )
            })?;
        Ok(SubModel {
            unknowns: unknowns.to_vec(),
            truth: unknowns.iter().map(|&i| (i, model.truth[i])).collect(),
            column,
            z,
            big,
            solved,
        })
    }

    fn value(&self, solution: &microlp::Solution, i: usize) -> f64 {
        let (up, down) = self.column[&i];
        self.truth[&i] + solution.var_value(up) - down.map_or(0.0, |d| solution.var_value(d))
    }

    /// The largest (or, negated, the smallest) value of unknown `i`; widens `spans` of every
    /// unknown of the sub-table with the table found. `None` above: unbounded.
    fn extreme(
        &self,
        i: usize,
        maximise: bool,
        spans: &mut HashMap<usize, (f64, f64)>,
        programs: &AtomicUsize,
    ) -> Result<Option<f64>, String> {
        // max: z ≤ t + up − down; min: z ≤ −(t + up − down).
        let sign = if maximise { -1.0 } else { 1.0 };
        let (up, down) = self.column[&i];
        let mut row = vec![(self.z, 1.0), (up, sign)];
        if let Some(down) = down {
            row.push((down, -sign));
        }
        let t = self.truth[&i];
        let rhs = if maximise { t } else { -t };
        programs.fetch_add(1, Ordering::Relaxed);
        let solution = self
            .solved
            .clone()
            .add_constraint(row, ComparisonOp::Le, rhs)
            .and_then(|outcome| {
                outcome
                    .into_solution()
                    .map_err(|_| microlp::Error::InternalError("interrupted".into()))
            })
            .map_err(|e| format!("the solver failed: {e}"))?;
        for &j in &self.unknowns {
            let v = self.value(&solution, j);
            if let Some(span) = spans.get_mut(&j) {
                *span = (span.0.min(v), span.1.max(v));
            }
        }
        let z = solution.var_value(self.z);
        if maximise && z >= self.big - 0.5 {
            if let Some(span) = spans.get_mut(&i) {
                span.1 = f64::INFINITY;
            }
            return Ok(None);
        }
        Ok(Some(if maximise { z } else { -z }))
    }
}

/// Prove the `members` targets in one sub-table: maximise, then minimise, each cell not yet
/// proven by the tables found for the cells before it.
fn prove_in(
    model: &Model,
    unknowns: &[usize],
    targets: &[Target],
    members: &[usize],
    spans: &mut HashMap<usize, (f64, f64)>,
    programs: &AtomicUsize,
    progress: &Progress,
) -> Result<(), String> {
    let sub = SubModel::new(model, unknowns, programs)?;
    for &t in members {
        let target = &targets[t];
        let i = target.unknown;
        for maximise in [true, false] {
            if proven_wide(spans[&i], target.floor) || !sub.column.contains_key(&i) {
                break;
            }
            let found = sub.extreme(i, maximise, spans, programs)?;
            tracing::trace!(key = %target.key, truth = model.truth[i], floor = target.floor, maximise, ?found, span = ?spans[&i], in_model = sub.column.contains_key(&i), "cell");
        }
        progress.advance(1);
    }
    Ok(())
}

/// The attacker's exact interval of each `members` target over its whole component.
fn exact_intervals(
    model: &Model,
    unknowns: &[usize],
    targets: &[Target],
    members: &[usize],
    spans: &mut HashMap<usize, (f64, f64)>,
    programs: &AtomicUsize,
    progress: &Progress,
) -> Result<(), String> {
    let sub = SubModel::new(model, unknowns, programs)?;
    for &t in members {
        let i = targets[t].unknown;
        let mut ignored: HashMap<usize, (f64, f64)> = HashMap::new();
        let upper = sub.extreme(i, true, &mut ignored, programs)?;
        let lower = sub.extreme(i, false, &mut ignored, programs)?;
        spans.insert(i, (lower.unwrap_or(0.0), upper.unwrap_or(f64::INFINITY)));
        progress.advance(1);
    }
    Ok(())
}

/// Certificate spans reaching outside the attacker's exact interval over the whole model
/// (none when the certificates are sound), with how many certificates were found.
#[cfg(test)]
pub(super) fn unsound_certificates(
    releases: &[AuditedRelease],
    catalogue: &Catalogue,
) -> (usize, Vec<String>) {
    let mut report = AuditReport::default();
    let (model, targets, layout) = build(releases, catalogue, &mut report).expect("model");
    let members: Vec<usize> = (0..targets.len())
        .filter(|&t| !model.fixed(targets[t].unknown))
        .collect();
    let truth = |i: usize| (model.truth[i], model.truth[i]);
    let mut spans: HashMap<usize, (f64, f64)> = targets
        .iter()
        .map(|t| (t.unknown, truth(t.unknown)))
        .collect();
    let found = certificate::certify(&model, &layout, &targets, &members, &mut spans);
    let free: Vec<usize> = (0..model.truth.len())
        .filter(|&i| !model.fixed(i))
        .collect();
    let mut exact = HashMap::new();
    let programs = AtomicUsize::new(0);
    exact_intervals(
        &model,
        &free,
        &targets,
        &members,
        &mut exact,
        &programs,
        &Progress::quiet(),
    )
    .expect("exact intervals");
    let unsound = members
        .iter()
        .map(|&t| {
            (
                &targets[t].key,
                spans[&targets[t].unknown],
                exact[&targets[t].unknown],
            )
        })
        .filter(|(_, (lo, hi), (xlo, xhi))| *lo < xlo - EPSILON || *hi > xhi + EPSILON)
        .map(|(key, span, exact)| format!("{key}: certified {span:?} beyond exact {exact:?}"))
        .collect();
    (found, unsound)
}

/// Connected groups of free unknowns: each unknown's representative and each group's size.
fn components(model: &Model) -> (Vec<usize>, HashMap<usize, usize>) {
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let n = model.bounds.len();
    let mut parent: Vec<usize> = (0..n).collect();
    for c in &model.constraints {
        let first = root(&mut parent, c.terms[0].0);
        for (i, _) in &c.terms[1..] {
            let other = root(&mut parent, *i);
            parent[other] = first;
        }
    }
    let root_of: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for (i, r) in root_of.iter().enumerate() {
        if !model.fixed(i) {
            *sizes.entry(*r).or_default() += 1;
        }
    }
    (root_of, sizes)
}
