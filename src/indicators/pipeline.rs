//! The indicator pipeline over the store: compute a fiscal year's true table, protect it,
//! audit it together with the stored releases (hiding more cells where the audit finds one
//! exposed), and publish it — or refuse it with the audit's report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::audit::{self, AuditReport, AuditSummary, AuditedRelease, Proven, Reach};
use super::disclosure::{self, Cell, DisclosureConfig, InformationLoss, Pinned, Unit};
use super::progress::Progress;
use super::table::{self, CellKey, TownCounts, TrueTable};
use super::{Catalogue, FiscalYear, SUPPORT_OUTCOME, compute};
use crate::audit::AuditEntry;
use crate::indicators::publication::StoredRelease;
use crate::schema::SchemaVersion;
use crate::store::indicators::{self as ledger, NewRelease};
use crate::store::{DbConn, Store, StoreResult};

/// Rounds of extra suppression tried before a release is refused. Each round hides the
/// cheapest cell around each exposed one, so several rounds are normal.
const REPAIR_ROUNDS: usize = 40;

/// Rounds a cell may stay exposed before every published cell around it is hidden at once.
const STUBBORN_AFTER: usize = 3;

/// The audit-trail action of a release (published or refused).
pub const ACTION_RELEASE: &str = "indicators.release";

/// A protected table, audited, not (yet) stored.
pub struct Candidate {
    pub fiscal_year: i32,
    pub towns: Vec<table::Town>,
    pub cells: Vec<Cell>,
    pub report: AuditReport,
    /// Newest stored release when the audit ran.
    pub audited_through: Option<i64>,
    pub rule_set_version: String,
    pub disclosure: DisclosureConfig,
}

/// Count every town's indicators for the fiscal year and aggregate them. Towns are counted in
/// parallel, one database connection per core.
pub fn true_table(
    store: &Store,
    version: &SchemaVersion,
    fy: FiscalYear,
) -> StoreResult<TrueTable> {
    let catalogue = Catalogue::from_standard(version);
    let rules = &version.applicability;
    let mut record_types: Vec<&str> = rules.rules.iter().map(|r| r.record_type.as_str()).collect();
    record_types.push(SUPPORT_OUTCOME);
    record_types.sort_unstable();
    record_types.dedup();
    let mut conn = store.conn()?;
    let towns = ledger::towns(&mut conn)?;
    let transfers = ledger::transfers(&mut conn)?;
    drop(conn);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counted: Vec<StoreResult<Vec<(String, TownCounts)>>> = std::thread::scope(|scope| {
        let work = || {
            let mut conn = store.conn()?;
            let mut done = Vec::new();
            while let Some(town) = towns.get(next.fetch_add(1, Ordering::Relaxed)) {
                let data = ledger::town_data(&mut conn, &town.code, &record_types)?;
                let counts = compute::town_counts(&data, &transfers, rules, &catalogue, fy);
                done.push((town.code.clone(), counts));
            }
            Ok(done)
        };
        let handles: Vec<_> = (0..workers.clamp(1, towns.len().max(1)))
            .map(|_| scope.spawn(work))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut by_town = BTreeMap::new();
    for done in counted {
        by_town.extend(done?);
    }
    Ok(TrueTable::build(fy.0, towns, &by_town, &catalogue))
}

fn audited<'a>(release: &'a StoredRelease) -> AuditedRelease<'a> {
    AuditedRelease {
        id: Some(release.id),
        fiscal_year: release.fiscal_year,
        towns: &release.towns,
        cells: &release.cells,
        rounding_base: release.disclosure.rounding_base,
    }
}

/// Cells of `table` whose true count an earlier release of its fiscal year already showed or
/// hid, with that status (see [`Pinned`]); a count any of them published stays published.
pub fn pinned_cells(table: &TrueTable, earlier: &[&StoredRelease]) -> Pinned {
    let mut pinned = Pinned::new();
    for cell in earlier.iter().flat_map(|r| r.cells.iter()) {
        if cell.unit != Unit::Count || table.counts.get(&cell.key) != cell.true_value.as_ref() {
            continue;
        }
        let status = pinned.entry(cell.key.clone()).or_insert(cell.suppressed);
        if cell.suppressed.is_none() {
            *status = None;
        }
    }
    pinned
}

/// Protect `table` and audit it with the earlier releases of its fiscal year (releases of
/// other years share no unknown with it, so they cannot narrow its cells). A revision keeps
/// what earlier releases published where the data did not change ([`pinned_cells`]). Where
/// the audit finds a cell exposed, hide more new cells and audit again — only the cells not
/// yet proven, since hiding more keeps every earlier proof valid; give up after
/// `REPAIR_ROUNDS`.
pub fn protect_and_audit(
    table: &TrueTable,
    earlier: &[StoredRelease],
    config: &DisclosureConfig,
    catalogue: &Catalogue,
    progress: &Progress,
) -> (Vec<Cell>, AuditReport) {
    let present: BTreeSet<CellKey> = table.counts.keys().cloned().collect();
    let relations = table::relations(&table.towns, catalogue, &present);
    let same_year: Vec<&StoredRelease> = earlier
        .iter()
        .filter(|r| r.fiscal_year == table.fiscal_year)
        .collect();
    let pinned = pinned_cells(table, &same_year);
    progress.phase("protect", 0);
    let mut cells = disclosure::protect(table, config, &relations, &pinned);
    let mut proven = Proven::new();
    let mut exposed_rounds: BTreeMap<CellKey, usize> = BTreeMap::new();
    let mut round = 0;
    let mut reach = Reach::Prefecture;
    loop {
        let mut releases: Vec<AuditedRelease> = same_year.iter().map(|r| audited(r)).collect();
        releases.push(AuditedRelease {
            id: None,
            fiscal_year: table.fiscal_year,
            towns: &table.towns,
            cells: &cells,
            rounding_base: config.rounding_base,
        });
        let mut report = audit::audit_with(&releases, catalogue, &proven, progress, reach);
        round += 1;
        tracing::info!(
            round,
            exposed = report.exposed.len(),
            linear_programs = report.linear_programs,
            ?reach,
            "indicators: audit round"
        );
        if report.passed() {
            return (cells, report);
        }
        let repaired = if config.complementary_suppression && round <= REPAIR_ROUNDS {
            // Cells of earlier releases cannot be repaired by this one's suppression alone,
            // but hiding more of this release around them widens them too.
            let exposed: Vec<CellKey> = report.exposed.iter().map(|i| i.key.clone()).collect();
            for key in &exposed {
                *exposed_rounds.entry(key.clone()).or_default() += 1;
            }
            let stubborn: BTreeSet<CellKey> = exposed_rounds
                .iter()
                .filter(|(_, n)| **n >= STUBBORN_AFTER)
                .map(|(k, _)| k.clone())
                .collect();
            progress.phase("repair", exposed.len());
            disclosure::hide_more(
                &cells, &relations, &exposed, table, config, &pinned, &stubborn,
            )
        } else {
            None
        };
        match (repaired, reach) {
            (Some(more), _) => cells = more,
            // Repair cannot help any more: prove what is left across prefectures before
            // giving up.
            (None, Reach::Prefecture) => reach = Reach::Nation,
            (None, Reach::Nation) => return (cells, report),
        }
        proven = std::mem::take(&mut report.proven);
    }
}

/// The release the hub would publish now for `fy`, audited against the ledger.
pub fn candidate(
    store: &Store,
    version: &SchemaVersion,
    fy: FiscalYear,
    config: &DisclosureConfig,
    progress: &Progress,
) -> StoreResult<Candidate> {
    let catalogue = Catalogue::from_standard(version);
    progress.phase("compute", 0);
    let table = true_table(store, version, fy)?;
    progress.phase("load ledger", 0);
    let stored = ledger::ledger(&mut store.conn()?)?;
    let (cells, report) = protect_and_audit(&table, &stored, config, &catalogue, progress);
    Ok(Candidate {
        fiscal_year: fy.0,
        towns: table.towns,
        cells,
        report,
        audited_through: stored.last().map(|r| r.id),
        rule_set_version: version.applicability.rule_set_version.clone(),
        disclosure: config.clone(),
    })
}

/// Publish `fy` if the audit passes: the release and its audit entry are stored in one
/// transaction. A refused release is audited too. Returns the candidate and the new id.
pub fn release(
    store: &Store,
    version: &SchemaVersion,
    fy: FiscalYear,
    config: &DisclosureConfig,
    published_by: &str,
    progress: &Progress,
) -> StoreResult<(Candidate, Option<i64>)> {
    let candidate = candidate(store, version, fy, config, progress)?;
    let phases = progress.finish();
    let conn = &mut store.conn()?;
    let mut entry = AuditEntry {
        municipality_code: "*".into(),
        client_name: Some(published_by.to_string()),
        roles: Some("admin".into()),
        action: ACTION_RELEASE.into(),
        result: "ok".into(),
        ..AuditEntry::default()
    };
    if !candidate.report.passed() {
        entry.result = "refused".into();
        entry.detail = Some(
            serde_json::json!({
                "fiscal_year": fy.0,
                "exposed_cells": candidate.report.exposed.len(),
                "errors": candidate.report.errors.len(),
            })
            .to_string(),
        );
        crate::store::audit::append(conn, &entry)?;
        return Ok((candidate, None));
    }
    let summary = AuditSummary {
        information_loss: Some(InformationLoss::of(&candidate.cells)),
        phases,
        ..AuditSummary::from(&candidate.report)
    };
    let id = ledger::publish(
        conn,
        &NewRelease {
            fiscal_year: fy.0,
            published_by,
            rule_set_version: &candidate.rule_set_version,
            disclosure: &candidate.disclosure,
            towns: &candidate.towns,
            audit: &summary,
            cells: &candidate.cells,
        },
        candidate.audited_through,
        &entry,
    )?;
    Ok((candidate, Some(id)))
}

/// Audit every stored release together, as an attacker holding all of them would.
pub fn reaudit(
    conn: &mut DbConn,
    version: &SchemaVersion,
    progress: &Progress,
) -> StoreResult<AuditReport> {
    progress.phase("load ledger", 0);
    let stored = ledger::ledger(conn)?;
    let releases: Vec<AuditedRelease> = stored.iter().map(audited).collect();
    let report = audit::audit_with(
        &releases,
        &Catalogue::from_standard(version),
        &Proven::new(),
        progress,
        audit::Reach::Nation,
    );
    progress.finish();
    Ok(report)
}

// The property tests draw synthetic towns with the demo's generator.
#[cfg(all(test, feature = "tools"))]
mod tests {
    use std::collections::HashMap;

    use chrono::NaiveDate;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::demo::{Rng, with_check_digit};
    use crate::indicators::audit::{AuditReport, AuditSummary};
    use crate::indicators::compute::{Fact, Person, TownData};
    use crate::indicators::disclosure::Unit;
    use crate::indicators::table::{Relation, Town};
    use crate::schema::Standard;

    /// Random sparse towns: a few children each, a few screening records and basic items.
    fn sparse_data(seed: u64, towns: usize, catalogue: &Catalogue) -> (Vec<Town>, Vec<TownData>) {
        let mut rng = Rng::new(seed);
        let bases = ["13101", "13102", "13103", "14101", "14102", "14103"];
        let mut list = Vec::new();
        let mut all = Vec::new();
        for base in bases.iter().take(towns) {
            let code = with_check_digit(base);
            let town = Town {
                code: code.clone(),
                name: code.clone(),
                council: rng
                    .pick(&[None, Some("c1"), Some("c2")])
                    .map(str::to_string),
                population: *rng.pick(&[None, Some(1_500), Some(10_000), Some(100_000)]),
            };
            let mut data = TownData {
                code: code.clone(),
                ..TownData::default()
            };
            for i in 0..rng.below(30) {
                let no = format!("{code}-{i}");
                data.people.push(Person {
                    resident_no: no.clone(),
                    birth_date: NaiveDate::from_ymd_opt(2015, 1, 1),
                    ..Person::default()
                });
                if rng.chance(40) {
                    data.facts.push(support_outcome(
                        &mut rng,
                        catalogue,
                        &no,
                        &format!("so-{i}"),
                    ));
                }
                if rng.chance(30) {
                    data.facts.push(Fact {
                        about: no,
                        record_type: "school-wellbeing-check".into(),
                        source_record_id: format!("wb-{i}"),
                        effective_date: "2025-06-01".into(),
                        data: json!({"result": "concern"}),
                        transferred: false,
                    });
                }
            }
            list.push(town);
            all.push(data);
        }
        (list, all)
    }

    /// A support-outcome record decided in fiscal 2025 at a random stage.
    fn support_outcome(rng: &mut Rng, catalogue: &Catalogue, about: &str, id: &str) -> Fact {
        let stage = rng.pick(&catalogue.stages).clone();
        let difficulty = rng.pick(&catalogue.difficulties[..3]).clone();
        Fact {
            about: about.to_string(),
            record_type: crate::indicators::SUPPORT_OUTCOME.into(),
            source_record_id: id.to_string(),
            effective_date: "2025-06-01".into(),
            data: json!({"decided_on": "2025-06-01", "stage": stage, "difficulty_types": [difficulty]}),
            transferred: false,
        }
    }

    fn table_of(
        towns: &[Town],
        data: &[TownData],
        catalogue: &Catalogue,
        version: &SchemaVersion,
    ) -> TrueTable {
        let by_town = data
            .iter()
            .map(|d| {
                let counts = compute::town_counts(
                    d,
                    &[],
                    &version.applicability,
                    catalogue,
                    FiscalYear(2025),
                );
                (d.code.clone(), counts)
            })
            .collect();
        TrueTable::build(2025, towns.to_vec(), &by_town, catalogue)
    }

    fn sparse_table(
        seed: u64,
        towns: usize,
        catalogue: &Catalogue,
        version: &SchemaVersion,
    ) -> TrueTable {
        let (list, data) = sparse_data(seed, towns, catalogue);
        table_of(&list, &data, catalogue, version)
    }

    /// A release as the ledger would hold it.
    fn stored(id: i64, table: &TrueTable, cells: Vec<Cell>) -> StoredRelease {
        StoredRelease {
            id,
            fiscal_year: table.fiscal_year,
            published_at: String::new(),
            published_by: "test".into(),
            rule_set_version: String::new(),
            disclosure: DisclosureConfig::default(),
            towns: table.towns.clone(),
            audit: AuditSummary::from(&AuditReport::default()),
            cells,
        }
    }

    /// What an attacker holding `first` and its revision `second` sees, as one table for
    /// [`propagate`]: a cell whose true count did not change is one unknown (published if
    /// either release published it); a changed one is a separate unknown per release, the
    /// first's renamed `r1:<geography>`.
    fn both_releases(
        first: &[Cell],
        second: &[Cell],
        relations: &[Relation],
    ) -> (Vec<Cell>, Vec<Relation>) {
        let later: HashMap<&CellKey, &Cell> = second.iter().map(|c| (&c.key, c)).collect();
        let changed = |c: &Cell| {
            later
                .get(&c.key)
                .is_none_or(|l| l.true_value != c.true_value)
        };
        let renamed = |k: &CellKey| CellKey {
            geography: format!("r1:{}", k.geography),
            ..k.clone()
        };
        let earlier: HashMap<&CellKey, &Cell> = first.iter().map(|c| (&c.key, c)).collect();
        let mut cells: Vec<Cell> = second
            .iter()
            .map(|c| match earlier.get(&c.key) {
                Some(e) if !changed(e) && c.hidden() && !e.hidden() => (*e).clone(),
                _ => c.clone(),
            })
            .collect();
        cells.extend(first.iter().filter(|c| changed(c)).map(|c| Cell {
            key: renamed(&c.key),
            ..c.clone()
        }));
        let map = |k: &CellKey| match earlier.get(k) {
            Some(e) if changed(e) => renamed(k),
            _ => k.clone(),
        };
        let mut all = relations.to_vec();
        all.extend(relations.iter().map(|r| match r {
            Relation::Sum { total, parts } => Relation::Sum {
                total: map(total),
                parts: parts.iter().map(map).collect(),
            },
            Relation::AtMost { lhs, rhs } => Relation::AtMost {
                lhs: lhs.iter().map(map).collect(),
                rhs: rhs.iter().map(map).collect(),
            },
        }));
        (cells, all)
    }

    /// An attacker independent of the LP: interval arithmetic over the same relations
    /// (subtraction from totals, bounds from "at most" relations), repeated to a fixpoint.
    fn propagate(
        cells: &[Cell],
        relations: &[Relation],
        base: i64,
    ) -> HashMap<CellKey, (f64, f64)> {
        let mut b: HashMap<CellKey, (f64, f64)> = cells
            .iter()
            .filter(|c| c.unit == Unit::Count)
            .map(|c| {
                let bounds = match (c.value, c.rounded) {
                    (Some(v), false) => (v, v),
                    (Some(v), true) => (
                        (v - (base / 2) as f64).max(0.0),
                        v + (base - base / 2 - 1) as f64,
                    ),
                    (None, _) => (0.0, f64::INFINITY),
                };
                (c.key.clone(), bounds)
            })
            .collect();
        let tighten = |b: &mut HashMap<CellKey, (f64, f64)>, k: &CellKey, lo: f64, hi: f64| {
            let e = b.get_mut(k).expect("cell");
            let new = (e.0.max(lo), e.1.min(hi));
            let changed = new.0 > e.0 + 1e-9 || new.1 < e.1 - 1e-9;
            *e = new;
            changed
        };
        for _ in 0..100 {
            let mut changed = false;
            for r in relations {
                // Σ pos (=, ≤) Σ neg
                let (pos, neg, equal): (Vec<CellKey>, Vec<CellKey>, bool) = match r {
                    Relation::Sum { total, parts } => (parts.clone(), vec![total.clone()], true),
                    Relation::AtMost { lhs, rhs } => (lhs.clone(), rhs.clone(), false),
                };
                let sum = |b: &HashMap<CellKey, (f64, f64)>, ks: &[CellKey], hi: bool| -> f64 {
                    ks.iter().map(|k| if hi { b[k].1 } else { b[k].0 }).sum()
                };
                for (i, k) in pos.iter().enumerate() {
                    let others: Vec<CellKey> = pos
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, k)| k.clone())
                        .collect();
                    let hi = sum(&b, &neg, true) - sum(&b, &others, false);
                    let lo = if equal {
                        sum(&b, &neg, false) - sum(&b, &others, true)
                    } else {
                        0.0
                    };
                    changed |= tighten(&mut b, k, lo, hi);
                }
                for (i, k) in neg.iter().enumerate() {
                    let others: Vec<CellKey> = neg
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, k)| k.clone())
                        .collect();
                    let lo = sum(&b, &pos, false) - sum(&b, &others, true);
                    let hi = if equal {
                        sum(&b, &pos, true) - sum(&b, &others, false)
                    } else {
                        f64::INFINITY
                    };
                    changed |= tighten(&mut b, k, lo, hi);
                }
            }
            if !changed {
                break;
            }
        }
        b
    }

    fn narrowed(cells: &[Cell], bounds: &HashMap<CellKey, (f64, f64)>) -> Vec<CellKey> {
        cells
            .iter()
            .filter(|c| c.hidden() && c.unit == Unit::Count && c.true_value.unwrap_or(0) > 0)
            .filter(|c| {
                let (lo, hi) = bounds[&c.key];
                (hi + 1e-6).floor() - (lo - 1e-6).ceil() < c.floor as f64
            })
            .map(|c| c.key.clone())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Every release the hub accepts leaves every hidden non-zero cell at least its floor
        /// wide for an attacker working by subtraction, and the release is accepted; with
        /// complementary suppression off, every cell that attacker can narrow is one the LP
        /// audit flags, with an interval that holds the true count.
        #[test]
        fn accepted_releases_pin_no_hidden_cell(seed in any::<u64>(), towns in 2usize..=6) {
            let standard = Standard::load();
            let version = standard.latest();
            let catalogue = Catalogue::from_standard(version);
            let table = sparse_table(seed, towns, &catalogue, version);
            let present = table.counts.keys().cloned().collect();
            let relations = table::relations(&table.towns, &catalogue, &present);

            let config = DisclosureConfig::default();
            let (cells, report) = protect_and_audit(&table, &[], &config, &catalogue, &Progress::quiet());
            prop_assert!(report.passed(), "refused: {:?}", report.exposed);
            let bounds = propagate(&cells, &relations, config.rounding_base);
            prop_assert!(narrowed(&cells, &bounds).is_empty());

            let weak = DisclosureConfig { complementary_suppression: false, ..config };
            let (cells, report) = protect_and_audit(&table, &[], &weak, &catalogue, &Progress::quiet());
            let flagged: Vec<&CellKey> = report.exposed.iter().map(|i| &i.key).collect();
            // The sub-tables alone (no exact fallback) are sound: every cell the exact audit
            // finds exposed, they do not prove safe either.
            let releases = [AuditedRelease {
                id: None,
                fiscal_year: table.fiscal_year,
                towns: &table.towns,
                cells: &cells,
                rounding_base: weak.rounding_base,
            }];
            let sub_tables_only =
                audit::audit_within(&releases, &catalogue, &Proven::new(), &Progress::quiet(), audit::Reach::Nation, 0);
            prop_assert!(sub_tables_only.errors.is_empty(), "{:?}", sub_tables_only.errors);
            // Every certificate's alternative table is one the exact LP admits too.
            let (_, unsound) = audit::unsound_certificates(&releases, &catalogue);
            prop_assert!(unsound.is_empty(), "{:?}", unsound);
            let unproven: Vec<&CellKey> = sub_tables_only.exposed.iter().map(|i| &i.key).collect();
            for key in &flagged {
                prop_assert!(unproven.contains(key), "{key} proven safe by a sub-table only");
            }
            for key in narrowed(&cells, &propagate(&cells, &relations, weak.rounding_base)) {
                prop_assert!(flagged.contains(&&key), "{key} narrowed by subtraction but not flagged");
            }
            for interval in &report.exposed {
                let truth = table.counts[&interval.key];
                prop_assert!(interval.lower <= truth && interval.upper.is_none_or(|u| truth <= u),
                    "{} = {truth} outside {}…{:?}", interval.key, interval.lower, interval.upper);
            }
        }

        /// Late records after a release (a few more support outcomes in random towns, as
        /// records arrive months late): the revision is accepted, shows again every figure
        /// the first release showed and hides every one it hid whose count did not change,
        /// and an attacker
        /// holding both releases narrows no hidden cell of either below its floor.
        #[test]
        fn late_corrections_revise_without_revealing(
            seed in any::<u64>(),
            towns in 2usize..=6,
            late in 1usize..=4,
        ) {
            let standard = Standard::load();
            let version = standard.latest();
            let catalogue = Catalogue::from_standard(version);
            let config = DisclosureConfig::default();
            let (list, mut data) = sparse_data(seed, towns, &catalogue);
            let first_table = table_of(&list, &data, &catalogue, version);
            let (first, report) =
                protect_and_audit(&first_table, &[], &config, &catalogue, &Progress::quiet());
            prop_assert!(report.passed(), "first release refused: {:?}", report.exposed);
            let ledger = vec![stored(1, &first_table, first.clone())];

            let mut rng = Rng::new(seed ^ 0x5eed);
            for n in 0..late {
                let town = rng.below(data.len() as u64) as usize;
                let Some(child) = data[town].people.first().map(|p| p.resident_no.clone()) else {
                    continue;
                };
                let fact = support_outcome(&mut rng, &catalogue, &child, &format!("late-{n}"));
                data[town].facts.push(fact);
            }
            let second_table = table_of(&list, &data, &catalogue, version);
            let (second, report) =
                protect_and_audit(&second_table, &ledger, &config, &catalogue, &Progress::quiet());
            prop_assert!(report.passed(), "revision refused: {:?} {:?}", report.exposed, report.errors);

            let revised: HashMap<&CellKey, &Cell> = second.iter().map(|c| (&c.key, c)).collect();
            for cell in first.iter().filter(|c| c.unit == Unit::Count) {
                let now = revised[&cell.key];
                if now.true_value == cell.true_value {
                    prop_assert_eq!(now.value, cell.value, "{} unchanged keeps its status", &cell.key);
                }
            }
            let present = second_table.counts.keys().cloned().collect();
            let relations = table::relations(&second_table.towns, &catalogue, &present);
            let (cells, relations) = both_releases(&first, &second, &relations);
            let bounds = propagate(&cells, &relations, config.rounding_base);
            let narrowed = narrowed(&cells, &bounds);
            prop_assert!(narrowed.is_empty(), "narrowed with both releases: {narrowed:?}");
        }
    }
}
