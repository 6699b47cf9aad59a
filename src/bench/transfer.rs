//! `bench transfer`: a household of 10 children with 5,000 records offered and accepted
//! between two towns of one hub, timed through the library (SPEC §11: accepted in < 200 ms).

use std::time::Instant;

use serde::Serialize;
use serde_json::json;

use crate::audit::AuditEntry;
use crate::ingest::{Candidate, Ingestor, ResultDetail, Submission, chunked};
use crate::schema::Standard;
use crate::store::{Store, clients};
use crate::transfer::TransferReason;
use crate::transfer::workflow::{self, Acceptance, NewTransfer, Placement};

#[derive(Serialize)]
pub struct TransferBench {
    pub backend: String,
    pub children: usize,
    pub records: usize,
    pub offer_ms: f64,
    pub accept_ms: f64,
    pub target_accept_ms: f64,
    /// The same records as a package to another hub: build, write and sign (no database).
    pub package_build_ms: f64,
    /// Read, verify the signature, digests, counts and every record against the schema.
    pub package_verify_ms: f64,
    pub package_bytes: usize,
    pub machine: String,
    pub when: String,
}

/// Two fresh towns per run (codes from the run's clock) so runs never collide.
fn fresh_code(offset: u32) -> String {
    let base = 10_000 + (chrono::Utc::now().timestamp_micros() as u64 % 30_000) as u32 + offset;
    crate::demo::with_check_digit(&format!("{base:05}"))
}

pub fn transfer(
    store: Store,
    backend: &str,
    children: usize,
    records: usize,
) -> anyhow::Result<TransferBench> {
    let ingestor = Ingestor::new(std::sync::Arc::new(Standard::load()));
    let mut conn = store.conn()?;
    let (origin, destination) = (fresh_code(0), fresh_code(1));
    for code in [&origin, &destination] {
        clients::add_municipality(&mut conn, code, "ベンチ町", None, None, "bench")?;
    }
    let kids: Vec<String> = (0..children).map(|i| format!("B{i:04}")).collect();
    let mut batch = Vec::with_capacity(records);
    for (i, kid) in kids.iter().enumerate() {
        batch.push(json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("subj-{i}"),
            "subject": {"resident_no": kid}, "effective_date": "2015-04-01", "household_no": "HB1",
            "name": format!("ベンチ 子{i}"), "birth_date": "2015-04-01", "sex": 1, "role": "child",
        }));
    }
    let per_child = records.saturating_sub(children) / children.max(1);
    for (i, kid) in kids.iter().enumerate() {
        for n in 0..per_child {
            batch.push(json!({
                "record_type": "school-wellbeing-check", "schema_version": "1.0",
                "source_record_id": format!("wb-{i}-{n}"), "subject": {"resident_no": kid},
                "effective_date": "2025-06-01", "checked_on": "2025-06-01",
                "instrument": "こころの健康観察", "result": "watch",
            }));
        }
    }
    let total = batch.len();
    let (package_build_ms, package_verify_ms, package_bytes) =
        package_round(&origin, &batch, &ingestor.standard)?;
    let submission = Submission {
        municipality: origin.clone(),
        source: "bench".into(),
        allowed_types: None,
        client_id: None,
    };
    let candidates = batch
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, record)| Candidate {
            index,
            row: None,
            parsed: Ok(record),
        });
    ingestor.ingest(
        &mut conn,
        &submission,
        false,
        ResultDetail::Rejected,
        chunked(candidates),
    )?;
    let entry = |action: &str, town: &str| AuditEntry {
        municipality_code: town.to_string(),
        client_name: Some("bench".into()),
        action: action.into(),
        result: "ok".into(),
        ..AuditEntry::default()
    };
    let started = Instant::now();
    let id = workflow::offer(
        &mut conn,
        &NewTransfer {
            origin: &origin,
            destination: Some(&destination),
            children: &kids,
            legal_basis: "bench",
            reason: TransferReason::Moved,
            note: None,
            offered_by: "bench",
            deadline_days: 14,
            escalate_to: "bench",
        },
        &entry("transfer.offer", &origin),
    )?;
    let offer_ms = started.elapsed().as_secs_f64() * 1000.0;
    let placed: Vec<String> = kids.iter().map(|k| format!("D{k}")).collect();
    let placements: Vec<Placement> = kids
        .iter()
        .zip(&placed)
        .map(|(o, d)| Placement {
            origin_resident_no: o,
            destination_resident_no: d,
        })
        .collect();
    let started = Instant::now();
    workflow::accept(
        &mut conn,
        id,
        &Acceptance {
            destination: &destination,
            placements: &placements,
            declined_records: &[],
            decided_by: "bench",
        },
        &entry("transfer.accept", &destination),
    )?;
    let accept_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(TransferBench {
        backend: backend.to_string(),
        children,
        records: total,
        offer_ms: (offer_ms * 10.0).round() / 10.0,
        accept_ms: (accept_ms * 10.0).round() / 10.0,
        target_accept_ms: 200.0,
        package_build_ms: (package_build_ms * 10.0).round() / 10.0,
        package_verify_ms: (package_verify_ms * 10.0).round() / 10.0,
        package_bytes,
        machine: super::machine(),
        when: crate::store::now_rfc3339(),
    })
}

/// Time the between-hubs path of the same household: (build ms, verify ms, bytes).
fn package_round(
    origin: &str,
    batch: &[serde_json::Value],
    standard: &Standard,
) -> anyhow::Result<(f64, f64, usize)> {
    use crate::transfer::package::{self, Child, Header, Package, PackageRecord};
    let started = Instant::now();
    let records: Vec<PackageRecord> = batch
        .iter()
        .map(|r| PackageRecord {
            origin_resident_no: r["subject"]["resident_no"]
                .as_str()
                .unwrap_or_default()
                .into(),
            source: "bench".into(),
            source_record_id: r["source_record_id"].as_str().unwrap_or_default().into(),
            record_type: r["record_type"].as_str().unwrap_or_default().into(),
            data: r.clone(),
        })
        .collect();
    let mut children: Vec<String> = records
        .iter()
        .map(|r| r.origin_resident_no.clone())
        .collect();
    children.sort();
    children.dedup();
    let mut bench_package = Package {
        header: Header {
            schema_version: "1".into(),
            package_id: package::random_id(),
            conversation_id: package::random_id(),
            origin: origin.to_string(),
            destination: "011002".into(),
            created: chrono::Utc::now().to_rfc3339(),
            legal_basis: "bench".into(),
            reason: "moved".into(),
        },
        manifest: Vec::new(),
        children: Some(
            children
                .into_iter()
                .map(|origin_resident_no| Child {
                    origin_resident_no,
                    support_measure: false,
                    objection: None,
                })
                .collect(),
        ),
        records: Some(records),
    };
    bench_package.manifest = package::manifest_of(&bench_package);
    let key = package::new_signing_key();
    let signature = package::sign_package(&key, &bench_package);
    let xml = package::to_xml(&bench_package);
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let parsed = package::parse(&xml)?;
    package::verify_package_signature(&parsed, &signature)?;
    package::check_contents(&parsed, standard)?;
    Ok((
        build_ms,
        started.elapsed().as_secs_f64() * 1000.0,
        xml.len(),
    ))
}
