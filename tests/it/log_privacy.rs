//! The server's own log (stdout and stderr) never holds a child's name, a resident number or a
//! bearer token, whatever the requests carried — valid or rejected records, refused reads,
//! unknown tokens.

use crate::common;

use common::{Backend, Hub, TOWN, record, subject};
use serde_json::json;

const NAME: &str = "ログ確認 太郎";
const KANA: &str = "ログカクニン タロウ";
const ADDRESS: &str = "記録町9-8-7";

fn resident(i: usize) -> String {
    format!("LOGR{i:06}")
}

fn server_log_holds_no_personal_data_or_tokens(backend: Backend) {
    // Every level of the hub's own logging; the libraries at the default level.
    let hub = Hub::start_env(backend, &[], &[("RUST_LOG", "info,kodomo_hub=trace")]);
    let town = hub.town(TOWN);
    let auditor = hub.add_client(TOWN, "auditor", "auditor", None);
    let path = format!("/v1/municipalities/{TOWN}/records");
    let read_headers = [("X-Purpose", "case_handling"), ("X-Actor", "staff-001")];

    // Valid records.
    let mut child = subject("s-log", &resident(1), NAME);
    child["name_kana"] = json!(KANA);
    child["address"] = json!(ADDRESS);
    let mut batch = vec![child];
    for i in 2..20 {
        batch.push(record(
            "school-attendance",
            &format!("sa-log-{i}"),
            &resident(i),
        ));
    }
    hub.push(&town, &batch);

    // Rejected records carrying the name in wrong places.
    let mut bad = subject("s-log-bad", &resident(90), NAME);
    bad["birth_date"] = json!(NAME);
    bad["sex"] = json!(NAME);
    let mut bad_type = record("school-attendance", "sa-log-bad", &resident(91));
    bad_type["absence_days"] = json!(NAME);
    let report = hub.push(&town, &[bad, bad_type]);
    assert_eq!(report["rejected"], 2, "{report}");
    // An atomic batch rejected as a whole.
    hub.post(
        &format!("{path}?atomic=true"),
        Some(&town.token),
        Some("application/json"),
        &[],
        json!({"records": [subject("s-log-a", &resident(92), NAME), {"name": NAME}]}).to_string(),
    )
    .problem(422, "atomic_batch_rejected");
    // A body that is not JSON, with the name in it.
    hub.post(
        &path,
        Some(&town.token),
        Some("application/json"),
        &[],
        format!(
            "{{\"records\": [{{\"name\": \"{NAME}\", \"resident_no\": \"{}\"",
            resident(93)
        ),
    )
    .problem(400, "json_syntax");
    // NDJSON with a broken line, and CSV.
    let ndjson = format!(
        "{}\n{{\"name\": \"{NAME}\", \"subject\": {{\"resident_no\": \"{}\"\n",
        record("school-attendance", "sa-log-nd", &resident(94)),
        resident(95)
    );
    let r = hub.post(
        &path,
        Some(&town.token),
        Some("application/x-ndjson"),
        &[],
        ndjson,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = hub.post(
        &format!("{path}?record_type=subject"),
        Some(&town.token),
        Some("text/csv"),
        &[],
        format!("resident_no,name\n{},{NAME}\n", resident(96)),
    );
    assert!(r.status < 500, "{}", r.text());

    // Reads: allowed, refused, of a missing child.
    for (child, headers) in [
        (resident(1), &read_headers[..]),
        (resident(1), &read_headers[..1]),
        (resident(97), &read_headers[..]),
    ] {
        let r = hub.get_with(
            &format!("/v1/municipalities/{TOWN}/subjects/{child}"),
            Some(&town.token),
            headers,
        );
        assert!(r.status < 500, "{}", r.text());
    }
    hub.get_with(
        &format!("/v1/audit?subject={}", resident(1)),
        Some(&auditor),
        &[],
    )
    .ok();
    hub.put(
        &format!("/v1/municipalities/{TOWN}/subjects/{}/opt-out", resident(1)),
        Some(&town.token),
        Some("application/json"),
        &read_headers,
        json!({"objected_on": "2025-04-01", "legal_note": NAME}).to_string(),
    )
    .ok();

    // Unknown and malformed tokens.
    let unknown = format!("khub_{}", "5a".repeat(32));
    for token in [unknown.as_str(), "not-a-khub-token-7c1d"] {
        hub.get_with(
            &format!("/v1/municipalities/{TOWN}/subjects/{}", resident(1)),
            Some(token),
            &read_headers,
        )
        .problem(401, "unauthorized");
        hub.post(
            &path,
            Some(token),
            Some("application/json"),
            &[],
            json!({"records": [subject("s-x", &resident(98), NAME)]}).to_string(),
        )
        .problem(401, "unauthorized");
    }

    // The hub answered everything; now read what it logged.
    hub.get_with("/readyz", None, &[]).ok();
    let log = hub.server_log();
    assert!(
        log.contains("listening"),
        "the capture holds the server's log: {log:?}"
    );
    let mut secrets: Vec<(String, &str)> = vec![
        (NAME.to_string(), "a child's name"),
        ("ログ確認".to_string(), "part of a child's name"),
        (KANA.to_string(), "a child's name in kana"),
        (ADDRESS.to_string(), "an address"),
        ("LOGR".to_string(), "a resident number"),
        (town.token.clone(), "the system token"),
        (auditor.clone(), "the auditor token"),
        (unknown.clone(), "an unknown token"),
        ("not-a-khub-token-7c1d".to_string(), "a malformed token"),
    ];
    // Token prefixes long enough to identify one.
    for token in [&town.token, &auditor, &unknown] {
        secrets.push((token[..16].to_string(), "the start of a token"));
        secrets.push((token[token.len() - 16..].to_string(), "the end of a token"));
    }
    for (secret, what) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the server log holds {what} ({secret:?}):\n{log}"
        );
    }

    // The audit trail holds resident numbers (its subject column) but no other personal data
    // and no token.
    let rows = hub.raw_db().audit_rows();
    assert!(rows.len() > 10, "{rows:?}");
    for row in &rows {
        for text in row.texts() {
            for (secret, what) in secrets.iter().filter(|(s, _)| s != "LOGR") {
                assert!(
                    !text.contains(secret.as_str()),
                    "the audit trail holds {what}: {row:?}"
                );
            }
        }
    }
}

both_backends!(server_log_holds_no_personal_data_or_tokens);

/// A log written to a file (not a terminal) holds no ANSI colour codes.
#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(common::TOWN);
    hub.get(
        &format!("/v1/municipalities/{}/changes", town.code),
        Some(&town.token),
    );
    let log = hub.server_log();
    assert!(!log.is_empty());
    assert!(!log.contains('\u{1b}'), "escape codes in the log: {log:?}");
}
