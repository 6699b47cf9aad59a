//! `bench access`: how long a refused read takes beside a read of a child that does not exist.
//! A caller who may not see a child must not learn of it from the time the answer takes, so
//! every median should sit within 10 % of the missing child's.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use super::{BENCH_TOWN, machine, start_server};
use crate::auth::{self, Role};
use crate::store::{DbConn, Store, clients};

/// A second town, whose children the bench town's caseworker may not see.
const OTHER_TOWN: &str = "011002";

#[derive(Serialize)]
pub struct AccessCase {
    pub case: String,
    pub status: u16,
    pub median_ms: f64,
    /// Median over the missing child's median.
    pub ratio_to_missing: f64,
}

#[derive(Serialize)]
pub struct AccessBench {
    pub backend: String,
    pub requests_per_case: usize,
    pub records_per_child: usize,
    pub cases: Vec<AccessCase>,
    pub machine: String,
    pub when: String,
}

fn add_client(conn: &mut DbConn, town: &str, name: &str, roles: &[Role]) -> anyhow::Result<String> {
    let (token, hash) = auth::new_token();
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    clients::add_client(
        conn,
        &clients::NewClient {
            binding: &auth::Binding::Municipality(town.into()),
            name,
            roles: &roles,
            record_types: None,
            token_hash: &hash,
            cert_fingerprint: None,
        },
        "bench",
    )?;
    Ok(token)
}

/// A child's subject record and `records` wellbeing checks.
fn child(resident_no: &str, support_measure: bool, records: usize) -> Vec<Value> {
    let mut batch = vec![json!({
        "record_type": "subject", "schema_version": "1.0",
        "source_record_id": format!("s-{resident_no}"),
        "subject": {"resident_no": resident_no}, "effective_date": "2019-04-01",
        "household_no": format!("H-{resident_no}"), "name": "計測 花子",
        "birth_date": "2019-04-01", "sex": 2, "role": "child",
        "support_measure": support_measure,
    })];
    batch.extend((0..records).map(|i| {
        json!({
            "record_type": "school-wellbeing-check", "schema_version": "1.0",
            "source_record_id": format!("w-{resident_no}-{i}"),
            "subject": {"resident_no": resident_no}, "effective_date": "2025-06-01",
            "checked_on": "2025-06-01", "instrument": "こころの健康観察", "result": "concern",
        })
    }));
    batch
}

fn push(
    agent: &ureq::Agent,
    base: &str,
    town: &str,
    token: &str,
    records: Vec<Value>,
) -> anyhow::Result<()> {
    let sent = records.len();
    let response = agent
        .post(&format!("{base}/v1/municipalities/{town}/records"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(json!({ "records": records }).to_string())?;
    anyhow::ensure!(
        response.status() == 200,
        "push answered {}",
        response.status()
    );
    let report: Value = serde_json::from_slice(&response.into_body().read_to_vec()?)?;
    anyhow::ensure!(
        report["rejected"] == 0 && report["received"] == sent,
        "bench records not all stored: {report}"
    );
    Ok(())
}

/// `bench access`: medians of `requests` profile reads per case.
pub fn access(
    store: Store,
    backend: &str,
    requests: usize,
    records: usize,
) -> anyhow::Result<AccessBench> {
    let tag = chrono::Utc::now().timestamp_micros();
    let mut conn = store.conn()?;
    for (code, name) in [(BENCH_TOWN, "ベンチ町"), (OTHER_TOWN, "ベンチ市")] {
        if clients::municipality(&mut conn, code)?.is_none() {
            clients::add_municipality(&mut conn, code, name, None, None, "bench")?;
        }
    }
    let all = [Role::Source, Role::Caseworker];
    let here = add_client(&mut conn, BENCH_TOWN, &format!("bench-access-{tag}"), &all)?;
    let there = add_client(&mut conn, OTHER_TOWN, &format!("bench-access-{tag}"), &all)?;
    drop(conn);
    let base = start_server(store)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // Resident numbers are at most 20 characters: a run tag and the kind.
    let child_no = |kind: &str| format!("BA{}-{kind}", tag % 100_000_000);
    for (town, token, kind, dv) in [
        (BENCH_TOWN, &here, "plain", false),
        (BENCH_TOWN, &here, "dv", true),
        (BENCH_TOWN, &here, "opted", false),
        (OTHER_TOWN, &there, "other", false),
    ] {
        push(
            &agent,
            &base,
            town,
            token,
            child(&child_no(kind), dv, records),
        )?;
    }
    let objection = agent
        .put(&format!(
            "{base}/v1/municipalities/{BENCH_TOWN}/subjects/{}/opt-out",
            child_no("opted")
        ))
        .header("Authorization", &format!("Bearer {here}"))
        .header("Content-Type", "application/json")
        .header("X-Actor", "bench")
        .send(json!({"objected_on": "2025-04-01"}).to_string())?;
    anyhow::ensure!(
        objection.status() == 200,
        "opt-out answered {}",
        objection.status()
    );

    // (case, town in the path, child, purpose)
    let cases = [
        ("missing", BENCH_TOWN, child_no("missing"), "case_handling"),
        // A second missing child: how far two identical cases drift apart (the noise floor).
        (
            "missing, another",
            BENCH_TOWN,
            child_no("absent"),
            "case_handling",
        ),
        ("other town", OTHER_TOWN, child_no("other"), "case_handling"),
        (
            "DV without the role",
            BENCH_TOWN,
            child_no("dv"),
            "case_handling",
        ),
        (
            "opted out, screening view",
            BENCH_TOWN,
            child_no("opted"),
            "screening_review",
        ),
        (
            "visible (reference)",
            BENCH_TOWN,
            child_no("plain"),
            "case_handling",
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(requests); cases.len()];
    let mut statuses = vec![0u16; cases.len()];
    // Interleaved in a new order every round: whatever follows the heavy visible read pays for
    // it (a fixed cyclic order made the case after it look slow), so every case takes its turn.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..requests {
        for k in (1..order.len()).rev() {
            // xorshift64: a fixed, reproducible shuffle (Fisher–Yates).
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(k, (seed % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            let (_, town, child, purpose) = &cases[i];
            let started = Instant::now();
            let mut response = agent
                .get(&format!("{base}/v1/municipalities/{town}/subjects/{child}"))
                .header("Authorization", &format!("Bearer {here}"))
                .header("X-Purpose", *purpose)
                .header("X-Actor", "bench")
                .call()?;
            let _ = response.body_mut().read_to_vec();
            samples[i].push(started.elapsed().as_secs_f64() * 1000.0);
            statuses[i] = response.status().as_u16();
        }
    }
    let median = |s: &mut Vec<f64>| {
        s.sort_by(|a, b| a.total_cmp(b));
        s[s.len() / 2]
    };
    let medians: Vec<f64> = samples.iter_mut().map(median).collect();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(AccessBench {
        backend: backend.to_string(),
        requests_per_case: requests,
        records_per_child: records,
        cases: cases
            .iter()
            .zip(medians.iter().zip(statuses))
            .map(|((case, ..), (median, status))| AccessCase {
                case: case.to_string(),
                status,
                median_ms: round(*median),
                ratio_to_missing: round(median / medians[0]),
            })
            .collect(),
        machine: machine(),
        when: crate::store::now_rfc3339(),
    })
}
