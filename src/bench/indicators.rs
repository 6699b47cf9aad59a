//! `bench indicators`: national indicators over synthetic towns written straight into an
//! empty database (their loading is not what is measured), then a real release for fiscal
//! 2025 — every town's counts, aggregation, protection, the LP audit with its repairs, and
//! the write to the ledger — each phase timed.
//!
//! Two shapes: `--children N` alone gives towns of 10,000 children each and almost no small
//! cell (SPEC §11's compute target: 1M children in < 5 s). `--towns T --realistic` gives T
//! towns over the 47 prefectures with Japan's skewed populations (about 15 % under 5,000
//! people, half under 25,000, a dozen over a million; log-normal) and children in proportion,
//! so that small towns bring the many small, hidden cells a national release must protect.

use std::time::Instant;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::demo::{Rng, with_check_digit};
use crate::indicators::disclosure::{DisclosureConfig, InformationLoss};
use crate::indicators::progress::{PhaseDuration, Progress};
use crate::indicators::{Catalogue, FiscalYear, pipeline};
use crate::schema::Standard;
use crate::store::tables::{councils, municipalities, records, subjects};
use crate::store::{DbConn, Store, now_rfc3339};
use crate::write_tx;

#[derive(Serialize)]
pub struct IndicatorsBench {
    pub backend: String,
    pub shape: String,
    pub children: usize,
    pub towns: usize,
    pub records: usize,
    pub load_seconds: f64,
    /// Read every town's subjects and records, evaluate the basic items, count, aggregate.
    pub compute_seconds: f64,
    /// Primary and complementary suppression, rounding, rates (first pass).
    pub protect_seconds: f64,
    /// The LP audit of every round and the repairs between rounds.
    pub audit_seconds: f64,
    /// The whole `indicators release`, from counting to the ledger write.
    pub release_seconds: f64,
    /// `indicators audit` of the stored ledger.
    pub reaudit_seconds: f64,
    pub phases: Vec<PhaseDuration>,
    pub cells: usize,
    pub hidden_cells: usize,
    /// Hidden cells with a non-zero count, each proven at least its floor wide.
    pub checked_cells: usize,
    pub linear_programs: usize,
    pub sub_tables: usize,
    pub information_loss: InformationLoss,
    pub peak_rss_mb: f64,
    pub target_seconds: f64,
    pub machine: String,
    pub when: String,
}

/// Children per town in the uniform shape (households of two children and a guardian).
const CHILDREN_PER_TOWN: usize = 10_000;

/// Share of the population aged 0–17 (about 14 % in Japan).
const CHILD_SHARE: f64 = 0.14;

/// A synthetic town to write.
struct TownSpec {
    code: String,
    council: String,
    population: i64,
    children: usize,
}

/// `children` children in towns of `CHILDREN_PER_TOWN`, all of 60,000 people.
fn uniform_towns(children: usize) -> Vec<TownSpec> {
    let towns = children.div_ceil(CHILDREN_PER_TOWN).max(1);
    (0..towns)
        .map(|t| TownSpec {
            code: with_check_digit(&format!("{:02}{:03}", 1 + t % 47, 100 + t / 47)),
            council: format!("ベンチ協議会{}", t / 10),
            population: 60_000,
            children: CHILDREN_PER_TOWN.min(children - t * CHILDREN_PER_TOWN),
        })
        .collect()
}

/// The standard normal quantile (Acklam's rational approximation; ample for a benchmark).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// `towns` towns with log-normal populations: median 25,000 and 15 % under 5,000 (σ ≈ 1.55),
/// capped at 3.7 million (Yokohama); spread over the 47 prefectures in councils of five
/// neighbours. Children are `children` in all, in proportion to population (at least one).
fn realistic_towns(towns: usize, children: usize) -> Vec<TownSpec> {
    let median: f64 = 25_000.0;
    let sigma = (median / 5_000.0).ln() / -normal_quantile(0.15);
    let mut populations: Vec<i64> = (0..towns)
        .map(|i| {
            let p = (i as f64 + 0.5) / towns as f64;
            (median * (sigma * normal_quantile(p)).exp()).min(3_700_000.0) as i64
        })
        .collect();
    // Deterministic shuffle, so prefectures mix large and small towns.
    let mut rng = Rng::new(1741);
    for i in (1..populations.len()).rev() {
        populations.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let people: i64 = populations.iter().sum();
    let per_child = people as f64 * CHILD_SHARE / children.max(1) as f64;
    populations
        .into_iter()
        .enumerate()
        .map(|(t, population)| {
            let prefecture = 1 + t % 47;
            let within = t / 47;
            TownSpec {
                code: with_check_digit(&format!("{prefecture:02}{:03}", 100 + within)),
                council: format!("ベンチ協議会{prefecture:02}-{}", within / 5),
                population,
                children: ((population as f64 * CHILD_SHARE / per_child).round() as usize).max(1),
            }
        })
        .collect()
}

/// Write the towns and their children, guardians and records; returns the number of
/// records. Every child has a wellbeing check (20 % with a concern), 10 % a support outcome
/// at a random stage with one or two difficulty types; 6 % of guardians public assistance.
fn load(conn: &mut DbConn, towns: &[TownSpec], catalogue: &Catalogue) -> anyhow::Result<usize> {
    let now = now_rfc3339();
    let mut rng = Rng::new(11);
    let mut record_count = 0;
    for (t, town) in towns.iter().enumerate() {
        let code = &town.code;
        let here = town.children;
        let mut people = Vec::with_capacity(here * 3 / 2 + 1);
        let mut facts = Vec::new();
        for h in 0..here.div_ceil(2) {
            let household = format!("H{h}");
            let guardian = format!("{code}G{h}");
            people.push((
                guardian.clone(),
                household.clone(),
                "1985-05-05".to_string(),
                "guardian",
                json!({}),
            ));
            if rng.chance(6) {
                facts.push((
                    guardian.clone(),
                    "public-assistance",
                    json!({"started_on": "2024-01-01"}),
                ));
            }
            for c in 0..2.min(here - h * 2) {
                let child = format!("{code}C{h}-{c}");
                let birth = format!(
                    "{}-0{}-1{}",
                    2008 + rng.below(17),
                    1 + rng.below(9),
                    rng.below(10)
                );
                people.push((
                    child.clone(),
                    household.clone(),
                    birth,
                    "child",
                    json!({"guardians": [guardian]}),
                ));
                let result = if rng.chance(20) {
                    "concern"
                } else {
                    "no_concern"
                };
                facts.push((
                    child.clone(),
                    "school-wellbeing-check",
                    json!({"checked_on": "2025-06-01", "result": result}),
                ));
                if rng.chance(10) {
                    let stage = rng.pick(&catalogue.stages);
                    let mut difficulties = vec![rng.pick(&catalogue.difficulties)];
                    if rng.chance(25) {
                        difficulties.push(rng.pick(&catalogue.difficulties));
                        difficulties.dedup();
                    }
                    facts.push((child, "support-outcome", json!({"decided_on": "2025-07-01", "stage": stage, "difficulty_types": difficulties})));
                }
            }
        }
        record_count += facts.len();
        write_tx!(conn, |c| {
            // The town's council is an entity its `council` column names.
            diesel::insert_into(councils::table)
                .values((
                    councils::code.eq(&town.council),
                    councils::name.eq(&town.council),
                    councils::created_at.eq(&now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
            diesel::insert_into(municipalities::table)
                .values((
                    municipalities::municipality_code.eq(code),
                    municipalities::name.eq(format!("ベンチ町{t}")),
                    municipalities::council.eq(&town.council),
                    municipalities::population.eq(town.population),
                    municipalities::created_at.eq(&now),
                ))
                .execute(c)?;
            for chunk in people.chunks(1000) {
                let rows: Vec<_> = chunk
                    .iter()
                    .map(|(no, household, birth, role, extra)| {
                        let mut data = json!({"record_type": "subject", "subject": {"resident_no": no}, "birth_date": birth, "role": role, "household_no": household});
                        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
                            d.extend(e.clone());
                        }
                        (
                            subjects::municipality_code.eq(code),
                            subjects::resident_no.eq(no),
                            subjects::household_no.eq(Some(household)),
                            subjects::birth_date.eq(Some(birth)),
                            subjects::role.eq(Some(*role)),
                            subjects::support_measure.eq(false),
                            subjects::data.eq(data.to_string()),
                            subjects::updated_at.eq(&now),
                        )
                    })
                    .collect();
                diesel::insert_into(subjects::table)
                    .values(rows)
                    .execute(c)?;
            }
            for (n, chunk) in facts.chunks(1000).enumerate() {
                let rows: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, (about, record_type, data))| {
                        (
                            records::municipality_code.eq(code),
                            records::source.eq("bench"),
                            records::source_record_id.eq(format!("b{n}-{i}")),
                            records::record_type.eq(*record_type),
                            records::schema_version.eq("1.0"),
                            records::subject_resident_no.eq(Some(about)),
                            records::effective_date.eq("2025-06-01"),
                            records::data.eq(data.to_string()),
                            records::content_hash.eq(""),
                            records::version.eq(1),
                            records::retracted.eq(false),
                            records::updated_at.eq(&now),
                        )
                    })
                    .collect();
                diesel::insert_into(records::table)
                    .values(rows)
                    .execute(c)?;
            }
            diesel::QueryResult::Ok(())
        })?;
    }
    Ok(record_count)
}

/// What to load: `towns` with `realistic` populations, or uniform towns of 10,000 children.
pub struct Shape {
    pub children: usize,
    pub towns: Option<usize>,
    pub realistic: bool,
}

pub fn indicators(store: Store, backend: &str, shape: &Shape) -> anyhow::Result<IndicatorsBench> {
    let mut conn = store.conn()?;
    if !crate::store::clients::list_municipalities(&mut conn)?.is_empty() {
        anyhow::bail!(
            "bench indicators needs an empty database (national indicators cover every town in it)"
        );
    }
    let standard = Standard::load();
    let version = standard.latest();
    let catalogue = Catalogue::from_standard(version);
    let specs = match (shape.realistic, shape.towns) {
        (true, towns) => realistic_towns(towns.unwrap_or(1_741), shape.children),
        (false, None) => uniform_towns(shape.children),
        (false, Some(_)) => anyhow::bail!("--towns needs --realistic"),
    };
    let started = Instant::now();
    let record_count = load(&mut conn, &specs, &catalogue)?;
    let load_seconds = started.elapsed().as_secs_f64();
    drop(conn);

    let config = DisclosureConfig::default();
    let progress = Progress::for_terminal();
    let started = Instant::now();
    let (candidate, id) = pipeline::release(
        &store,
        version,
        FiscalYear(2025),
        &config,
        "bench",
        &progress,
    )?;
    let release_seconds = started.elapsed().as_secs_f64();
    if id.is_none() {
        anyhow::bail!(
            "the synthetic release was refused: {} exposed, first {:?}, errors {:?}",
            candidate.report.exposed.len(),
            candidate.report.exposed.first(),
            candidate.report.errors.first()
        );
    }
    let stored = crate::store::indicators::ledger(&mut store.conn()?)?;
    let phases = stored
        .last()
        .map(|r| r.audit.phases.clone())
        .unwrap_or_default();
    let seconds_of = |prefix: &str| -> f64 {
        phases
            .iter()
            .filter(|p| p.phase.starts_with(prefix))
            .map(|p| p.seconds)
            .sum()
    };
    let started = Instant::now();
    let reaudit = pipeline::reaudit(&mut store.conn()?, version, &Progress::quiet())?;
    let reaudit_seconds = started.elapsed().as_secs_f64();
    if !reaudit.passed() {
        anyhow::bail!("the stored ledger failed its re-audit");
    }
    Ok(IndicatorsBench {
        backend: backend.to_string(),
        shape: if shape.realistic {
            "realistic".into()
        } else {
            "uniform".into()
        },
        children: specs.iter().map(|s| s.children).sum(),
        towns: specs.len(),
        records: record_count,
        load_seconds,
        compute_seconds: seconds_of("compute"),
        protect_seconds: seconds_of("protect"),
        audit_seconds: seconds_of("audit") + seconds_of("repair"),
        release_seconds,
        reaudit_seconds,
        phases,
        cells: candidate.cells.len(),
        hidden_cells: candidate.cells.iter().filter(|c| c.hidden()).count(),
        checked_cells: candidate.report.checked_cells,
        linear_programs: candidate.report.linear_programs,
        sub_tables: candidate.report.sub_tables,
        information_loss: InformationLoss::of(&candidate.cells),
        peak_rss_mb: (super::peak_rss_mb() * 10.0).round() / 10.0,
        target_seconds: if shape.realistic { 60.0 } else { 5.0 },
        machine: super::machine(),
        when: now_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The realistic shape has Japan's skew: about 15 % of towns under 5,000 people, about
    /// half under 25,000, a few over a million, every prefecture 01–47.
    #[test]
    fn realistic_populations_are_skewed_like_japan() {
        let towns = realistic_towns(1_741, 1_000_000);
        let share = |limit: i64| {
            towns.iter().filter(|t| t.population < limit).count() as f64 / towns.len() as f64
        };
        assert!((0.13..0.17).contains(&share(5_000)), "{}", share(5_000));
        assert!((0.48..0.52).contains(&share(25_000)), "{}", share(25_000));
        let millions = towns.iter().filter(|t| t.population > 1_000_000).count();
        assert!((5..=30).contains(&millions), "{millions}");
        let prefectures: std::collections::BTreeSet<&str> =
            towns.iter().map(|t| &t.code[..2]).collect();
        assert_eq!(prefectures.len(), 47);
        assert!(
            towns
                .iter()
                .all(|t| crate::schema::rules::is_valid_municipality_code(&t.code))
        );
        let children: usize = towns.iter().map(|t| t.children).sum();
        assert!((950_000..1_050_000).contains(&children), "{children}");
    }
}
