//! Transfers in the database: the views and boxes officers read, and the facts a transfer
//! workflow (`transfer::workflow`, `transfer::exchange`) records inside its write transaction
//! (`TransferWrites`). What a step may do is the workflow's to decide.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use sha2::{Digest, Sha256};

use super::tables::{
    opt_outs, record_provenance, records, subjects, transfer_children, transfer_records, transfers,
};
use super::{DbConn, StoreResult, now_rfc3339};
use crate::identity::normalize::GaijiTable;
use crate::identity::resolve::{self, Candidate};
use crate::schema::SUBJECT_TYPE;
use crate::transfer::{Disposition, TransferBox, TransferStatus};
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
    /// Between hubs, once the destination town decided: its signed outcome message (written
    /// by this hub for a package it received, imported for a package it sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_outcome: Option<crate::transfer::package::Outcome>,
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
    let destination_outcome = super::packages::outcome_of(conn, id)?
        .map(|(xml, _)| {
            crate::transfer::package::parse_outcome(xml.as_bytes()).map_err(|e| {
                super::StoreError::Invalid(format!(
                    "the stored outcome of transfer {id} does not read back: {e}"
                ))
            })
        })
        .transpose()?;
    Ok(Some(TransferView {
        destination_outcome,
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

/// A record frozen into a transfer when it was offered (or carried by a package).
#[derive(Debug, Clone)]
pub struct FrozenRecord {
    pub record_id: i64,
    pub origin_resident_no: String,
    pub source: String,
    pub source_record_id: String,
    pub record_type: String,
    /// Canonical JSON of the record.
    pub data: String,
}

/// A guardian's objection (不同意) as the hub keeps it: an opt-out of a town, or one a
/// package carried for a child of a transfer.
#[derive(Debug, Clone)]
pub struct StandingObjection {
    pub resident_no: String,
    pub objected_on: String,
    pub legal_note: Option<String>,
}

/// Where a record copied into the destination came from.
pub struct Provenance<'a> {
    pub source: &'a str,
    pub source_record_id: &'a str,
    pub origin_municipality: &'a str,
    pub origin_source: &'a str,
    pub transfer_id: i64,
    pub transferred_at: &'a str,
}

/// A transfer as it is first written (offered, held, or imported from a package).
pub struct TransferRow<'a> {
    pub origin: &'a str,
    pub destination: Option<&'a str>,
    pub status: TransferStatus,
    pub legal_basis: &'a str,
    pub reason_code: &'a str,
    pub note: Option<&'a str>,
    pub offered_by: &'a str,
    pub offered_at: &'a str,
    pub deadline: &'a str,
    pub escalate_to: &'a str,
}

/// The facts of transfers that a transfer workflow (`transfer::workflow`,
/// `transfer::exchange`) reads and records inside its write transaction. The store answers
/// and records; the rules (who may, in which state, what is copied) are the workflow's.
pub trait TransferWrites {
    fn transfer(&mut self, id: i64) -> StoreResult<Option<Transfer>>;
    fn is_town_of_hub(&mut self, code: &str) -> StoreResult<bool>;
    /// How many of `resident_nos` are subjects of `municipality`.
    fn known_subject_count(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
    ) -> StoreResult<usize>;
    fn insert_transfer(&mut self, row: &TransferRow) -> StoreResult<i64>;
    /// The children of a transfer; objections a package carried go with them.
    fn insert_children(
        &mut self,
        id: i64,
        origin: &str,
        children: &[(String, Option<StandingObjection>)],
    ) -> StoreResult<()>;
    /// Freeze the current (not retracted) records of `children` at `origin` into the transfer.
    fn freeze_current_records(
        &mut self,
        id: i64,
        origin: &str,
        children: &[String],
    ) -> StoreResult<()>;
    /// Store records a package carried, numbered in package order.
    fn insert_frozen_records(
        &mut self,
        id: i64,
        origin: &str,
        records: &[FrozenRecord],
    ) -> StoreResult<()>;
    /// The children of a transfer, by origin resident number.
    fn children_of(&mut self, id: i64) -> StoreResult<Vec<String>>;
    /// The frozen records of a transfer, in their order.
    fn frozen_records(&mut self, id: i64) -> StoreResult<Vec<FrozenRecord>>;
    /// `(source, source_record_id)` of the retracted records of these subjects.
    fn retracted_records(
        &mut self,
        municipality: &str,
        subjects: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// `(resident_no, support_measure)` of those of `resident_nos` that are subjects here.
    fn known_subjects(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
    ) -> StoreResult<Vec<(String, bool)>>;
    /// Every frozen record of the transfer gets `all`, except the ones listed apart.
    fn set_dispositions(
        &mut self,
        id: i64,
        all: Disposition,
        apart: &[(Disposition, &[String])],
    ) -> StoreResult<()>;
    fn record_provenance(&mut self, destination: &str, rows: &[Provenance]) -> StoreResult<()>;
    fn flag_support_measure(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
    ) -> StoreResult<()>;
    /// The opt-outs of `municipality` standing for these subjects.
    fn opt_outs_of(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
    ) -> StoreResult<Vec<StandingObjection>>;
    /// The objections a package carried for the children of a transfer.
    fn carried_objections(&mut self, id: i64) -> StoreResult<Vec<StandingObjection>>;
    /// Record an opt-out unless one stands already.
    fn record_opt_out(
        &mut self,
        municipality: &str,
        objection: &StandingObjection,
        recorded_at: &str,
    ) -> StoreResult<()>;
    fn place_child(
        &mut self,
        id: i64,
        origin_resident_no: &str,
        destination_resident_no: &str,
    ) -> StoreResult<()>;
    fn mark_moved_out(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
        destination: &str,
    ) -> StoreResult<()>;
    /// Undo `mark_moved_out` for children `destination` did not take.
    fn clear_moved_out(
        &mut self,
        municipality: &str,
        resident_nos: &[String],
        destination: &str,
    ) -> StoreResult<()>;
    /// A decision (accepted, declined, cancelled, delivered) and who took it when.
    fn record_decision(
        &mut self,
        id: i64,
        status: TransferStatus,
        decided_at: &str,
        decided_by: &str,
        decline_reason: Option<&str>,
    ) -> StoreResult<()>;
    /// A held transfer claimed by `destination`, which now has until `deadline`.
    fn record_claim(
        &mut self,
        id: i64,
        status: TransferStatus,
        destination: &str,
        deadline: &str,
    ) -> StoreResult<()>;
    /// Packages made of this transfer for another hub.
    fn packages_sent(&mut self, id: i64) -> StoreResult<i64>;
}

macro_rules! impl_transfer_writes {
    ($conn:ty) => {
        impl TransferWrites for $conn {
            fn transfer(&mut self, id: i64) -> StoreResult<Option<Transfer>> {
                Ok(transfers::table
                    .find(id)
                    .first::<Transfer>(self)
                    .optional()?)
            }

            fn is_town_of_hub(&mut self, code: &str) -> StoreResult<bool> {
                let found = super::tables::municipalities::table
                    .find(code)
                    .count()
                    .get_result::<i64>(self)?;
                Ok(found > 0)
            }

            fn known_subject_count(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
            ) -> StoreResult<usize> {
                let known = subjects::table
                    .filter(subjects::municipality_code.eq(municipality))
                    .filter(subjects::resident_no.eq_any(resident_nos))
                    .count()
                    .get_result::<i64>(self)?;
                Ok(known as usize)
            }

            fn insert_transfer(&mut self, row: &TransferRow) -> StoreResult<i64> {
                Ok(diesel::insert_into(transfers::table)
                    .values((
                        transfers::municipality_code.eq(row.origin),
                        transfers::destination_code.eq(row.destination),
                        transfers::status.eq(row.status.as_str()),
                        transfers::legal_basis.eq(row.legal_basis),
                        transfers::reason_code.eq(row.reason_code),
                        transfers::note.eq(row.note),
                        transfers::offered_by.eq(row.offered_by),
                        transfers::offered_at.eq(row.offered_at),
                        transfers::deadline.eq(row.deadline),
                        transfers::escalate_to.eq(row.escalate_to),
                    ))
                    .returning(transfers::id)
                    .get_result::<i64>(self)?)
            }

            fn insert_children(
                &mut self,
                id: i64,
                origin: &str,
                children: &[(String, Option<StandingObjection>)],
            ) -> StoreResult<()> {
                let rows: Vec<_> = children
                    .iter()
                    .map(|(child, objection)| {
                        (
                            transfer_children::transfer_id.eq(id),
                            transfer_children::municipality_code.eq(origin),
                            transfer_children::origin_resident_no.eq(child),
                            transfer_children::objected_on
                                .eq(objection.as_ref().map(|o| &o.objected_on)),
                            transfer_children::objection_note
                                .eq(objection.as_ref().and_then(|o| o.legal_note.as_ref())),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(transfer_children::table)
                        .values(chunk)
                        .execute(self)?;
                }
                Ok(())
            }

            fn freeze_current_records(
                &mut self,
                id: i64,
                origin: &str,
                children: &[String],
            ) -> StoreResult<()> {
                let current = records::table
                    .filter(records::municipality_code.eq(origin))
                    .filter(records::subject_resident_no.eq_any(children))
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
                    .load::<(i64, Option<String>, String, String, String, String, String)>(self)?;
                let rows: Vec<_> = current
                    .iter()
                    .map(
                        |(record_id, about, source, source_record_id, record_type, data, hash)| {
                            (
                                transfer_records::transfer_id.eq(id),
                                transfer_records::municipality_code.eq(origin),
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
                        .execute(self)?;
                }
                Ok(())
            }

            fn insert_frozen_records(
                &mut self,
                id: i64,
                origin: &str,
                records: &[FrozenRecord],
            ) -> StoreResult<()> {
                let rows: Vec<_> = records
                    .iter()
                    .map(|r| {
                        (
                            transfer_records::transfer_id.eq(id),
                            transfer_records::municipality_code.eq(origin),
                            transfer_records::record_id.eq(r.record_id),
                            transfer_records::origin_resident_no.eq(&r.origin_resident_no),
                            transfer_records::source.eq(&r.source),
                            transfer_records::source_record_id.eq(&r.source_record_id),
                            transfer_records::record_type.eq(&r.record_type),
                            transfer_records::content_hash
                                .eq(hex::encode(Sha256::digest(r.data.as_bytes()))),
                            transfer_records::data.eq(&r.data),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(transfer_records::table)
                        .values(chunk)
                        .execute(self)?;
                }
                Ok(())
            }

            fn children_of(&mut self, id: i64) -> StoreResult<Vec<String>> {
                Ok(transfer_children::table
                    .filter(transfer_children::transfer_id.eq(id))
                    .order(transfer_children::origin_resident_no)
                    .select(transfer_children::origin_resident_no)
                    .load::<String>(self)?)
            }

            fn frozen_records(&mut self, id: i64) -> StoreResult<Vec<FrozenRecord>> {
                Ok(transfer_records::table
                    .filter(transfer_records::transfer_id.eq(id))
                    .order(transfer_records::record_id)
                    .select((
                        transfer_records::record_id,
                        transfer_records::origin_resident_no,
                        transfer_records::source,
                        transfer_records::source_record_id,
                        transfer_records::record_type,
                        transfer_records::data,
                    ))
                    .load::<(i64, String, String, String, String, String)>(self)?
                    .into_iter()
                    .map(
                        |(
                            record_id,
                            origin_resident_no,
                            source,
                            source_record_id,
                            record_type,
                            data,
                        )| {
                            FrozenRecord {
                                record_id,
                                origin_resident_no,
                                source,
                                source_record_id,
                                record_type,
                                data,
                            }
                        },
                    )
                    .collect())
            }

            fn retracted_records(
                &mut self,
                municipality: &str,
                subjects: &[String],
            ) -> StoreResult<Vec<(String, String)>> {
                Ok(records::table
                    .filter(records::municipality_code.eq(municipality))
                    .filter(records::retracted.eq(true))
                    .filter(records::subject_resident_no.eq_any(subjects))
                    .select((records::source, records::source_record_id))
                    .load::<(String, String)>(self)?)
            }

            fn known_subjects(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
            ) -> StoreResult<Vec<(String, bool)>> {
                Ok(subjects::table
                    .filter(subjects::municipality_code.eq(municipality))
                    .filter(subjects::resident_no.eq_any(resident_nos))
                    .select((subjects::resident_no, subjects::support_measure))
                    .load(self)?)
            }

            fn set_dispositions(
                &mut self,
                id: i64,
                all: Disposition,
                apart: &[(Disposition, &[String])],
            ) -> StoreResult<()> {
                diesel::update(
                    transfer_records::table.filter(transfer_records::transfer_id.eq(id)),
                )
                .set(transfer_records::disposition.eq(all.as_str()))
                .execute(self)?;
                for (disposition, ids) in apart {
                    diesel::update(
                        transfer_records::table
                            .filter(transfer_records::transfer_id.eq(id))
                            .filter(transfer_records::source_record_id.eq_any(*ids)),
                    )
                    .set(transfer_records::disposition.eq(disposition.as_str()))
                    .execute(self)?;
                }
                Ok(())
            }

            fn record_provenance(
                &mut self,
                destination: &str,
                rows: &[Provenance],
            ) -> StoreResult<()> {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|p| {
                        (
                            record_provenance::municipality_code.eq(destination),
                            record_provenance::source.eq(p.source),
                            record_provenance::source_record_id.eq(p.source_record_id),
                            record_provenance::origin_municipality_code.eq(p.origin_municipality),
                            record_provenance::origin_source.eq(p.origin_source),
                            record_provenance::transfer_id.eq(p.transfer_id),
                            record_provenance::transferred_at.eq(p.transferred_at),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(record_provenance::table)
                        .values(chunk)
                        .on_conflict_do_nothing()
                        .execute(self)?;
                }
                Ok(())
            }

            fn flag_support_measure(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
            ) -> StoreResult<()> {
                diesel::update(
                    subjects::table
                        .filter(subjects::municipality_code.eq(municipality))
                        .filter(subjects::resident_no.eq_any(resident_nos)),
                )
                .set(subjects::support_measure.eq(true))
                .execute(self)?;
                Ok(())
            }

            fn opt_outs_of(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
            ) -> StoreResult<Vec<StandingObjection>> {
                Ok(opt_outs::table
                    .filter(opt_outs::municipality_code.eq(municipality))
                    .filter(opt_outs::resident_no.eq_any(resident_nos))
                    .select((
                        opt_outs::resident_no,
                        opt_outs::objected_on,
                        opt_outs::legal_note,
                    ))
                    .load::<(String, String, Option<String>)>(self)?
                    .into_iter()
                    .map(standing_objection)
                    .collect())
            }

            fn carried_objections(&mut self, id: i64) -> StoreResult<Vec<StandingObjection>> {
                Ok(transfer_children::table
                    .filter(transfer_children::transfer_id.eq(id))
                    .filter(transfer_children::objected_on.is_not_null())
                    .select((
                        transfer_children::origin_resident_no,
                        transfer_children::objected_on.assume_not_null(),
                        transfer_children::objection_note,
                    ))
                    .load::<(String, String, Option<String>)>(self)?
                    .into_iter()
                    .map(standing_objection)
                    .collect())
            }

            fn record_opt_out(
                &mut self,
                municipality: &str,
                objection: &StandingObjection,
                recorded_at: &str,
            ) -> StoreResult<()> {
                diesel::insert_into(opt_outs::table)
                    .values((
                        opt_outs::municipality_code.eq(municipality),
                        opt_outs::resident_no.eq(&objection.resident_no),
                        opt_outs::objected_on.eq(&objection.objected_on),
                        opt_outs::legal_note.eq(&objection.legal_note),
                        opt_outs::recorded_at.eq(recorded_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(self)?;
                Ok(())
            }

            fn place_child(
                &mut self,
                id: i64,
                origin_resident_no: &str,
                destination_resident_no: &str,
            ) -> StoreResult<()> {
                diesel::update(transfer_children::table.find((id, origin_resident_no)))
                    .set(transfer_children::destination_resident_no.eq(destination_resident_no))
                    .execute(self)?;
                Ok(())
            }

            fn mark_moved_out(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
                destination: &str,
            ) -> StoreResult<()> {
                diesel::update(
                    subjects::table
                        .filter(subjects::municipality_code.eq(municipality))
                        .filter(subjects::resident_no.eq_any(resident_nos)),
                )
                .set(subjects::moved_out_to.eq(destination))
                .execute(self)?;
                Ok(())
            }

            fn clear_moved_out(
                &mut self,
                municipality: &str,
                resident_nos: &[String],
                destination: &str,
            ) -> StoreResult<()> {
                diesel::update(
                    subjects::table
                        .filter(subjects::municipality_code.eq(municipality))
                        .filter(subjects::resident_no.eq_any(resident_nos))
                        .filter(subjects::moved_out_to.eq(destination)),
                )
                .set(subjects::moved_out_to.eq(None::<String>))
                .execute(self)?;
                Ok(())
            }

            fn record_decision(
                &mut self,
                id: i64,
                status: TransferStatus,
                decided_at: &str,
                decided_by: &str,
                decline_reason: Option<&str>,
            ) -> StoreResult<()> {
                diesel::update(transfers::table.find(id))
                    .set((
                        transfers::status.eq(status.as_str()),
                        transfers::decided_at.eq(decided_at),
                        transfers::decided_by.eq(decided_by),
                        transfers::decline_reason.eq(decline_reason),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn record_claim(
                &mut self,
                id: i64,
                status: TransferStatus,
                destination: &str,
                deadline: &str,
            ) -> StoreResult<()> {
                diesel::update(transfers::table.find(id))
                    .set((
                        transfers::status.eq(status.as_str()),
                        transfers::destination_code.eq(destination),
                        transfers::deadline.eq(deadline),
                        transfers::escalated_at.eq(None::<String>),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn packages_sent(&mut self, id: i64) -> StoreResult<i64> {
                Ok(super::tables::transfer_packages::table
                    .filter(super::tables::transfer_packages::transfer_id.eq(id))
                    .count()
                    .get_result::<i64>(self)?)
            }
        }
    };
}

impl_transfer_writes!(diesel::SqliteConnection);
impl_transfer_writes!(diesel::PgConnection);

fn standing_objection(
    (resident_no, objected_on, legal_note): (String, String, Option<String>),
) -> StandingObjection {
    StandingObjection {
        resident_no,
        objected_on,
        legal_note,
    }
}
