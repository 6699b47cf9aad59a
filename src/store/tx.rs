//! The write transaction every workflow runs in: records, their audit entries and any other
//! fact of one step commit together or not at all.

use diesel::prelude::*;
use serde::Serialize;
use sha2::Digest;

use super::audit::AuditWrites;
use super::packages::PackageWrites;
use super::records::{Expected, RecordWrites};
use super::transfers::TransferWrites;
use super::{DbConn, StoreError, StoreResult};
use crate::audit::AuditEntry;
use crate::write_tx;

/// A validated record ready to store.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    /// Position in the request (0-based), echoed in results.
    pub index: usize,
    pub source_record_id: String,
    pub record_type: String,
    pub schema_version: String,
    pub subject_resident_no: Option<String>,
    pub effective_date: String,
    /// Canonical JSON (sorted keys) of the whole record.
    pub data: String,
    pub content_hash: String,
}

impl PreparedRecord {
    /// A record that passed validation, at position `index` of its request: its keys come from
    /// the record itself and its canonical text (serde_json keeps keys sorted) is hashed.
    pub fn from_record(index: usize, record: &serde_json::Value) -> PreparedRecord {
        let text = |pointer: &str| record.pointer(pointer).and_then(serde_json::Value::as_str);
        let data = record.to_string();
        PreparedRecord {
            index,
            source_record_id: text("/source_record_id").unwrap_or_default().to_string(),
            record_type: text("/record_type").unwrap_or_default().to_string(),
            schema_version: text("/schema_version").unwrap_or_default().to_string(),
            subject_resident_no: text("/subject/resident_no").map(str::to_string),
            effective_date: text("/effective_date").unwrap_or_default().to_string(),
            content_hash: hex::encode(sha2::Sha256::digest(data.as_bytes())),
            data,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Applied {
    pub index: usize,
    pub outcome: RecordOutcome,
    pub version: i32,
}

/// Store operations that run inside a write transaction the caller holds, so several of them
/// (records and their audit entry; every chunk of an atomic batch) commit together.
pub trait WriteTx {
    fn upsert_in_tx(
        &mut self,
        municipality: &str,
        source: &str,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<Applied>>;

    /// `Ok` when this source's record `source_record_id` is as `expected`; otherwise
    /// `StoreError::PreconditionFailed` with its current state.
    fn expect_record(
        &mut self,
        municipality: &str,
        source: &str,
        source_record_id: &str,
        expected: &Expected,
    ) -> StoreResult<()>;

    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        self.append_audits(std::slice::from_ref(entry))
    }

    /// Append entries in order, as one batch (see `store::audit`).
    fn append_audits(&mut self, entries: &[AuditEntry]) -> StoreResult<()>;

    /// See `store::audit::key_legacy_entries`.
    fn key_legacy_audit(&mut self, key: &crate::keys::AuditKey) -> StoreResult<u64>;
}

// Each backend's connection implements the record and audit writes (compiled per backend in
// their own modules); the transaction is both.
impl<C: RecordWrites + AuditWrites> WriteTx for C {
    fn upsert_in_tx(
        &mut self,
        municipality: &str,
        source: &str,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<Applied>> {
        RecordWrites::upsert_records(self, municipality, source, batch)
    }

    fn expect_record(
        &mut self,
        municipality: &str,
        source: &str,
        source_record_id: &str,
        expected: &Expected,
    ) -> StoreResult<()> {
        let state = RecordWrites::record_state(self, municipality, source, source_record_id)?;
        expected.check(state)
    }

    fn append_audits(&mut self, entries: &[AuditEntry]) -> StoreResult<()> {
        AuditWrites::append_entries(self, entries)
    }

    fn key_legacy_audit(&mut self, key: &crate::keys::AuditKey) -> StoreResult<u64> {
        AuditWrites::key_legacy(self, key)
    }
}

/// Run `work` inside one write transaction on this connection: everything it stores commits
/// together or not at all.
pub fn in_write_transaction<T>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut dyn WriteTx) -> StoreResult<T>,
) -> StoreResult<T> {
    write_tx!(conn, |c| work(c))
}

/// The write transaction of a transfer workflow: records and audit entries, plus the facts of
/// transfers and packages.
pub trait TransferTx: WriteTx + TransferWrites + PackageWrites {}

impl<C: WriteTx + TransferWrites + PackageWrites> TransferTx for C {}

/// Run a transfer workflow's `work` inside one write transaction: every fact of the step, its
/// records and its audit entries commit together or not at all.
pub fn in_transfer_transaction<T, E>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut dyn TransferTx) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    write_tx!(conn, |c| work(c))
}

/// `in_write_transaction` for work that writes to `town` only (its records, change feed and
/// audit chain): on PostgreSQL it runs beside the transactions of other towns (see
/// `store::pg_write_locks`). A write to another town inside it is refused.
pub fn in_town_write_transaction<T>(
    conn: &mut DbConn,
    town: &str,
    work: impl FnOnce(&mut dyn WriteTx) -> StoreResult<T>,
) -> StoreResult<T> {
    write_tx!(conn, town = town, |c| work(&mut TownTx { tx: c, town }))
}

/// The write transaction of one town: writes to other towns, whose change feed and audit chain
/// it holds no lock on, are refused.
struct TownTx<'a> {
    tx: &'a mut dyn WriteTx,
    town: &'a str,
}

impl TownTx<'_> {
    fn writes_to(&self, municipality: &str) -> StoreResult<()> {
        if municipality == self.town {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "a write transaction of {} cannot write to {municipality}",
                self.town
            )))
        }
    }
}

impl WriteTx for TownTx<'_> {
    fn upsert_in_tx(
        &mut self,
        municipality: &str,
        source: &str,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<Applied>> {
        self.writes_to(municipality)?;
        self.tx.upsert_in_tx(municipality, source, batch)
    }

    fn expect_record(
        &mut self,
        municipality: &str,
        source: &str,
        source_record_id: &str,
        expected: &Expected,
    ) -> StoreResult<()> {
        self.tx
            .expect_record(municipality, source, source_record_id, expected)
    }

    fn append_audits(&mut self, entries: &[AuditEntry]) -> StoreResult<()> {
        for entry in entries {
            self.writes_to(&entry.municipality_code)?;
        }
        self.tx.append_audits(entries)
    }

    fn key_legacy_audit(&mut self, _key: &crate::keys::AuditKey) -> StoreResult<u64> {
        Err(StoreError::Invalid(
            "keying legacy audit entries writes every chain, not one town's".into(),
        ))
    }
}
