//! `bench screening`: one town's screening run over its whole population, as a case meeting's
//! worklist is prepared — seed synthetic households through the normal ingest path, adopt the
//! default rule set, run, then read the worklist back as the town's operator.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use serde::Serialize;

use super::{BENCH_TOWN, machine, peak_rss_mb};
use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::ingest::Ingestor;
use crate::schema::Standard;
use crate::screening::{self, workflow};
use crate::store::screening::Acting;
use crate::store::{Store, clients};

#[derive(Serialize)]
pub struct ScreeningBench {
    pub backend: String,
    pub households: u64,
    /// Children screened (every child of the town).
    pub children: u64,
    pub extracted: u64,
    pub seed_seconds: f64,
    /// Scoring every child and storing the snapshot, each extracted child audited.
    pub run_seconds: f64,
    /// The whole worklist read back, each child visible to the operator audited.
    pub worklist_seconds: f64,
    pub peak_rss_mb: f64,
    pub machine: String,
    pub when: String,
}

fn seconds(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

pub fn screening(store: Store, backend: &str, households: u64) -> anyhow::Result<ScreeningBench> {
    let standard = Arc::new(Standard::load());
    let mut conn = store.conn()?;
    anyhow::ensure!(
        clients::list_municipalities(&mut conn)?.is_empty(),
        "bench screening needs an empty database"
    );
    let seeding = Instant::now();
    clients::add_municipality(&mut conn, BENCH_TOWN, "ベンチ町", None, None, "bench")?;
    crate::demo::ingest_households(
        &mut conn,
        &Ingestor::new(standard.clone()),
        BENCH_TOWN,
        households,
        1,
    )?;
    let seed_seconds = seconds(seeding);

    let by = Acting {
        actor: "bench".into(),
        client_name: "bench-screening".into(),
    };
    let audit = AuditEntry {
        municipality_code: BENCH_TOWN.into(),
        client_name: Some(by.client_name.clone()),
        actor: Some(by.actor.clone()),
        action: "screening.run".into(),
        purpose: Some("screening_review".into()),
        result: "ok".into(),
        ..AuditEntry::default()
    };
    let version = standard.latest();
    let rules = serde_json::to_value(screening::default_rule_set(
        version,
        screening::DEFAULT_MIN_ITEMS,
    ))?;
    let err = |e: workflow::ScreeningError| anyhow::anyhow!("{e}");
    workflow::store_and_adopt(&mut conn, version, BENCH_TOWN, &rules, &by, &audit).map_err(err)?;
    // The demo's data is dated up to the end of fiscal 2025.
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 31).expect("valid date");
    let running = Instant::now();
    let run = workflow::run(&mut conn, version, BENCH_TOWN, as_of, &by, &audit).map_err(err)?;
    let run_seconds = seconds(running);

    let operator = Principal::console_operator(BENCH_TOWN);
    let reading = Instant::now();
    let read = AuditEntry {
        action: "screening.worklist.read".into(),
        ..audit
    };
    let worklist = workflow::worklist(&mut conn, &operator, BENCH_TOWN, run, &read).map_err(err)?;
    let worklist_seconds = seconds(reading);
    let population: Vec<workflow::PopulationCell> =
        crate::store::screening::run(&mut conn, BENCH_TOWN, run)?
            .map(|row| serde_json::from_str(&row.population))
            .transpose()?
            .unwrap_or_default();
    Ok(ScreeningBench {
        backend: backend.into(),
        households,
        children: population.iter().map(|cell| cell.children).sum(),
        extracted: worklist.entries.len() as u64,
        seed_seconds,
        run_seconds,
        worklist_seconds,
        peak_rss_mb: (peak_rss_mb() * 10.0).round() / 10.0,
        machine: machine(),
        when: chrono::Utc::now().to_rfc3339(),
    })
}
