//! Benchmarks that put the hub next to the raw limit of its own database, in one run, on the
//! same machine: the same synthetic rows inserted without the hub (one transaction; `COPY` on
//! PostgreSQL) and pushed through the hub's full path (library and HTTP).

pub mod access;
pub mod indicators;
pub mod matching;
pub mod screening;
pub mod transfer;

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::api::{self, AppState, Limits};
use crate::auth::{self, Role};
use crate::demo::Generator;
use crate::ingest::{Ingestor, ResultDetail, Submission, chunked, ndjson_candidate};
use crate::on_conn;
use crate::schema::Standard;
use crate::store::{DbConn, Store, clients};

diesel::table! {
    /// Scratch table with the records table's columns and unique key, for the raw baseline.
    bench_raw (id) {
        id -> BigInt,
        municipality_code -> Text,
        source -> Text,
        source_record_id -> Text,
        record_type -> Text,
        schema_version -> Text,
        subject_resident_no -> Nullable<Text>,
        effective_date -> Text,
        data -> Text,
        content_hash -> Text,
        version -> Integer,
        retracted -> Bool,
        updated_at -> Text,
    }
}

#[derive(Insertable, Clone)]
#[diesel(table_name = bench_raw, treat_none_as_default_value = false)]
struct RawRow {
    municipality_code: String,
    source: String,
    source_record_id: String,
    record_type: String,
    schema_version: String,
    subject_resident_no: Option<String>,
    effective_date: String,
    data: String,
    content_hash: String,
    version: i32,
    retracted: bool,
    updated_at: String,
}

const BENCH_TOWN: &str = "119016";

/// `count` synthetic records as NDJSON lines (deterministic), each with a unique id per run.
pub fn synthetic_lines(count: usize, run_tag: &str) -> Vec<Vec<u8>> {
    let mut generator = Generator::new(42);
    let mut lines = Vec::with_capacity(count);
    let mut household = 0;
    while lines.len() < count {
        household += 1;
        generator.household(BENCH_TOWN, household);
        for mut record in generator.take_records() {
            if lines.len() == count {
                break;
            }
            let id = format!("{run_tag}-{}", lines.len());
            record["source_record_id"] = Value::String(id);
            lines.push(serde_json::to_vec(&record).expect("serialisable"));
        }
    }
    lines
}

pub(crate) fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Serialize)]
pub struct Measurement {
    pub name: String,
    pub records: usize,
    pub seconds: f64,
    pub records_per_second: f64,
    /// This measurement's rate divided by the raw insert's.
    pub ratio_to_raw: f64,
}

#[derive(Serialize)]
pub struct IngestBench {
    pub backend: String,
    pub records: usize,
    pub machine: String,
    pub measurements: Vec<Measurement>,
    pub peak_rss_mb: f64,
    pub when: String,
}

pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

fn rows_for_raw(ingestor: &Ingestor, submission: &Submission, lines: &[Vec<u8>]) -> Vec<RawRow> {
    let now = crate::store::now_rfc3339();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let value: Value = serde_json::from_slice(line).ok()?;
            let p = ingestor.prepare(submission, i, &value).ok()?;
            Some(RawRow {
                municipality_code: submission.municipality.clone(),
                source: submission.source.clone(),
                source_record_id: p.source_record_id,
                record_type: p.record_type,
                schema_version: p.schema_version,
                subject_resident_no: p.subject_resident_no,
                effective_date: p.effective_date,
                data: p.data,
                content_hash: p.content_hash,
                version: 1,
                retracted: false,
                updated_at: now.clone(),
            })
        })
        .collect()
}

/// The raw limit: the same rows into a same-shaped table, no hub, one transaction.
fn raw_insert(conn: &mut DbConn, rows: &[RawRow]) -> anyhow::Result<Duration> {
    let ddl_sqlite = "CREATE TABLE bench_raw (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \
        municipality_code TEXT NOT NULL, source TEXT NOT NULL, source_record_id TEXT NOT NULL, \
        record_type TEXT NOT NULL, schema_version TEXT NOT NULL, subject_resident_no TEXT, \
        effective_date TEXT NOT NULL, data TEXT NOT NULL, content_hash TEXT NOT NULL, \
        version INTEGER NOT NULL, retracted BOOLEAN NOT NULL, updated_at TEXT NOT NULL, \
        UNIQUE (municipality_code, source, source_record_id))";
    on_conn!(conn, |c| diesel::sql_query(
        "DROP TABLE IF EXISTS bench_raw"
    )
    .execute(c))?;
    let took = match conn {
        DbConn::Sqlite(c) => {
            diesel::sql_query(ddl_sqlite).execute(&mut **c)?;
            let started = Instant::now();
            c.immediate_transaction(|c| {
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(bench_raw::table)
                        .values(chunk)
                        .execute(c)?;
                }
                diesel::QueryResult::Ok(())
            })?;
            started.elapsed()
        }
        DbConn::Pg(c) => {
            let ddl = ddl_sqlite.replace(
                "INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL",
                "BIGSERIAL PRIMARY KEY",
            );
            diesel::sql_query(ddl).execute(&mut **c)?;
            let started = Instant::now();
            c.transaction(|c| {
                diesel::copy_from(bench_raw::table)
                    .from_insertable(rows.to_vec())
                    .execute(c)
            })?;
            started.elapsed()
        }
    };
    on_conn!(conn, |c| diesel::sql_query("DROP TABLE bench_raw")
        .execute(c))?;
    Ok(took)
}

/// Register the bench town and a source client with a fresh name; returns (source, token).
fn bench_client(conn: &mut DbConn, tag: &str) -> anyhow::Result<(String, String)> {
    if clients::municipality(conn, BENCH_TOWN)?.is_none() {
        clients::add_municipality(conn, BENCH_TOWN, "ベンチ町", None, None, "bench")?;
    }
    let (token, hash) = auth::new_token();
    let name = format!("bench-{tag}");
    clients::add_client(
        conn,
        &clients::NewClient {
            binding: &auth::Binding::Municipality(BENCH_TOWN.into()),
            name: &name,
            roles: &[Role::Source.as_str().to_string()],
            record_types: None,
            token_hash: &hash,
            cert_fingerprint: None,
        },
        "bench",
    )?;
    Ok((name, token))
}

/// Start the real HTTP server in this process on a free loopback port.
fn start_server(store: Store) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    drop(listener);
    let listen = address.clone();
    std::thread::spawn(move || {
        let state = AppState::new(store, Limits::default());
        actix_web::rt::System::new().block_on(api::serve(state, &listen, None))
    });
    let url = format!("http://{address}/readyz");
    for _ in 0..100 {
        if ureq::get(&url).call().is_ok() {
            return Ok(format!("http://{address}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("bench server did not start")
}

/// Concatenated NDJSON lines as a streaming reader, so the client side holds no copy.
struct LinesReader<'a> {
    lines: std::slice::Iter<'a, Vec<u8>>,
    current: &'a [u8],
    newline_due: bool,
}

impl Read for LinesReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < buf.len() {
            if self.current.is_empty() {
                if self.newline_due {
                    buf[written] = b'\n';
                    written += 1;
                    self.newline_due = false;
                    continue;
                }
                match self.lines.next() {
                    Some(line) => {
                        self.current = line;
                        self.newline_due = true;
                    }
                    None => break,
                }
            }
            let n = self.current.len().min(buf.len() - written);
            buf[written..written + n].copy_from_slice(&self.current[..n]);
            self.current = &self.current[n..];
            written += n;
        }
        Ok(written)
    }
}

fn http_push(
    base: &str,
    token: &str,
    content_type: &str,
    body: ureq::SendBody,
) -> anyhow::Result<Value> {
    let mut response = ureq::post(&format!(
        "{base}/v1/municipalities/{BENCH_TOWN}/records?results=rejected"
    ))
    .header("Authorization", &format!("Bearer {token}"))
    .header("Content-Type", content_type)
    .send(body)?;
    Ok(serde_json::from_reader(response.body_mut().as_reader())?)
}

fn measurement(name: &str, records: usize, took: Duration, raw: Option<f64>) -> Measurement {
    let rate = records as f64 / took.as_secs_f64();
    Measurement {
        name: name.to_string(),
        records,
        seconds: took.as_secs_f64(),
        records_per_second: rate.round(),
        ratio_to_raw: raw.map_or(1.0, |raw| (rate / raw * 1000.0).round() / 1000.0),
    }
}

/// `bench ingest`: raw insert vs the hub (library, HTTP NDJSON, HTTP JSON batches).
pub fn ingest(store: Store, backend: &str, records: usize) -> anyhow::Result<IngestBench> {
    let standard = Arc::new(Standard::load());
    let ingestor = Ingestor::new(standard);
    let tag = format!("{}", chrono::Utc::now().timestamp_micros());
    let lines = synthetic_lines(records, &tag);
    let mut conn = store.conn()?;
    let (lib_source, _) = bench_client(&mut conn, &format!("{tag}-lib"))?;
    let submission = Submission {
        municipality: BENCH_TOWN.to_string(),
        source: lib_source,
        allowed_types: None,
        client_id: None,
    };
    let raw_rows = rows_for_raw(&ingestor, &submission, &lines);
    let raw_took = raw_insert(&mut conn, &raw_rows)?;
    drop(raw_rows);
    let raw = measurement("raw insert (no hub)", records, raw_took, None);
    let raw_rate = raw.records_per_second;
    eprintln!("raw: {:.0} records/s", raw_rate);

    let started = Instant::now();
    let candidates = lines
        .iter()
        .enumerate()
        .map(|(i, line)| ndjson_candidate(i, i as u64 + 1, line));
    let report = ingestor.ingest(
        &mut conn,
        &submission,
        false,
        ResultDetail::Rejected,
        chunked(candidates),
    )?;
    anyhow::ensure!(
        report.created as usize == records,
        "library path stored {} of {records}",
        report.created
    );
    let library = measurement(
        "hub library (parse, validate, upsert with history)",
        records,
        started.elapsed(),
        Some(raw_rate),
    );
    eprintln!("library: {:.0} records/s", library.records_per_second);

    let base = start_server(store.clone())?;
    let (_, token) = bench_client(&mut conn, &format!("{tag}-ndjson"))?;
    let started = Instant::now();
    let mut reader = LinesReader {
        lines: lines.iter(),
        current: &[],
        newline_due: false,
    };
    let answer = http_push(
        &base,
        &token,
        "application/x-ndjson",
        ureq::SendBody::from_reader(&mut reader),
    )?;
    anyhow::ensure!(
        answer["created"].as_u64() == Some(records as u64),
        "HTTP NDJSON answer: {answer}"
    );
    let ndjson = measurement(
        "hub HTTP NDJSON stream",
        records,
        started.elapsed(),
        Some(raw_rate),
    );
    eprintln!("http ndjson: {:.0} records/s", ndjson.records_per_second);

    let (_, token) = bench_client(&mut conn, &format!("{tag}-json"))?;
    let started = Instant::now();
    for batch in lines.chunks(5000) {
        let mut body = b"{\"records\":[".to_vec();
        for (i, line) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(line);
        }
        body.extend_from_slice(b"]}");
        let answer = http_push(
            &base,
            &token,
            "application/json",
            ureq::SendBody::from_reader(&mut std::io::Cursor::new(body)),
        )?;
        anyhow::ensure!(
            answer["rejected"].as_u64() == Some(0),
            "HTTP JSON answer: {answer}"
        );
    }
    let json = measurement(
        "hub HTTP JSON batches of 5,000",
        records,
        started.elapsed(),
        Some(raw_rate),
    );
    eprintln!("http json: {:.0} records/s", json.records_per_second);

    Ok(IngestBench {
        backend: backend.to_string(),
        records,
        machine: machine(),
        measurements: vec![raw, library, ndjson, json],
        peak_rss_mb: (peak_rss_mb() * 10.0).round() / 10.0,
        when: crate::store::now_rfc3339(),
    })
}

#[derive(Serialize)]
pub struct LatencyBench {
    pub backend: String,
    pub target_rate_per_second: u64,
    pub seconds: u64,
    pub requests: usize,
    pub errors: usize,
    pub achieved_rate_per_second: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub machine: String,
    pub when: String,
}

/// `bench latency`: single-record pushes at a fixed rate over loopback.
pub fn latency(
    store: Store,
    backend: &str,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<LatencyBench> {
    let tag = format!("{}", chrono::Utc::now().timestamp_micros());
    let mut conn = store.conn()?;
    let (_, token) = bench_client(&mut conn, &format!("{tag}-latency"))?;
    drop(conn);
    let total = (rate * seconds) as usize;
    let lines = Arc::new(synthetic_lines(total, &tag));
    let base = start_server(store)?;
    let workers = 16u64;
    let interval = Duration::from_secs_f64(workers as f64 / rate as f64);
    let started = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (lines, base, token) = (lines.clone(), base.clone(), token.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let url = format!("{base}/v1/municipalities/{BENCH_TOWN}/records");
                let mut samples = Vec::new();
                let mut errors = 0;
                let offset = interval.mul_f64(w as f64 / workers as f64);
                for (n, line) in lines
                    .iter()
                    .skip(w as usize)
                    .step_by(workers as usize)
                    .enumerate()
                {
                    let due = started + offset + interval * n as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let mut body = b"{\"records\":[".to_vec();
                    body.extend_from_slice(line);
                    body.extend_from_slice(b"]}");
                    // Latency counts from when the request was due, so a slow hub cannot hide
                    // its queueing (no coordinated omission).
                    let result = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {token}"))
                        .header("Content-Type", "application/json")
                        .send(&body[..]);
                    let ok = matches!(&result, Ok(r) if r.status() == 200);
                    if let Ok(mut r) = result {
                        let _ = r.body_mut().read_to_vec();
                    }
                    if !ok {
                        errors += 1;
                    }
                    samples.push(due.elapsed().as_secs_f64() * 1000.0);
                }
                (samples, errors)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(total);
    let mut errors = 0;
    for handle in handles {
        let (s, e) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))?;
        samples.extend(s);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        (samples[i] * 100.0).round() / 100.0
    };
    Ok(LatencyBench {
        backend: backend.to_string(),
        target_rate_per_second: rate,
        seconds,
        requests: samples.len(),
        errors,
        achieved_rate_per_second: (samples.len() as f64 / elapsed).round(),
        p50_ms: pct(0.50),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        machine: machine(),
        when: crate::store::now_rfc3339(),
    })
}
