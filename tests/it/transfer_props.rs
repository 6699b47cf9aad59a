//! Property test of the transfer protocol (SPEC §6) through the library, on SQLite: random
//! sequences of offers (or holds), claims, accepts, retried accepts, declines and cancels, by
//! the right and the wrong towns, reordered and duplicated. Every step's answer is compared
//! with a model of the protocol, and after every step the invariants hold:
//!
//! - every transfer is in exactly one state, the one the model expects, and a decided
//!   transfer never changes again;
//! - no record exists twice at a destination, and a destination holds exactly the records
//!   its accepted transfers accepted (never a partial acceptance);
//! - for an accepted transfer, accepted and declined dispositions add up to its frozen
//!   records; an undecided one has none;
//! - a retried accept writes nothing;
//! - the origin's copy is untouched throughout.

use std::collections::{BTreeMap, BTreeSet};

use diesel::RunQueryDsl;
use kodomo_hub::audit::AuditEntry;
use kodomo_hub::auth::{Principal, Role, Scope};
use kodomo_hub::keys::KeyPaths;
use kodomo_hub::store::transfers;
use kodomo_hub::store::{DbConn, Location, PreparedRecord, Store, StoreError, clients};
use kodomo_hub::store::{WriteTx, in_write_transaction};
use kodomo_hub::transfer::workflow::{self, Acceptance, NewTransfer, Placement};
use kodomo_hub::transfer::{DeclineReason, Step, TransferReason};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Origin and two other towns.
const TOWNS: [&str; 3] = ["131016", "011002", "282014"];
const ORIGIN: usize = 0;
const CHILDREN: [&str; 3] = ["R-1", "R-2", "R-3"];
/// Record ids of each child (besides its subject record `s-<child>`).
const RECORD_KINDS: [(&str, &str); 2] = [("school-attendance", "sa"), ("infant-checkup", "ic")];
const SOURCE: &str = "system";

// ---------------------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
enum Op {
    /// Offer the children in `children` (bit mask) to `dest`, or hold them (None).
    Offer {
        children: u8,
        dest: Option<usize>,
    },
    Claim {
        t: usize,
        by: usize,
    },
    /// `partial`: a placement is missing. `declined`: bit mask over the frozen records.
    Accept {
        t: usize,
        by: usize,
        declined: u16,
        partial: bool,
    },
    /// Repeat the last accept exactly (a client retrying).
    RetryAccept,
    Decline {
        t: usize,
        by: usize,
    },
    Cancel {
        t: usize,
        by: usize,
    },
    /// Do the previous operation again.
    Repeat,
}

/// `t` picks a transfer among those created (modulo their number); `NO_SUCH` none.
const NO_SUCH: usize = 99;

fn target() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 0usize..6, 1 => Just(NO_SUCH)]
}

fn op() -> impl Strategy<Value = Op> {
    let town = 0usize..TOWNS.len();
    prop_oneof![
        4 => (1u8..8, prop::option::weighted(0.8, 0usize..TOWNS.len()))
            .prop_map(|(children, dest)| Op::Offer { children, dest }),
        2 => (target(), town.clone()).prop_map(|(t, by)| Op::Claim { t, by }),
        4 => (target(), town.clone(), any::<u16>(), prop::bool::weighted(0.15))
            .prop_map(|(t, by, declined, partial)| Op::Accept { t, by, declined, partial }),
        2 => Just(Op::RetryAccept),
        2 => (target(), town.clone()).prop_map(|(t, by)| Op::Decline { t, by }),
        2 => (target(), town).prop_map(|(t, by)| Op::Cancel { t, by }),
        1 => Just(Op::Repeat),
    ]
}

// ---------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Offered,
    Held,
    Accepted,
    Declined,
    Cancelled,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Offered => "offered",
            State::Held => "held",
            State::Accepted => "accepted",
            State::Declined => "declined",
            State::Cancelled => "cancelled",
        }
    }
    fn decided(self) -> bool {
        matches!(self, State::Accepted | State::Declined | State::Cancelled)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    Conflict,
    Invalid,
}

fn outcome<T>(result: &Result<T, StoreError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(StoreError::NotFound) => Outcome::NotFound,
        Err(StoreError::Conflict(_)) => Outcome::Conflict,
        Err(StoreError::Invalid(_) | StoreError::Unprocessable(_)) => Outcome::Invalid,
        Err(e) => panic!("unexpected store error: {e}"),
    }
}

#[derive(Debug, Clone)]
struct Modelled {
    id: i64,
    dest: Option<usize>,
    state: State,
    children: Vec<&'static str>,
    /// Source record ids frozen at the offer, sorted.
    frozen: Vec<String>,
    /// Set when accepted: the ids it accepted.
    accepted: BTreeSet<String>,
    /// `decided_at` as first seen once decided.
    decided_at: Option<String>,
}

/// The destination's resident number for a child: deterministic per town.
fn placed(dest: usize, child: &str) -> String {
    format!("{}-{child}", TOWNS[dest])
}

fn frozen_ids(children: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = children
        .iter()
        .flat_map(|c| {
            std::iter::once(format!("s-{c}"))
                .chain(RECORD_KINDS.iter().map(move |(_, p)| format!("{p}-{c}")))
        })
        .collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------
// The store

struct Hub {
    store: Store,
    _dir: tempfile::TempDir,
    /// The origin's records as first stored: (source_record_id, content_hash, version).
    origin_snapshot: Vec<(String, String, i32)>,
}

fn prepared(index: usize, record: Value) -> PreparedRecord {
    PreparedRecord::from_record(index, &record)
}

fn origin_records() -> Vec<PreparedRecord> {
    let mut out = Vec::new();
    for (i, child) in CHILDREN.iter().enumerate() {
        out.push(json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("s-{child}"),
            "subject": {"resident_no": child}, "effective_date": "2024-05-01",
            "household_no": "H-1", "name": format!("試験 {i}"), "name_kana": "シケン",
            "birth_date": format!("2018-01-0{}", i + 1), "sex": 1, "address": "千代田1-1-1",
            "role": "child", "guardians": [], "support_measure": i == 2,
        }));
        for (kind, prefix) in RECORD_KINDS {
            out.push(json!({
                "record_type": kind, "schema_version": "1.0",
                "source_record_id": format!("{prefix}-{child}"),
                "subject": {"resident_no": child}, "effective_date": "2024-05-01",
                "note": format!("{kind} of {child}"),
            }));
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| prepared(i, r))
        .collect()
}

#[derive(diesel::QueryableByName, Debug, Clone, PartialEq)]
struct RecordRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    municipality_code: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_record_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    subject_resident_no: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    content_hash: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    version: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    retracted: bool,
}

#[derive(diesel::QueryableByName, Debug)]
struct TransferRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    destination_code: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    decided_at: Option<String>,
}

#[derive(diesel::QueryableByName, Debug)]
struct Disp {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source_record_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    disposition: Option<String>,
}

#[derive(diesel::QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName, Debug)]
struct Moved {
    #[diesel(sql_type = diesel::sql_types::Text)]
    resident_no: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    moved_out_to: Option<String>,
}

impl Hub {
    fn new() -> Hub {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(
            &Location::Sqlite(dir.path().join("hub.sqlite3")),
            &KeyPaths::in_dir(dir.path()),
        )
        .expect("open");
        let mut conn = store.conn().expect("conn");
        for town in TOWNS {
            clients::add_municipality(&mut conn, town, town, None, None, "test").expect("add town");
        }
        let batch = origin_records();
        in_write_transaction(&mut conn, |tx: &mut dyn WriteTx| {
            tx.upsert_in_tx(TOWNS[ORIGIN], SOURCE, &batch)
        })
        .expect("push origin records");
        drop(conn);
        let mut hub = Hub {
            store,
            _dir: dir,
            origin_snapshot: Vec::new(),
        };
        hub.origin_snapshot = hub.origin_now();
        assert_eq!(hub.origin_snapshot.len(), batch.len());
        hub
    }

    fn query<T: diesel::QueryableByName<diesel::sqlite::Sqlite> + 'static>(
        &self,
        sql: &str,
    ) -> Vec<T> {
        let mut conn = self.store.conn().expect("conn");
        match &mut conn {
            DbConn::Sqlite(c) => diesel::sql_query(sql)
                .load::<T>(&mut **c)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            DbConn::Pg(_) => unreachable!("SQLite store"),
        }
    }

    fn count(&self, sql: &str) -> i64 {
        self.query::<Count>(sql).first().map_or(0, |c| c.n)
    }

    fn records_of(&self, town: &str) -> Vec<RecordRow> {
        self.query(&format!(
            "SELECT municipality_code, data, source, source_record_id, subject_resident_no, \
             content_hash, version, retracted FROM records WHERE municipality_code = '{town}' \
             ORDER BY source, source_record_id"
        ))
    }

    fn origin_now(&self) -> Vec<(String, String, i32)> {
        self.records_of(TOWNS[ORIGIN])
            .into_iter()
            .filter(|r| r.source == SOURCE && !r.retracted)
            .map(|r| (r.source_record_id, r.content_hash, r.version))
            .collect()
    }

    fn versions(&self) -> i64 {
        self.count("SELECT COUNT(*) AS n FROM record_versions")
    }

    fn conn(&self) -> DbConn {
        self.store.conn().expect("conn")
    }
}

/// A transfer officer of `town` who may see every child, DV ones included.
fn officer_of(town: &str) -> Principal {
    Principal {
        client_id: 1,
        name: format!("officer-{town}"),
        scope: Scope::Municipality(town.to_string()),
        municipality: town.to_string(),
        roles: vec![Role::TransferOfficer, Role::SupportMeasureReader],
        record_types: None,
        cert_fingerprint: None,
    }
}

fn audit(town: &str, action: &str) -> AuditEntry {
    AuditEntry {
        municipality_code: town.to_string(),
        client_name: Some("prop".into()),
        actor: Some("officer".into()),
        action: format!("transfer.{action}"),
        result: "ok".into(),
        ..AuditEntry::default()
    }
}

// ---------------------------------------------------------------------------------------
// Running a sequence

struct Run {
    hub: Hub,
    transfers: Vec<Modelled>,
    last_accept: Option<Op>,
    previous: Option<Op>,
    log: Vec<String>,
}

impl Run {
    fn pick(&self, t: usize) -> Option<usize> {
        (t != NO_SUCH && !self.transfers.is_empty()).then(|| t % self.transfers.len())
    }

    fn id_of(&self, slot: Option<usize>) -> i64 {
        slot.map_or(987_654, |i| self.transfers[i].id)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Repeat => {
                if let Some(previous) = self.previous.clone() {
                    self.apply(&previous);
                }
                return;
            }
            Op::RetryAccept => {
                if let Some(last) = self.last_accept.clone() {
                    self.apply(&last);
                }
                return;
            }
            _ => {}
        }
        self.previous = Some(op.clone());
        match *op {
            Op::Offer { children, dest } => self.offer(children, dest),
            Op::Accept {
                t,
                by,
                declined,
                partial,
            } => {
                self.last_accept = Some(op.clone());
                self.accept(t, by, declined, partial);
            }
            Op::Claim { t, by } => self.simple(t, by, "claim"),
            Op::Decline { t, by } => self.simple(t, by, "decline"),
            Op::Cancel { t, by } => self.simple(t, by, "cancel"),
            Op::Repeat | Op::RetryAccept => unreachable!(),
        }
    }

    fn offer(&mut self, mask: u8, dest: Option<usize>) {
        let children: Vec<&'static str> = CHILDREN
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        let owned: Vec<String> = children.iter().map(|c| c.to_string()).collect();
        let mut conn = self.hub.conn();
        let result = workflow::offer(
            &mut conn,
            &NewTransfer {
                origin: TOWNS[ORIGIN],
                destination: dest.map(|d| TOWNS[d]),
                children: &owned,
                legal_basis: "個人情報保護法第69条第2項第3号",
                reason: TransferReason::Moved,
                note: None,
                offered_by: "officer",
                deadline_days: 14,
                escalate_to: "課長",
            },
            &audit(TOWNS[ORIGIN], "offer"),
        );
        let expected = if dest == Some(ORIGIN) {
            Outcome::Invalid
        } else {
            Outcome::Ok
        };
        self.log
            .push(format!("offer {children:?} to {dest:?}: {result:?}"));
        assert_eq!(outcome(&result), expected, "{:#?}", self.log);
        if let Ok(id) = result {
            self.transfers.push(Modelled {
                id,
                dest,
                state: if dest.is_some() {
                    State::Offered
                } else {
                    State::Held
                },
                frozen: frozen_ids(&children),
                children,
                accepted: BTreeSet::new(),
                decided_at: None,
            });
        }
    }

    fn accept(&mut self, t: usize, by: usize, declined_mask: u16, partial: bool) {
        let slot = self.pick(t);
        let id = self.id_of(slot);
        let (children, frozen) = slot
            .map(|i| {
                (
                    self.transfers[i].children.clone(),
                    self.transfers[i].frozen.clone(),
                )
            })
            .unwrap_or_else(|| (CHILDREN.to_vec(), frozen_ids(&CHILDREN)));
        let declined: Vec<String> = frozen
            .iter()
            .enumerate()
            .filter(|(i, _)| declined_mask & (1 << i) != 0)
            .map(|(_, id)| id.clone())
            .collect();
        let numbers: Vec<(String, String)> = children
            .iter()
            .skip(usize::from(partial))
            .map(|c| (c.to_string(), placed(by, c)))
            .collect();
        let placements: Vec<Placement> = numbers
            .iter()
            .map(|(o, d)| Placement {
                origin_resident_no: o,
                destination_resident_no: d,
            })
            .collect();
        let expected = match slot.map(|i| &self.transfers[i]) {
            Some(m) if m.dest == Some(by) => match m.state {
                State::Accepted => Outcome::Ok,
                State::Offered if partial => Outcome::Invalid,
                State::Offered => Outcome::Ok,
                _ => Outcome::Conflict,
            },
            _ => Outcome::NotFound,
        };
        let was_accepted = slot.is_some_and(|i| self.transfers[i].state == State::Accepted);
        let versions_before = self.hub.versions();
        let mut conn = self.hub.conn();
        let result = workflow::accept(
            &mut conn,
            id,
            &Acceptance {
                destination: TOWNS[by],
                placements: &placements,
                declined_records: &declined,
                decided_by: "officer",
            },
            &audit(TOWNS[by], "accept"),
        );
        drop(conn);
        self.log.push(format!(
            "accept #{id} by {by} declining {declined:?}{}: {result:?}",
            if partial { " (placement missing)" } else { "" }
        ));
        assert_eq!(outcome(&result), expected, "{:#?}", self.log);
        if was_accepted || result.is_err() {
            assert_eq!(
                self.hub.versions(),
                versions_before,
                "a retried or refused accept wrote records: {:#?}",
                self.log
            );
        }
        if let (Ok(()), Some(i)) = (&result, slot)
            && !was_accepted
        {
            let m = &mut self.transfers[i];
            m.state = State::Accepted;
            m.accepted = frozen
                .iter()
                .filter(|id| !declined.contains(id))
                .cloned()
                .collect();
        }
    }

    fn simple(&mut self, t: usize, by: usize, step: &str) {
        let slot = self.pick(t);
        let id = self.id_of(slot);
        let m = slot.map(|i| self.transfers[i].clone());
        let (expected, next) = match (&m, step) {
            (None, _) => (Outcome::NotFound, None),
            (Some(m), "decline") if m.dest == Some(by) => match m.state {
                State::Offered => (Outcome::Ok, Some((State::Declined, m.dest))),
                State::Declined => (Outcome::Ok, None),
                _ => (Outcome::Conflict, None),
            },
            (Some(m), "cancel") if by == ORIGIN => match m.state {
                State::Offered | State::Held => (Outcome::Ok, Some((State::Cancelled, m.dest))),
                State::Cancelled => (Outcome::Ok, None),
                _ => (Outcome::Conflict, None),
            },
            (Some(m), "claim") if m.state == State::Held && by != ORIGIN => {
                (Outcome::Ok, Some((State::Offered, Some(by))))
            }
            (Some(m), "claim") if m.dest == Some(by) => match m.state {
                State::Offered => (Outcome::Ok, None),
                _ => (Outcome::Conflict, None),
            },
            _ => (Outcome::NotFound, None),
        };
        let versions_before = self.hub.versions();
        let mut conn = self.hub.conn();
        // Through the workflow, as every face takes a step: the access policy decides who
        // is a party, the store records the step.
        let typed = match step {
            "decline" => Step::Decline,
            "cancel" => Step::Cancel,
            _ => Step::Claim,
        };
        let result = workflow::take_step(
            &mut conn,
            &officer_of(TOWNS[by]),
            id,
            typed,
            (step == "decline").then_some(DeclineReason::NotResident),
            "officer",
            &audit(TOWNS[by], step),
        );
        drop(conn);
        self.log.push(format!(
            "{step} #{id} by {by}: {:?}",
            result.as_ref().map(|t| &t.status)
        ));
        assert_eq!(outcome(&result), expected, "{:#?}", self.log);
        assert_eq!(
            self.hub.versions(),
            versions_before,
            "{step} never writes records"
        );
        if let (Some((state, dest)), Some(i)) = (next, slot) {
            self.transfers[i].state = state;
            self.transfers[i].dest = dest;
        }
    }

    /// Every invariant, against the database.
    fn check(&mut self) {
        let log = format!("{:#?}", self.log);
        let hub = &self.hub;
        // States: exactly the model's, consistent, and decided ones frozen in time.
        let rows: Vec<TransferRow> =
            hub.query("SELECT id, status, destination_code, decided_at FROM transfers ORDER BY id");
        assert_eq!(rows.len(), self.transfers.len(), "{log}");
        for (row, m) in rows.iter().zip(self.transfers.iter_mut()) {
            assert_eq!(row.id, m.id, "{log}");
            assert_eq!(row.status, m.state.as_str(), "transfer {}: {log}", m.id);
            assert_eq!(
                row.destination_code.as_deref(),
                m.dest.map(|d| TOWNS[d]),
                "transfer {}: {log}",
                m.id
            );
            // Only a held transfer (or one cancelled while held) has no destination.
            if matches!(m.state, State::Offered | State::Accepted | State::Declined) {
                assert!(row.destination_code.is_some(), "{row:?}: {log}");
            }
            assert_eq!(
                row.decided_at.is_some(),
                m.state.decided(),
                "{row:?}: {log}"
            );
            if m.state.decided() {
                match &m.decided_at {
                    Some(first) => assert_eq!(
                        row.decided_at.as_ref(),
                        Some(first),
                        "a decided transfer changed: {log}"
                    ),
                    None => m.decided_at = row.decided_at.clone(),
                }
            }
            // Dispositions: complete and exact once accepted, absent before.
            let disps: Vec<Disp> = hub.query(&format!(
                "SELECT source_record_id, disposition FROM transfer_records \
                 WHERE transfer_id = {} ORDER BY source_record_id",
                m.id
            ));
            let frozen: Vec<&str> = disps.iter().map(|d| d.source_record_id.as_str()).collect();
            assert_eq!(frozen, m.frozen, "frozen records of {}: {log}", m.id);
            let mut conn = hub.conn();
            let view = transfers::view(&mut conn, m.id, None)
                .expect("view")
                .expect("exists");
            drop(conn);
            assert_eq!(view.record_count, m.frozen.len(), "{log}");
            if m.state == State::Accepted {
                for d in &disps {
                    let want = if m.accepted.contains(&d.source_record_id) {
                        "accept"
                    } else {
                        "decline"
                    };
                    assert_eq!(d.disposition.as_deref(), Some(want), "{d:?}: {log}");
                }
                assert_eq!(
                    view.accepted_records + view.declined_records,
                    view.record_count,
                    "{log}"
                );
                assert_eq!(view.accepted_records, m.accepted.len(), "{log}");
            } else {
                assert!(disps.iter().all(|d| d.disposition.is_none()), "{log}");
                assert_eq!(view.accepted_records + view.declined_records, 0, "{log}");
            }
        }
        // Destinations hold exactly what their accepted transfers accepted, each once, about
        // the child's resident number there.
        let source = format!("transfer:{}:{SOURCE}", TOWNS[ORIGIN]);
        let origin = hub.records_of(TOWNS[ORIGIN]);
        for (d, town) in TOWNS.iter().enumerate().skip(1) {
            let mut expected: BTreeMap<String, String> = BTreeMap::new();
            for m in self
                .transfers
                .iter()
                .filter(|m| m.state == State::Accepted && m.dest == Some(d))
            {
                for id in &m.accepted {
                    let child = id.split_once('-').map_or("", |(_, c)| c);
                    expected.insert(id.clone(), placed(d, child));
                }
            }
            let held = hub.records_of(town);
            let mut seen = BTreeSet::new();
            for r in &held {
                // The copy is the origin's record, about the child's number here.
                let mut copy: Value = serde_json::from_str(&r.data).expect("JSON");
                let original = origin
                    .iter()
                    .find(|o| o.source_record_id == r.source_record_id)
                    .expect("a copy of an origin record");
                let mut original: Value = serde_json::from_str(&original.data).expect("JSON");
                assert_eq!(
                    copy["subject"]["resident_no"].as_str(),
                    r.subject_resident_no.as_deref(),
                    "{log}"
                );
                copy["subject"] = Value::Null;
                original["subject"] = Value::Null;
                if copy["record_type"] == "subject" {
                    // Household and guardian numbers are the origin's own; a new subject gets
                    // the transfer's household and no guardians.
                    assert!(
                        copy["household_no"]
                            .as_str()
                            .is_some_and(|h| h.starts_with("transfer-")),
                        "{log}"
                    );
                    for field in ["household_no", "guardians"] {
                        copy.as_object_mut().expect("object").remove(field);
                        original.as_object_mut().expect("object").remove(field);
                    }
                }
                assert_eq!(copy, original, "{log}");
                assert!(
                    seen.insert(r.source_record_id.clone()),
                    "record {} twice at {town}: {log}",
                    r.source_record_id
                );
                assert_eq!(r.source, source, "{r:?}: {log}");
                assert!(!r.retracted, "{r:?}: {log}");
            }
            let actual: BTreeMap<String, String> = held
                .into_iter()
                .map(|r| {
                    (
                        r.source_record_id,
                        r.subject_resident_no.unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(actual, expected, "records at {town}: {log}");
        }
        // The origin's copy is untouched; its children are marked moved out once accepted.
        assert_eq!(hub.origin_now(), hub.origin_snapshot, "origin copy: {log}");
        let moved: Vec<Moved> = hub.query(&format!(
            "SELECT resident_no, moved_out_to FROM subjects WHERE municipality_code = '{}' \
             ORDER BY resident_no",
            TOWNS[ORIGIN]
        ));
        assert_eq!(moved.len(), CHILDREN.len(), "origin subjects: {log}");
        for m in moved {
            let accepted_somewhere = self.transfers.iter().any(|t| {
                t.state == State::Accepted && t.children.contains(&m.resident_no.as_str())
            });
            assert_eq!(m.moved_out_to.is_some(), accepted_somewhere, "{m:?}: {log}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn protocol_steps_keep_the_invariants(ops in prop::collection::vec(op(), 1..24)) {
        let mut run = Run {
            hub: Hub::new(),
            transfers: Vec::new(),
            last_accept: None,
            previous: None,
            log: Vec::new(),
        };
        for op in &ops {
            run.apply(op);
            run.check();
        }
    }
}

/// The generator reaches every state: a fixed sequence through all of them.
#[test]
fn a_fixed_sequence_reaches_every_state() {
    let mut run = Run {
        hub: Hub::new(),
        transfers: Vec::new(),
        last_accept: None,
        previous: None,
        log: Vec::new(),
    };
    let ops = [
        Op::Offer {
            children: 0b011,
            dest: Some(1),
        },
        Op::Offer {
            children: 0b110,
            dest: None,
        },
        Op::Offer {
            children: 0b111,
            dest: Some(2),
        },
        Op::Offer {
            children: 0b001,
            dest: Some(1),
        },
        Op::Accept {
            t: 0,
            by: 1,
            declined: 0b10,
            partial: false,
        },
        Op::RetryAccept,
        Op::Claim { t: 1, by: 2 },
        Op::Accept {
            t: 1,
            by: 2,
            declined: 0,
            partial: false,
        },
        Op::Decline { t: 2, by: 2 },
        Op::Repeat,
        Op::Cancel { t: 3, by: ORIGIN },
        Op::Accept {
            t: 3,
            by: 1,
            declined: 0,
            partial: false,
        },
    ];
    for op in &ops {
        run.apply(op);
        run.check();
    }
    let states: Vec<State> = run.transfers.iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        vec![
            State::Accepted,
            State::Accepted,
            State::Declined,
            State::Cancelled
        ]
    );
}
