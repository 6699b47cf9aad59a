//! Hostile input over HTTP (issue 14, findings 5 and 9): My Numbers disguised in every free
//! text the hub stores or logs, keys sent twice, bodies in a content coding the hub does not
//! read, and transfer offers with blank text or a deadline out of range.

use crate::common;

use common::{Backend, Hub, OTHER_TOWN, Resp, TOWN, Town, record, subject};
use kodomo_hub::schema::rules::contains_my_number;
use serde_json::{Value, json};

const CHILD: &str = "C-1";

/// One My Number (check digit valid) as people and systems write it.
const DISGUISED: [&str; 6] = [
    "１２３４５６７８９０１８",
    "1234.5678.9018",
    "1234\u{200D}5678\u{200D}9018",
    "1234\u{00A0}5678\u{00A0}9018",
    "MN:123456789018",
    "1234ー5678ー9018",
];

struct Setup {
    hub: Hub,
    town: Town,
    officer: String,
}

fn setup(backend: Backend) -> Setup {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    hub.town(OTHER_TOWN);
    let officer = hub.add_client(TOWN, "officer", "transfer-officer", None);
    let report = hub.push(&town, &[subject("s-1", CHILD, "山田 花子")]);
    assert_eq!(report["rejected"], 0, "{report}");
    Setup { hub, town, officer }
}

fn offer(s: &Setup, body: Value) -> Resp {
    s.hub.post(
        "/v1/transfers",
        Some(&s.officer),
        Some("application/json"),
        &[("X-Actor", "officer-1")],
        body.to_string(),
    )
}

fn offer_body() -> Value {
    json!({
        "destination": OTHER_TOWN, "children": [CHILD], "legal_basis": "児童福祉法第25条の3",
        "reason": "moved", "escalate_to": "課長 山本",
    })
}

/// The field problems of a 400 answer, as (pointer, code) pairs.
fn field_problems(r: &Resp, code: &str) -> Vec<(String, String)> {
    r.problem(400, code)["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_string(),
                e["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect()
}

/// Every disguise is refused in every free-text header, body field and command-line option,
/// and none reaches the database or the server log.
fn disguised_my_numbers_are_refused_everywhere(backend: Backend) {
    let s = setup(backend);
    let profile = format!("/v1/municipalities/{TOWN}/subjects/{CHILD}");
    for disguised in DISGUISED {
        for header in ["X-Actor", "X-Legal-Basis"] {
            let headers = [
                ("X-Purpose", "case_handling"),
                ("X-Actor", "staff-1"),
                (header, disguised),
            ];
            let headers: Vec<_> = headers
                .iter()
                .filter(|(name, value)| *name != header || *value == disguised)
                .copied()
                .collect();
            s.hub
                .get_with(&profile, Some(&s.town.token), &headers)
                .problem(400, "my_number_like");
        }
        let r = s.hub.post(
            &format!("/v1/municipalities/{TOWN}/records"),
            Some(&s.town.token),
            Some("application/json"),
            &[("Idempotency-Key", disguised)],
            json!({"records": [record("infant-checkup", "ic-1", CHILD)]}).to_string(),
        );
        r.problem(400, "my_number_like");

        let r = s.hub.put(
            &format!("/v1/municipalities/{TOWN}/subjects/{CHILD}/opt-out"),
            Some(&s.town.token),
            Some("application/json"),
            &[("X-Actor", "staff-1")],
            json!({"objected_on": "2025-04-01", "legal_note": disguised}).to_string(),
        );
        assert_eq!(
            field_problems(&r, "invalid_request"),
            pairs(&[("/legal_note", "my_number_like")])
        );

        let mut body = offer_body();
        body["legal_basis"] = json!(format!("法第25条 {disguised}"));
        body["note"] = json!(disguised);
        body["escalate_to"] = json!(disguised);
        assert_eq!(
            field_problems(&offer(&s, body), "invalid_request"),
            pairs(&[
                ("/legal_basis", "my_number_like"),
                ("/note", "my_number_like"),
                ("/escalate_to", "my_number_like"),
            ])
        );

        for field in ["--note", "--legal-basis", "--escalate-to", "--actor"] {
            let mut args = vec![
                ("--municipality", TOWN),
                ("--destination", OTHER_TOWN),
                ("--children", CHILD),
                ("--legal-basis", "児童福祉法第25条の3"),
                ("--reason", "moved"),
                ("--escalate-to", "課長 山本"),
                ("--actor", "officer-1"),
            ];
            args.retain(|(name, _)| *name != field);
            args.push((field, disguised));
            let mut command = vec!["transfer", "offer"];
            command.extend(args.iter().flat_map(|(name, value)| [*name, *value]));
            let out = s.hub.cli(&command);
            assert!(!out.status.success(), "{field} {disguised}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("My Number"),
                "{field}"
            );
        }

        let mut student = record("infant-checkup", "ic-2", CHILD);
        student["subject"]["local_ids"] = json!({"student_no": disguised});
        let report = s.hub.push(&s.town, &[student]);
        assert_eq!(report["rejected"], 1, "{report}");
        assert_eq!(
            report["results"][0]["errors"][0]["code"], "my_number_like",
            "{report}"
        );
    }

    let mut db = s.hub.raw_db();
    for row in db.audit_rows() {
        let texts = [&row.actor, &row.legal_basis, &row.purpose];
        for text in texts.into_iter().flatten() {
            assert!(
                !contains_my_number(text),
                "audit row {} holds {text:?}",
                row.seq
            );
        }
    }
    let stored = db.strings("SELECT data AS v FROM record_versions");
    assert!(stored.iter().all(|data| !contains_my_number(data)));
    let log = s.hub.server_log();
    for disguised in DISGUISED {
        assert!(
            !log.contains(disguised),
            "the server log holds {disguised:?}"
        );
    }
}
both_backends!(disguised_my_numbers_are_refused_everywhere);

/// A key sent twice is refused with the pointer of the second one, wherever JSON is read.
#[test]
fn duplicate_keys_are_refused_with_a_pointer() {
    let s = setup(Backend::Sqlite);
    let twice = r#"{"records": [{"record_type": "infant-checkup", "schema_version": "1.0",
        "source_record_id": "ic-9", "subject": {"resident_no": "C-1", "resident_no": "C-2"},
        "effective_date": "2024-05-01"}]}"#;
    for path in [
        format!("/v1/municipalities/{TOWN}/records"),
        "/v1/validate".into(),
    ] {
        let r = s.hub.post(
            &path,
            Some(&s.town.token),
            Some("application/json"),
            &[],
            twice,
        );
        assert_eq!(
            field_problems(&r, "duplicate_key"),
            pairs(&[("/records/0/subject/resident_no", "duplicate_key")]),
            "{path}"
        );
    }

    let line = json!(record("infant-checkup", "ic-9", CHILD)).to_string();
    let line = line.replacen('{', r#"{"attended": false, "#, 1);
    let r = s.hub.post(
        &format!("/v1/municipalities/{TOWN}/records"),
        Some(&s.town.token),
        Some("application/x-ndjson"),
        &[],
        format!("{line}\n"),
    );
    let report = r.ok();
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(report["results"][0]["errors"][0]["code"], "duplicate_key");
    assert_eq!(report["results"][0]["errors"][0]["pointer"], "/attended");

    let body = offer_body().to_string();
    let body = body.replacen('{', r#"{"escalate_to": "誰か", "#, 1);
    let r = s.hub.post(
        "/v1/transfers",
        Some(&s.officer),
        Some("application/json"),
        &[("X-Actor", "officer-1")],
        body,
    );
    assert_eq!(
        field_problems(&r, "duplicate_key"),
        pairs(&[("/escalate_to", "duplicate_key")])
    );
}

/// Bodies are read as sent: any content coding but identity is refused, compressed or not.
/// Every answer, refused or not, states the client's quota.
#[test]
fn content_encodings_are_refused() {
    let s = setup(Backend::Sqlite);
    let push = |encoding: &str| {
        s.hub.post(
            &format!("/v1/municipalities/{TOWN}/records"),
            Some(&s.town.token),
            Some("application/json"),
            &[("Content-Encoding", encoding)],
            json!({"records": [record("infant-checkup", "ic-3", CHILD)]}).to_string(),
        )
    };
    for encoding in ["gzip", "br", "deflate", "zstd", "x-unknown"] {
        let refused = push(encoding);
        refused.problem(415, "content_encoding_unsupported");
        assert_eq!(refused.header("x-ratelimit-limit"), Some("2000"));
    }
    let accepted = push("identity");
    assert_eq!(accepted.header("x-ratelimit-limit"), Some("2000"));
    assert_eq!(accepted.ok()["created"], 1);
}

/// Offers: legal basis and escalation officer present and bounded, a deadline of 1–365 days
/// (`14.0` is 14), and nothing stored for a refused offer.
fn offers_validate_text_and_deadline(backend: Backend) {
    let s = setup(backend);
    let refused = |change: &dyn Fn(&mut Value), expected: &[(&str, &str)]| {
        let mut body = offer_body();
        change(&mut body);
        let r = offer(&s, body);
        assert_eq!(field_problems(&r, "invalid_request"), pairs(expected));
    };
    for days in [json!(0), json!(-3), json!(366)] {
        refused(
            &|b| b["deadline_days"] = days.clone(),
            &[("/deadline_days", "range")],
        );
    }
    for blank in ["", "   ", "　"] {
        refused(
            &|b| {
                b["legal_basis"] = json!(blank);
                b["escalate_to"] = json!(blank);
            },
            &[("/legal_basis", "length"), ("/escalate_to", "length")],
        );
    }
    refused(
        &|b| b["legal_basis"] = json!("法".repeat(201)),
        &[("/legal_basis", "length")],
    );
    refused(
        &|b| b["escalate_to"] = json!("課".repeat(101)),
        &[("/escalate_to", "length")],
    );
    offer(&s, {
        let mut body = offer_body();
        body["deadline_days"] = json!(14.5);
        body
    })
    .problem(400, "invalid_request");
    let mut db = s.hub.raw_db();
    assert_eq!(
        db.strings("SELECT CAST(COUNT(*) AS TEXT) AS v FROM transfers"),
        ["0"]
    );

    let mut body = offer_body();
    body["deadline_days"] = json!(14.0);
    let r = offer(&s, body);
    assert_eq!(r.status, 201, "{}", r.text());
    let offered = r.json();
    let deadline = chrono::DateTime::parse_from_rfc3339(offered["deadline"].as_str().unwrap())
        .expect("deadline");
    let days = (deadline.to_utc() - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((13.9..=14.1).contains(&days), "{offered}");
}
both_backends!(offers_validate_text_and_deadline);
