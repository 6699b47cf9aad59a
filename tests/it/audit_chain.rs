//! The audit trail is tamper-evident against someone who can write the database: `kodomo-hub
//! audit verify` walks every chain (one per municipality, plus `hub`), recomputing hashes keyed
//! with a secret kept outside the database; it says "intact" on an untouched trail and names
//! the first entry that was changed or follows a removed one. Dropping the newest entries (or
//! all of them) is caught against a signed head (`audit head`) kept elsewhere.

use crate::common;

use std::path::Path;
use std::process::Output;

use common::{AuditRow, Backend, Hub, OTHER_TOWN, TOWN, describe, record, subject};

fn verify(hub: &Hub) -> Output {
    hub.cli(&["audit", "verify"])
}

fn verify_against(hub: &Hub, head: &Path) -> Output {
    hub.cli(&["audit", "verify", "--expect-head", &head.to_string_lossy()])
}

/// `audit head` (all chains), written to a file in the hub's data directory.
fn save_head(hub: &Hub, name: &str) -> std::path::PathBuf {
    let out = hub.cli(&["audit", "head"]);
    assert!(out.status.success(), "audit head: {}", describe(&out));
    let path = hub.data_dir().join(name);
    std::fs::write(&path, &out.stdout).expect("write the head");
    path
}

/// The output of a command that must fail, with its error text.
fn failure(out: &Output, context: &str) -> String {
    assert!(
        !out.status.success(),
        "{context}: must fail: {}",
        describe(out)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
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
    // The entry after the removed one in its chain no longer follows its predecessor.
    let next = rows[i + 1..]
        .iter()
        .find(|r| r.chain == target.chain)
        .expect("a later entry in the chain");
    assert_broken_at(&hub, next.seq, "a middle entry removed");
}

/// Rewriting an entry and recomputing its hash and every later one with the unkeyed SHA-256
/// the trail used before it was keyed is found at the rewritten entry: without the audit key
/// no one can produce a hash the hub accepts.
fn rewritten_and_rehashed_entries_are_detected(backend: Backend) {
    let hub = busy_hub(backend);
    let mut db = hub.raw_db();
    let rows = db.audit_rows();
    let (i, target) = middle_read(&rows);
    let mut prev = target.prev_hash.clone();
    for (n, row) in rows[i..].iter().enumerate() {
        let mut entry = entry_of(row);
        if n == 0 {
            entry.actor = Some("staff-999".into());
        }
        let hash = kodomo_hub::audit::entry_hash(&prev, &row.at, &entry);
        db.execute(&format!(
            "UPDATE audit_log SET actor = {}, prev_hash = {}, hash = {} WHERE seq = {}",
            entry.actor.as_deref().map_or("NULL".into(), sql_text),
            sql_text(&prev),
            sql_text(&hash),
            row.seq
        ));
        prev = hash;
    }
    assert_broken_at(&hub, target.seq, "an entry rewritten and the rest rehashed");
}

fn entry_of(row: &AuditRow) -> kodomo_hub::audit::AuditEntry {
    kodomo_hub::audit::AuditEntry {
        municipality_code: row.municipality_code.clone(),
        client_id: row.client_id,
        client_name: row.client_name.clone(),
        actor: row.actor.clone(),
        roles: row.roles.clone(),
        subject: row.subject.clone(),
        action: row.action.clone(),
        purpose: row.purpose.clone(),
        legal_basis: row.legal_basis.clone(),
        result: row.result.clone(),
        detail: row.detail.clone(),
    }
}

/// Keeps the rows a test deletes, so it can put them back and show the trail is whole again.
const BACKUP: &str = "audit_backup";

fn back_up_trail(db: &mut common::RawDb) {
    db.execute(&format!("CREATE TABLE {BACKUP} AS SELECT * FROM audit_log"));
}

fn restore_trail(db: &mut common::RawDb) {
    db.execute(&format!(
        "INSERT INTO audit_log SELECT * FROM {BACKUP} WHERE seq NOT IN (SELECT seq FROM audit_log)"
    ));
}

/// Deletes the newest `n` entries.
fn newest(n: usize) -> String {
    format!(
        "DELETE FROM audit_log WHERE seq IN (SELECT seq FROM {BACKUP} ORDER BY seq DESC LIMIT {n})"
    )
}

/// Dropping the newest 1 or 10 entries, or all of them, leaves a consistent but shorter
/// trail; a signed head taken before finds it. With the rows back, it matches again.
fn truncation_and_wiping_are_detected_against_a_signed_head(backend: Backend) {
    let hub = busy_hub(backend);
    let head = save_head(&hub, "head.json");
    let out = verify_against(&hub, &head);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reaches the signed head"),
        "{}",
        describe(&out)
    );
    let mut db = hub.raw_db();
    back_up_trail(&mut db);
    let total = db.audit_rows().len();
    for (dropped, delete) in [
        (1, newest(1)),
        (10, newest(10)),
        (total, "DELETE FROM audit_log".into()),
    ] {
        assert_eq!(db.execute(&delete), dropped);
        let error = failure(&verify_against(&hub, &head), &format!("{dropped} dropped"));
        assert!(
            error.contains("entries were removed"),
            "{dropped} dropped: {error}"
        );
        restore_trail(&mut db);
        let out = verify_against(&hub, &head);
        assert!(out.status.success(), "restored: {}", describe(&out));
    }
}

/// A head edited to hide a truncation (its position lowered) no longer carries the hub's
/// signature; nor does a head signed by another hub.
fn an_altered_head_is_refused(backend: Backend) {
    let hub = busy_hub(backend);
    let path = save_head(&hub, "head.json");
    let mut head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read head")).expect("head is JSON");
    let town_chain = head["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .position(|c| c["chain"] == TOWN)
        .expect("the town's chain is in the head");
    let seq = head["chains"][town_chain]["seq"].as_i64().expect("seq");
    head["chains"][town_chain]["seq"] = serde_json::json!(seq - 1);
    let forged = hub.data_dir().join("forged.json");
    std::fs::write(&forged, head.to_string()).expect("write");
    let error = failure(&verify_against(&hub, &forged), "edited head");
    assert!(error.contains("not signed by this hub"), "{error}");

    let stranger = Hub::start(backend);
    let foreign = save_head(&stranger, "foreign.json");
    let error = failure(&verify_against(&hub, &foreign), "another hub's head");
    assert!(error.contains("not signed by this hub"), "{error}");
}

/// Each town's entries form a chain of their own, positions counting from 1; actions of no
/// registered town (failed authentication against an unknown code) go to the hub chain. A
/// head can be taken for one town's chain.
fn each_town_has_its_own_chain(backend: Backend) {
    let hub = Hub::start(backend);
    let (town, other) = (hub.town(TOWN), hub.town(OTHER_TOWN));
    hub.push(&town, &[subject("s-C001", "C001", "鎖 一郎")]);
    hub.push(&other, &[subject("s-C002", "C002", "鎖 二郎")]);
    hub.get("/v1/municipalities/999999/subjects/X", Some("khub_bogus"));
    let rows = hub.raw_db().audit_rows();
    for row in &rows {
        let expected = if [TOWN, OTHER_TOWN].contains(&row.municipality_code.as_str()) {
            row.municipality_code.as_str()
        } else {
            "hub"
        };
        assert_eq!(row.chain.as_deref(), Some(expected), "{row:?}");
    }
    for chain in [TOWN, OTHER_TOWN, "hub"] {
        let positions: Vec<i64> = rows
            .iter()
            .filter(|r| r.chain.as_deref() == Some(chain))
            .filter_map(|r| r.chain_seq)
            .collect();
        assert!(!positions.is_empty(), "chain {chain}: {rows:?}");
        assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>());
    }
    let out = hub.cli(&["audit", "head", "--chain", OTHER_TOWN]);
    assert!(out.status.success(), "{}", describe(&out));
    let head: serde_json::Value = serde_json::from_slice(&out.stdout).expect("head is JSON");
    assert_eq!(head["chains"].as_array().map(Vec::len), Some(1), "{head}");
    assert_eq!(head["chains"][0]["chain"], OTHER_TOWN);
}

/// Turn the trail back into what hubs wrote before it was keyed: one chain, unkeyed SHA-256,
/// no chain columns, and no audit key file.
fn make_trail_unkeyed(hub: &Hub, db: &mut common::RawDb) -> Vec<AuditRow> {
    let rows = db.audit_rows();
    let mut prev = kodomo_hub::audit::GENESIS.to_string();
    for row in &rows {
        let hash = kodomo_hub::audit::entry_hash(&prev, &row.at, &entry_of(row));
        db.execute(&format!(
            "UPDATE audit_log SET chain = NULL, chain_seq = NULL, prev_hash = {}, hash = {} WHERE seq = {}",
            sql_text(&prev),
            sql_text(&hash),
            row.seq
        ));
        prev = hash;
    }
    std::fs::remove_file(hub.data_dir().join("audit.key")).expect("remove the audit key");
    db.audit_rows()
}

/// A trail written before keying is converted in place on the next start (here: the next
/// command) after its unkeyed chain checked out; the old head is kept in the entry that
/// records the conversion, and the trail verifies.
fn an_unkeyed_trail_is_converted_in_place_and_verifies(backend: Backend) {
    let mut hub = busy_hub(backend);
    hub.kill_server();
    let mut db = hub.raw_db();
    let legacy = make_trail_unkeyed(&hub, &mut db);
    let out = verify(&hub);
    assert!(out.status.success(), "{}", describe(&out));
    let rows = db.audit_rows();
    assert_eq!(
        rows.len(),
        legacy.len() + 1,
        "one entry records the conversion"
    );
    assert!(
        rows.iter()
            .all(|r| r.chain.is_some() && r.chain_seq.is_some())
    );
    let conversion = rows.last().expect("entries");
    assert_eq!(conversion.action, "audit.chains_keyed");
    let detail: serde_json::Value =
        serde_json::from_str(conversion.detail.as_deref().expect("detail")).expect("JSON");
    assert_eq!(detail["converted_entries"], legacy.len());
    assert_eq!(detail["unkeyed_head"], legacy.last().expect("entries").hash);
    assert_intact(&hub, rows.len());
    let key = hub.data_dir().join("audit.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("audit key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "audit.key mode {mode:o}");
    hub.restart();
    let town = hub.town(OTHER_TOWN);
    hub.push(&town, &[subject("s-A001", "A001", "移行 後")]);
    assert_intact(&hub, hub.raw_db().audit_rows().len());
}

/// An unkeyed trail that was changed before the conversion is not laundered into a keyed
/// one: nothing is converted and the hub says where it broke.
fn a_tampered_unkeyed_trail_is_not_converted(backend: Backend) {
    let mut hub = busy_hub(backend);
    hub.kill_server();
    let mut db = hub.raw_db();
    let legacy = make_trail_unkeyed(&hub, &mut db);
    let (_, target) = middle_read(&legacy);
    db.execute(&format!(
        "UPDATE audit_log SET actor = 'staff-999' WHERE seq = {}",
        target.seq
    ));
    let error = failure(&verify(&hub), "tampered unkeyed trail");
    assert!(
        error.contains(&format!("broken at entry {}", target.seq)),
        "{error}"
    );
    assert!(error.contains("nothing was converted"), "{error}");
    assert!(db.audit_rows().iter().all(|r| r.chain.is_none()));
}

/// Once entries are keyed, a lost audit key is not silently replaced by a new one (which
/// would make the whole trail look forged): the hub refuses to open and names the file.
fn a_missing_audit_key_stops_the_hub(backend: Backend) {
    let mut hub = busy_hub(backend);
    hub.kill_server();
    let key = hub.data_dir().join("audit.key");
    let kept = std::fs::read(&key).expect("audit key");
    std::fs::remove_file(&key).expect("remove");
    let error = failure(&verify(&hub), "no audit key");
    assert!(
        error.contains("audit.key") && error.contains("restore"),
        "{error}"
    );
    assert!(!key.exists(), "no new key was made");
    std::fs::write(&key, kept).expect("restore");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = failure(&verify(&hub), "readable audit key");
    assert!(error.contains("chmod 600"), "{error}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_intact(&hub, hub.raw_db().audit_rows().len());
}

/// Entries appended by concurrent requests keep every chain unforked: each entry follows the
/// one before it in its chain.
fn concurrent_writers_never_fork_a_chain(backend: Backend) {
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
    let town_chain: Vec<&AuditRow> = rows
        .iter()
        .filter(|r| r.chain.as_deref() == Some(TOWN))
        .collect();
    for pair in town_chain.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "fork at {:?}", pair[1]);
        assert_eq!(pair[1].chain_seq, pair[0].chain_seq.map(|s| s + 1));
    }
    assert_intact(&hub, rows.len());
}

/// A screening run appends one entry per extracted child as one batch (one tail read, the
/// chain computed in order, multi-row inserts), and so does reading the worklist back. The
/// batch verifies like single appends, and a change to one of its entries or the removal of
/// one — in the middle of a batch or at the end of the chain — is found like any other.
fn batched_entries_verify_and_tampering_with_them_is_detected(backend: Backend) {
    let hub = Hub::start(backend);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = hub.cli(&[
        "bench",
        "screening",
        "--households",
        "30",
        "--out",
        &out_dir.path().to_string_lossy(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut db = hub.raw_db();
    let rows = db.audit_rows();
    assert_intact(&hub, rows.len());
    let batch: Vec<&AuditRow> = rows
        .iter()
        .filter(|r| r.action == "screening.run" && r.subject.is_some())
        .collect();
    assert!(batch.len() >= 3, "a batch of extracted children: {batch:?}");
    // One batch: consecutive positions of one chain, one instant.
    for pair in batch.windows(2) {
        assert_eq!(pair[1].chain, pair[0].chain, "{:?}", pair[1]);
        assert_eq!(pair[1].chain_seq, pair[0].chain_seq.map(|s| s + 1));
        assert_eq!(pair[1].prev_hash, pair[0].hash, "{:?}", pair[1]);
        assert_eq!(pair[1].at, pair[0].at, "{:?}", pair[1]);
    }
    let head = save_head(&hub, "head.json");
    back_up_trail(&mut db);
    let middle = batch[batch.len() / 2];
    let after_middle = batch[batch.len() / 2 + 1];
    let last = rows
        .iter()
        .rfind(|r| r.chain == middle.chain)
        .expect("the chain's newest entry");
    assert_eq!(last.action, "screening.worklist.read", "{last:?}");

    db.execute(&format!(
        "UPDATE audit_log SET subject = 'C999999' WHERE seq = {}",
        middle.seq
    ));
    assert_broken_at(&hub, middle.seq, "a batched entry changed");
    db.execute(&format!(
        "UPDATE audit_log SET subject = {} WHERE seq = {}",
        sql_text(middle.subject.as_deref().unwrap_or_default()),
        middle.seq
    ));
    assert_intact(&hub, rows.len());

    assert_eq!(
        db.execute(&format!("DELETE FROM audit_log WHERE seq = {}", middle.seq)),
        1
    );
    assert_broken_at(&hub, after_middle.seq, "a batched entry removed");
    restore_trail(&mut db);
    assert_intact(&hub, rows.len());

    db.execute(&format!(
        "UPDATE audit_log SET detail = NULL WHERE seq = {}",
        last.seq
    ));
    assert_broken_at(&hub, last.seq, "the newest batched entry changed");
    db.execute(&format!("DELETE FROM audit_log WHERE seq = {}", last.seq));
    let error = failure(
        &verify_against(&hub, &head),
        "the newest batched entry removed",
    );
    assert!(error.contains("entries were removed"), "{error}");
    restore_trail(&mut db);
    assert_intact(&hub, rows.len());
}

both_backends!(
    changed_entry_is_detected,
    removed_entry_is_detected,
    rewritten_and_rehashed_entries_are_detected,
    truncation_and_wiping_are_detected_against_a_signed_head,
    an_altered_head_is_refused,
    each_town_has_its_own_chain,
    an_unkeyed_trail_is_converted_in_place_and_verifies,
    a_tampered_unkeyed_trail_is_not_converted,
    a_missing_audit_key_stops_the_hub,
    concurrent_writers_never_fork_a_chain,
    batched_entries_verify_and_tampering_with_them_is_detected,
);
