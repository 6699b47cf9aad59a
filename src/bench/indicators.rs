//! `bench indicators`: national indicators over N synthetic children (SPEC §11: 1M children
//! in < 5 s). The synthetic council is written straight into the tables (its loading is not
//! what is measured); then the hub computes every town's counts for a fiscal year, aggregates
//! them up to the nation, protects them, and audits the result — each step timed.

use std::time::Instant;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::demo::{Rng, with_check_digit};
use crate::indicators::disclosure::DisclosureConfig;
use crate::indicators::{Catalogue, FiscalYear, pipeline};
use crate::schema::Standard;
use crate::store::tables::{municipalities, records, subjects};
use crate::store::{DbConn, Store, now_rfc3339};
use crate::write_tx;

#[derive(Serialize)]
pub struct IndicatorsBench {
    pub backend: String,
    pub children: usize,
    pub towns: usize,
    pub records: usize,
    pub load_seconds: f64,
    /// Read every town's subjects and records, evaluate the basic items, count, aggregate.
    pub compute_seconds: f64,
    /// Suppression, rounding, rates, and the LP audit (with any extra suppression it asks for).
    pub protect_and_audit_seconds: f64,
    pub hidden_cells: usize,
    pub total_seconds: f64,
    pub target_seconds: f64,
    pub machine: String,
    pub when: String,
}

/// Children per synthetic town (households of two children and a guardian).
const CHILDREN_PER_TOWN: usize = 10_000;

/// Write `children` synthetic children into fresh towns; returns the number of records.
fn load(conn: &mut DbConn, children: usize) -> anyhow::Result<(usize, usize)> {
    let towns = children.div_ceil(CHILDREN_PER_TOWN).max(1);
    let now = now_rfc3339();
    let mut rng = Rng::new(11);
    let mut record_count = 0;
    for t in 0..towns {
        let code = with_check_digit(&format!("{:02}{:03}", 1 + t % 47, 100 + t / 47));
        let here = CHILDREN_PER_TOWN.min(children - t * CHILDREN_PER_TOWN);
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
                    let stage =
                        *rng.pick(&["extracted", "reviewed", "support_needed", "support_started"]);
                    let difficulty =
                        *rng.pick(&["abuse", "poverty", "school_refusal", "young_carer"]);
                    facts.push((child, "support-outcome", json!({"decided_on": "2025-07-01", "stage": stage, "difficulty_types": [difficulty]})));
                }
            }
        }
        record_count += facts.len();
        write_tx!(conn, |c| {
            diesel::insert_into(municipalities::table)
                .values((
                    municipalities::municipality_code.eq(&code),
                    municipalities::name.eq(format!("ベンチ町{t}")),
                    municipalities::council.eq(format!("ベンチ協議会{}", t / 10)),
                    municipalities::population.eq(60_000i64),
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
                            subjects::municipality_code.eq(&code),
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
                            records::municipality_code.eq(&code),
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
    Ok((towns, record_count))
}

pub fn indicators(store: Store, backend: &str, children: usize) -> anyhow::Result<IndicatorsBench> {
    let mut conn = store.conn()?;
    if !crate::store::clients::list_municipalities(&mut conn)?.is_empty() {
        anyhow::bail!(
            "bench indicators needs an empty database (national indicators cover every town in it)"
        );
    }
    let started = Instant::now();
    let (towns, record_count) = load(&mut conn, children)?;
    let load_seconds = started.elapsed().as_secs_f64();

    let standard = Standard::load();
    let version = standard.latest();
    let catalogue = Catalogue::from_standard(version);
    let config = DisclosureConfig::default();
    let started = Instant::now();
    let true_table = pipeline::true_table(&store, version, FiscalYear(2025))?;
    let compute_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let (cells, report) = pipeline::protect_and_audit(&true_table, &[], &config, &catalogue);
    let protect_and_audit_seconds = started.elapsed().as_secs_f64();
    if !report.passed() {
        anyhow::bail!(
            "the synthetic release was refused: {:?}",
            report.exposed.first()
        );
    }
    Ok(IndicatorsBench {
        backend: backend.to_string(),
        children,
        towns,
        records: record_count,
        load_seconds,
        compute_seconds,
        protect_and_audit_seconds,
        hidden_cells: cells.iter().filter(|c| c.hidden()).count(),
        total_seconds: compute_seconds + protect_and_audit_seconds,
        target_seconds: 5.0,
        machine: super::machine(),
        when: now_rfc3339(),
    })
}
