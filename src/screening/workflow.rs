//! The screening workflows the API and the CLI share: preview a rule set, run a worklist (a
//! snapshot), read it as the caller may see it, record a meeting's decision as a
//! support-outcome record, close a run, count fairness, and show schools what was shared
//! with them. Every child on a list is decided by `access`; every step is audited.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use super::engine::{self, Contribution, FactNeeds, Scored};
use super::{DecisionClass, KnownReason, RuleSetDocument};
use crate::access::{self, ChildUse};
use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::ingest::{Ingestor, Submission};
use crate::schema::{FieldError, SchemaVersion};
use crate::store::screening::{self as store, Acting, Decision, EntryRow, NewRun, RunRow};
use crate::store::{DbConn, StoreError};

/// The source of the support-outcome records a case meeting's decisions become (no client
/// can push under it: client names have no colon).
pub const DECISION_SOURCE: &str = "screening:case-meeting";

#[derive(Debug, thiserror::Error)]
pub enum ScreeningError {
    #[error("no such run, entry or version, or not visible to the caller")]
    NotFound,
    #[error("client {0} does not hold the school role")]
    NotASchool(String),
    #[error("the town has not adopted a screening rule set")]
    NoAdoptedRuleSet,
    #[error("the run is closed")]
    RunClosed,
    #[error("{0} entries are undecided; record a reason to close the run anyway")]
    Undecided(usize),
    #[error("invalid: {0:?}")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Screened children of one age band, sex and DV flag (stored with a run; counts only).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PopulationCell {
    pub band: String,
    pub sex: Option<i32>,
    pub support_measure: bool,
    pub children: u64,
}

/// Children whose records (and their guardians') are read together: a run holds one slice of
/// the town's records at a time, never the whole town.
const CHILDREN_PER_READ: usize = 2000;

/// Score and extract the town's screened children (opted-out children are not screened),
/// reading only the record types and fields the rule set scores, slice by slice in
/// resident-number order.
fn screen_town(
    conn: &mut DbConn,
    version: &SchemaVersion,
    municipality: &str,
    rules: &RuleSetDocument,
    as_of: NaiveDate,
) -> Result<(Vec<Scored>, i64), ScreeningError> {
    let mut town = store::town_children(conn, municipality, as_of)?;
    let facts = &town.facts;
    town.children
        .retain(|c| facts.get(&c.resident_no).is_some_and(access::screened));
    let needs = FactNeeds::of(rules, version);
    let mut scored = Vec::with_capacity(town.children.len());
    for slice in town.children.chunks(CHILDREN_PER_READ) {
        let mut people: Vec<String> = slice
            .iter()
            .flat_map(|c| std::iter::once(&c.resident_no).chain(&c.guardians))
            .cloned()
            .collect();
        people.sort();
        people.dedup();
        let records = store::facts_of(conn, municipality, as_of, &people, &needs)?;
        scored.extend(slice.iter().filter_map(|child| {
            engine::score(
                rules,
                &version.applicability,
                child,
                &records,
                &town.support_measure,
                as_of,
            )
        }));
    }
    Ok((engine::extract(rules, scored), town.high_water_mark))
}

/// Counts per age band, basic item and scorable field of what a rule set would extract.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewView {
    pub municipality_code: String,
    pub version: i32,
    pub as_of: String,
    /// Every screened child, and those extracted.
    pub total: BandCounts,
    #[schema(max_items = 18)]
    pub bands: Vec<BandCounts>,
    #[schema(max_items = 64)]
    pub items: Vec<ItemCounts>,
    #[schema(max_items = 64)]
    pub fields: Vec<FieldCounts>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BandCounts {
    pub label: String,
    /// Children screened in the band (opted-out children are not).
    pub population: u64,
    pub extracted: u64,
    /// Of the extracted, those already known (open case, protection, support, an earlier
    /// meeting's review).
    pub extracted_known: u64,
    /// Children with points left out for a reason of `exclude_known`.
    pub excluded_known: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemCounts {
    pub item: u32,
    pub title: String,
    /// Extracted children the item contributed to.
    pub extracted: u64,
    pub extracted_known: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldCounts {
    pub record_type: String,
    pub field: String,
    pub extracted: u64,
    pub extracted_known: u64,
}

/// What `rules` would extract on `as_of`, as counts over the children the caller may see.
pub fn preview(
    conn: &mut DbConn,
    version: &SchemaVersion,
    caller: &Principal,
    municipality: &str,
    rule_version: i32,
    as_of: NaiveDate,
    audit: &AuditEntry,
) -> Result<PreviewView, ScreeningError> {
    let rules = stored_rules(conn, version, municipality, rule_version)?;
    let (scored, _) = screen_town(conn, version, municipality, &rules, as_of)?;
    let sees_dv = access::lists_support_measure(caller, municipality);
    let visible: Vec<&Scored> = scored
        .iter()
        .filter(|s| sees_dv || !s.support_measure)
        .collect();
    let count = |band: Option<usize>| {
        let mut counts = BandCounts::default();
        for s in visible.iter().filter(|s| band.is_none_or(|b| s.band == b)) {
            counts.population += 1;
            counts.extracted += u64::from(s.extracted);
            counts.extracted_known += u64::from(s.extracted && !s.known.is_empty());
            counts.excluded_known += u64::from(s.excluded && s.score > 0.0);
        }
        counts
    };
    let mut items: BTreeMap<u32, ItemCounts> = BTreeMap::new();
    let mut fields: BTreeMap<(String, String), FieldCounts> = BTreeMap::new();
    for s in visible.iter().filter(|s| s.extracted) {
        let known = u64::from(!s.known.is_empty());
        for contribution in &s.contributions {
            match contribution {
                Contribution::Item { item, title, .. } => {
                    let counts = items.entry(*item).or_insert_with(|| ItemCounts {
                        item: *item,
                        title: title.clone(),
                        extracted: 0,
                        extracted_known: 0,
                    });
                    counts.extracted += 1;
                    counts.extracted_known += known;
                }
                Contribution::Field {
                    record_type, field, ..
                } => {
                    let counts = fields
                        .entry((record_type.clone(), field.clone()))
                        .or_insert_with(|| FieldCounts {
                            record_type: record_type.clone(),
                            field: field.clone(),
                            extracted: 0,
                            extracted_known: 0,
                        });
                    counts.extracted += 1;
                    counts.extracted_known += known;
                }
            }
        }
    }
    let view = PreviewView {
        municipality_code: municipality.to_string(),
        version: rule_version,
        as_of: as_of.format("%Y-%m-%d").to_string(),
        total: BandCounts {
            label: "all".into(),
            ..count(None)
        },
        bands: rules
            .age_bands
            .iter()
            .enumerate()
            .map(|(i, band)| BandCounts {
                label: band.label.clone(),
                ..count(Some(i))
            })
            .collect(),
        items: items.into_values().collect(),
        fields: fields.into_values().collect(),
    };
    let mut entry = audit.clone();
    entry.detail = Some(
        json!({"version": rule_version, "as_of": view.as_of, "extracted": view.total.extracted})
            .to_string(),
    );
    crate::store::audit::append(conn, &entry)?;
    Ok(view)
}

/// Store a rule-set document as the town's next version and adopt it at once (the console's
/// `adopt` commands; the API stores and adopts in two steps). Both steps are audited.
pub fn store_and_adopt(
    conn: &mut DbConn,
    version: &SchemaVersion,
    municipality: &str,
    document: &Value,
    by: &Acting,
    audit: &AuditEntry,
) -> Result<i32, ScreeningError> {
    let problems = super::problems(version, document);
    if !problems.is_empty() {
        return Err(ScreeningError::Invalid(problems));
    }
    let add = AuditEntry {
        action: "screening.rules.add".into(),
        ..audit.clone()
    };
    let rule_version = store::add_rule_set(conn, municipality, document, by, &add)?;
    let adopt = AuditEntry {
        action: "screening.rules.adopt".into(),
        detail: Some(json!({"version": rule_version}).to_string()),
        ..audit.clone()
    };
    store::adopt(conn, municipality, rule_version, by, &adopt)?;
    Ok(rule_version)
}

/// A stored version's document, parsed.
fn stored_rules(
    conn: &mut DbConn,
    version: &SchemaVersion,
    municipality: &str,
    rule_version: i32,
) -> Result<RuleSetDocument, ScreeningError> {
    let stored =
        store::rule_set(conn, municipality, rule_version)?.ok_or(ScreeningError::NotFound)?;
    super::parse(version, &stored.document).map_err(ScreeningError::Invalid)
}

/// Compute the worklist as of `as_of` with the adopted version and store it as a snapshot,
/// each entry audited with its child. Returns the run's id.
pub fn run(
    conn: &mut DbConn,
    version: &SchemaVersion,
    municipality: &str,
    as_of: NaiveDate,
    by: &Acting,
    audit: &AuditEntry,
) -> Result<i64, ScreeningError> {
    let rule_version =
        store::adopted_version(conn, municipality)?.ok_or(ScreeningError::NoAdoptedRuleSet)?;
    let rules = stored_rules(conn, version, municipality, rule_version)?;
    let (scored, high_water_mark) = screen_town(conn, version, municipality, &rules, as_of)?;
    let mut population: BTreeMap<(usize, Option<i32>, bool), u64> = BTreeMap::new();
    for s in &scored {
        *population
            .entry((s.band, s.sex, s.support_measure))
            .or_default() += 1;
    }
    let population: Vec<PopulationCell> = population
        .into_iter()
        .map(|((band, sex, support_measure), children)| PopulationCell {
            band: rules.age_bands[band].label.clone(),
            sex,
            support_measure,
            children,
        })
        .collect();
    let entries: Vec<EntryRow> = scored
        .into_iter()
        .filter(|s| s.extracted)
        .map(|s| EntryRow {
            run_id: 0,
            municipality_code: municipality.to_string(),
            age_band: rules.age_bands[s.band].label.clone(),
            age: i32::try_from(s.age).unwrap_or(i32::MAX),
            sex: s.sex,
            support_measure: s.support_measure,
            school_code: s.school_code,
            score: s.score,
            known: serde_json::to_string(&s.known).unwrap_or_else(|_| "[]".into()),
            contributions: serde_json::to_string(&s.contributions).unwrap_or_else(|_| "[]".into()),
            resident_no: s.resident_no,
            decision: None,
            decided_on: None,
            plan_shared: false,
            decision_record: None,
        })
        .collect();
    let as_of = as_of.format("%Y-%m-%d").to_string();
    let run = NewRun {
        municipality,
        rule_version,
        applicability_version: &version.applicability.rule_set_version,
        as_of: &as_of,
        high_water_mark,
        population: serde_json::to_string(&population).unwrap_or_else(|_| "[]".into()),
        by,
    };
    Ok(store::insert_run(conn, &run, entries, audit)?)
}

/// A run as the caller may see it (counts over visible entries only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub id: i64,
    pub municipality_code: String,
    pub rule_version: i32,
    /// Version of the applicability rules the items were evaluated with.
    pub applicability_version: String,
    pub as_of: String,
    /// The newest change-feed position (`seq`) of the town the run read.
    pub high_water_mark: i64,
    pub created_at: String,
    pub created_by: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub close_reason: Option<String>,
    pub entries: u64,
    pub decided: u64,
    pub already_known: u64,
}

/// A decision recorded on an entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub review_outcome: DecisionClass,
    pub decided_on: String,
    pub plan_shared_with_school: bool,
    /// The support-outcome record holding it (source `screening:case-meeting`).
    pub source_record_id: String,
}

/// One child on a worklist.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Place on the list as the caller sees it (1 = highest score).
    pub position: usize,
    pub resident_no: String,
    pub name: Option<String>,
    pub age: i32,
    pub age_band: String,
    pub sex: Option<i32>,
    /// Orders the list for the meeting; never a judgement and never shown outside it.
    pub score: f64,
    pub already_known: bool,
    #[schema(max_items = 4)]
    pub known: Vec<KnownReason>,
    /// The items and fields that added points, with their records, values and points.
    #[schema(max_items = 128)]
    pub contributions: Vec<Contribution>,
    pub school_code: Option<String>,
    pub decision: Option<DecisionView>,
}

/// A worklist: the run and the entries the caller may see.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorklistView {
    pub run: RunSummary,
    /// The legal caution shown with every list.
    pub caution: String,
    #[schema(max_items = 1000000)]
    pub entries: Vec<EntryView>,
}

/// Shown with every worklist.
pub const CAUTION: &str = "この一覧は判定会議の資料であり、何も決定しません。支援の要否は会議の参加者が判断します。The list supports a case meeting; it decides nothing.";

fn summary(run: &RunRow, visible: &[&EntryRow]) -> RunSummary {
    RunSummary {
        id: run.id,
        municipality_code: run.municipality_code.clone(),
        rule_version: run.rule_version,
        applicability_version: run.applicability_version.clone(),
        as_of: run.as_of.clone(),
        high_water_mark: run.high_water_mark,
        created_at: run.created_at.clone(),
        created_by: run.created_by.clone(),
        closed_at: run.closed_at.clone(),
        closed_by: run.closed_by.clone(),
        close_reason: run.close_reason.clone(),
        entries: visible.len() as u64,
        decided: visible.iter().filter(|e| e.decision.is_some()).count() as u64,
        already_known: visible.iter().filter(|e| e.known != "[]").count() as u64,
    }
}

/// Entries of a run the caller may see now (policy facts read now, not at run time).
fn visible_entries(
    conn: &mut DbConn,
    caller: &Principal,
    run: &RunRow,
    entries: Vec<EntryRow>,
) -> Result<Vec<EntryRow>, ScreeningError> {
    let who: Vec<String> = entries.iter().map(|e| e.resident_no.clone()).collect();
    let facts = store::current_facts(conn, &run.municipality_code, &who)?;
    Ok(entries
        .into_iter()
        .filter(|e| {
            let mut child = facts.get(&e.resident_no).cloned();
            if let Some(child) = child.as_mut() {
                child.support_measure |= e.support_measure;
            }
            access::decide(
                caller,
                &run.municipality_code,
                ChildUse::Worklist,
                child.as_ref(),
            )
            .is_allowed()
        })
        .collect())
}

fn entry_view(position: usize, row: EntryRow, name: Option<String>) -> EntryView {
    let decision = match (&row.decision, &row.decided_on, &row.decision_record) {
        (Some(class), Some(on), Some(record)) => {
            DecisionClass::parse(class).map(|review_outcome| DecisionView {
                review_outcome,
                decided_on: on.clone(),
                plan_shared_with_school: row.plan_shared,
                source_record_id: record.clone(),
            })
        }
        _ => None,
    };
    EntryView {
        position,
        name,
        age: row.age,
        age_band: row.age_band,
        sex: row.sex,
        score: row.score,
        known: serde_json::from_str(&row.known).unwrap_or_default(),
        already_known: row.known != "[]",
        contributions: serde_json::from_str(&row.contributions).unwrap_or_default(),
        school_code: row.school_code,
        decision,
        resident_no: row.resident_no,
    }
}

/// The worklist of a run as the caller may see it; each child shown is audited (`audit`
/// completed with the child), or one entry without a child when none is shown.
pub fn worklist(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    audit: &AuditEntry,
) -> Result<WorklistView, ScreeningError> {
    let run = store::run(conn, municipality, run_id)?.ok_or(ScreeningError::NotFound)?;
    let entries = store::entries(conn, run_id)?;
    let visible = visible_entries(conn, caller, &run, entries)?;
    let names = store::subject_names(
        conn,
        municipality,
        &visible
            .iter()
            .map(|e| e.resident_no.clone())
            .collect::<Vec<_>>(),
    )?;
    let detail = json!({"run": run_id}).to_string();
    let audits: Vec<AuditEntry> = if visible.is_empty() {
        vec![AuditEntry {
            detail: Some(detail),
            ..audit.clone()
        }]
    } else {
        visible
            .iter()
            .map(|e| AuditEntry {
                subject: Some(e.resident_no.clone()),
                detail: Some(detail.clone()),
                ..audit.clone()
            })
            .collect()
    };
    crate::store::audit::append_all(conn, &audits)?;
    let run_view = summary(&run, &visible.iter().collect::<Vec<_>>());
    let entries = visible
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let name = names.get(&row.resident_no).cloned();
            entry_view(i + 1, row, name)
        })
        .collect();
    Ok(WorklistView {
        run: run_view,
        caution: CAUTION.into(),
        entries,
    })
}

/// One run's summary, with counts over what the caller may see.
pub fn run_summary(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
) -> Result<RunSummary, ScreeningError> {
    let run = store::run(conn, municipality, run_id)?.ok_or(ScreeningError::NotFound)?;
    let entries = store::entries(conn, run_id)?;
    let visible = visible_entries(conn, caller, &run, entries)?;
    Ok(summary(&run, &visible.iter().collect::<Vec<_>>()))
}

/// Summaries of the town's runs, with counts over what the caller may see.
pub fn runs(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
) -> Result<Vec<RunSummary>, ScreeningError> {
    let runs = store::runs(conn, municipality)?;
    let ids: Vec<i64> = runs.iter().map(|r| r.id).collect();
    let mut by_run: HashMap<i64, Vec<EntryRow>> = HashMap::new();
    for entry in store::entries_of_runs(conn, &ids)? {
        by_run.entry(entry.run_id).or_default().push(entry);
    }
    let mut summaries = Vec::with_capacity(runs.len());
    for run in &runs {
        let visible = visible_entries(
            conn,
            caller,
            run,
            by_run.remove(&run.id).unwrap_or_default(),
        )?;
        summaries.push(summary(run, &visible.iter().collect::<Vec<_>>()));
    }
    Ok(summaries)
}

/// Whether the caller may see `resident_no` on `run_id` now, and its entry if so. A child
/// the caller may not see, or that is not on the run, is `NotFound` alike.
pub fn visible_entry(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    resident_no: &str,
) -> Result<(access::Verdict, Option<(RunRow, EntryRow)>), ScreeningError> {
    let facts = store::current_facts(conn, municipality, &[resident_no.to_string()])?;
    let run = store::run(conn, municipality, run_id)?;
    let entry = match &run {
        Some(_) => store::entry(conn, run_id, resident_no)?,
        None => None,
    };
    let child = entry.as_ref().and_then(|e| {
        let mut child = facts.get(resident_no).cloned()?;
        child.support_measure |= e.support_measure;
        Some(child)
    });
    let verdict = access::decide(caller, municipality, ChildUse::Worklist, child.as_ref());
    Ok(match (verdict.is_allowed(), run, entry) {
        (true, Some(run), Some(entry)) => (verdict, Some((run, entry))),
        _ => (verdict, None),
    })
}

/// One entry with its decision record (the meeting's plan), as the caller may see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryDetail {
    pub run: i64,
    pub caution: String,
    pub entry: EntryView,
    /// The support-outcome record of the decision, once recorded.
    #[schema(value_type = Option<Object>)]
    pub decision_record: Option<Value>,
}

pub fn entry_detail(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    resident_no: &str,
    audit: &AuditEntry,
) -> Result<EntryDetail, ScreeningError> {
    let (verdict, found) = visible_entry(conn, caller, municipality, run_id, resident_no)?;
    let mut entry = audit.clone();
    entry.result = verdict.audit_result().into();
    entry.detail = Some(json!({"run": run_id}).to_string());
    crate::store::audit::append(conn, &entry)?;
    let (_, row) = found.ok_or(ScreeningError::NotFound)?;
    let names = store::subject_names(conn, municipality, &[resident_no.to_string()])?;
    let decision_record = match &row.decision_record {
        Some(id) => store::decision_record(conn, municipality, DECISION_SOURCE, id)?,
        None => None,
    };
    Ok(EntryDetail {
        run: run_id,
        caution: CAUTION.into(),
        entry: entry_view(1, row, names.get(resident_no).cloned()),
        decision_record,
    })
}

/// Fields of a decision (named as in the support-outcome record, so problems point at them).
const DECISION_FIELDS: [&str; 6] = [
    "review_outcome",
    "decided_on",
    "meeting_participants",
    "support_plan",
    "plan_shared_with_school",
    "difficulty_types",
];
/// Fields a decision must name (every support-outcome record names a difficulty type: the
/// indicators' funnel relies on it).
const DECISION_REQUIRED: [&str; 4] = [
    "review_outcome",
    "decided_on",
    "meeting_participants",
    "difficulty_types",
];

/// The support-outcome record a decision becomes, validated by the standard.
pub fn decision_record(
    ingestor: &Ingestor,
    municipality: &str,
    run_id: i64,
    resident_no: &str,
    body: &Value,
) -> Result<(crate::store::PreparedRecord, DecisionClass), ScreeningError> {
    let Some(fields) = body.as_object() else {
        return Err(ScreeningError::Invalid(vec![FieldError::new(
            "",
            "type",
            "a decision is a JSON object",
        )]));
    };
    let mut problems: Vec<FieldError> = fields
        .keys()
        .filter(|k| !DECISION_FIELDS.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                format!("/{k}"),
                "unknown_field",
                format!("{k} is not a field of a decision"),
            )
        })
        .collect();
    problems.extend(
        DECISION_REQUIRED
            .iter()
            .filter(|k| !fields.contains_key(**k))
            .map(|k| FieldError::new(format!("/{k}"), "required", format!("{k} is required"))),
    );
    if !problems.is_empty() {
        return Err(ScreeningError::Invalid(problems));
    }
    let class = fields
        .get("review_outcome")
        .and_then(Value::as_str)
        .and_then(DecisionClass::parse);
    let mut record = json!({
        "record_type": "support-outcome",
        "schema_version": "1.0",
        "source_record_id": format!("screening-{run_id}-{resident_no}"),
        "subject": {"resident_no": resident_no},
        "effective_date": fields["decided_on"],
        "screening_run_id": run_id,
        "plan_shared_with_school": false,
        "stage": class.map_or("reviewed", DecisionClass::stage),
    });
    for (key, value) in fields {
        record[key] = value.clone();
    }
    let submission = Submission {
        municipality: municipality.to_string(),
        source: DECISION_SOURCE.to_string(),
        allowed_types: None,
        client_id: None,
    };
    let prepared = ingestor
        .prepare(&submission, 0, &record)
        .map_err(ScreeningError::Invalid)?;
    let class = class.ok_or_else(|| {
        ScreeningError::Invalid(vec![FieldError::new(
            "/review_outcome",
            "enum",
            "unknown class",
        )])
    })?;
    Ok((prepared, class))
}

/// Record a meeting's decision on a visible entry of an open run.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    resident_no: &str,
    record: &crate::store::PreparedRecord,
    class: DecisionClass,
    audit: &AuditEntry,
) -> Result<i32, ScreeningError> {
    let (verdict, found) = visible_entry(conn, caller, municipality, run_id, resident_no)?;
    let mut entry = audit.clone();
    entry.result = verdict.audit_result().into();
    let Some((run, _)) = found else {
        crate::store::audit::append(conn, &entry)?;
        return Err(ScreeningError::NotFound);
    };
    if run.closed_at.is_some() {
        return Err(ScreeningError::RunClosed);
    }
    let data: Value = serde_json::from_str(&record.data).unwrap_or(Value::Null);
    entry.detail = Some(
        json!({"run": run_id, "review_outcome": class.as_str(), "source_record_id": record.source_record_id})
            .to_string(),
    );
    let decision = Decision {
        run_id,
        resident_no,
        class: class.as_str(),
        decided_on: data["decided_on"].as_str().unwrap_or_default(),
        plan_shared: data["plan_shared_with_school"].as_bool().unwrap_or(false),
    };
    Ok(store::record_decision(
        conn,
        municipality,
        DECISION_SOURCE,
        record,
        &decision,
        &entry,
    )?)
}

/// Close a run. Entries the caller can see must all be decided unless `reason` says why not.
pub fn close(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    by: &Acting,
    reason: Option<&str>,
    audit: &AuditEntry,
) -> Result<RunSummary, ScreeningError> {
    let run = store::run(conn, municipality, run_id)?.ok_or(ScreeningError::NotFound)?;
    if run.closed_at.is_some() {
        return Err(ScreeningError::RunClosed);
    }
    let entries = store::entries(conn, run_id)?;
    let visible = visible_entries(conn, caller, &run, entries)?;
    let undecided = visible.iter().filter(|e| e.decision.is_none()).count();
    if undecided > 0 && reason.is_none() {
        return Err(ScreeningError::Undecided(undecided));
    }
    let mut entry = audit.clone();
    entry.detail =
        Some(json!({"run": run_id, "undecided": undecided, "reason": reason}).to_string());
    if !store::close_run(conn, run_id, by, reason, &entry)? {
        return Err(ScreeningError::RunClosed);
    }
    let run = store::run(conn, municipality, run_id)?.ok_or(ScreeningError::NotFound)?;
    Ok(summary(&run, &visible.iter().collect::<Vec<_>>()))
}

/// Extracted against screened children per group, for one run (counts only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FairnessView {
    pub run: i64,
    pub municipality_code: String,
    pub as_of: String,
    #[schema(max_items = 18)]
    pub by_age_band: Vec<GroupCounts>,
    #[schema(max_items = 8)]
    pub by_sex: Vec<GroupCounts>,
    #[schema(max_items = 144)]
    pub by_age_band_and_sex: Vec<GroupCounts>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupCounts {
    pub age_band: Option<String>,
    /// Sex code (1 male, 2 female, 9 not stated; absent when not recorded).
    pub sex: Option<i32>,
    pub population: u64,
    pub extracted: u64,
    /// extracted / population, when there is a population.
    pub rate: Option<f64>,
}

/// Fairness counts of a run over what the caller may see (children under a DV measure are
/// counted only for callers who may see them, in the population as in the extracted).
pub fn fairness(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    run_id: i64,
    audit: &AuditEntry,
) -> Result<FairnessView, ScreeningError> {
    let run = store::run(conn, municipality, run_id)?.ok_or(ScreeningError::NotFound)?;
    let sees_dv = access::lists_support_measure(caller, municipality);
    let population: Vec<PopulationCell> = serde_json::from_str(&run.population).unwrap_or_default();
    let entries = store::entries(conn, run_id)?;
    let visible = visible_entries(conn, caller, &run, entries)?;
    // Bands in the rule set's order (the population is stored in it).
    let mut bands: Vec<&str> = Vec::new();
    for cell in &population {
        if !bands.contains(&cell.band.as_str()) {
            bands.push(&cell.band);
        }
    }
    let mut groups: BTreeMap<GroupKey, (u64, u64)> = BTreeMap::new();
    let mut add = |band: &str, sex: Option<i32>, population: u64, extracted: u64| {
        let band = bands.iter().position(|b| *b == band);
        for key in [
            (Grouping::AgeBand, band, None),
            (Grouping::Sex, None, sex),
            (Grouping::AgeBandAndSex, band, sex),
        ] {
            let counts = groups.entry(key).or_default();
            counts.0 += population;
            counts.1 += extracted;
        }
    };
    for cell in population.iter().filter(|c| sees_dv || !c.support_measure) {
        add(&cell.band, cell.sex, cell.children, 0);
    }
    for entry in &visible {
        add(&entry.age_band, entry.sex, 0, 1);
    }
    let mut view = FairnessView {
        run: run_id,
        municipality_code: municipality.to_string(),
        as_of: run.as_of.clone(),
        by_age_band: Vec::new(),
        by_sex: Vec::new(),
        by_age_band_and_sex: Vec::new(),
    };
    for ((grouping, band, sex), (population, extracted)) in groups {
        let counts = GroupCounts {
            age_band: band.and_then(|b| bands.get(b)).map(|b| b.to_string()),
            sex,
            population,
            extracted,
            rate: (population > 0).then(|| extracted as f64 / population as f64),
        };
        match grouping {
            Grouping::AgeBand => view.by_age_band.push(counts),
            Grouping::Sex => view.by_sex.push(counts),
            Grouping::AgeBandAndSex => view.by_age_band_and_sex.push(counts),
        }
    }
    let mut entry = audit.clone();
    entry.detail = Some(json!({"run": run_id}).to_string());
    crate::store::audit::append(conn, &entry)?;
    Ok(view)
}

/// A group of fairness counts: how it groups, the age band's index, the sex.
type GroupKey = (Grouping, Option<usize>, Option<i32>);

/// The groups fairness counts are kept by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grouping {
    AgeBand,
    Sex,
    AgeBandAndSex,
}

/// Link a school's client (by name, in its town) to the school it speaks for; audited. Only a
/// client the policy lets read school shares can be linked: linking any other would be moot.
pub fn link_school(
    conn: &mut DbConn,
    municipality: &str,
    client_name: &str,
    school_code: &str,
    audit: &AuditEntry,
) -> Result<(), ScreeningError> {
    let client = crate::store::clients::active_client(conn, municipality, client_name)?
        .ok_or(ScreeningError::NotFound)?;
    if !access::reads_school_shares(&client, municipality) {
        return Err(ScreeningError::NotASchool(client_name.to_string()));
    }
    Ok(store::link_school(
        conn,
        municipality,
        client.client_id,
        school_code,
        audit,
    )?)
}

/// A decision shared with the caller's school: the pupil, the class and the shared plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedDecision {
    pub run: i64,
    pub resident_no: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub review_outcome: DecisionClass,
    pub decided_on: String,
    pub support_plan: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SharedList {
    pub municipality_code: String,
    pub school_code: Option<String>,
    #[schema(max_items = 1000000)]
    pub decisions: Vec<SharedDecision>,
}

/// What case meetings shared with the caller's school, for its own pupils; each pupil shown
/// is audited.
pub fn school_shares(
    conn: &mut DbConn,
    caller: &Principal,
    municipality: &str,
    audit: &AuditEntry,
) -> Result<SharedList, ScreeningError> {
    let school = store::school_of(conn, caller.client_id)?;
    let rows = match &school {
        Some(code) => store::shared_with_school(conn, municipality, code, DECISION_SOURCE)?,
        None => Vec::new(),
    };
    let who: Vec<String> = rows.iter().map(|r| r.resident_no.clone()).collect();
    let facts = store::current_facts(conn, municipality, &who)?;
    let decisions: Vec<SharedDecision> = rows
        .into_iter()
        .filter(|r| {
            access::decide(
                caller,
                municipality,
                ChildUse::SchoolShare,
                facts.get(&r.resident_no),
            )
            .is_allowed()
        })
        .filter_map(|r| {
            Some(SharedDecision {
                run: r.run_id,
                review_outcome: DecisionClass::parse(&r.decision)?,
                decided_on: r.decided_on,
                support_plan: r
                    .record
                    .as_ref()
                    .and_then(|d| d.get("support_plan"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                name: r.name,
                birth_date: r.birth_date,
                resident_no: r.resident_no,
            })
        })
        .collect();
    let detail = json!({"school_code": school}).to_string();
    let audits: Vec<AuditEntry> = if decisions.is_empty() {
        vec![AuditEntry {
            detail: Some(detail),
            ..audit.clone()
        }]
    } else {
        decisions
            .iter()
            .map(|d| AuditEntry {
                subject: Some(d.resident_no.clone()),
                detail: Some(detail.clone()),
                ..audit.clone()
            })
            .collect()
    };
    crate::store::audit::append_all(conn, &audits)?;
    Ok(SharedList {
        municipality_code: municipality.to_string(),
        school_code: school,
        decisions,
    })
}
