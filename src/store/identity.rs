//! Identity resolution in the database: records pushed with `basic_info` instead of a resident
//! number are linked, queued for review or left pending — inside the push's own transaction,
//! so a record is never stored without its resolution state. Also the 外字 table and review
//! decisions.

use std::collections::BTreeSet;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::tables::{gaiji, identity_queue, local_ids, records, subjects};
use super::{DbConn, StoreError, StoreResult, now_rfc3339};
use crate::audit::AuditEntry;
use crate::identity::QueueStatus;
use crate::identity::normalize::GaijiTable;
use crate::identity::resolve::{self, Candidate, Decision};
use crate::store::WriteTx;
use crate::{on_conn, write_tx};

/// A record waiting to be linked (as stored in the queue).
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct QueueItem {
    pub id: i64,
    pub municipality_code: String,
    #[serde(skip)]
    pub record_id: i64,
    pub source: String,
    pub source_record_id: String,
    pub birth_date: Option<String>,
    /// `pending` (no candidate yet), `review` (a person decides), `linked`, `rejected`.
    pub status: String,
    pub reason: String,
    #[serde(skip)]
    pub candidates_json: String,
    pub resident_no: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
}

impl QueueItem {
    pub fn candidates(&self) -> Vec<Candidate> {
        serde_json::from_str(&self.candidates_json).unwrap_or_default()
    }
}

/// Identity operations inside a write transaction.
pub trait IdentityTx {
    /// Resolve these stored records (id, source, record JSON) and record the outcome.
    fn resolve_records(
        &mut self,
        municipality: &str,
        items: &[(i64, String, Value)],
    ) -> StoreResult<()>;

    /// Retry pending records of people born on these dates (new subjects arrived).
    fn retry_pending(
        &mut self,
        municipality: &str,
        birth_dates: &BTreeSet<String>,
    ) -> StoreResult<()>;
}

fn local_id_of(record: &Value) -> Option<(String, String)> {
    record
        .pointer("/subject/local_ids")
        .and_then(Value::as_object)
        .and_then(|ids| ids.iter().next())
        .and_then(|(kind, id)| Some((kind.clone(), id.as_str()?.to_string())))
}

macro_rules! impl_identity_tx {
    ($conn:ty) => {
        impl IdentityTx for $conn {
            fn resolve_records(
                &mut self,
                municipality: &str,
                items: &[(i64, String, Value)],
            ) -> StoreResult<()> {
                if items.is_empty() {
                    return Ok(());
                }
                let c = self;
                let now = now_rfc3339();
                let mut table = GaijiTable::default();
                for (code_point, standard) in gaiji::table
                    .filter(gaiji::municipality_code.eq_any([municipality, "*"]))
                    .select((gaiji::code_point, gaiji::standard))
                    .load::<(String, String)>(&mut *c)?
                {
                    if let Some(ch) = code_point.chars().next() {
                        // Rows were checked on import; a bad one is skipped, never guessed.
                        let _ = table.insert(ch, &standard);
                    }
                }
                for (record_id, source, record) in items {
                    // A person's decision stands when the source sends the record again.
                    let decided = identity_queue::table
                        .filter(identity_queue::record_id.eq(record_id))
                        .filter(identity_queue::status.eq_any(["linked", "rejected"]))
                        .filter(identity_queue::resolved_by.is_not_null())
                        .filter(identity_queue::resolved_by.not_like("hub:%"))
                        .select(identity_queue::resident_no)
                        .first::<Option<String>>(&mut *c)
                        .optional()?;
                    if let Some(resident_no) = decided {
                        diesel::update(records::table.find(*record_id))
                            .set(records::subject_resident_no.eq(resident_no))
                            .execute(&mut *c)?;
                        continue;
                    }
                    let basic = record.pointer("/subject/basic_info").cloned().unwrap_or(Value::Null);
                    let birth_date = basic.get("birth_date").and_then(Value::as_str).map(str::to_string);
                    let local = local_id_of(record);
                    let remembered = match &local {
                        Some((kind, id)) => local_ids::table
                            .find((municipality, source.as_str(), kind.as_str(), id.as_str()))
                            .select(local_ids::resident_no)
                            .first::<String>(&mut *c)
                            .optional()?,
                        None => None,
                    };
                    let by_local_id = remembered.is_some();
                    // A remembered id links at once — unless the record now contradicts the
                    // child it points to (a recycled student number): then a person decides.
                    let contradiction = match (&remembered, resolve::record_key(&basic, &table)) {
                        (Some(resident_no), Ok(key)) => subjects::table
                            .find((municipality, resident_no.as_str()))
                            .select(subjects::data)
                            .first::<String>(&mut *c)
                            .optional()?
                            .and_then(|data| serde_json::from_str::<Value>(&data).ok())
                            .and_then(|data| resolve::record_key(&data, &table).ok())
                            .map(|known| {
                                resolve::differences(&key, &known)
                                    .into_iter()
                                    .filter(|f| matches!(*f, "birth_date" | "sex"))
                                    .collect::<Vec<_>>()
                            })
                            .filter(|differing| !differing.is_empty())
                            .map(|differing| (resident_no.clone(), differing)),
                        _ => None,
                    };
                    let remembered = remembered.filter(|_| contradiction.is_none());
                    let (decision, candidates) = match (remembered, resolve::record_key(&basic, &table)) {
                        (None, _) if contradiction.is_some() => {
                            let (resident_no, differing) = contradiction.clone().expect("checked");
                            (
                                Decision::Review {
                                    reason: format!(
                                        "the remembered local id points to {resident_no}, but {} differ",
                                        differing.join(" and ")
                                    ),
                                },
                                vec![Candidate {
                                    resident_no,
                                    differing_fields: differing.iter().map(|f| f.to_string()).collect(),
                                }],
                            )
                        }
                        (Some(resident_no), _) => (Decision::Link(resident_no), Vec::new()),
                        (None, Err(unmapped)) => (
                            Decision::Review {
                                reason: format!(
                                    "unmapped 外字 U+{:04X} at position {} of the name or address; add it to the council's 外字 table (admin gaiji import) or link by hand",
                                    unmapped.character as u32, unmapped.position
                                ),
                            },
                            Vec::new(),
                        ),
                        (None, Ok(key)) => {
                            let born_same_day = match &birth_date {
                                Some(date) => subjects::table
                                    .filter(subjects::municipality_code.eq(municipality))
                                    .filter(subjects::birth_date.eq(date))
                                    .select((subjects::resident_no, subjects::data))
                                    .load::<(String, String)>(&mut *c)?,
                                None => Vec::new(),
                            };
                            let keyed: Vec<(String, crate::identity::normalize::MatchKey)> = born_same_day
                                .into_iter()
                                .filter_map(|(resident_no, data)| {
                                    let data: Value = serde_json::from_str(&data).ok()?;
                                    // A subject whose own name cannot be keyed is simply not a candidate.
                                    let key = resolve::record_key(&data, &table).ok()?;
                                    Some((resident_no, key))
                                })
                                .collect();
                            resolve::decide(&key, &keyed)
                        }
                    };
                    let (status, reason, linked) = match &decision {
                        Decision::Link(resident_no) => (
                            "linked",
                            match (&local, by_local_id) {
                                (Some((kind, id)), true) => format!("remembered {kind} {id} of this source"),
                                _ => "exact match".to_string(),
                            },
                            Some(resident_no.clone()),
                        ),
                        Decision::Review { reason } => ("review", reason.clone(), None),
                        Decision::Pending => ("pending", "no subject of this municipality resembles the record yet".to_string(), None),
                    };
                    diesel::update(records::table.find(*record_id))
                        .set(records::subject_resident_no.eq(linked.as_deref()))
                        .execute(&mut *c)?;
                    if let (Some(resident_no), Some((kind, id))) = (&linked, &local) {
                        diesel::insert_into(local_ids::table)
                            .values((
                                local_ids::municipality_code.eq(municipality),
                                local_ids::source.eq(source),
                                local_ids::id_kind.eq(kind),
                                local_ids::local_id.eq(id),
                                local_ids::resident_no.eq(resident_no),
                                local_ids::confirmed_at.eq(&now),
                            ))
                            .on_conflict_do_nothing()
                            .execute(&mut *c)?;
                    }
                    let candidates_json = serde_json::to_string(&candidates).unwrap_or_else(|_| "[]".into());
                    let source_record_id = record.get("source_record_id").and_then(Value::as_str).unwrap_or("");
                    diesel::insert_into(identity_queue::table)
                        .values((
                            identity_queue::municipality_code.eq(municipality),
                            identity_queue::record_id.eq(record_id),
                            identity_queue::source.eq(source),
                            identity_queue::source_record_id.eq(source_record_id),
                            identity_queue::birth_date.eq(&birth_date),
                            identity_queue::status.eq(status),
                            identity_queue::reason.eq(&reason),
                            identity_queue::candidates.eq(&candidates_json),
                            identity_queue::resident_no.eq(&linked),
                            identity_queue::created_at.eq(&now),
                            identity_queue::resolved_at.eq(linked.as_ref().map(|_| now.clone())),
                            identity_queue::resolved_by.eq(linked.as_ref().map(|_| "hub:exact-match")),
                        ))
                        .on_conflict(identity_queue::record_id)
                        .do_update()
                        .set((
                            identity_queue::birth_date.eq(&birth_date),
                            identity_queue::status.eq(status),
                            identity_queue::reason.eq(&reason),
                            identity_queue::candidates.eq(&candidates_json),
                            identity_queue::resident_no.eq(&linked),
                            identity_queue::resolved_at.eq(linked.as_ref().map(|_| now.clone())),
                            identity_queue::resolved_by.eq(linked.as_ref().map(|_| "hub:exact-match")),
                        ))
                        .execute(&mut *c)?;
                }
                Ok(())
            }

            fn retry_pending(
                &mut self,
                municipality: &str,
                birth_dates: &BTreeSet<String>,
            ) -> StoreResult<()> {
                if birth_dates.is_empty() {
                    return Ok(());
                }
                let waiting = identity_queue::table
                    .inner_join(records::table.on(records::id.eq(identity_queue::record_id)))
                    .filter(identity_queue::municipality_code.eq(municipality))
                    // Pending records, and those in review that no person has decided yet: a
                    // newly registered child may be exactly who they wait for.
                    .filter(identity_queue::status.eq_any(["pending", "review"]))
                    .filter(identity_queue::resolved_by.is_null())
                    .filter(identity_queue::birth_date.eq_any(birth_dates))
                    .filter(records::retracted.eq(false))
                    .select((records::id, records::source, records::data))
                    .load::<(i64, String, String)>(&mut *self)?;
                let items: Vec<(i64, String, Value)> = waiting
                    .into_iter()
                    .filter_map(|(id, source, data)| Some((id, source, serde_json::from_str(&data).ok()?)))
                    .collect();
                self.resolve_records(municipality, &items)
            }
        }
    };
}
impl_identity_tx!(diesel::SqliteConnection);
impl_identity_tx!(diesel::PgConnection);

/// Queue items of a municipality with this status (`review`, `pending`, …), oldest first.
pub fn queue(
    conn: &mut DbConn,
    municipality: &str,
    status: QueueStatus,
) -> StoreResult<Vec<QueueItem>> {
    Ok(on_conn!(conn, |c| identity_queue::table
        .filter(identity_queue::municipality_code.eq(municipality))
        .filter(identity_queue::status.eq(status.as_str()))
        .order(identity_queue::id)
        .load::<QueueItem>(c))?)
}

/// A person's decision on a queue item.
pub enum Verdict<'a> {
    /// Link the record to this subject (and remember the source's local id); `false` when the
    /// access policy hides the subject from the caller, which then reads as no such subject.
    Confirm(&'a str, bool),
    /// None of the candidates is this child; the record stays stored, unlinked.
    Reject,
}

/// Apply a decision with its audit entry, in one transaction. Deciding twice the same way is
/// harmless; an item already decided otherwise is a conflict.
pub fn decide(
    conn: &mut DbConn,
    municipality: &str,
    item_id: i64,
    verdict: Verdict,
    decided_by: &str,
    audit: &AuditEntry,
) -> StoreResult<QueueItem> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let item = identity_queue::table
            .find(item_id)
            .filter(identity_queue::municipality_code.eq(municipality))
            .first::<QueueItem>(c)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        let (status, resident_no) = match verdict {
            Verdict::Confirm(resident_no, visible) => {
                let known = subjects::table
                    .find((municipality, resident_no))
                    .count()
                    .get_result::<i64>(c)?;
                if known == 0 || !visible {
                    return Err(StoreError::Invalid(format!(
                        "{resident_no} is not a subject of {municipality}"
                    )));
                }
                ("linked", Some(resident_no.to_string()))
            }
            Verdict::Reject => ("rejected", None),
        };
        if item.status == status && item.resident_no == resident_no {
            return Ok(item);
        }
        if item.status == "linked" || item.status == "rejected" {
            return Err(StoreError::Conflict(format!(
                "queue item {item_id} was already {}",
                item.status
            )));
        }
        diesel::update(records::table.find(item.record_id))
            .set(records::subject_resident_no.eq(resident_no.as_deref()))
            .execute(c)?;
        if let Some(resident_no) = &resident_no {
            let data = records::table
                .find(item.record_id)
                .select(records::data)
                .first::<String>(c)?;
            if let Some((kind, id)) = serde_json::from_str::<Value>(&data)
                .ok()
                .as_ref()
                .and_then(local_id_of)
            {
                diesel::insert_into(local_ids::table)
                    .values((
                        local_ids::municipality_code.eq(municipality),
                        local_ids::source.eq(&item.source),
                        local_ids::id_kind.eq(&kind),
                        local_ids::local_id.eq(&id),
                        local_ids::resident_no.eq(resident_no),
                        local_ids::confirmed_at.eq(&now),
                    ))
                    .on_conflict((
                        local_ids::municipality_code,
                        local_ids::source,
                        local_ids::id_kind,
                        local_ids::local_id,
                    ))
                    .do_update()
                    .set((
                        local_ids::resident_no.eq(resident_no),
                        local_ids::confirmed_at.eq(&now),
                    ))
                    .execute(c)?;
            }
        }
        diesel::update(identity_queue::table.find(item_id))
            .set((
                identity_queue::status.eq(status),
                identity_queue::resident_no.eq(&resident_no),
                identity_queue::resolved_at.eq(&now),
                identity_queue::resolved_by.eq(decided_by),
            ))
            .execute(c)?;
        c.append_audit(audit)?;
        Ok(identity_queue::table.find(item_id).first::<QueueItem>(c)?)
    })
}

/// Import 外字 conversions (`code_point,standard[,note]`) for a municipality or `*` (council).
pub fn import_gaiji(
    conn: &mut DbConn,
    scope: &str,
    csv: &str,
    audit: &AuditEntry,
) -> StoreResult<usize> {
    let table = GaijiTable::from_csv(csv).map_err(StoreError::Invalid)?;
    let now = now_rfc3339();
    let rows: Vec<(String, String)> = table
        .entries()
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect();
    write_tx!(conn, |c| {
        for (code_point, standard) in &rows {
            diesel::insert_into(gaiji::table)
                .values((
                    gaiji::municipality_code.eq(scope),
                    gaiji::code_point.eq(code_point),
                    gaiji::standard.eq(standard),
                    gaiji::updated_at.eq(&now),
                ))
                .on_conflict((gaiji::municipality_code, gaiji::code_point))
                .do_update()
                .set((gaiji::standard.eq(standard), gaiji::updated_at.eq(&now)))
                .execute(c)?;
        }
        // Records that waited only for a conversion can now be matched.
        let waiting = identity_queue::table
            .inner_join(records::table.on(records::id.eq(identity_queue::record_id)))
            .filter(identity_queue::status.eq("review"))
            .filter(identity_queue::reason.like("unmapped 外字%"))
            .select((
                identity_queue::municipality_code,
                records::id,
                records::source,
                records::data,
            ))
            .load::<(String, i64, String, String)>(c)?;
        for (municipality, id, source, data) in waiting {
            if scope != "*" && scope != municipality {
                continue;
            }
            if let Ok(data) = serde_json::from_str::<Value>(&data) {
                c.resolve_records(&municipality, &[(id, source, data)])?;
            }
        }
        c.append_audit(audit)?;
        Ok(rows.len())
    })
}
