//! NDJSON pushes: a bad line rejects only itself; a large stream is ingested in bounded memory.

use crate::common;

use std::io::Read;
use std::time::Instant;

use common::{Backend, Hub, Resp, TOWN, Town, record, result_at};
use serde_json::json;

fn ndjson_bad_line_rejects_only_itself(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let mut bad_type = record("school-attendance", "nd-5", "C1");
    bad_type["absence_days"] = json!("many");
    // Line 2 is blank (no record), line 4 is not JSON, line 6 is invalid against the schema,
    // line 7 ends with CRLF.
    let body = format!(
        "{}\n\n{}\n{{\"record_type\": \"subject\", oops}}\n{}\n{}\n{}\r\n",
        record("subject", "nd-1", "C1"),
        record("school-attendance", "nd-2", "C1"),
        record("infant-checkup", "nd-4", "C1"),
        bad_type,
        record("public-assistance", "nd-6", "G1"),
    );
    let report = hub
        .post(
            &format!("/v1/municipalities/{TOWN}/records"),
            Some(&town.token),
            Some("application/x-ndjson"),
            &[],
            body,
        )
        .ok();
    assert_eq!(report["received"], 6, "{report}");
    assert_eq!(report["created"], 4, "{report}");
    assert_eq!(report["rejected"], 2, "{report}");

    let syntax = result_at(&report, 2);
    assert_eq!(syntax["status"], "rejected");
    assert_eq!(syntax["row"], 4, "row is the line number: {syntax}");
    assert_eq!(syntax["errors"][0]["code"], "json_syntax", "{syntax}");
    let invalid = result_at(&report, 4);
    assert_eq!(invalid["row"], 6, "{invalid}");
    assert_eq!(invalid["source_record_id"], "nd-5");
    assert_eq!(invalid["errors"][0]["code"], "type", "{invalid}");
    assert_eq!(
        invalid["errors"][0]["pointer"], "/absence_days",
        "{invalid}"
    );
    for (index, row) in [(0, 1), (1, 3), (3, 5), (5, 7)] {
        let r = result_at(&report, index);
        assert_eq!(r["status"], "created", "{r}");
        assert_eq!(r["row"], row, "{r}");
    }
    for id in ["nd-1", "nd-2", "nd-4", "nd-6"] {
        hub.history(&town, id).ok();
    }
    hub.history(&town, "nd-5").problem(404, "not_found");

    // A line that is not UTF-8 is rejected on its own, too.
    let mut body = format!("{}\n", record("subject", "nd-7", "C2")).into_bytes();
    body.extend_from_slice(b"{\"name\": \"\x82\xa0\"}\n");
    // The last line has no final newline.
    body.extend_from_slice(record("subject", "nd-8", "C3").to_string().as_bytes());
    let report = hub
        .post(
            &format!("/v1/municipalities/{TOWN}/records?results=rejected"),
            Some(&town.token),
            Some("application/x-ndjson"),
            &[],
            body,
        )
        .ok();
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let only = &report["results"][0];
    assert_eq!(only["row"], 2, "{report}");
    assert_eq!(only["errors"][0]["code"], "utf8", "{report}");
    assert_eq!(report["results"].as_array().expect("results").len(), 1);
}

fn numbered(i: usize) -> String {
    format!(
        "{}\n",
        record("public-assistance", &format!("ol-{i:04}"), "G1")
    )
}

/// NDJSON records `range` (ids `ol-NNNN`), then a line over the 1 MiB line limit, then one
/// more record; pushed with `query`.
fn push_cut_stream(hub: &Hub, town: &Town, query: &str, range: std::ops::Range<usize>) -> Resp {
    let mut body: String = range.clone().map(numbered).collect();
    body.push_str(&format!(
        "{{\"name\": \"{}\"}}\n",
        "a".repeat(8 * 1024 * 1024)
    ));
    body.push_str(&numbered(range.end + 1));
    hub.post(
        &format!("/v1/municipalities/{TOWN}/records?results=rejected{query}"),
        Some(&town.token),
        Some("application/x-ndjson"),
        &[],
        body,
    )
}

/// An atomic NDJSON push cut by an overlong line (413 line_too_long) stores nothing, even
/// the full ingest chunks that came before the line.
fn ndjson_overlong_line_atomic_stores_nothing(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let p = push_cut_stream(&hub, &town, "&atomic=true", 0..1500).problem(413, "line_too_long");
    assert!(
        p["detail"].as_str().expect("detail").contains("1501"),
        "{p}"
    );
    let stored = hub.all_changes(&town, 1000).len();
    assert_eq!(
        stored, 0,
        "an atomic NDJSON push cut by an overlong line stored {stored} records"
    );
}

/// Without `atomic`, the 413 line_too_long problem says "records before it were kept": every
/// record before the line must be stored, including those after the last full ingest chunk.
fn ndjson_overlong_line_keeps_records_before_it(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let p = push_cut_stream(&hub, &town, "", 0..1500).problem(413, "line_too_long");
    assert!(
        p["detail"].as_str().expect("detail").contains("kept"),
        "{p}"
    );
    for i in [0, 999, 1000, 1499] {
        let h = hub.history(&town, &format!("ol-{i:04}"));
        assert_eq!(
            h.status, 200,
            "ol-{i:04}, before the overlong line, was not kept"
        );
    }
    hub.history(&town, "ol-1501").problem(404, "not_found");
}

/// Generates `total` NDJSON records on demand so the test never holds the stream in memory.
struct Generated {
    next: usize,
    total: usize,
    line: Vec<u8>,
    pos: usize,
}

impl Generated {
    fn new(total: usize) -> Generated {
        Generated {
            next: 0,
            total,
            line: Vec::new(),
            pos: 0,
        }
    }

    fn line_for(i: usize) -> String {
        let child = format!("B{:07}", i / 4);
        let id = format!("big-{i:07}");
        let r = match i % 4 {
            0 => json!({
                "record_type": "school-attendance", "schema_version": "1.0",
                "source_record_id": id, "subject": {"resident_no": child},
                "effective_date": "2024-03-20", "school_year": 2023, "period": "term3",
                "absence_days": i % 20, "late_days": i % 3, "school_days": 60,
            }),
            1 => json!({
                "record_type": "infant-checkup", "schema_version": "1.0",
                "source_record_id": id, "subject": {"resident_no": child},
                "effective_date": "2023-10-05", "checkup": "1y6m", "attended": true,
                "attended_on": "2023-10-05", "hit_emotionally": i % 50 == 1,
                "left_alone_at_home": false, "long_without_food": false,
                "covered_mouth": false, "shook_violently": false,
                "weight_percentile": (i % 97) as f64 + 0.5,
            }),
            2 => json!({
                "record_type": "school-wellbeing-check", "schema_version": "1.0",
                "source_record_id": id, "subject": {"resident_no": child},
                "effective_date": "2024-02-01", "checked_on": "2024-02-01",
                "instrument": "こころの健康観察", "result": "no_concern",
            }),
            _ => json!({
                "record_type": "subject", "schema_version": "1.0",
                "source_record_id": id, "subject": {"resident_no": child},
                "effective_date": "2015-06-01", "household_no": format!("H{:07}", i / 12),
                "name": "髙橋 蓮", "name_kana": "タカハシ レン", "birth_date": "2015-06-01",
                "sex": 1, "role": "child",
            }),
        };
        format!("{r}\n")
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.line.len() {
            if self.next == self.total {
                return Ok(0);
            }
            self.line = Generated::line_for(self.next).into_bytes();
            self.pos = 0;
            self.next += 1;
        }
        let n = buf.len().min(self.line.len() - self.pos);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// 200,000 records streamed as NDJSON: all created, and the server's peak RSS stays below
/// 256 MB. SQLite only (the embedded default is where memory matters most).
#[test]
fn ndjson_200k_records_bounded_memory_sqlite() {
    const TOTAL: usize = 200_000;
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(TOWN);
    let rss_before = hub.peak_rss_kib();
    let started = Instant::now();
    let resp = hub.post(
        &format!("/v1/municipalities/{TOWN}/records?results=rejected"),
        Some(&town.token),
        Some("application/x-ndjson"),
        &[],
        ureq::SendBody::from_owned_reader(Generated::new(TOTAL)),
    );
    let elapsed = started.elapsed();
    let report = resp.ok();
    let peak_kib = hub.peak_rss_kib();
    println!(
        "ndjson 200k: {:.1} s ({:.0} records/s), server peak RSS {} MiB (before the push {} MiB)",
        elapsed.as_secs_f64(),
        TOTAL as f64 / elapsed.as_secs_f64(),
        peak_kib / 1024,
        rss_before / 1024
    );
    assert_eq!(report["received"], TOTAL, "{}", report["received"]);
    assert_eq!(report["created"], TOTAL, "{}", report["created"]);
    assert_eq!(report["rejected"], 0);
    assert_eq!(
        report["results"],
        json!([]),
        "?results=rejected keeps it small"
    );
    assert!(
        peak_kib < 256 * 1024,
        "server peak RSS {} MiB ≥ 256 MiB",
        peak_kib / 1024
    );
    // Spot-check the far end of the stream.
    hub.history(&town, &format!("big-{:07}", TOTAL - 1)).ok();
    let profile = hub.profile(&town, &format!("B{:07}", TOTAL / 4 - 1)).ok();
    assert_eq!(profile["subject"]["name"], "髙橋 蓮");
    assert_eq!(profile["records"].as_array().expect("records").len(), 3);
}

both_backends!(
    ndjson_bad_line_rejects_only_itself,
    ndjson_overlong_line_atomic_stores_nothing,
    ndjson_overlong_line_keeps_records_before_it,
);
