//! Transfers in the database. Every step is one transaction with its audit entry; acceptance
//! copies the frozen records into the destination through the normal upsert path (history,
//! change feed, subject projection) so it happens fully or not at all.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::WriteTx;
use super::tables::{
    opt_outs, record_provenance, records, subjects, transfer_children, transfer_records, transfers,
};
use super::{DbConn, PreparedRecord, StoreError, StoreResult, now_rfc3339};
use crate::audit::AuditEntry;
use crate::identity::normalize::GaijiTable;
use crate::identity::resolve::{self, Candidate};
use crate::schema::SUBJECT_TYPE;
use crate::transfer::{
    DeclineReason, Disposition, Step, TransferBox, TransferReason, TransferStatus,
    transferred_source,
};
use crate::{on_conn, write_tx};

#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Transfer {
    pub id: i64,
    /// Origin municipality.
    pub municipality_code: String,
    pub destination_code: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: TransferStatus,
    pub legal_basis: String,
    pub reason_code: String,
    pub note: Option<String>,
    pub offered_by: String,
    pub offered_at: String,
    pub deadline: String,
    /// The named officer an unanswered transfer is escalated to.
    pub escalate_to: String,
    pub escalated_at: Option<String>,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decline_reason: Option<String>,
}

/// A child of a transfer, with what the destination needs to find its own resident number.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransferChild {
    pub origin_resident_no: String,
    pub destination_resident_no: Option<String>,
    /// Name, kana, birth date and sex from the origin's subject record (no address).
    #[schema(value_type = Object)]
    pub basic_info: Value,
    pub support_measure: bool,
    /// Records frozen for this child, by record type.
    pub records: BTreeMap<String, usize>,
    /// Destination subjects that may be this child (suggestions; a person decides).
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransferView {
    #[serde(flatten)]
    pub transfer: Transfer,
    pub children: Vec<TransferChild>,
    pub record_count: usize,
    /// After acceptance: records copied and records left with the origin.
    pub accepted_records: usize,
    pub declined_records: usize,
    /// Records the origin retracted after the offer (erroneous): never copied.
    pub withdrawn_records: usize,
}

pub struct NewTransfer<'a> {
    pub origin: &'a str,
    pub destination: Option<&'a str>,
    pub children: &'a [String],
    pub legal_basis: &'a str,
    pub reason: TransferReason,
    pub note: Option<&'a str>,
    pub offered_by: &'a str,
    pub deadline_days: i64,
    pub escalate_to: &'a str,
}

fn code<T: Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The answer to an offer naming a child the origin does not have (or the officer may not see).
pub const UNKNOWN_CHILD: &str = "every child must be a subject of the origin municipality";

/// Offer (or hold) a transfer: the children's current records are frozen as of now.
pub fn create(conn: &mut DbConn, new: &NewTransfer, audit: &AuditEntry) -> StoreResult<i64> {
    if new.children.is_empty() {
        return Err(StoreError::Unprocessable(
            "a transfer needs at least one child".into(),
        ));
    }
    if new.destination == Some(new.origin) {
        return Err(StoreError::Unprocessable(
            "the destination is the origin".into(),
        ));
    }
    let now = now_rfc3339();
    let deadline = (chrono::Utc::now() + chrono::Duration::days(new.deadline_days))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let status = if new.destination.is_some() {
        TransferStatus::Offered
    } else {
        TransferStatus::Held
    };
    write_tx!(conn, |c| {
        if let Some(destination) = new.destination {
            let registered = super::tables::municipalities::table
                .find(destination)
                .count()
                .get_result::<i64>(c)?;
            if registered == 0 {
                return Err(StoreError::Unprocessable(format!(
                    "destination {destination} is not a town of this hub; hold the transfer (no destination) or send a package to the other hub"
                )));
            }
        }
        let known = subjects::table
            .filter(subjects::municipality_code.eq(new.origin))
            .filter(subjects::resident_no.eq_any(new.children))
            .count()
            .get_result::<i64>(c)?;
        if known as usize != new.children.len() {
            return Err(StoreError::Unprocessable(UNKNOWN_CHILD.into()));
        }
        let id = diesel::insert_into(transfers::table)
            .values((
                transfers::municipality_code.eq(new.origin),
                transfers::destination_code.eq(new.destination),
                transfers::status.eq(status.as_str()),
                transfers::legal_basis.eq(new.legal_basis),
                transfers::reason_code.eq(code(new.reason)),
                transfers::note.eq(new.note),
                transfers::offered_by.eq(new.offered_by),
                transfers::offered_at.eq(&now),
                transfers::deadline.eq(&deadline),
                transfers::escalate_to.eq(new.escalate_to),
            ))
            .returning(transfers::id)
            .get_result::<i64>(c)?;
        for child in new.children {
            diesel::insert_into(transfer_children::table)
                .values((
                    transfer_children::transfer_id.eq(id),
                    transfer_children::municipality_code.eq(new.origin),
                    transfer_children::origin_resident_no.eq(child),
                ))
                .execute(c)?;
        }
        let frozen = records::table
            .filter(records::municipality_code.eq(new.origin))
            .filter(records::subject_resident_no.eq_any(new.children))
            .filter(records::retracted.eq(false))
            .select((
                records::id,
                records::subject_resident_no,
                records::source,
                records::source_record_id,
                records::record_type,
                records::data,
                records::content_hash,
            ))
            .load::<(i64, Option<String>, String, String, String, String, String)>(c)?;
        let rows: Vec<_> = frozen
            .iter()
            .map(
                |(record_id, about, source, source_record_id, record_type, data, hash)| {
                    (
                        transfer_records::transfer_id.eq(id),
                        transfer_records::municipality_code.eq(new.origin),
                        transfer_records::record_id.eq(*record_id),
                        transfer_records::origin_resident_no
                            .eq(about.as_deref().unwrap_or_default()),
                        transfer_records::source.eq(source),
                        transfer_records::source_record_id.eq(source_record_id),
                        transfer_records::record_type.eq(record_type),
                        transfer_records::data.eq(data),
                        transfer_records::content_hash.eq(hash),
                    )
                },
            )
            .collect();
        for chunk in rows.chunks(1000) {
            diesel::insert_into(transfer_records::table)
                .values(chunk)
                .execute(c)?;
        }
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": id, "destination": new.destination, "children": new.children.len()})
                .to_string(),
        );
        audit_per_child(c, &entry, new.origin, new.children)?;
        Ok(id)
    })
}

pub fn get(conn: &mut DbConn, id: i64) -> StoreResult<Option<Transfer>> {
    Ok(on_conn!(conn, |c| transfers::table
        .find(id)
        .first::<Transfer>(c)
        .optional())?)
}

/// The full view of a transfer, with suggestions from `suggest_in` (the destination).
pub fn view(
    conn: &mut DbConn,
    id: i64,
    suggest_in: Option<&str>,
) -> StoreResult<Option<TransferView>> {
    let Some(transfer) = get(conn, id)? else {
        return Ok(None);
    };
    let (children, frozen, subjects_data) = on_conn!(conn, |c| {
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(id))
            .select((
                transfer_children::origin_resident_no,
                transfer_children::destination_resident_no,
            ))
            .load::<(String, Option<String>)>(c)?;
        let frozen = transfer_records::table
            .filter(transfer_records::transfer_id.eq(id))
            .select((
                transfer_records::origin_resident_no,
                transfer_records::record_type,
                transfer_records::data,
                transfer_records::disposition,
            ))
            .load::<(String, String, String, Option<String>)>(c)?;
        let subjects_data = subjects::table
            .filter(subjects::municipality_code.eq(&transfer.municipality_code))
            .filter(subjects::resident_no.eq_any(children.iter().map(|(r, _)| r)))
            .select((subjects::resident_no, subjects::data))
            .load::<(String, String)>(c)?;
        diesel::QueryResult::Ok((children, frozen, subjects_data))
    })?;
    let mut views = Vec::new();
    for (origin_resident_no, destination_resident_no) in children {
        let subject: Value = subjects_data
            .iter()
            .find(|(r, _)| *r == origin_resident_no)
            .and_then(|(_, d)| serde_json::from_str(d).ok())
            .or_else(|| {
                frozen
                    .iter()
                    .find(|(r, t, _, _)| *r == origin_resident_no && t == SUBJECT_TYPE)
                    .and_then(|(_, _, d, _)| serde_json::from_str(d).ok())
            })
            .unwrap_or(Value::Null);
        let basic_info = serde_json::json!({
            "name": subject.get("name"),
            "name_kana": subject.get("name_kana"),
            "birth_date": subject.get("birth_date"),
            "sex": subject.get("sex"),
        });
        let mut by_type = BTreeMap::new();
        for (_, record_type, _, _) in frozen.iter().filter(|(r, ..)| *r == origin_resident_no) {
            *by_type.entry(record_type.clone()).or_insert(0) += 1;
        }
        let candidates = match suggest_in {
            Some(destination) => suggestions(conn, destination, &basic_info)?,
            None => Vec::new(),
        };
        views.push(TransferChild {
            origin_resident_no,
            destination_resident_no,
            support_measure: subject
                .get("support_measure")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            basic_info,
            records: by_type,
            candidates,
        });
    }
    let count = |d: &str| {
        frozen
            .iter()
            .filter(|(.., x)| x.as_deref() == Some(d))
            .count()
    };
    Ok(Some(TransferView {
        record_count: frozen.len(),
        accepted_records: count("accept"),
        declined_records: count("decline"),
        withdrawn_records: count(Disposition::Withdrawn.as_str()),
        transfer,
        children: views,
    }))
}

/// Destination subjects that may be this child (same birth date, at most one field differing).
fn suggestions(
    conn: &mut DbConn,
    destination: &str,
    basic_info: &Value,
) -> StoreResult<Vec<Candidate>> {
    let table = GaijiTable::default();
    let Ok(key) = resolve::record_key(basic_info, &table) else {
        return Ok(Vec::new());
    };
    let Some(birth) = basic_info.get("birth_date").and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    let born = on_conn!(conn, |c| subjects::table
        .filter(subjects::municipality_code.eq(destination))
        .filter(subjects::birth_date.eq(birth))
        .select((subjects::resident_no, subjects::data))
        .load::<(String, String)>(c))?;
    let keyed: Vec<_> = born
        .into_iter()
        .filter_map(|(r, d)| {
            let data: Value = serde_json::from_str(&d).ok()?;
            Some((r, resolve::record_key(&data, &table).ok()?))
        })
        .collect();
    Ok(resolve::decide(&key, &keyed).1)
}

/// Does a held transfer have a child whose basic four items match a subject of
/// `municipality` (the family may have arrived there)? A person confirms by claiming.
pub fn has_arrived(conn: &mut DbConn, id: i64, municipality: &str) -> StoreResult<bool> {
    Ok(view(conn, id, Some(municipality))?
        .is_some_and(|v| v.children.iter().any(|c| !c.candidates.is_empty())))
}

/// Transfers of a municipality in one box (`Arrivals` lists the held ones: the caller matches
/// them). Listing `Escalated` first marks open transfers past their deadline (persisted).
pub fn list(
    conn: &mut DbConn,
    municipality: &str,
    which: TransferBox,
) -> StoreResult<Vec<Transfer>> {
    let now = now_rfc3339();
    let open = [
        TransferStatus::Offered.as_str(),
        TransferStatus::Held.as_str(),
    ];
    if which == TransferBox::Escalated {
        write_tx!(conn, |c| diesel::update(
            transfers::table
                .filter(transfers::status.eq_any(open))
                .filter(transfers::deadline.lt(&now))
                .filter(transfers::escalated_at.is_null())
        )
        .set(transfers::escalated_at.eq(&now))
        .execute(c))?;
    }
    Ok(on_conn!(conn, |c| {
        let query = transfers::table.order(transfers::id).into_boxed();
        let query = match which {
            TransferBox::Inbox => query.filter(transfers::destination_code.eq(municipality)),
            TransferBox::Outbox => query.filter(transfers::municipality_code.eq(municipality)),
            TransferBox::Held | TransferBox::Arrivals => {
                query.filter(transfers::status.eq(TransferStatus::Held.as_str()))
            }
            TransferBox::Escalated => query
                .filter(transfers::status.eq_any(open))
                .filter(transfers::escalated_at.is_not_null())
                .filter(
                    transfers::municipality_code
                        .eq(municipality)
                        .or(transfers::destination_code.eq(municipality)),
                ),
        };
        query.load::<Transfer>(c)
    })?)
}

/// Does a transfer include a child under a DV support measure — flagged in its frozen subject
/// record, or at the origin now? Asked the same way whether or not the transfer exists.
pub fn includes_support_measure(
    conn: &mut DbConn,
    id: i64,
    origin: Option<&str>,
) -> StoreResult<bool> {
    Ok(on_conn!(conn, |c| {
        // Canonical JSON has no spaces, so the flag always reads exactly like this.
        let frozen = transfer_records::table
            .filter(transfer_records::transfer_id.eq(id))
            .filter(transfer_records::record_type.eq(SUBJECT_TYPE))
            .filter(transfer_records::data.like("%\"support_measure\":true%"))
            .count()
            .get_result::<i64>(c)?;
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(id))
            .select(transfer_children::origin_resident_no);
        let now = subjects::table
            .filter(subjects::municipality_code.eq(origin.unwrap_or_default()))
            .filter(subjects::resident_no.eq_any(children))
            .filter(subjects::support_measure.eq(true))
            .count()
            .get_result::<i64>(c)?;
        diesel::QueryResult::Ok(frozen + now > 0)
    })?)
}

/// The children of a transfer: origin resident number and, once accepted, the destination's.
pub fn children(conn: &mut DbConn, id: i64) -> StoreResult<Vec<(String, Option<String>)>> {
    Ok(on_conn!(conn, |c| transfer_children::table
        .filter(transfer_children::transfer_id.eq(id))
        .order(transfer_children::origin_resident_no)
        .select((
            transfer_children::origin_resident_no,
            transfer_children::destination_resident_no,
        ))
        .load::<(String, Option<String>)>(c))?)
}

/// Append `entry` once per child concerned, each under `municipality` with the child as its
/// subject, so a disclosure request (開示請求) finds every transfer step.
pub fn audit_per_child<'a>(
    c: &mut (impl WriteTx + ?Sized),
    entry: &AuditEntry,
    municipality: &str,
    children: impl IntoIterator<Item = &'a String>,
) -> StoreResult<()> {
    for child in children {
        let mut about = entry.clone();
        about.municipality_code = municipality.to_string();
        about.subject = Some(child.clone());
        c.append_audit(&about)?;
    }
    Ok(())
}

/// One child's placement at the destination.
pub struct Placement<'a> {
    pub origin_resident_no: &'a str,
    pub destination_resident_no: &'a str,
}

/// Accept at the destination: copy the accepted frozen records (rewritten to the destination's
/// resident numbers) through the normal upsert path, record provenance, mark the origin's
/// children moved out — all in one transaction. Accepting again answers the same result.
pub fn accept(
    conn: &mut DbConn,
    id: i64,
    destination: &str,
    placements: &[Placement],
    declined_records: &[String],
    decided_by: &str,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let transfer = transfers::table
            .find(id)
            .first::<Transfer>(c)
            .optional()?
            .filter(|t| t.destination_code.as_deref() == Some(destination))
            .ok_or(StoreError::NotFound)?;
        if transfer.status == TransferStatus::Accepted {
            return Ok(());
        }
        transfer
            .status
            .after(Step::Accept)
            .map_err(StoreError::Conflict)?;
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(id))
            .select(transfer_children::origin_resident_no)
            .load::<String>(c)?;
        // Refuse inconsistent answers rather than guess: every child placed once, at a
        // distinct number, and only records of this transfer declined.
        if let Some(stray) = placements
            .iter()
            .find(|p| !children.iter().any(|c| c == p.origin_resident_no))
        {
            return Err(StoreError::Unprocessable(format!(
                "{} is not a child of this transfer",
                stray.origin_resident_no
            )));
        }
        let mut mapping = BTreeMap::new();
        for child in &children {
            let placed = placements
                .iter()
                .find(|p| p.origin_resident_no == child)
                .ok_or_else(|| {
                    StoreError::Unprocessable(format!(
                        "no destination resident number for child {child}"
                    ))
                })?;
            if mapping
                .values()
                .any(|r: &String| r == placed.destination_resident_no)
            {
                return Err(StoreError::Unprocessable(format!(
                    "destination resident number {} is given to two children",
                    placed.destination_resident_no
                )));
            }
            mapping.insert(child.clone(), placed.destination_resident_no.to_string());
        }
        let frozen = transfer_records::table
            .filter(transfer_records::transfer_id.eq(id))
            .select((
                transfer_records::record_id,
                transfer_records::origin_resident_no,
                transfer_records::source,
                transfer_records::source_record_id,
                transfer_records::record_type,
                transfer_records::data,
            ))
            .load::<(i64, String, String, String, String, String)>(c)?;
        if let Some(unknown) = declined_records
            .iter()
            .find(|d| !frozen.iter().any(|(_, _, _, srid, _, _)| srid == *d))
        {
            return Err(StoreError::Unprocessable(format!(
                "record {unknown} is not part of this transfer"
            )));
        }
        // A record the origin retracted after the offer was an error there: it must not
        // travel on. (Between hubs the origin's retractions are not visible; none are found.)
        let withdrawn: Vec<String> = records::table
            .filter(records::municipality_code.eq(&transfer.municipality_code))
            .filter(records::retracted.eq(true))
            .filter(records::subject_resident_no.eq_any(&children))
            .select((records::source, records::source_record_id))
            .load::<(String, String)>(c)?
            .into_iter()
            .filter(|(source, id)| {
                frozen
                    .iter()
                    .any(|(_, _, s, i, _, _)| s == source && i == id)
            })
            .map(|(_, id)| id)
            .collect();
        // Children the destination already knows keep their own subject record (address,
        // household); only a DV support measure is carried over, never lost.
        let known_here: Vec<(String, bool)> = subjects::table
            .filter(subjects::municipality_code.eq(destination))
            .filter(subjects::resident_no.eq_any(mapping.values()))
            .select((subjects::resident_no, subjects::support_measure))
            .load(c)?;
        let mut by_source: BTreeMap<String, Vec<PreparedRecord>> = BTreeMap::new();
        let mut provenance = Vec::new();
        let mut carry_support_measure = Vec::new();
        for (_, about, source, source_record_id, record_type, data) in &frozen {
            if declined_records.contains(source_record_id) || withdrawn.contains(source_record_id) {
                continue;
            }
            let Some(resident_no) = mapping.get(about) else {
                continue;
            };
            let mut record: Value = serde_json::from_str(data)
                .map_err(|e| StoreError::Invalid(format!("frozen record is not JSON: {e}")))?;
            if record_type == SUBJECT_TYPE {
                let flagged = record["support_measure"].as_bool().unwrap_or(false);
                if let Some((_, already)) = known_here.iter().find(|(r, _)| r == resident_no) {
                    if flagged && !already {
                        carry_support_measure.push(resident_no.clone());
                    }
                    continue;
                }
                // Household and guardian numbers are the origin's own: meaningless here.
                // The transferred children of this household share one new household.
                record["household_no"] = serde_json::json!(format!("transfer-{id}"));
                if let Some(fields) = record.as_object_mut() {
                    fields.remove("guardians");
                }
            }
            record["subject"] = serde_json::json!({"resident_no": resident_no});
            let target = transferred_source(&transfer.municipality_code, source);
            let batch = by_source.entry(target.clone()).or_default();
            batch.push(PreparedRecord::from_record(batch.len(), &record));
            provenance.push((
                record_provenance::municipality_code.eq(destination),
                record_provenance::source.eq(target),
                record_provenance::source_record_id.eq(source_record_id),
                record_provenance::origin_municipality_code.eq(&transfer.municipality_code),
                record_provenance::origin_source.eq(source),
                record_provenance::transfer_id.eq(id),
                record_provenance::transferred_at.eq(&now),
            ));
        }
        // Dispositions: everything accepted except the records the destination declined.
        diesel::update(transfer_records::table.filter(transfer_records::transfer_id.eq(id)))
            .set(transfer_records::disposition.eq(Disposition::Accept.as_str()))
            .execute(c)?;
        diesel::update(
            transfer_records::table
                .filter(transfer_records::transfer_id.eq(id))
                .filter(transfer_records::source_record_id.eq_any(declined_records)),
        )
        .set(transfer_records::disposition.eq(Disposition::Decline.as_str()))
        .execute(c)?;
        diesel::update(
            transfer_records::table
                .filter(transfer_records::transfer_id.eq(id))
                .filter(transfer_records::source_record_id.eq_any(&withdrawn)),
        )
        .set(transfer_records::disposition.eq(Disposition::Withdrawn.as_str()))
        .execute(c)?;
        for chunk in provenance.chunks(1000) {
            diesel::insert_into(record_provenance::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        for (source, batch) in &by_source {
            c.upsert_in_tx(destination, source, batch)?;
        }
        diesel::update(
            subjects::table
                .filter(subjects::municipality_code.eq(destination))
                .filter(subjects::resident_no.eq_any(&carry_support_measure)),
        )
        .set(subjects::support_measure.eq(true))
        .execute(c)?;
        // A guardian's objection travels with the child and holds from acceptance on: the
        // origin's opt-outs when it is a town of this hub, the objections its package carried
        // when it is on another.
        let mut objections = opt_outs::table
            .filter(opt_outs::municipality_code.eq(&transfer.municipality_code))
            .filter(opt_outs::resident_no.eq_any(&children))
            .select((
                opt_outs::resident_no,
                opt_outs::objected_on,
                opt_outs::legal_note,
            ))
            .load::<(String, String, Option<String>)>(c)?;
        objections.extend(
            transfer_children::table
                .filter(transfer_children::transfer_id.eq(id))
                .filter(transfer_children::objected_on.is_not_null())
                .select((
                    transfer_children::origin_resident_no,
                    transfer_children::objected_on.assume_not_null(),
                    transfer_children::objection_note,
                ))
                .load::<(String, String, Option<String>)>(c)?,
        );
        for (child, objected_on, legal_note) in objections {
            let Some(resident_no) = mapping.get(&child) else {
                continue;
            };
            let note = format!(
                "transfer {id} from {}: {}",
                transfer.municipality_code,
                legal_note.unwrap_or_default()
            );
            diesel::insert_into(opt_outs::table)
                .values((
                    opt_outs::municipality_code.eq(destination),
                    opt_outs::resident_no.eq(resident_no),
                    opt_outs::objected_on.eq(&objected_on),
                    opt_outs::legal_note.eq(note.trim_end_matches(": ")),
                    opt_outs::recorded_at.eq(&now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        for (child, resident_no) in &mapping {
            diesel::update(transfer_children::table.find((id, child)))
                .set(transfer_children::destination_resident_no.eq(resident_no))
                .execute(c)?;
        }
        diesel::update(
            subjects::table
                .filter(subjects::municipality_code.eq(&transfer.municipality_code))
                .filter(subjects::resident_no.eq_any(&children)),
        )
        .set(subjects::moved_out_to.eq(destination))
        .execute(c)?;
        diesel::update(transfers::table.find(id))
            .set((
                transfers::status.eq(TransferStatus::Accepted.as_str()),
                transfers::decided_at.eq(&now),
                transfers::decided_by.eq(decided_by),
            ))
            .execute(c)?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({
                "transfer": id,
                "origin": transfer.municipality_code,
                "copied": by_source.values().map(Vec::len).sum::<usize>(),
                "declined": frozen.iter().filter(|f| declined_records.contains(&f.3)).count(),
                "withdrawn": withdrawn.len(),
            })
            .to_string(),
        );
        audit_per_child(c, &entry, destination, mapping.values())?;
        // The origin's trail says its children's records were provided to another town.
        let mut provided = audit.clone();
        provided.action = "transfer.provided".into();
        provided.legal_basis = Some(transfer.legal_basis.clone());
        provided.purpose = Some("transfer".into());
        provided.detail =
            Some(serde_json::json!({"transfer": id, "destination": destination}).to_string());
        audit_per_child(c, &provided, &transfer.municipality_code, mapping.keys())?;
        Ok(())
    })
}

/// Decline (destination), cancel (origin) or claim a held transfer (a destination that found
/// the family among its arrivals), for a town the access policy already let take the step.
/// Repeating the same step is harmless.
pub fn step(
    conn: &mut DbConn,
    id: i64,
    municipality: &str,
    step: Step,
    decline_reason: Option<DeclineReason>,
    decided_by: &str,
    audit: &AuditEntry,
) -> StoreResult<Transfer> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let transfer = transfers::table
            .find(id)
            .first::<Transfer>(c)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        let state = transfer.status;
        let claimed_by_me = transfer.destination_code.as_deref() == Some(municipality);
        let repeated = match step {
            Step::Claim => state == TransferStatus::Offered && claimed_by_me,
            _ => TransferStatus::Offered.after(step).ok() == Some(state),
        };
        if repeated {
            return Ok(transfer);
        }
        let done = state.after(step).map_err(StoreError::Conflict)?;
        if step == Step::Cancel {
            let sent = super::tables::transfer_packages::table
                .filter(super::tables::transfer_packages::transfer_id.eq(id))
                .count()
                .get_result::<i64>(c)?;
            if sent > 0 {
                return Err(StoreError::Conflict(
                    "the package was already sent to the destination hub and cannot be recalled; ask that hub to decline it".into(),
                ));
            }
        }
        match step {
            Step::Claim => {
                // The destination gets the same time to answer that the origin gave.
                let given = chrono::DateTime::parse_from_rfc3339(&transfer.deadline)
                    .ok()
                    .zip(chrono::DateTime::parse_from_rfc3339(&transfer.offered_at).ok())
                    .map_or(chrono::Duration::days(14), |(d, o)| d - o);
                let deadline = (chrono::Utc::now() + given)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                diesel::update(transfers::table.find(id))
                    .set((
                        transfers::status.eq(done.as_str()),
                        transfers::destination_code.eq(municipality),
                        transfers::deadline.eq(deadline),
                        transfers::escalated_at.eq(None::<String>),
                    ))
                    .execute(c)?
            }
            _ => diesel::update(transfers::table.find(id))
                .set((
                    transfers::status.eq(done.as_str()),
                    transfers::decided_at.eq(&now),
                    transfers::decided_by.eq(decided_by),
                    transfers::decline_reason.eq(decline_reason.map(code)),
                ))
                .execute(c)?,
        };
        let mut entry = audit.clone();
        entry.detail = Some(serde_json::json!({"transfer": id, "step": step.as_str()}).to_string());
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(id))
            .select(transfer_children::origin_resident_no)
            .load::<String>(c)?;
        audit_per_child(c, &entry, &transfer.municipality_code, &children)?;
        Ok(transfers::table.find(id).first::<Transfer>(c)?)
    })
}
