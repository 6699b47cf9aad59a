//! Screening worklists: rule-set versions (immutable; the database refuses changes) and their
//! adoption history, runs stored as snapshots with their entries, decisions recorded as
//! support-outcome records in the same transaction as the entry they settle, and the school
//! each school client speaks for. Every change commits with its audit entries.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::tables::{record_versions, records, subjects};
use super::tx::WriteTx;
use super::{DbConn, StoreError, StoreResult, now_rfc3339};
use crate::access::ChildFacts;
use crate::audit::AuditEntry;
use crate::schema::SUBJECT_TYPE;
use crate::screening::engine::{Child, Fact, FactNeeds};
use crate::store::PreparedRecord;
use crate::{on_conn, write_tx};

pub mod tables {
    diesel::table! {
        screening_rule_sets (municipality_code, version) {
            municipality_code -> Text,
            version -> Integer,
            document -> Text,
            content_hash -> Text,
            created_at -> Text,
            created_by -> Text,
            client_name -> Text,
        }
    }

    diesel::table! {
        screening_adoptions (id) {
            id -> BigInt,
            municipality_code -> Text,
            version -> Integer,
            adopted_at -> Text,
            adopted_by -> Text,
            client_name -> Text,
        }
    }

    diesel::table! {
        screening_runs (id) {
            id -> BigInt,
            municipality_code -> Text,
            rule_version -> Integer,
            applicability_version -> Text,
            as_of -> Text,
            high_water_mark -> BigInt,
            population -> Text,
            created_at -> Text,
            created_by -> Text,
            client_name -> Text,
            closed_at -> Nullable<Text>,
            closed_by -> Nullable<Text>,
            close_reason -> Nullable<Text>,
        }
    }

    diesel::table! {
        screening_entries (run_id, resident_no) {
            run_id -> BigInt,
            municipality_code -> Text,
            resident_no -> Text,
            score -> Double,
            age_band -> Text,
            age -> Integer,
            sex -> Nullable<Integer>,
            support_measure -> Bool,
            school_code -> Nullable<Text>,
            known -> Text,
            contributions -> Text,
            decision -> Nullable<Text>,
            decided_on -> Nullable<Text>,
            plan_shared -> Bool,
            decision_record -> Nullable<Text>,
        }
    }

    diesel::table! {
        school_clients (client_id) {
            client_id -> BigInt,
            municipality_code -> Text,
            school_code -> Text,
            linked_at -> Text,
        }
    }
}

use tables::{
    school_clients, screening_adoptions, screening_entries, screening_rule_sets, screening_runs,
};

/// Who did it: the staff member and the client it acted through.
#[derive(Debug, Clone)]
pub struct Acting {
    pub actor: String,
    pub client_name: String,
}

/// A stored rule-set version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSetVersion {
    pub version: i32,
    /// The rule-set document (schema/v1/screening-rules.json).
    #[schema(value_type = crate::screening::RuleSetDocument)]
    pub document: Value,
    /// SHA-256 of the document as stored.
    pub content_hash: String,
    pub created_at: String,
    pub created_by: String,
    /// Adopted now (the version runs use).
    pub adopted: bool,
}

/// One adoption of a version (the town's history of what it ran with).
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Adoption {
    pub version: i32,
    pub adopted_at: String,
    pub adopted_by: String,
}

type RuleRow = (i32, String, String, String, String);

fn rule_version(row: RuleRow, adopted: Option<i32>) -> RuleSetVersion {
    let (version, document, content_hash, created_at, created_by) = row;
    RuleSetVersion {
        version,
        document: serde_json::from_str(&document).unwrap_or(Value::Null),
        content_hash,
        created_at,
        created_by,
        adopted: adopted == Some(version),
    }
}

/// Store a new version of the town's rule set (the next number); audited with it.
pub fn add_rule_set(
    conn: &mut DbConn,
    municipality: &str,
    document: &Value,
    by: &Acting,
    audit: &AuditEntry,
) -> StoreResult<i32> {
    let text = document.to_string();
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let latest = screening_rule_sets::table
            .filter(screening_rule_sets::municipality_code.eq(municipality))
            .select(diesel::dsl::max(screening_rule_sets::version))
            .first::<Option<i32>>(c)?;
        let version = latest.unwrap_or(0) + 1;
        diesel::insert_into(screening_rule_sets::table)
            .values((
                screening_rule_sets::municipality_code.eq(municipality),
                screening_rule_sets::version.eq(version),
                screening_rule_sets::document.eq(&text),
                screening_rule_sets::content_hash.eq(&hash),
                screening_rule_sets::created_at.eq(&now),
                screening_rule_sets::created_by.eq(&by.actor),
                screening_rule_sets::client_name.eq(&by.client_name),
            ))
            .execute(c)?;
        let mut entry = audit.clone();
        entry.detail =
            Some(serde_json::json!({"version": version, "content_hash": hash}).to_string());
        c.append_audit(&entry)?;
        Ok::<_, StoreError>(version)
    })
}

/// The version adopted now, if any.
pub fn adopted_version(conn: &mut DbConn, municipality: &str) -> StoreResult<Option<i32>> {
    Ok(on_conn!(conn, |c| screening_adoptions::table
        .filter(screening_adoptions::municipality_code.eq(municipality))
        .order(screening_adoptions::id.desc())
        .select(screening_adoptions::version)
        .first::<i32>(c)
        .optional())?)
}

/// Every version of the town's rule set, oldest first, and the adoption history.
pub fn rule_sets(
    conn: &mut DbConn,
    municipality: &str,
) -> StoreResult<(Vec<RuleSetVersion>, Vec<Adoption>)> {
    let adopted = adopted_version(conn, municipality)?;
    let (rows, adoptions) = on_conn!(conn, |c| {
        let rows = screening_rule_sets::table
            .filter(screening_rule_sets::municipality_code.eq(municipality))
            .order(screening_rule_sets::version)
            .select(rule_columns())
            .load::<RuleRow>(c)?;
        let adoptions = screening_adoptions::table
            .filter(screening_adoptions::municipality_code.eq(municipality))
            .order(screening_adoptions::id)
            .select((
                screening_adoptions::version,
                screening_adoptions::adopted_at,
                screening_adoptions::adopted_by,
            ))
            .load::<Adoption>(c)?;
        diesel::QueryResult::Ok((rows, adoptions))
    })?;
    Ok((
        rows.into_iter().map(|r| rule_version(r, adopted)).collect(),
        adoptions,
    ))
}

fn rule_columns() -> (
    screening_rule_sets::version,
    screening_rule_sets::document,
    screening_rule_sets::content_hash,
    screening_rule_sets::created_at,
    screening_rule_sets::created_by,
) {
    (
        screening_rule_sets::version,
        screening_rule_sets::document,
        screening_rule_sets::content_hash,
        screening_rule_sets::created_at,
        screening_rule_sets::created_by,
    )
}

pub fn rule_set(
    conn: &mut DbConn,
    municipality: &str,
    version: i32,
) -> StoreResult<Option<RuleSetVersion>> {
    let adopted = adopted_version(conn, municipality)?;
    let row = on_conn!(conn, |c| screening_rule_sets::table
        .find((municipality, version))
        .select(rule_columns())
        .first::<RuleRow>(c)
        .optional())?;
    Ok(row.map(|r| rule_version(r, adopted)))
}

/// Adopt a stored version; audited with it. False when there is no such version.
pub fn adopt(
    conn: &mut DbConn,
    municipality: &str,
    version: i32,
    by: &Acting,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let exists = screening_rule_sets::table
            .find((municipality, version))
            .count()
            .get_result::<i64>(c)?
            > 0;
        if !exists {
            return Ok(false);
        }
        diesel::insert_into(screening_adoptions::table)
            .values((
                screening_adoptions::municipality_code.eq(municipality),
                screening_adoptions::version.eq(version),
                screening_adoptions::adopted_at.eq(&now),
                screening_adoptions::adopted_by.eq(&by.actor),
                screening_adoptions::client_name.eq(&by.client_name),
            ))
            .execute(c)?;
        c.append_audit(audit)?;
        Ok::<_, StoreError>(true)
    })
}

/// The fields of a subject record a run needs beyond its columns.
#[derive(Deserialize, Default)]
struct SubjectFields {
    #[serde(default)]
    guardians: Vec<String>,
    moved_in_on: Option<NaiveDate>,
    moved_out_on: Option<NaiveDate>,
}

type SubjectRow = (
    String,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// A town's children as a run reads them: those living there on `as_of` with their policy
/// facts, everyone under a DV measure, and the change-feed position read.
pub struct TownChildren {
    /// In resident-number order.
    pub children: Vec<Child>,
    pub facts: HashMap<String, ChildFacts>,
    /// Everyone of the town under a DV support measure (children and guardians).
    pub support_measure: HashSet<String>,
    pub high_water_mark: i64,
}

pub fn town_children(
    conn: &mut DbConn,
    municipality: &str,
    as_of: NaiveDate,
) -> StoreResult<TownChildren> {
    let support_measure = super::records::support_measure_subjects(conn, municipality)?;
    let opted_out = super::records::opted_out_subjects(conn, municipality)?;
    // The children living here on `as_of`, each with its household.
    let mut living: Vec<(Child, Option<String>)> = Vec::new();
    let mut household_guardians: HashMap<String, Vec<String>> = HashMap::new();
    let high_water_mark = on_conn!(conn, |c| {
        let high_water_mark = record_versions::table
            .filter(record_versions::municipality_code.eq(municipality))
            .select(diesel::dsl::max(record_versions::seq))
            .first::<Option<i64>>(c)?
            .unwrap_or(0);
        // Row by row: the town's subject records are never held all at once.
        let people = subjects::table
            .filter(subjects::municipality_code.eq(municipality))
            .select((
                subjects::resident_no,
                subjects::birth_date,
                subjects::sex,
                subjects::household_no,
                subjects::role,
                subjects::data,
                subjects::moved_out_to,
            ))
            .order(subjects::resident_no)
            .load_iter::<SubjectRow, DefaultLoadingMode>(c)?;
        for person in people {
            let (resident_no, birth_date, sex, household, role, data, moved_out_to) = person?;
            match role.as_deref() {
                Some("guardian") => {
                    if let Some(household) = household {
                        household_guardians
                            .entry(household)
                            .or_default()
                            .push(resident_no);
                    }
                }
                Some("child") => {
                    let fields: SubjectFields = serde_json::from_str(&data).unwrap_or_default();
                    let birth =
                        birth_date.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok());
                    let lives_here = moved_out_to.is_none()
                        && fields.moved_in_on.is_none_or(|d| d <= as_of)
                        && fields.moved_out_on.is_none_or(|d| d > as_of);
                    let (Some(birth_date), true) = (birth, lives_here) else {
                        continue;
                    };
                    let child = Child {
                        support_measure: support_measure.contains(&resident_no),
                        resident_no,
                        birth_date,
                        sex,
                        guardians: fields.guardians,
                    };
                    living.push((child, household));
                }
                _ => {}
            }
        }
        diesel::QueryResult::Ok(high_water_mark)
    })?;
    let mut children = Vec::with_capacity(living.len());
    let mut facts = HashMap::with_capacity(living.len());
    for (mut child, household) in living {
        child.guardians.extend(
            household
                .and_then(|h| household_guardians.get(&h))
                .into_iter()
                .flatten()
                .cloned(),
        );
        child.guardians.sort();
        child.guardians.dedup();
        facts.insert(
            child.resident_no.clone(),
            ChildFacts {
                support_measure: child.support_measure,
                opted_out: opted_out.contains(&child.resident_no),
            },
        );
        children.push(child);
    }
    Ok(TownChildren {
        children,
        facts,
        support_measure,
        high_water_mark,
    })
}

/// The current records about `people` effective by `as_of`, of the types `needs` names and
/// with only the fields it names, by the person they are about; each person's in a fixed
/// order (type, effective date, source record id, then the order they were first stored in).
pub fn facts_of(
    conn: &mut DbConn,
    municipality: &str,
    as_of: NaiveDate,
    people: &[String],
    needs: &FactNeeds,
) -> StoreResult<HashMap<String, Vec<Fact>>> {
    if people.is_empty() || needs.record_types.is_empty() {
        return Ok(HashMap::new());
    }
    let as_of_text = as_of.format("%Y-%m-%d").to_string();
    let mut rows = on_conn!(conn, |c| records::table
        .filter(records::municipality_code.eq(municipality))
        .filter(records::subject_resident_no.eq_any(people))
        .filter(records::retracted.eq(false))
        .filter(records::record_type.ne(SUBJECT_TYPE))
        .filter(records::record_type.eq_any(&needs.record_types))
        .filter(records::effective_date.le(&as_of_text))
        .select((
            records::subject_resident_no.assume_not_null(),
            records::record_type,
            records::effective_date,
            records::source_record_id,
            records::id,
            records::data,
        ))
        .load::<(String, String, String, String, i64, String)>(c))?;
    // Sorted here, not by the database: its sort of a slice cost more than reading it
    // (PostgreSQL's spilled to disk), and here strings compare byte by byte whatever the
    // database's collation, so both backends give the same order.
    rows.sort_unstable_by(|a, b| (&a.0, &a.1, &a.2, &a.3, a.4).cmp(&(&b.0, &b.1, &b.2, &b.3, b.4)));
    let mut by_person: HashMap<String, Vec<Fact>> = HashMap::new();
    for (about, record_type, effective_date, source_record_id, _, data) in rows {
        by_person.entry(about).or_default().push(Fact {
            record_type,
            source_record_id,
            effective_date,
            data: projected(&data, &needs.fields),
        });
    }
    Ok(by_person)
}

/// The fields of a stored record (canonical JSON) named in `fields`, as an object; the rest
/// is skipped while parsing, never built. An unreadable record reads as null (it matches no rule).
fn projected(data: &str, fields: &BTreeSet<String>) -> Value {
    let mut parser = serde_json::Deserializer::from_str(data);
    Projection(fields)
        .deserialize(&mut parser)
        .map_or(Value::Null, Value::Object)
}

/// Parses a JSON object keeping only some of its top-level members.
struct Projection<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for Projection<'_> {
    type Value = serde_json::Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, parser: D) -> Result<Self::Value, D::Error> {
        parser.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Projection<'_> {
    type Value = serde_json::Map<String, Value>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a record (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Self::Value, A::Error> {
        let mut kept = serde_json::Map::new();
        while let Some(wanted) = members.next_key_seed(WantedKey(self.0))? {
            match wanted {
                Some(key) => {
                    kept.insert(key, members.next_value()?);
                }
                None => {
                    members.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// A member's name, kept (allocated) only when it is wanted.
struct WantedKey<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for WantedKey<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, parser: D) -> Result<Self::Value, D::Error> {
        parser.deserialize_str(self)
    }
}

impl Visitor<'_> for WantedKey<'_> {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.contains(key).then(|| key.to_string()))
    }
}

/// A run as stored (without its entries).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = screening_runs)]
pub struct RunRow {
    pub id: i64,
    pub municipality_code: String,
    pub rule_version: i32,
    pub applicability_version: String,
    pub as_of: String,
    pub high_water_mark: i64,
    pub population: String,
    pub created_at: String,
    pub created_by: String,
    pub client_name: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
}

/// A run to store.
pub struct NewRun<'a> {
    pub municipality: &'a str,
    pub rule_version: i32,
    pub applicability_version: &'a str,
    pub as_of: &'a str,
    pub high_water_mark: i64,
    /// Screened children per age band, sex and DV flag (JSON).
    pub population: String,
    pub by: &'a Acting,
}

/// An entry as stored.
#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = screening_entries, treat_none_as_default_value = false)]
pub struct EntryRow {
    pub run_id: i64,
    pub municipality_code: String,
    pub resident_no: String,
    pub score: f64,
    pub age_band: String,
    pub age: i32,
    pub sex: Option<i32>,
    pub support_measure: bool,
    pub school_code: Option<String>,
    /// JSON list of known reasons.
    pub known: String,
    /// JSON list of contributions.
    pub contributions: String,
    pub decision: Option<String>,
    pub decided_on: Option<String>,
    pub plan_shared: bool,
    pub decision_record: Option<String>,
}

/// How a backend takes a run's entries (tens of thousands of rows): SQLite one row per INSERT,
/// a statement diesel keeps prepared (preparing a 1,000-row INSERT cost about as much as running
/// it); PostgreSQL one binary COPY (no statement text to parse, no parameters to bind).
trait EntryWrites {
    fn insert_entries(&mut self, entries: &[EntryRow]) -> QueryResult<()>;
}

impl EntryWrites for diesel::SqliteConnection {
    fn insert_entries(&mut self, entries: &[EntryRow]) -> QueryResult<()> {
        for entry in entries {
            diesel::insert_into(screening_entries::table)
                .values(entry)
                .execute(self)?;
        }
        Ok(())
    }
}

impl EntryWrites for diesel::PgConnection {
    fn insert_entries(&mut self, entries: &[EntryRow]) -> QueryResult<()> {
        diesel::copy_from(screening_entries::table)
            .from_insertable(entries)
            .execute(self)
            .map(|_| ())
    }
}

/// Store a run and its entries with one audit entry per child (appended as one batch), in one
/// transaction; returns
/// the run's id. `entry_audit` is completed with each child and the run id.
pub fn insert_run(
    conn: &mut DbConn,
    run: &NewRun,
    mut entries: Vec<EntryRow>,
    entry_audit: &AuditEntry,
) -> StoreResult<i64> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let id = diesel::insert_into(screening_runs::table)
            .values((
                screening_runs::municipality_code.eq(run.municipality),
                screening_runs::rule_version.eq(run.rule_version),
                screening_runs::applicability_version.eq(run.applicability_version),
                screening_runs::as_of.eq(run.as_of),
                screening_runs::high_water_mark.eq(run.high_water_mark),
                screening_runs::population.eq(&run.population),
                screening_runs::created_at.eq(&now),
                screening_runs::created_by.eq(&run.by.actor),
                screening_runs::client_name.eq(&run.by.client_name),
            ))
            .returning(screening_runs::id)
            .get_result::<i64>(c)?;
        for entry in &mut entries {
            entry.run_id = id;
        }
        c.insert_entries(&entries)?;
        let detail = serde_json::json!({"run": id, "rule_version": run.rule_version}).to_string();
        let audit = |subject: Option<&EntryRow>| AuditEntry {
            subject: subject.map(|e| e.resident_no.clone()),
            detail: Some(detail.clone()),
            ..entry_audit.clone()
        };
        let audits: Vec<AuditEntry> = if entries.is_empty() {
            vec![audit(None)]
        } else {
            entries.iter().map(|e| audit(Some(e))).collect()
        };
        c.append_audits(&audits)?;
        Ok::<_, StoreError>(id)
    })
}

/// The town's runs, newest first.
pub fn runs(conn: &mut DbConn, municipality: &str) -> StoreResult<Vec<RunRow>> {
    Ok(on_conn!(conn, |c| screening_runs::table
        .filter(screening_runs::municipality_code.eq(municipality))
        .order(screening_runs::id.desc())
        .select(RunRow::as_select())
        .load::<RunRow>(c))?)
}

/// One run of the town (another town's run does not exist here).
pub fn run(conn: &mut DbConn, municipality: &str, id: i64) -> StoreResult<Option<RunRow>> {
    Ok(on_conn!(conn, |c| screening_runs::table
        .filter(screening_runs::municipality_code.eq(municipality))
        .filter(screening_runs::id.eq(id))
        .select(RunRow::as_select())
        .first::<RunRow>(c)
        .optional())?)
}

/// Every entry of a run, in the order it was stored.
pub fn entries(conn: &mut DbConn, run_id: i64) -> StoreResult<Vec<EntryRow>> {
    Ok(on_conn!(conn, |c| screening_entries::table
        .filter(screening_entries::run_id.eq(run_id))
        .order((
            screening_entries::score.desc(),
            screening_entries::resident_no
        ))
        .load::<EntryRow>(c))?)
}

/// Entries of several runs of a town (for run summaries).
pub fn entries_of_runs(conn: &mut DbConn, run_ids: &[i64]) -> StoreResult<Vec<EntryRow>> {
    Ok(on_conn!(conn, |c| screening_entries::table
        .filter(screening_entries::run_id.eq_any(run_ids))
        .load::<EntryRow>(c))?)
}

pub fn entry(conn: &mut DbConn, run_id: i64, resident_no: &str) -> StoreResult<Option<EntryRow>> {
    Ok(on_conn!(conn, |c| screening_entries::table
        .find((run_id, resident_no))
        .first::<EntryRow>(c)
        .optional())?)
}

/// A case meeting's decision on one entry, as stored on the entry.
pub struct Decision<'a> {
    pub run_id: i64,
    pub resident_no: &'a str,
    pub class: &'a str,
    pub decided_on: &'a str,
    pub plan_shared: bool,
}

/// Record a decision: the support-outcome record through the ingest upsert (history, change
/// feed), the entry, and the audit entry, in one transaction.
pub fn record_decision(
    conn: &mut DbConn,
    municipality: &str,
    source: &str,
    record: &PreparedRecord,
    decision: &Decision,
    audit: &AuditEntry,
) -> StoreResult<i32> {
    write_tx!(conn, |c| {
        let applied = c.upsert_in_tx(municipality, source, std::slice::from_ref(record))?;
        diesel::update(screening_entries::table.find((decision.run_id, decision.resident_no)))
            .set((
                screening_entries::decision.eq(decision.class),
                screening_entries::decided_on.eq(decision.decided_on),
                screening_entries::plan_shared.eq(decision.plan_shared),
                screening_entries::decision_record.eq(&record.source_record_id),
            ))
            .execute(c)?;
        c.append_audit(audit)?;
        Ok::<_, StoreError>(applied.first().map_or(1, |a| a.version))
    })
}

/// Close a run; audited with it. False if it was already closed.
pub fn close_run(
    conn: &mut DbConn,
    run_id: i64,
    by: &Acting,
    reason: Option<&str>,
    audit: &AuditEntry,
) -> StoreResult<bool> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let closed = diesel::update(
            screening_runs::table
                .find(run_id)
                .filter(screening_runs::closed_at.is_null()),
        )
        .set((
            screening_runs::closed_at.eq(&now),
            screening_runs::closed_by.eq(&by.actor),
            screening_runs::close_reason.eq(reason),
        ))
        .execute(c)?;
        if closed > 0 {
            c.append_audit(audit)?;
        }
        Ok::<_, StoreError>(closed > 0)
    })
}

/// Link a school client to the school it speaks for; audited.
pub fn link_school(
    conn: &mut DbConn,
    municipality: &str,
    client_id: i64,
    school_code: &str,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        diesel::insert_into(school_clients::table)
            .values((
                school_clients::client_id.eq(client_id),
                school_clients::municipality_code.eq(municipality),
                school_clients::school_code.eq(school_code),
                school_clients::linked_at.eq(&now),
            ))
            .on_conflict(school_clients::client_id)
            .do_update()
            .set((
                school_clients::school_code.eq(school_code),
                school_clients::linked_at.eq(&now),
            ))
            .execute(c)?;
        c.append_audit(audit)?;
        Ok::<_, StoreError>(())
    })
}

/// The school a client speaks for, if linked.
pub fn school_of(conn: &mut DbConn, client_id: i64) -> StoreResult<Option<String>> {
    Ok(on_conn!(conn, |c| school_clients::table
        .find(client_id)
        .select(school_clients::school_code)
        .first::<String>(c)
        .optional())?)
}

/// A decision shared with a school: the entry and the record holding the plan.
pub struct SharedRow {
    pub run_id: i64,
    pub resident_no: String,
    pub decision: String,
    pub decided_on: String,
    pub record: Option<Value>,
    pub name: Option<String>,
    pub birth_date: Option<String>,
}

/// Decisions shared with `school_code`'s school for its pupils, newest run first.
pub fn shared_with_school(
    conn: &mut DbConn,
    municipality: &str,
    school_code: &str,
    source: &str,
) -> StoreResult<Vec<SharedRow>> {
    let (rows, people) = on_conn!(conn, |c| {
        let rows = screening_entries::table
            .filter(screening_entries::municipality_code.eq(municipality))
            .filter(screening_entries::school_code.eq(school_code))
            .filter(screening_entries::plan_shared.eq(true))
            .filter(screening_entries::decision.is_not_null())
            .order((
                screening_entries::run_id.desc(),
                screening_entries::resident_no,
            ))
            .select((
                screening_entries::run_id,
                screening_entries::resident_no,
                screening_entries::decision.assume_not_null(),
                screening_entries::decided_on.assume_not_null(),
                screening_entries::decision_record,
            ))
            .load::<(i64, String, String, String, Option<String>)>(c)?;
        let who: Vec<&String> = rows.iter().map(|r| &r.1).collect();
        let people = subjects::table
            .filter(subjects::municipality_code.eq(municipality))
            .filter(subjects::resident_no.eq_any(who))
            .select((subjects::resident_no, subjects::name, subjects::birth_date))
            .load::<(String, Option<String>, Option<String>)>(c)?;
        diesel::QueryResult::Ok((rows, people))
    })?;
    let people: HashMap<String, (Option<String>, Option<String>)> =
        people.into_iter().map(|(r, n, b)| (r, (n, b))).collect();
    let mut shared = Vec::with_capacity(rows.len());
    for (run_id, resident_no, decision, decided_on, record_id) in rows {
        let record = match record_id {
            Some(id) => decision_record(conn, municipality, source, &id)?,
            None => None,
        };
        let (name, birth_date) = people.get(&resident_no).cloned().unwrap_or_default();
        shared.push(SharedRow {
            run_id,
            resident_no,
            decision,
            decided_on,
            record,
            name,
            birth_date,
        });
    }
    Ok(shared)
}

/// The current support-outcome record of a decision.
pub fn decision_record(
    conn: &mut DbConn,
    municipality: &str,
    source: &str,
    source_record_id: &str,
) -> StoreResult<Option<Value>> {
    let data = on_conn!(conn, |c| records::table
        .filter(records::municipality_code.eq(municipality))
        .filter(records::source.eq(source))
        .filter(records::source_record_id.eq(source_record_id))
        .filter(records::retracted.eq(false))
        .select(records::data)
        .first::<String>(c)
        .optional())?;
    Ok(data.and_then(|d| serde_json::from_str(&d).ok()))
}

/// The policy facts of the children of a run now: an objection recorded after the run hides
/// the child from then on, and a DV measure in any version of its subject record hides it
/// for good. Children no longer in the register are missing from the map.
pub fn current_facts(
    conn: &mut DbConn,
    municipality: &str,
    resident_nos: &[String],
) -> StoreResult<HashMap<String, ChildFacts>> {
    let mut facts = super::records::children_facts(conn, municipality, resident_nos)?;
    let flagged: HashSet<String> = super::records::support_measure_subjects(conn, municipality)?;
    for (resident_no, child) in facts.iter_mut() {
        child.support_measure |= flagged.contains(resident_no);
    }
    Ok(facts)
}

/// Names of some of the town's subjects.
pub fn subject_names(
    conn: &mut DbConn,
    municipality: &str,
    resident_nos: &[String],
) -> StoreResult<HashMap<String, String>> {
    let rows = on_conn!(conn, |c| subjects::table
        .filter(subjects::municipality_code.eq(municipality))
        .filter(subjects::resident_no.eq_any(resident_nos))
        .filter(subjects::name.is_not_null())
        .select((subjects::resident_no, subjects::name.assume_not_null()))
        .load::<(String, String)>(c))?;
    Ok(rows.into_iter().collect())
}
