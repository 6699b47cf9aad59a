//! Validated ingest: every record goes through the same path whether it arrives as a JSON
//! batch, an NDJSON stream, a CSV file or a file import — parse, validate against the schema,
//! then upsert with history in one transaction per chunk (or per request when atomic).

pub mod files;
pub mod formats;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditEntry;
use crate::schema::{FieldError, Standard};
use crate::store::operations;
use crate::store::records::Expected;
use crate::store::{DbConn, PreparedRecord, RecordOutcome, StoreError};
use crate::store::{WriteTx, in_town_write_transaction};

/// Where ingest takes its database connection for each transaction.
pub trait Connections {
    fn with<T>(
        &mut self,
        work: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError>;

    /// Is a connection taken only for each transaction (chunks may still be arriving)?
    fn per_chunk(&self) -> bool;
}

/// One connection the caller holds throughout.
impl Connections for &mut DbConn {
    fn with<T>(
        &mut self,
        work: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        work(self)
    }

    fn per_chunk(&self) -> bool {
        false
    }
}

/// A pooled connection taken for each chunk's transaction and given back right after.
pub struct ConnectionPerChunk<'a>(pub &'a crate::store::Store);

impl Connections for ConnectionPerChunk<'_> {
    fn with<T>(
        &mut self,
        work: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        work(&mut self.0.conn()?)
    }

    fn per_chunk(&self) -> bool {
        true
    }
}

/// Records validated and written together (one transaction when not atomic).
pub const CHUNK_SIZE: usize = 1000;

/// Who is pushing, into which town, and what it may push.
#[derive(Debug, Clone)]
pub struct Submission {
    pub municipality: String,
    pub source: String,
    /// Record types this source may push; `None` means every type.
    pub allowed_types: Option<Vec<String>>,
    /// The pushing client, for the audit trail (`None` for the CLI, demo and bench).
    pub client_id: Option<i64>,
}

/// A record as read from the input, before validation.
pub struct Candidate {
    pub index: usize,
    /// NDJSON line or CSV row (1-based, header = row 1) the record came from.
    pub row: Option<u64>,
    pub parsed: Result<Value, Vec<FieldError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Created,
    Updated,
    Unchanged,
    Rejected,
}

impl From<RecordOutcome> for RecordStatus {
    fn from(outcome: RecordOutcome) -> Self {
        match outcome {
            RecordOutcome::Created => RecordStatus::Created,
            RecordOutcome::Updated => RecordStatus::Updated,
            RecordOutcome::Unchanged => RecordStatus::Unchanged,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordResult {
    /// Position of the record in the request (0-based).
    pub index: usize,
    /// NDJSON line or CSV row (1-based) when the input had lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_record_id: Option<String>,
    pub status: RecordStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Which per-record results a report keeps. Counting is always complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultDetail {
    /// One result per record.
    #[default]
    All,
    /// Only rejected records (keeps the answer small for very large pushes).
    Rejected,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IngestReport {
    pub municipality_code: String,
    pub source: String,
    pub atomic: bool,
    pub received: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Schema versions the records declared.
    pub schema_versions: BTreeSet<String>,
    pub results: Vec<RecordResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Atomic batch with at least one invalid record: nothing was stored.
    #[error("atomic batch rejected: {} invalid record(s), nothing stored", .0.rejected)]
    AtomicRejected(Box<IngestReport>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Ingestor {
    pub standard: Arc<Standard>,
}

impl Ingestor {
    pub fn new(standard: Arc<Standard>) -> Ingestor {
        Ingestor { standard }
    }

    /// Validate one record and turn it into a row to store.
    pub fn prepare(
        &self,
        submission: &Submission,
        index: usize,
        record: &Value,
    ) -> Result<PreparedRecord, Vec<FieldError>> {
        let Some(object) = record.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "not_object",
                "a record must be a JSON object",
            )]);
        };
        let record_type = match object.get("record_type").and_then(Value::as_str) {
            Some(t) => t,
            None => {
                return Err(vec![FieldError::new(
                    "/record_type",
                    "required",
                    "record_type is required and must be a string",
                )]);
            }
        };
        let version_text = object
            .get("schema_version")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(version) = self.standard.for_version(version_text) else {
            let supported: Vec<String> = self
                .standard
                .versions
                .iter()
                .map(|v| format!("{}.0–{}.{}", v.major, v.major, v.minor))
                .collect();
            return Err(vec![FieldError::new(
                "/schema_version",
                "schema_version_unsupported",
                format!(
                    "schema_version {version_text:?} is not supported; this hub accepts {}",
                    supported.join(", ")
                ),
            )]);
        };
        if !version.validator.knows(record_type) {
            return Err(vec![FieldError::new(
                "/record_type",
                "record_type_unknown",
                format!(
                    "unknown record_type {record_type:?}; known types: {}",
                    version.record_types().collect::<Vec<_>>().join(", ")
                ),
            )]);
        }
        if let Some(allowed) = &submission.allowed_types
            && !allowed.iter().any(|t| t == record_type)
        {
            return Err(vec![FieldError::new(
                "/record_type",
                "record_type_not_allowed",
                format!("this source may not push {record_type} records"),
            )]);
        }
        let errors = version.validator.validate(record_type, record);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PreparedRecord::from_record(index, record))
    }

    /// Ingest chunks of candidates. Not atomic: each chunk commits on its own, so a later
    /// failure never loses what was already accepted. Atomic: all chunks share one
    /// transaction, rolled back if any record is invalid. Parsing and validation run on a
    /// second thread, ahead of the database writer, so both cores work.
    pub fn ingest(
        &self,
        conn: &mut DbConn,
        submission: &Submission,
        atomic: bool,
        detail: ResultDetail,
        chunks: impl Iterator<Item = Vec<Candidate>> + Send,
    ) -> Result<IngestReport, IngestError> {
        self.ingest_from(conn, submission, atomic, detail, chunks)
    }

    /// `ingest`, taking connections from `connections`. Chunks that arrive over the network
    /// use `ConnectionPerChunk`: no pooled connection waits for a slow client.
    pub fn ingest_from(
        &self,
        connections: impl Connections,
        submission: &Submission,
        atomic: bool,
        detail: ResultDetail,
        chunks: impl Iterator<Item = Vec<Candidate>> + Send,
    ) -> Result<IngestReport, IngestError> {
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::sync_channel::<ValidatedChunk>(2);
            scope.spawn(move || {
                for chunk in chunks {
                    if sender.send(self.validate_chunk(submission, chunk)).is_err() {
                        break;
                    }
                }
            });
            self.write_chunks(
                connections,
                submission,
                None,
                atomic,
                detail,
                receiver.into_iter(),
            )
        })
    }

    /// Store one record under the key the request addresses (`PUT …/records/{key}`), only if
    /// the stored record is as `expected` (checked in the same transaction). A record that is
    /// invalid or carries another key is `AtomicRejected`; nothing is stored.
    pub fn put_one(
        &self,
        conn: &mut DbConn,
        submission: &Submission,
        key: &str,
        candidate: Candidate,
        expected: &Expected,
    ) -> Result<IngestReport, IngestError> {
        let mut chunk = self.validate_chunk(submission, vec![candidate]);
        if chunk
            .accepted
            .first()
            .is_some_and(|(record, _, _)| record.source_record_id != key)
        {
            let (record, row, source_record_id) = chunk.accepted.remove(0);
            chunk.rejected.push(RecordResult {
                index: record.index,
                row,
                source_record_id,
                status: RecordStatus::Rejected,
                version: None,
                errors: vec![FieldError::new(
                    "/source_record_id",
                    "source_record_id_mismatch",
                    format!("source_record_id must be {key:?}, the id in the URL"),
                )],
            });
        }
        self.write_chunks(
            conn,
            submission,
            Some((key, expected)),
            true,
            ResultDetail::All,
            std::iter::once(chunk),
        )
    }

    /// Write validated chunks, then count the push (rejections by code included) for the
    /// operational views; `condition` (atomic only) is a record that must be as expected
    /// before anything is written.
    fn write_chunks(
        &self,
        mut connections: impl Connections,
        submission: &Submission,
        condition: Option<(&str, &Expected)>,
        atomic: bool,
        detail: ResultDetail,
        chunks: impl Iterator<Item = ValidatedChunk>,
    ) -> Result<IngestReport, IngestError> {
        let outcome = self.store_chunks(
            &mut connections,
            submission,
            condition,
            atomic,
            detail,
            chunks,
        );
        let counted = match &outcome {
            Ok(report) => Some(report),
            Err(IngestError::AtomicRejected(report)) => Some(&**report),
            Err(_) => None,
        };
        if let Some(report) = counted {
            connections.with(|conn| operations::record_push(conn, &push_tally(report)))?;
        }
        outcome
    }

    fn store_chunks(
        &self,
        connections: &mut impl Connections,
        submission: &Submission,
        condition: Option<(&str, &Expected)>,
        atomic: bool,
        detail: ResultDetail,
        chunks: impl Iterator<Item = ValidatedChunk>,
    ) -> Result<IngestReport, IngestError> {
        let mut report = IngestReport {
            municipality_code: submission.municipality.clone(),
            source: submission.source.clone(),
            atomic,
            ..IngestReport::default()
        };
        if atomic {
            // Every chunk is needed before the one transaction can commit; when chunks may
            // still be on their way, they are gathered first so the transaction (and its
            // connection) never waits on the network.
            let chunks: Box<dyn Iterator<Item = ValidatedChunk>> = if connections.per_chunk() {
                Box::new(chunks.collect::<Vec<_>>().into_iter())
            } else {
                Box::new(chunks)
            };
            let outcome = connections.with(|conn| {
                in_town_write_transaction(conn, &submission.municipality, |tx| {
                    if let Some((key, expected)) = condition {
                        tx.expect_record(
                            &submission.municipality,
                            &submission.source,
                            key,
                            expected,
                        )?;
                    }
                    for chunk in chunks {
                        apply_chunk(tx, submission, chunk, &mut report, detail, true)?;
                    }
                    if report.rejected > 0 {
                        // Roll back: nothing of an atomic batch with an invalid record is kept.
                        return Err(StoreError::RolledBack);
                    }
                    Ok(())
                })
            });
            return match outcome {
                Ok(()) => Ok(report),
                Err(StoreError::RolledBack) => {
                    report.created = 0;
                    report.updated = 0;
                    report.unchanged = 0;
                    report
                        .results
                        .retain(|r| r.status == RecordStatus::Rejected);
                    Err(IngestError::AtomicRejected(Box::new(report)))
                }
                Err(e) => Err(e.into()),
            };
        }
        for chunk in chunks {
            connections.with(|conn| {
                in_town_write_transaction(conn, &submission.municipality, |tx| {
                    apply_chunk(tx, submission, chunk, &mut report, detail, false)
                })
            })?;
        }
        Ok(report)
    }

    /// Parse and validate one chunk (no database access).
    fn validate_chunk(&self, submission: &Submission, chunk: Vec<Candidate>) -> ValidatedChunk {
        let mut validated = ValidatedChunk::default();
        for candidate in chunk {
            validated.received += 1;
            let srid = candidate.parsed.as_ref().ok().and_then(|v| {
                v.get("source_record_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            if let Ok(v) = &candidate.parsed
                && let Some(version) = v.get("schema_version").and_then(Value::as_str)
            {
                validated.schema_versions.insert(version.to_string());
            }
            match candidate
                .parsed
                .and_then(|value| self.prepare(submission, candidate.index, &value))
            {
                Ok(record) => validated.accepted.push((record, candidate.row, srid)),
                Err(errors) => validated.rejected.push(RecordResult {
                    index: candidate.index,
                    row: candidate.row,
                    source_record_id: srid,
                    status: RecordStatus::Rejected,
                    version: None,
                    errors,
                }),
            }
        }
        validated
    }
}

/// A push as the operational views count it: each rejected record under each of its codes.
fn push_tally(report: &IngestReport) -> operations::PushTally<'_> {
    let mut codes = std::collections::BTreeMap::new();
    for rejected in report
        .results
        .iter()
        .filter(|r| r.status == RecordStatus::Rejected)
    {
        let mut seen: Vec<&str> = rejected.errors.iter().map(|e| e.code.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for code in seen {
            *codes.entry(code).or_insert(0) += 1;
        }
    }
    operations::PushTally {
        municipality: &report.municipality_code,
        source: &report.source,
        received: report.received,
        rejected: report.rejected,
        codes,
    }
}

/// Where an accepted record came from: its line or row, and its id as sent.
type RowOrigin = (Option<u64>, Option<String>);

/// A chunk after validation: rows ready to store and results for the rejected ones.
#[derive(Default)]
struct ValidatedChunk {
    received: u64,
    schema_versions: BTreeSet<String>,
    accepted: Vec<(PreparedRecord, Option<u64>, Option<String>)>,
    rejected: Vec<RecordResult>,
}

/// Store a validated chunk and fold its outcome into the report.
fn apply_chunk(
    tx: &mut dyn WriteTx,
    submission: &Submission,
    chunk: ValidatedChunk,
    report: &mut IngestReport,
    detail: ResultDetail,
    stop_writing_after_rejection: bool,
) -> Result<(), StoreError> {
    let first_result = report.results.len();
    let (received, rejected) = (chunk.received, chunk.rejected.len());
    report.received += chunk.received;
    report.rejected += chunk.rejected.len() as u64;
    report.schema_versions.extend(chunk.schema_versions);
    report.results.extend(chunk.rejected);
    // In an atomic batch that already failed, keep validating (to report every problem) but
    // stop writing.
    if stop_writing_after_rejection && report.rejected > 0 {
        return Ok(());
    }
    let (prepared, rows): (Vec<PreparedRecord>, Vec<RowOrigin>) = chunk
        .accepted
        .into_iter()
        .map(|(record, row, srid)| (record, (row, srid)))
        .unzip();
    let applied = tx.upsert_in_tx(&submission.municipality, &submission.source, &prepared)?;
    let count = |outcome| applied.iter().filter(|a| a.outcome == outcome).count();
    // One audit entry per chunk (not per record) keeps ingest fast; it commits with the chunk.
    tx.append_audit(&AuditEntry {
        municipality_code: submission.municipality.clone(),
        client_id: submission.client_id,
        client_name: Some(submission.source.clone()),
        roles: Some("source".into()),
        action: "records.push".into(),
        result: "ok".into(),
        detail: Some(
            serde_json::json!({
                "received": received,
                "created": count(RecordOutcome::Created),
                "updated": count(RecordOutcome::Updated),
                "unchanged": count(RecordOutcome::Unchanged),
                "rejected": rejected,
            })
            .to_string(),
        ),
        ..AuditEntry::default()
    })?;
    for (applied, (row, srid)) in applied.into_iter().zip(rows) {
        let status = RecordStatus::from(applied.outcome);
        match status {
            RecordStatus::Created => report.created += 1,
            RecordStatus::Updated => report.updated += 1,
            _ => report.unchanged += 1,
        }
        if detail == ResultDetail::All {
            report.results.push(RecordResult {
                index: applied.index,
                row,
                source_record_id: srid,
                status,
                version: Some(applied.version),
                errors: Vec::new(),
            });
        }
    }
    report.results[first_result..].sort_by_key(|r| r.index);
    Ok(())
}

pub use formats::{
    FormatError, csv_candidates, decode_csv, json_batch_candidates, json_record_candidate,
    ndjson_candidate,
};

/// Group candidates into chunks of [`CHUNK_SIZE`].
pub fn chunked<I: Iterator<Item = Candidate>>(items: I) -> impl Iterator<Item = Vec<Candidate>> {
    let mut items = items.peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(items.by_ref().take(CHUNK_SIZE).collect())
    })
}
