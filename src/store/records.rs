//! Records: idempotent batch upsert with history, retraction, profile reads, history and the
//! change feed. Uniqueness of (municipality, source, source_record_id) is the database's job.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::upsert::excluded;
use serde::Serialize;
use serde_json::Value;

use super::WriteTx;
use super::tables::{
    opt_outs, record_versions, records, subjects, support_measure_subjects, transfer_children,
    transfers,
};
use super::{Applied, DbConn, PreparedRecord, RecordOutcome, StoreError, StoreResult, now_rfc3339};
use crate::access::ChildFacts;
use crate::audit::AuditEntry;
use crate::schema::SUBJECT_TYPE;
use crate::store::identity::IdentityTx;
use crate::transfer::TransferStatus;
use crate::{on_conn, write_tx};

#[derive(Queryable)]
struct Existing {
    source_record_id: String,
    content_hash: String,
    version: i32,
    retracted: bool,
}

/// Split a batch into runs in which every key appears once, keeping order, so a key repeated
/// in one request is applied in sequence (the later occurrence wins, as if sent later).
fn unique_runs(batch: &[PreparedRecord]) -> Vec<&[PreparedRecord]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut seen = HashSet::new();
    for (i, record) in batch.iter().enumerate() {
        if !seen.insert(record.source_record_id.as_str()) {
            runs.push(&batch[start..i]);
            start = i;
            seen.clear();
            seen.insert(record.source_record_id.as_str());
        }
    }
    if start < batch.len() {
        runs.push(&batch[start..]);
    }
    runs
}

/// A record's version and whether it is a tombstone: what a conditional write compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordState {
    pub version: i32,
    pub retracted: bool,
}

/// The entity tag of one version of a record. Every change (update or retraction) makes a
/// new version, so the tag names exactly one state of the record; the content hash would not
/// (re-pushing earlier content, or retracting, keeps it).
pub fn etag(version: i32) -> String {
    format!("\"v{version}\"")
}

/// What a conditional write expects the record to be when it runs (HTTP `If-Match` /
/// `If-None-Match`). It is compared inside the write transaction, so of two writers that
/// read the same version only the first to commit succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No condition.
    Anything,
    /// The record exists and its current entity tag is one of these (`If-Match: "v3"`).
    OneOf(Vec<String>),
    /// The record exists and is not retracted (`If-Match: *`).
    Present,
    /// No live record under this key (`If-None-Match: *`): create only.
    Absent,
}

impl Expected {
    fn admits(&self, state: Option<RecordState>) -> bool {
        let live = state.is_some_and(|s| !s.retracted);
        match self {
            Expected::Anything => true,
            Expected::OneOf(tags) => state.is_some_and(|s| tags.contains(&etag(s.version))),
            Expected::Present => live,
            Expected::Absent => !live,
        }
    }

    /// `Ok` when the record is as expected; otherwise the error naming its current state.
    pub fn check(&self, state: Option<RecordState>) -> StoreResult<()> {
        if self.admits(state) {
            Ok(())
        } else {
            Err(StoreError::PreconditionFailed { current: state })
        }
    }
}

diesel::define_sql_function! {
    /// The first of its arguments that is not NULL.
    fn coalesce<T: diesel::sql_types::SqlType + diesel::sql_types::SingleValue>(
        first: diesel::sql_types::Nullable<T>,
        second: diesel::sql_types::Nullable<T>,
    ) -> diesel::sql_types::Nullable<T>;
}

/// SQLite allows 32,766 bound parameters per statement; stay well below with 13 columns.
const INSERT_CHUNK: usize = 1000;

macro_rules! upsert_run_body {
    ($c:ident, $municipality:expr, $source:expr, $run:expr, $now:expr) => {{
        let municipality: &str = $municipality;
        let source: &str = $source;
        let run: &[PreparedRecord] = $run;
        let now: &str = $now;
        let keys: Vec<&str> = run.iter().map(|r| r.source_record_id.as_str()).collect();
        let mut existing: HashMap<String, Existing> = HashMap::with_capacity(run.len());
        // Rows of this source with these keys, as they are now.
        macro_rules! load_existing {
            ($keys:expr) => {
                for row in records::table
                    .filter(records::municipality_code.eq(municipality))
                    .filter(records::source.eq(source))
                    .filter(records::source_record_id.eq_any($keys))
                    .select((
                        records::source_record_id,
                        records::content_hash,
                        records::version,
                        records::retracted,
                    ))
                    .load::<Existing>($c)?
                {
                    existing.insert(row.source_record_id.clone(), row);
                }
            };
        }
        for chunk in keys.chunks(INSERT_CHUNK) {
            load_existing!(chunk);
        }
        let fresh: Vec<&PreparedRecord> = run
            .iter()
            .filter(|r| !existing.contains_key(&r.source_record_id))
            .collect();
        // Each statement below writes a chunk of rows; the column values of a row are the same
        // whether it is inserted or replaces the row held.
        macro_rules! record_rows {
            ($chunk:expr) => {
                $chunk
                    .iter()
                    .map(|r| {
                        (
                            records::municipality_code.eq(municipality),
                            records::source.eq(source),
                            records::source_record_id.eq(&r.source_record_id),
                            records::record_type.eq(&r.record_type),
                            records::schema_version.eq(&r.schema_version),
                            records::subject_resident_no.eq(r.subject_resident_no.as_deref()),
                            records::effective_date.eq(&r.effective_date),
                            records::data.eq(&r.data),
                            records::content_hash.eq(&r.content_hash),
                            records::version.eq(1),
                            records::retracted.eq(false),
                            records::updated_at.eq(now),
                        )
                    })
                    .collect::<Vec<_>>()
            };
        }
        let mut created: HashMap<String, i64> = HashMap::with_capacity(fresh.len());
        for chunk in fresh.chunks(INSERT_CHUNK) {
            let inserted: Vec<(i64, String)> = diesel::insert_into(records::table)
                .values(record_rows!(chunk))
                .on_conflict((
                    records::municipality_code,
                    records::source,
                    records::source_record_id,
                ))
                .do_nothing()
                .returning((records::id, records::source_record_id))
                .get_results($c)?;
            created.extend(inserted.into_iter().map(|(id, key)| (key, id)));
        }
        // Rows another writer inserted between our read and our insert: read them again and
        // treat them as updates of that row.
        let raced: Vec<&str> = fresh
            .iter()
            .map(|r| r.source_record_id.as_str())
            .filter(|k| !created.contains_key(*k))
            .collect();
        if !raced.is_empty() {
            load_existing!(&raced);
        }
        // Rows held whose content differs or that were retracted become their next version:
        // one statement per chunk (an upsert of rows known to exist, so each one updates).
        let changed: Vec<&PreparedRecord> = run
            .iter()
            .filter(|r| {
                !created.contains_key(&r.source_record_id)
                    && existing
                        .get(&r.source_record_id)
                        .is_some_and(|old| old.content_hash != r.content_hash || old.retracted)
            })
            .collect();
        let mut updated: HashMap<String, (i64, i32)> = HashMap::with_capacity(changed.len());
        for chunk in changed.chunks(INSERT_CHUNK) {
            let rows: Vec<(i64, String, i32)> = diesel::insert_into(records::table)
                .values(record_rows!(chunk))
                .on_conflict((
                    records::municipality_code,
                    records::source,
                    records::source_record_id,
                ))
                .do_update()
                .set((
                    records::record_type.eq(excluded(records::record_type)),
                    records::schema_version.eq(excluded(records::schema_version)),
                    records::subject_resident_no.eq(excluded(records::subject_resident_no)),
                    records::effective_date.eq(excluded(records::effective_date)),
                    records::data.eq(excluded(records::data)),
                    records::content_hash.eq(excluded(records::content_hash)),
                    records::version.eq(records::version + 1),
                    records::retracted.eq(false),
                    records::updated_at.eq(excluded(records::updated_at)),
                ))
                .returning((records::id, records::source_record_id, records::version))
                .get_results($c)?;
            updated.extend(
                rows.into_iter()
                    .map(|(id, key, version)| (key, (id, version))),
            );
        }
        let mut applied = Vec::with_capacity(run.len());
        let mut versions = Vec::new();
        let mut subject_changes = Vec::new();
        let mut under_support_measure = std::collections::BTreeSet::new();
        let mut to_resolve: Vec<(i64, String, Value)> = Vec::new();
        for record in run {
            let key = &record.source_record_id;
            let (id, outcome, version) = if let Some(&id) = created.get(key) {
                (id, RecordOutcome::Created, 1)
            } else if let Some(&(id, version)) = updated.get(key) {
                (id, RecordOutcome::Updated, version)
            } else {
                let old = existing.get(key).ok_or(StoreError::Conflict(format!(
                    "record {key} vanished during upsert"
                )))?;
                applied.push(Applied {
                    index: record.index,
                    outcome: RecordOutcome::Unchanged,
                    version: old.version,
                });
                continue;
            };
            versions.push((
                record_versions::municipality_code.eq(municipality),
                record_versions::record_id.eq(id),
                record_versions::source.eq(source),
                record_versions::source_record_id.eq(&record.source_record_id),
                record_versions::record_type.eq(&record.record_type),
                record_versions::version.eq(version),
                record_versions::retracted.eq(false),
                record_versions::data.eq(&record.data),
                record_versions::content_hash.eq(&record.content_hash),
                record_versions::recorded_at.eq(now),
            ));
            if record.record_type == SUBJECT_TYPE {
                if flags_support_measure(&record.data)
                    && let Some(resident_no) = &record.subject_resident_no
                {
                    under_support_measure.insert(resident_no.as_str());
                }
                subject_changes.push(record);
            } else if record.subject_resident_no.is_none()
                && let Ok(data) = serde_json::from_str::<Value>(&record.data)
            {
                to_resolve.push((id, source.to_string(), data));
            }
            applied.push(Applied {
                index: record.index,
                outcome,
                version,
            });
        }
        for chunk in versions.chunks(INSERT_CHUNK) {
            diesel::insert_into(record_versions::table)
                .values(chunk)
                .execute($c)?;
        }
        let flagged: Vec<_> = under_support_measure
            .into_iter()
            .map(|resident_no| {
                (
                    support_measure_subjects::municipality_code.eq(municipality),
                    support_measure_subjects::resident_no.eq(resident_no),
                )
            })
            .collect();
        for chunk in flagged.chunks(INSERT_CHUNK) {
            diesel::insert_into(support_measure_subjects::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute($c)?;
        }
        let mut new_birth_dates = std::collections::BTreeSet::new();
        // One row per person, upserted per chunk; a person's later record in the run is applied
        // over the earlier one, as if sent later.
        let mut subject_rows: Vec<SubjectRow> = Vec::with_capacity(subject_changes.len());
        let mut position: HashMap<String, usize> = HashMap::with_capacity(subject_changes.len());
        for record in subject_changes {
            let row = subject_row(municipality, record, now)?;
            new_birth_dates.extend(row.birth_date.clone());
            match position.get(&row.resident_no) {
                Some(&at) => subject_rows[at].overlay(row),
                None => {
                    position.insert(row.resident_no.clone(), subject_rows.len());
                    subject_rows.push(row);
                }
            }
        }
        for chunk in subject_rows.chunks(INSERT_CHUNK) {
            // A field the new record leaves out keeps the value held (as a per-row
            // `AsChangeset` update skips `None`).
            diesel::insert_into(subjects::table)
                .values(chunk)
                .on_conflict((subjects::municipality_code, subjects::resident_no))
                .do_update()
                .set((
                    subjects::household_no.eq(coalesce(
                        excluded(subjects::household_no),
                        subjects::household_no,
                    )),
                    subjects::name.eq(coalesce(excluded(subjects::name), subjects::name)),
                    subjects::name_kana
                        .eq(coalesce(excluded(subjects::name_kana), subjects::name_kana)),
                    subjects::birth_date.eq(coalesce(
                        excluded(subjects::birth_date),
                        subjects::birth_date,
                    )),
                    subjects::sex.eq(coalesce(excluded(subjects::sex), subjects::sex)),
                    subjects::role.eq(coalesce(excluded(subjects::role), subjects::role)),
                    subjects::support_measure.eq(excluded(subjects::support_measure)),
                    subjects::data.eq(excluded(subjects::data)),
                    subjects::updated_at.eq(excluded(subjects::updated_at)),
                ))
                .execute($c)?;
        }
        IdentityTx::resolve_records($c, municipality, &to_resolve)?;
        IdentityTx::retry_pending($c, municipality, &new_birth_dates)?;
        Ok::<_, StoreError>(applied)
    }};
}

/// Upserting records, compiled once per backend; part of the write transaction
/// (`super::WriteTx`).
pub trait RecordWrites {
    fn upsert_records(
        &mut self,
        municipality: &str,
        source: &str,
        batch: &[PreparedRecord],
    ) -> StoreResult<Vec<Applied>>;

    /// The current version of one record of this source (`None`: never pushed).
    fn record_state(
        &mut self,
        municipality: &str,
        source: &str,
        source_record_id: &str,
    ) -> StoreResult<Option<RecordState>>;
}

macro_rules! impl_record_writes {
    ($conn:ty) => {
        impl RecordWrites for $conn {
            fn upsert_records(
                &mut self,
                municipality: &str,
                source: &str,
                batch: &[PreparedRecord],
            ) -> StoreResult<Vec<Applied>> {
                let now = now_rfc3339();
                let mut applied = Vec::with_capacity(batch.len());
                for run in unique_runs(batch) {
                    let c = &mut *self;
                    applied.extend(upsert_run_body!(c, municipality, source, run, &now)?);
                }
                Ok(applied)
            }

            fn record_state(
                &mut self,
                municipality: &str,
                source: &str,
                source_record_id: &str,
            ) -> StoreResult<Option<RecordState>> {
                let state = records::table
                    .filter(records::municipality_code.eq(municipality))
                    .filter(records::source.eq(source))
                    .filter(records::source_record_id.eq(source_record_id))
                    .select((records::version, records::retracted))
                    .first::<(i32, bool)>(self)
                    .optional()?;
                Ok(state.map(|(version, retracted)| RecordState { version, retracted }))
            }
        }
    };
}
impl_record_writes!(diesel::SqliteConnection);
impl_record_writes!(diesel::PgConnection);

#[derive(Insertable)]
#[diesel(table_name = subjects, treat_none_as_default_value = false)]
struct SubjectRow {
    municipality_code: String,
    resident_no: String,
    household_no: Option<String>,
    name: Option<String>,
    name_kana: Option<String>,
    birth_date: Option<String>,
    sex: Option<i32>,
    role: Option<String>,
    support_measure: bool,
    data: String,
    updated_at: String,
}

impl SubjectRow {
    /// Apply a later row of the same person: its fields win, those it leaves out stay.
    fn overlay(&mut self, later: SubjectRow) {
        self.household_no = later.household_no.or(self.household_no.take());
        self.name = later.name.or(self.name.take());
        self.name_kana = later.name_kana.or(self.name_kana.take());
        self.birth_date = later.birth_date.or(self.birth_date.take());
        self.sex = later.sex.or(self.sex);
        self.role = later.role.or(self.role.take());
        self.support_measure = later.support_measure;
        self.data = later.data;
        self.updated_at = later.updated_at;
    }
}

fn subject_row(municipality: &str, record: &PreparedRecord, now: &str) -> StoreResult<SubjectRow> {
    let data: Value = serde_json::from_str(&record.data)
        .map_err(|e| StoreError::Invalid(format!("stored record is not JSON: {e}")))?;
    let text = |field: &str| data.get(field).and_then(Value::as_str).map(str::to_string);
    Ok(SubjectRow {
        municipality_code: municipality.to_string(),
        resident_no: record
            .subject_resident_no
            .clone()
            .ok_or_else(|| StoreError::Invalid("subject record without resident_no".into()))?,
        household_no: text("household_no"),
        name: text("name"),
        name_kana: text("name_kana"),
        birth_date: text("birth_date"),
        sex: data.get("sex").and_then(Value::as_i64).map(|s| s as i32),
        role: text("role"),
        support_measure: data
            .get("support_measure")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        data: record.data.clone(),
        updated_at: now.to_string(),
    })
}

/// Retract (tombstone) a record of this source if it is as `expected`. Retracting twice is
/// harmless.
pub fn retract(
    conn: &mut DbConn,
    municipality: &str,
    source: &str,
    source_record_id: &str,
    expected: &Expected,
    audit: &AuditEntry,
) -> StoreResult<i32> {
    let now = now_rfc3339();
    write_tx!(conn, town = municipality, |c| {
        let old = records::table
            .filter(records::municipality_code.eq(municipality))
            .filter(records::source.eq(source))
            .filter(records::source_record_id.eq(source_record_id))
            .select((
                records::id,
                records::record_type,
                records::subject_resident_no,
                records::data,
                records::content_hash,
                records::version,
                records::retracted,
            ))
            .first::<(i64, String, Option<String>, String, String, i32, bool)>(c)
            .optional()?;
        let Some((id, record_type, subject, data, hash, version, retracted)) = old else {
            return Err(StoreError::NotFound);
        };
        expected.check(Some(RecordState { version, retracted }))?;
        c.append_audit(audit)?;
        if retracted {
            return Ok(version);
        }
        let version = version + 1;
        diesel::update(records::table.find(id))
            .set((
                records::version.eq(version),
                records::retracted.eq(true),
                records::updated_at.eq(&now),
            ))
            .execute(c)?;
        diesel::insert_into(record_versions::table)
            .values((
                record_versions::municipality_code.eq(municipality),
                record_versions::record_id.eq(id),
                record_versions::source.eq(source),
                record_versions::source_record_id.eq(source_record_id),
                record_versions::record_type.eq(&record_type),
                record_versions::version.eq(version),
                record_versions::retracted.eq(true),
                record_versions::data.eq(&data),
                record_versions::content_hash.eq(&hash),
                record_versions::recorded_at.eq(&now),
            ))
            .execute(c)?;
        if record_type == SUBJECT_TYPE
            && let Some(resident_no) = subject
        {
            diesel::delete(subjects::table.find((municipality, resident_no))).execute(c)?;
        }
        Ok(version)
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrentRecord {
    pub source: String,
    pub source_record_id: String,
    pub record_type: String,
    pub schema_version: String,
    pub version: i32,
    pub updated_at: String,
    /// Entity tag of this version (`"v<version>"`), for `If-Match`.
    pub etag: String,
    #[schema(value_type = Object)]
    pub record: Value,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdMember {
    pub resident_no: String,
    pub role: Option<String>,
    pub name: Option<String>,
    pub birth_date: Option<String>,
}

/// A guardian's objection (不同意) to the child's data being used for screening.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct OptOut {
    pub objected_on: String,
    pub legal_note: Option<String>,
    pub recorded_at: String,
}

/// Everything the hub holds about one subject.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub subject: Value,
    pub support_measure: bool,
    pub opt_out: Option<OptOut>,
    pub household: Vec<HouseholdMember>,
    pub records: Vec<CurrentRecord>,
    /// Current records of the subject's guardians (used for household-level basic items).
    pub guardian_records: Vec<(String, CurrentRecord)>,
    /// The child's move out of this town, once a transfer was accepted or delivered.
    pub moved_out: Option<MovedOut>,
}

/// Where and when a child moved out (its transfer was accepted, or delivered to another hub).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MovedOut {
    /// The destination municipality.
    pub to: String,
    /// When the destination accepted (or the other hub received) the transfer.
    pub on: String,
    pub transfer_id: i64,
}

type CurrentRow = (String, String, String, String, i32, String, String);

fn current_record(row: CurrentRow) -> CurrentRecord {
    let (source, source_record_id, record_type, schema_version, version, updated_at, data) = row;
    CurrentRecord {
        source,
        source_record_id,
        record_type,
        schema_version,
        version,
        updated_at,
        etag: etag(version),
        record: serde_json::from_str(&data).unwrap_or(Value::Null),
    }
}

/// What the access policy needs to know about a child, read with two primary-key lookups
/// whether or not the child exists, so every answer takes the same path. `None`: no such child.
pub fn child_facts(
    conn: &mut DbConn,
    municipality: &str,
    resident_no: &str,
) -> StoreResult<Option<ChildFacts>> {
    on_conn!(conn, |c| {
        let support_measure = subjects::table
            .find((municipality, resident_no))
            .select(subjects::support_measure)
            .first::<bool>(c)
            .optional()?;
        let opted_out = opt_outs::table
            .find((municipality, resident_no))
            .count()
            .get_result::<i64>(c)?
            > 0;
        Ok(support_measure.map(|support_measure| ChildFacts {
            support_measure,
            opted_out,
        }))
    })
}

/// The facts of several children of one town (absent ones are missing from the map).
pub fn children_facts(
    conn: &mut DbConn,
    municipality: &str,
    resident_nos: &[String],
) -> StoreResult<HashMap<String, ChildFacts>> {
    on_conn!(conn, |c| {
        let flags = subjects::table
            .filter(subjects::municipality_code.eq(municipality))
            .filter(subjects::resident_no.eq_any(resident_nos))
            .select((subjects::resident_no, subjects::support_measure))
            .load::<(String, bool)>(c)?;
        let objected: HashSet<String> = opt_outs::table
            .filter(opt_outs::municipality_code.eq(municipality))
            .filter(opt_outs::resident_no.eq_any(resident_nos))
            .select(opt_outs::resident_no)
            .load::<String>(c)?
            .into_iter()
            .collect();
        Ok(flags
            .into_iter()
            .map(|(resident_no, support_measure)| {
                let opted_out = objected.contains(&resident_no);
                (
                    resident_no,
                    ChildFacts {
                        support_measure,
                        opted_out,
                    },
                )
            })
            .collect())
    })
}

pub fn profile(
    conn: &mut DbConn,
    municipality: &str,
    resident_no: &str,
    sees_support_measure: bool,
) -> StoreResult<Option<Profile>> {
    on_conn!(conn, |c| {
        let subject = subjects::table
            .find((municipality, resident_no))
            .select((
                subjects::data,
                subjects::household_no,
                subjects::support_measure,
            ))
            .first::<(String, Option<String>, bool)>(c)
            .optional()?;
        let Some((data, household_no, support_measure)) = subject else {
            return Ok(None);
        };
        let subject: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let opt_out = opt_outs::table
            .find((municipality, resident_no))
            .select((
                opt_outs::objected_on,
                opt_outs::legal_note,
                opt_outs::recorded_at,
            ))
            .first::<OptOut>(c)
            .optional()?;
        let household: Vec<HouseholdMember> = match &household_no {
            Some(household_no) => subjects::table
                .filter(subjects::municipality_code.eq(municipality))
                .filter(subjects::household_no.eq(household_no))
                .filter(subjects::resident_no.ne(resident_no))
                // Household members under a DV support measure stay invisible too.
                .filter(
                    subjects::support_measure
                        .eq(false)
                        .or(sees_support_measure.into_sql::<diesel::sql_types::Bool>()),
                )
                .select((
                    subjects::resident_no,
                    subjects::role,
                    subjects::name,
                    subjects::birth_date,
                ))
                .order(subjects::resident_no)
                .load::<(String, Option<String>, Option<String>, Option<String>)>(c)?
                .into_iter()
                .map(|(resident_no, role, name, birth_date)| HouseholdMember {
                    resident_no,
                    role,
                    name,
                    birth_date,
                })
                .collect(),
            None => Vec::new(),
        };
        let mut guardians: Vec<String> = subject
            .get("guardians")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect();
        guardians.extend(
            household
                .iter()
                .filter(|m| m.role.as_deref() == Some("guardian"))
                .map(|m| m.resident_no.clone()),
        );
        guardians.sort();
        guardians.dedup();
        if !sees_support_measure {
            let flagged: Vec<String> = subjects::table
                .filter(subjects::municipality_code.eq(municipality))
                .filter(subjects::resident_no.eq_any(&guardians))
                .filter(subjects::support_measure.eq(true))
                .select(subjects::resident_no)
                .load(c)?;
            guardians.retain(|g| !flagged.contains(g));
        }
        let mut people = guardians.clone();
        people.push(resident_no.to_string());
        let rows = records::table
            .filter(records::municipality_code.eq(municipality))
            .filter(records::subject_resident_no.eq_any(&people))
            .filter(records::retracted.eq(false))
            .filter(records::record_type.ne(SUBJECT_TYPE))
            .select((
                records::subject_resident_no,
                (
                    records::source,
                    records::source_record_id,
                    records::record_type,
                    records::schema_version,
                    records::version,
                    records::updated_at,
                    records::data,
                ),
            ))
            .order((records::effective_date, records::id))
            .load::<(Option<String>, CurrentRow)>(c)?;
        let mut own = Vec::new();
        let mut guardian_records = Vec::new();
        for (about, row) in rows {
            let about = about.unwrap_or_default();
            if about == resident_no {
                own.push(current_record(row));
            } else {
                guardian_records.push((about, current_record(row)));
            }
        }
        let transfer_ids = transfer_children::table
            .filter(transfer_children::municipality_code.eq(municipality))
            .filter(transfer_children::origin_resident_no.eq(resident_no))
            .select(transfer_children::transfer_id)
            .load::<i64>(c)?;
        let moved_out = transfers::table
            .filter(transfers::id.eq_any(&transfer_ids))
            .filter(transfers::status.eq_any([
                TransferStatus::Accepted.as_str(),
                TransferStatus::Delivered.as_str(),
            ]))
            .order(transfers::id.desc())
            .select((
                transfers::id,
                transfers::destination_code,
                transfers::decided_at,
            ))
            .first::<(i64, Option<String>, Option<String>)>(c)
            .optional()?
            .map(|(transfer_id, to, on)| MovedOut {
                to: to.unwrap_or_default(),
                on: on.unwrap_or_default(),
                transfer_id,
            });
        Ok(Some(Profile {
            moved_out,
            subject,
            support_measure,
            opt_out,
            household,
            records: own,
            guardian_records,
        }))
    })
}

/// Record (or replace) a guardian's objection; audited in the same transaction. Returns false
/// when the subject is unknown.
pub fn set_opt_out(
    conn: &mut DbConn,
    municipality: &str,
    resident_no: &str,
    objected_on: &str,
    legal_note: Option<&str>,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let known = subjects::table
            .find((municipality, resident_no))
            .count()
            .get_result::<i64>(c)?
            > 0;
        if !known {
            return Ok(false);
        }
        let row = (
            opt_outs::municipality_code.eq(municipality),
            opt_outs::resident_no.eq(resident_no),
            opt_outs::objected_on.eq(objected_on),
            opt_outs::legal_note.eq(legal_note),
            opt_outs::recorded_at.eq(&now),
        );
        diesel::insert_into(opt_outs::table)
            .values(row)
            .on_conflict((opt_outs::municipality_code, opt_outs::resident_no))
            .do_update()
            .set((
                opt_outs::objected_on.eq(objected_on),
                opt_outs::legal_note.eq(legal_note),
                opt_outs::recorded_at.eq(&now),
            ))
            .execute(c)?;
        c.append_audit(audit)?;
        Ok(true)
    })
}

/// Withdraw an objection; audited in the same transaction. Returns false if there was none.
pub fn clear_opt_out(
    conn: &mut DbConn,
    municipality: &str,
    resident_no: &str,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    write_tx!(conn, |c| {
        let removed =
            diesel::delete(opt_outs::table.find((municipality, resident_no))).execute(c)?;
        if removed > 0 {
            c.append_audit(audit)?;
        }
        Ok(removed > 0)
    })
}

/// Current (not retracted) records of one type, optionally of one source, in id order.
pub fn current_of_type(
    conn: &mut DbConn,
    municipality: &str,
    record_type: &str,
    source: Option<&str>,
) -> StoreResult<Vec<Value>> {
    let rows = on_conn!(conn, |c| {
        let mut query = records::table
            .filter(records::municipality_code.eq(municipality))
            .filter(records::record_type.eq(record_type))
            .filter(records::retracted.eq(false))
            .select(records::data)
            .order(records::id)
            .into_boxed();
        if let Some(source) = source {
            query = query.filter(records::source.eq(source));
        }
        query.load::<String>(c)
    })?;
    Ok(rows
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect())
}

/// The stored JSON of a record, by its row id.
pub fn record_data(conn: &mut DbConn, record_id: i64) -> StoreResult<Option<Value>> {
    let data = on_conn!(conn, |c| records::table
        .find(record_id)
        .select(records::data)
        .first::<String>(c)
        .optional())?;
    Ok(data.and_then(|d| serde_json::from_str(&d).ok()))
}

/// Whether a version of a subject record puts its person under a DV support measure: the flag
/// as canonical JSON (no spaces) writes it, anywhere in the record — hiding one person too many
/// is safe, one too few is not. The migration that made `support_measure_subjects` matched the
/// versions stored before it the same way.
fn flags_support_measure(data: &str) -> bool {
    data.contains(r#""support_measure":true"#)
}

/// Resident numbers under a DV support measure in a municipality — now or in any earlier
/// version of their subject record, so a retraction or an update never un-hides a child. The
/// ingest path records them as it stores each version (`support_measure_subjects`), so the
/// set holds everyone whose subject row says so now as well.
pub fn support_measure_subjects(
    conn: &mut DbConn,
    municipality: &str,
) -> StoreResult<HashSet<String>> {
    let flagged = on_conn!(conn, |c| support_measure_subjects::table
        .filter(support_measure_subjects::municipality_code.eq(municipality))
        .select(support_measure_subjects::resident_no)
        .load::<String>(c))?;
    Ok(flagged.into_iter().collect())
}

/// Bring the planner's statistics of the record tables up to date after a bulk load. Until
/// PostgreSQL's autovacuum gets to it, the planner takes the tables to be as small as they were
/// and reads a town's records by scanning them all (for every slice of a screening run) instead
/// of seeking the index. SQLite's planner takes an index to be selective when it has no
/// statistics, which is what these reads want, so a SQLite database is left as it is.
pub fn analyze_after_bulk_load(conn: &mut DbConn) -> StoreResult<()> {
    if let DbConn::Pg(pooled) = conn {
        diesel::sql_query("ANALYZE records, record_versions, subjects, support_measure_subjects")
            .execute(&mut **pooled)?;
    }
    Ok(())
}

/// Resident numbers whose guardians objected (不同意) in a municipality.
pub fn opted_out_subjects(conn: &mut DbConn, municipality: &str) -> StoreResult<HashSet<String>> {
    let objected = on_conn!(conn, |c| opt_outs::table
        .filter(opt_outs::municipality_code.eq(municipality))
        .select(opt_outs::resident_no)
        .load::<String>(c))?;
    Ok(objected.into_iter().collect())
}

/// One version of a record, as kept in history and published in the change feed.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct StoredVersion {
    pub seq: i64,
    pub source: String,
    pub source_record_id: String,
    pub record_type: String,
    pub version: i32,
    pub retracted: bool,
    #[serde(skip)]
    pub data: String,
    pub content_hash: String,
    pub recorded_at: String,
}

/// An entry of the change feed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Change {
    #[serde(flatten)]
    pub version: StoredVersion,
    /// Entity tag of this version (`"v<version>"`), for `If-Match`.
    pub etag: String,
    /// The record as of this change; absent for retractions.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub record: Option<Value>,
}

impl Change {
    /// The resident number the version is about, if any.
    pub fn about(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.version.data)
            .ok()?
            .pointer("/subject/resident_no")?
            .as_str()
            .map(str::to_string)
    }
}

impl From<StoredVersion> for Change {
    fn from(version: StoredVersion) -> Change {
        let record = (!version.retracted)
            .then(|| serde_json::from_str(&version.data).ok())
            .flatten();
        Change {
            etag: etag(version.version),
            version,
            record,
        }
    }
}

macro_rules! version_columns {
    () => {
        (
            record_versions::seq,
            record_versions::source,
            record_versions::source_record_id,
            record_versions::record_type,
            record_versions::version,
            record_versions::retracted,
            record_versions::data,
            record_versions::content_hash,
            record_versions::recorded_at,
        )
    };
}

/// Every version of the records with this id (of one source, or of every source).
pub fn history(
    conn: &mut DbConn,
    municipality: &str,
    source: Option<&str>,
    source_record_id: &str,
) -> StoreResult<Vec<Change>> {
    let rows = on_conn!(conn, |c| {
        let mut query = record_versions::table
            .filter(record_versions::municipality_code.eq(municipality))
            .filter(record_versions::source_record_id.eq(source_record_id))
            .select(version_columns!())
            .order((record_versions::source, record_versions::version))
            .into_boxed();
        if let Some(source) = source {
            query = query.filter(record_versions::source.eq(source));
        }
        query.load::<StoredVersion>(c)
    })?;
    Ok(rows.into_iter().map(Change::from).collect())
}

/// Changes after `cursor` (exclusive), oldest first.
pub fn changes(
    conn: &mut DbConn,
    municipality: &str,
    cursor: i64,
    limit: i64,
) -> StoreResult<Vec<Change>> {
    let rows = on_conn!(conn, |c| record_versions::table
        .filter(record_versions::municipality_code.eq(municipality))
        .filter(record_versions::seq.gt(cursor))
        .select(version_columns!())
        .order(record_versions::seq)
        .limit(limit)
        .load::<StoredVersion>(c))?;
    Ok(rows.into_iter().map(Change::from).collect())
}
