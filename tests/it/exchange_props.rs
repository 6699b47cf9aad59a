//! Property test of the protocol between hubs (SPEC §6) through the library, with two hubs on
//! separate SQLite databases: random offers, exports, cancels, deliveries of packages (in XML or
//! JSON, duplicated, reordered, or with one flipped byte), acceptances and returned receipts
//! (duplicated and reordered). After every step:
//!
//! - each package id is imported at the destination at most once, whatever was replayed;
//! - each imported transfer holds exactly the records its manifest counts, and an accepted one
//!   put exactly those records at the destination (no record twice);
//! - a tampered delivery changes nothing at the destination;
//! - a transfer is delivered at the origin only after the receipt of its own package, and a
//!   sent package can no longer be cancelled;
//! - the origin's copy is untouched throughout.
//!
//! At the end every transfer is driven to an end, and every one is terminal.

use std::collections::{BTreeMap, BTreeSet};

use diesel::RunQueryDsl;
use kodomo_hub::audit::AuditEntry;
use kodomo_hub::auth::Principal;
use kodomo_hub::keys::KeyPaths;
use kodomo_hub::schema::Standard;
use kodomo_hub::store::packages;
use kodomo_hub::store::{DbConn, Location, PreparedRecord, Store, StoreError, clients};
use kodomo_hub::store::{WriteTx, in_write_transaction};
use kodomo_hub::transfer::exchange::{self, ExchangeError, Importer};
use kodomo_hub::transfer::package;
use kodomo_hub::transfer::workflow::{self, Acceptance, NewTransfer, Placement};
use kodomo_hub::transfer::{Step, TransferReason, TransferStatus};
use proptest::prelude::*;
use serde_json::json;

const ORIGIN: &str = "131016";
const DEST: &str = "011002";
const CHILDREN: [&str; 3] = ["R-1", "R-2", "R-3"];

#[derive(Debug, Clone)]
enum Op {
    Offer {
        children: u8,
    },
    Export {
        t: usize,
    },
    Cancel {
        t: usize,
    },
    Deliver {
        package: usize,
        json: bool,
        flip: Option<usize>,
    },
    Accept {
        inbound: usize,
    },
    ReturnReceipt {
        receipt: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..8).prop_map(|children| Op::Offer { children }),
        (0usize..4).prop_map(|t| Op::Export { t }),
        (0usize..4).prop_map(|t| Op::Cancel { t }),
        (
            0usize..4,
            any::<bool>(),
            proptest::option::weighted(0.3, any::<usize>())
        )
            .prop_map(|(package, json, flip)| Op::Deliver {
                package,
                json,
                flip
            }),
        (0usize..4).prop_map(|inbound| Op::Accept { inbound }),
        (0usize..6).prop_map(|receipt| Op::ReturnReceipt { receipt }),
    ]
}

struct Side {
    store: Store,
    _dir: tempfile::TempDir,
}

impl Side {
    fn new(own: &str) -> Side {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &Location::Sqlite(dir.path().join("hub.sqlite3")),
            &KeyPaths::in_dir(dir.path()),
        )
        .unwrap();
        clients::add_municipality(&mut store.conn().unwrap(), own, own, None, None, "test")
            .unwrap();
        Side { store, _dir: dir }
    }
    fn conn(&self) -> DbConn {
        self.store.conn().unwrap()
    }
    fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        match &mut self.conn() {
            DbConn::Sqlite(c) => diesel::sql_query(sql).load::<Count>(&mut **c).unwrap()[0].n,
            DbConn::Pg(_) => unreachable!("SQLite stores"),
        }
    }
    fn key(&self) -> String {
        hex::encode(
            packages::hub_key(&self.conn())
                .unwrap()
                .verifying_key()
                .as_bytes(),
        )
    }
}

fn entry(town: &str, action: &str) -> AuditEntry {
    AuditEntry {
        municipality_code: town.into(),
        actor: Some("officer".into()),
        action: action.into(),
        result: "ok".into(),
        ..Default::default()
    }
}

fn origin_records() -> Vec<PreparedRecord> {
    let mut records = Vec::new();
    for (i, child) in CHILDREN.iter().enumerate() {
        records.push(json!({
            "record_type": "subject", "schema_version": "1.0", "source_record_id": format!("s-{child}"),
            "subject": {"resident_no": child}, "effective_date": "2024-05-01", "household_no": "H-1",
            "name": format!("試験 {i}"), "name_kana": "シケン", "birth_date": format!("2018-01-0{}", i + 1),
            "sex": 1, "address": "千代田1-1-1", "role": "child", "guardians": [], "support_measure": i == 2,
        }));
        records.push(json!({
            "record_type": "school-attendance", "schema_version": "1.0",
            "source_record_id": format!("sa-{child}"), "subject": {"resident_no": child},
            "effective_date": "2024-05-01", "school_year": 2023, "period": "term1",
            "absence_days": i, "late_days": 0, "school_days": 70,
        }));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(index, record)| PreparedRecord::from_record(index, &record))
        .collect()
}

/// What the model knows of one transfer offered at the origin.
#[derive(Debug, Clone, Default)]
struct Sent {
    id: i64,
    children: Vec<String>,
    package: Option<usize>,
    cancelled: bool,
    delivered: bool,
}

struct Wire {
    package_id: String,
    xml: Vec<u8>,
    signature: String,
    records: i64,
}

struct Run {
    origin: Side,
    dest: Side,
    standard: Standard,
    sent: Vec<Sent>,
    wires: Vec<Wire>,
    /// Package index → inbound transfer id at the destination.
    imported: BTreeMap<usize, i64>,
    accepted: BTreeSet<i64>,
    receipts: Vec<(usize, Vec<u8>, String)>,
    origin_records: i64,
}

impl Run {
    fn new() -> Run {
        let origin = Side::new(ORIGIN);
        let dest = Side::new(DEST);
        let (origin_key, dest_key) = (origin.key(), dest.key());
        packages::add_peer(
            &mut origin.conn(),
            "dest",
            &dest_key,
            &[(DEST.into(), "d".into())],
            "t",
        )
        .unwrap();
        packages::add_peer(
            &mut dest.conn(),
            "origin",
            &origin_key,
            &[(ORIGIN.into(), "o".into())],
            "t",
        )
        .unwrap();
        let batch = origin_records();
        in_write_transaction(&mut origin.conn(), |tx: &mut dyn WriteTx| {
            tx.upsert_in_tx(ORIGIN, "system", &batch)
        })
        .unwrap();
        let origin_records = origin.count("SELECT COUNT(*) AS n FROM record_versions");
        Run {
            origin,
            dest,
            standard: Standard::load(),
            sent: Vec::new(),
            wires: Vec::new(),
            imported: BTreeMap::new(),
            accepted: BTreeSet::new(),
            receipts: Vec::new(),
            origin_records,
        }
    }

    fn offer(&mut self, mask: u8) {
        let children: Vec<String> = CHILDREN
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| c.to_string())
            .collect();
        let id = workflow::offer(
            &mut self.origin.conn(),
            &NewTransfer {
                origin: ORIGIN,
                destination: Some(DEST),
                children: &children,
                legal_basis: "児童福祉法第25条の3",
                reason: TransferReason::Moved,
                note: None,
                offered_by: "officer",
                deadline_days: 14,
                escalate_to: "chief",
            },
            &entry(ORIGIN, "transfer.offer"),
        )
        .unwrap();
        self.sent.push(Sent {
            id,
            children,
            ..Sent::default()
        });
    }

    fn export(&mut self, t: usize) {
        let Some(sent) = self.sent.get(t).cloned() else {
            return;
        };
        let result = exchange::export(
            &mut self.origin.conn(),
            sent.id,
            ORIGIN,
            &entry(ORIGIN, "export"),
        );
        match (result, sent.package, sent.cancelled) {
            (Ok(signed), Some(known), _) => {
                assert_eq!(
                    signed.package_id, self.wires[known].package_id,
                    "one package per transfer"
                );
            }
            (Ok(signed), None, false) => {
                let records = 2 * sent.children.len() as i64;
                self.wires.push(Wire {
                    package_id: signed.package_id,
                    xml: signed.xml.into_bytes(),
                    signature: signed.signature,
                    records,
                });
                self.sent[t].package = Some(self.wires.len() - 1);
            }
            (Err(ExchangeError::Store(StoreError::Conflict(_))), None, true) => {}
            (other, package, cancelled) => {
                panic!("export of {t} (package {package:?}, cancelled {cancelled}): {other:?}")
            }
        }
    }

    fn cancel(&mut self, t: usize) {
        let Some(sent) = self.sent.get(t).cloned() else {
            return;
        };
        let result = workflow::take_step(
            &mut self.origin.conn(),
            &Principal::console_operator(ORIGIN),
            sent.id,
            Step::Cancel,
            None,
            "officer",
            &entry(ORIGIN, "cancel"),
        );
        match result {
            Ok(_) => {
                assert!(
                    sent.package.is_none() && !sent.delivered,
                    "cancelled after sending: {sent:?}"
                );
                self.sent[t].cancelled = true;
            }
            Err(StoreError::Conflict(_)) => assert!(sent.package.is_some() || sent.delivered),
            Err(e) => panic!("cancel: {e}"),
        }
    }

    fn deliver(&mut self, index: usize, as_json: bool, flip: Option<usize>) {
        let Some(wire) = self.wires.get(index) else {
            return;
        };
        let mut body = if as_json {
            package::to_json(&package::parse(&wire.xml).unwrap())
        } else {
            wire.xml.clone()
        };
        if let Some(at) = flip {
            let at = at % body.len();
            body[at] ^= 0x01;
        }
        let before = self
            .dest
            .count("SELECT COUNT(*) AS n FROM transfer_records");
        let importer = Importer {
            municipality: DEST,
            escalate_to: "chief",
            deadline_days: 14,
        };
        let result = exchange::import(
            &mut self.dest.conn(),
            &self.standard,
            &body,
            &wire.signature,
            &importer,
            &entry(DEST, "import"),
        );
        match result {
            Ok(imported) => {
                assert!(flip.is_none(), "a flipped byte went unnoticed");
                assert!(
                    !self.imported.contains_key(&index),
                    "package {index} imported twice"
                );
                assert_eq!(imported.package_id, wire.package_id);
                self.imported.insert(index, imported.transfer_id);
                self.receipts.push((
                    index,
                    imported.receipt.into_bytes(),
                    imported.receipt_signature,
                ));
            }
            Err(ExchangeError::AlreadyImported(original)) => {
                assert!(flip.is_none(), "a flipped byte went unnoticed");
                assert_eq!(self.imported.get(&index), Some(&original.transfer_id));
                self.receipts.push((
                    index,
                    original.receipt.into_bytes(),
                    original.receipt_signature,
                ));
            }
            Err(ExchangeError::Package(e)) => {
                assert!(flip.is_some(), "genuine package refused: {e}");
                assert_eq!(
                    self.dest
                        .count("SELECT COUNT(*) AS n FROM transfer_records"),
                    before
                );
            }
            Err(e) => panic!("import: {e}"),
        }
    }

    fn accept(&mut self, inbound: usize) {
        let Some((&index, &id)) = self.imported.iter().nth(inbound) else {
            return;
        };
        let sent = self
            .sent
            .iter()
            .find(|s| s.package == Some(index))
            .unwrap()
            .clone();
        let numbers: Vec<String> = sent
            .children
            .iter()
            .map(|c| format!("D-{id}-{c}"))
            .collect();
        let placements: Vec<Placement> = sent
            .children
            .iter()
            .zip(&numbers)
            .map(|(o, d)| Placement {
                origin_resident_no: o,
                destination_resident_no: d,
            })
            .collect();
        workflow::accept(
            &mut self.dest.conn(),
            id,
            &Acceptance {
                destination: DEST,
                placements: &placements,
                declined_records: &[],
                decided_by: "officer",
            },
            &entry(DEST, "accept"),
        )
        .unwrap();
        self.accepted.insert(id);
    }

    fn return_receipt(&mut self, r: usize) {
        let Some((index, receipt, signature)) = self.receipts.get(r).cloned() else {
            return;
        };
        let transfer = exchange::import_receipt(
            &mut self.origin.conn(),
            &receipt,
            &signature,
            ORIGIN,
            &entry(ORIGIN, "receipt"),
        )
        .unwrap();
        assert_eq!(transfer.status, TransferStatus::Delivered);
        let t = self
            .sent
            .iter()
            .position(|s| s.package == Some(index))
            .unwrap();
        self.sent[t].delivered = true;
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Offer { children } => self.offer(children),
            Op::Export { t } => self.export(t),
            Op::Cancel { t } => self.cancel(t),
            Op::Deliver {
                package,
                json,
                flip,
            } => self.deliver(package, json, flip),
            Op::Accept { inbound } => self.accept(inbound),
            Op::ReturnReceipt { receipt } => self.return_receipt(receipt),
        }
    }

    fn check(&self) {
        let dest_packages = self
            .dest
            .count("SELECT COUNT(*) AS n FROM transfer_packages");
        assert_eq!(
            dest_packages as usize,
            self.imported.len(),
            "each package imported once"
        );
        assert_eq!(
            self.dest.count("SELECT COUNT(*) AS n FROM transfers") as usize,
            self.imported.len()
        );
        let mut expected_at_dest = 0;
        for (&index, &id) in &self.imported {
            let frozen = self.dest.count(&format!(
                "SELECT COUNT(*) AS n FROM transfer_records WHERE transfer_id = {id}"
            ));
            assert_eq!(
                frozen, self.wires[index].records,
                "manifest count of package {index}"
            );
            if self.accepted.contains(&id) {
                expected_at_dest += frozen;
            }
        }
        assert_eq!(
            self.dest.count("SELECT COUNT(*) AS n FROM records"),
            expected_at_dest,
            "no record twice"
        );
        for sent in &self.sent {
            let status = if sent.delivered {
                "delivered"
            } else if sent.cancelled {
                "cancelled"
            } else {
                "offered"
            };
            let actual = self.origin.count(&format!(
                "SELECT COUNT(*) AS n FROM transfers WHERE id = {} AND status = '{status}'",
                sent.id
            ));
            assert_eq!(actual, 1, "transfer {} should be {status}", sent.id);
        }
        assert_eq!(
            self.origin
                .count("SELECT COUNT(*) AS n FROM record_versions"),
            self.origin_records
        );
    }

    /// Drive every transfer to an end the way officers would.
    fn finish(&mut self) {
        for t in 0..self.sent.len() {
            if self.sent[t].cancelled || self.sent[t].delivered {
                continue;
            }
            self.export(t);
            let index = self.sent[t].package.unwrap();
            self.deliver(index, false, None);
            let r = self
                .receipts
                .iter()
                .rposition(|(i, ..)| *i == index)
                .unwrap();
            self.return_receipt(r);
            self.check();
        }
        let open = self
            .origin
            .count("SELECT COUNT(*) AS n FROM transfers WHERE status IN ('offered', 'held')");
        assert_eq!(open, 0, "every transfer ends");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn protocol_between_hubs_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..24)) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op);
            run.check();
        }
        run.finish();
    }
}
