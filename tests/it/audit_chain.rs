//! The audit trail is tamper-evident: `kodomo-hub audit verify` walks the hash chain, says
//! "intact" on an untouched trail and names the first entry that was changed or follows a
//! removed one.

use crate::common;

use std::process::Output;

use common::{AuditRow, Backend, Hub, TOWN, describe, record, subject};

fn verify(hub: &Hub) -> Output {
    hub.cli(&["audit", "verify"])
}

/// `audit verify` succeeds, says "intact" and counts `entries`.
fn assert_intact(hub: &Hub, entries: usize) {
    let out = verify(hub);
    assert!(out.status.success(), "audit verify: {}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("intact"), "{}", describe(&out));
    assert!(
        stdout.contains(&format!("{entries} entries")),
        "{entries} entries: {}",
        describe(&out)
    );
}

/// `audit verify` fails and names entry `seq`.
fn assert_broken_at(hub: &Hub, seq: i64, context: &str) {
    let out = verify(hub);
    assert!(
        !out.status.success(),
        "{context}: audit verify must fail: {}",
        describe(&out)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains(&format!("entry {seq}:")),
        "{context}: audit verify must name entry {seq}: {}",
        describe(&out)
    );
    assert!(!all.contains("intact"), "{context}: {}", describe(&out));
}

/// A hub with a trail of admin actions, pushes and reads (with actors and purposes).
fn busy_hub(backend: Backend) -> Hub {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    hub.add_client(TOWN, "auditor", "auditor", None);
    for i in 0..4 {
        let child = format!("T{i:03}");
        hub.push(
            &town,
            &[
                subject(&format!("s-{child}"), &child, "改ざん 検知"),
                record("temporary-protection", &format!("tp-{child}"), &child),
            ],
        );
        hub.get_with(
            &format!("/v1/municipalities/{TOWN}/subjects/{child}"),
            Some(&town.token),
            &[
                ("X-Purpose", "case_handling"),
                ("X-Actor", &format!("staff-{i:03}")),
            ],
        )
        .ok();
    }
    hub
}

/// A read entry in the middle of the trail (not the first, not the last).
fn middle_read(rows: &[AuditRow]) -> (usize, AuditRow) {
    let reads: Vec<usize> = (1..rows.len() - 1)
        .filter(|&i| rows[i].action == "subject.read" && rows[i].actor.is_some())
        .collect();
    assert!(reads.len() >= 2, "reads in the trail: {rows:?}");
    let i = reads[reads.len() / 2];
    (i, rows[i].clone())
}

fn sql_text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn changed_entry_is_detected(backend: Backend) {
    let hub = busy_hub(backend);
    let mut db = hub.raw_db();
    let rows = db.audit_rows();
    assert!(rows.len() >= 10, "{rows:?}");
    assert_intact(&hub, rows.len());
    let (_, target) = middle_read(&rows);
    let seq = target.seq;

    // Each field, changed and put back: detected, then intact again.
    let original = |column: &str| -> String {
        match column {
            "actor" => target.actor.clone(),
            "purpose" => target.purpose.clone(),
            "legal_basis" => target.legal_basis.clone(),
            "subject" => target.subject.clone(),
            "result" => Some(target.result.clone()),
            "action" => Some(target.action.clone()),
            "at" => Some(target.at.clone()),
            "client_name" => target.client_name.clone(),
            other => panic!("no column {other}"),
        }
        .unwrap_or_else(|| panic!("{column} of {target:?}"))
    };
    for (column, forged) in [
        ("actor", "staff-999"),
        ("purpose", "disclosure_request"),
        ("legal_basis", "なし"),
        ("subject", "T999"),
        ("result", "denied:role"),
        ("action", "audit.read"),
        ("at", "2020-01-01T00:00:00Z"),
        ("client_name", "someone-else"),
    ] {
        let changed = db.execute(&format!(
            "UPDATE audit_log SET {column} = {} WHERE seq = {seq}",
            sql_text(forged)
        ));
        assert_eq!(changed, 1);
        assert_broken_at(&hub, seq, &format!("{column} changed"));
        db.execute(&format!(
            "UPDATE audit_log SET {column} = {} WHERE seq = {seq}",
            sql_text(&original(column))
        ));
        assert_intact(&hub, rows.len());
    }
    // A field emptied.
    db.execute(&format!(
        "UPDATE audit_log SET actor = NULL WHERE seq = {seq}"
    ));
    assert_broken_at(&hub, seq, "actor removed");
}

fn removed_entry_is_detected(backend: Backend) {
    let hub = busy_hub(backend);
    let mut db = hub.raw_db();
    let rows = db.audit_rows();
    assert_intact(&hub, rows.len());
    let (i, target) = middle_read(&rows);
    let deleted = db.execute(&format!("DELETE FROM audit_log WHERE seq = {}", target.seq));
    assert_eq!(deleted, 1);
    // The entry after the removed one no longer follows its predecessor.
    assert_broken_at(&hub, rows[i + 1].seq, "a middle entry removed");
}

/// Rewriting an entry together with its own hash is still found: the next entry commits to
/// the old hash.
fn rewritten_entry_with_recomputed_hash_is_detected(backend: Backend) {
    let hub = busy_hub(backend);
    let mut db = hub.raw_db();
    let rows = db.audit_rows();
    let (i, target) = middle_read(&rows);
    let forged = kodomo_hub::audit::AuditEntry {
        municipality_code: target.municipality_code.clone(),
        client_id: target.client_id,
        client_name: target.client_name.clone(),
        actor: Some("staff-999".into()),
        roles: target.roles.clone(),
        subject: target.subject.clone(),
        action: target.action.clone(),
        purpose: target.purpose.clone(),
        legal_basis: target.legal_basis.clone(),
        result: target.result.clone(),
        detail: target.detail.clone(),
    };
    let hash = kodomo_hub::audit::entry_hash(&target.prev_hash, &target.at, &forged);
    db.execute(&format!(
        "UPDATE audit_log SET actor = 'staff-999', hash = {} WHERE seq = {}",
        sql_text(&hash),
        target.seq
    ));
    assert_broken_at(&hub, rows[i + 1].seq, "an entry rewritten with its hash");
}

/// Entries appended by concurrent requests form one chain (no fork): every entry follows the
/// one before it.
fn concurrent_writers_keep_one_chain(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    hub.push(&town, &[subject("s-K001", "K001", "並行 花子")]);
    let before = hub.raw_db().audit_rows().len();
    let (threads, per_thread) = (8, 12);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (hub, town) = (&hub, &town);
            scope.spawn(move || {
                for i in 0..per_thread {
                    if i % 3 == 0 {
                        hub.push(
                            town,
                            &[record("school-attendance", &format!("sa-{t}-{i}"), "K001")],
                        );
                    } else {
                        hub.get_with(
                            &format!("/v1/municipalities/{TOWN}/subjects/K001"),
                            Some(&town.token),
                            &[
                                ("X-Purpose", "case_handling"),
                                ("X-Actor", &format!("t{t}")),
                            ],
                        )
                        .ok();
                    }
                }
            });
        }
    });
    let rows = hub.raw_db().audit_rows();
    assert_eq!(rows.len(), before + threads * per_thread);
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "fork at {:?}", pair[1]);
    }
    assert_intact(&hub, rows.len());
}

both_backends!(
    changed_entry_is_detected,
    removed_entry_is_detected,
    rewritten_entry_with_recomputed_hash_is_detected,
    concurrent_writers_keep_one_chain,
);
