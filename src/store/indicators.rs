//! What the indicators read (towns, subjects, current records, opt-outs, transfers) and the
//! release ledger they write. A release is stored in one transaction with its audit entry;
//! the ledger tables refuse updates and deletions (database triggers).

use std::collections::HashSet;

use chrono::{FixedOffset, NaiveDate};
use diesel::prelude::*;
use serde::Deserialize;

use super::WriteTx;
use super::tables::{
    indicator_cells, indicator_releases, municipalities, opt_outs, record_provenance, records,
    subjects, transfer_children, transfers,
};
use super::{DbConn, StoreError, StoreResult, now_rfc3339};
use crate::audit::AuditEntry;
use crate::indicators::audit::AuditSummary;
use crate::indicators::compute::{Fact, MovedChild, Person, TownData, TransferFact};
use crate::indicators::disclosure::{Cell, DisclosureConfig, Suppression, Unit};
use crate::indicators::publication::StoredRelease;
use crate::indicators::table::{CellKey, Level, Measure, Town};
use crate::schema::SUBJECT_TYPE;
use crate::transfer::TransferStatus;
use crate::{on_conn, write_tx};

/// The hub's own towns (a peer hub's towns, registered for transfers, are that hub's to count).
pub fn towns(conn: &mut DbConn) -> StoreResult<Vec<Town>> {
    use super::tables::peer_towns;
    let rows = on_conn!(conn, |c| municipalities::table
        .filter(diesel::dsl::not(municipalities::municipality_code.eq_any(
            peer_towns::table.select(peer_towns::municipality_code)
        ),))
        .select((
            municipalities::municipality_code,
            municipalities::name,
            municipalities::council,
            municipalities::population,
        ))
        .order(municipalities::municipality_code)
        .load::<(String, String, Option<String>, Option<i64>)>(c))?;
    Ok(rows
        .into_iter()
        .map(|(code, name, council, population)| Town {
            code,
            name,
            council,
            population,
        })
        .collect())
}

/// The local date (Japan) of a stored RFC 3339 timestamp: fiscal years follow the calendar
/// the towns work in.
fn japan_date(timestamp: &str) -> Option<NaiveDate> {
    let japan = FixedOffset::east_opt(9 * 3600)?;
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .map(|t| t.with_timezone(&japan).date_naive())
}

type TransferRow = (
    i64,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
);

pub fn transfers(conn: &mut DbConn) -> StoreResult<Vec<TransferFact>> {
    let (rows, children) = on_conn!(conn, |c| {
        let rows = transfers::table
            .select((
                transfers::id,
                transfers::municipality_code,
                transfers::destination_code,
                transfers::status,
                transfers::offered_at,
                transfers::decided_at,
                transfers::escalated_at,
            ))
            .order(transfers::id)
            .load::<TransferRow>(c)?;
        let children = transfer_children::table
            .select((
                transfer_children::transfer_id,
                transfer_children::origin_resident_no,
                transfer_children::destination_resident_no,
            ))
            .load::<(i64, String, Option<String>)>(c)?;
        diesel::QueryResult::Ok((rows, children))
    })?;
    let mut by_transfer: std::collections::HashMap<i64, Vec<MovedChild>> = Default::default();
    for (id, origin_resident_no, destination_resident_no) in children {
        by_transfer.entry(id).or_default().push(MovedChild {
            origin_resident_no,
            destination_resident_no,
        });
    }
    Ok(rows
        .into_iter()
        .filter_map(
            |(id, origin, destination, status, offered_at, decided_at, escalated_at)| {
                Some(TransferFact {
                    origin,
                    destination,
                    status: TransferStatus::parse(&status)?,
                    offered_on: japan_date(&offered_at)?,
                    decided_on: decided_at.as_deref().and_then(japan_date),
                    escalated: escalated_at.is_some(),
                    children: by_transfer.remove(&id).unwrap_or_default(),
                })
            },
        )
        .collect())
}

/// The fields of a subject record the indicators need beyond its columns.
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
    Option<String>,
    Option<String>,
    String,
);
type RecordRow = (String, String, String, String, String, String);

/// One town's subjects, opt-outs and current records of `record_types`.
pub fn town_data(conn: &mut DbConn, code: &str, record_types: &[&str]) -> StoreResult<TownData> {
    let (people, opted_out, rows, provenance) = on_conn!(conn, |c| {
        let people = subjects::table
            .filter(subjects::municipality_code.eq(code))
            .select((
                subjects::resident_no,
                subjects::birth_date,
                subjects::household_no,
                subjects::role,
                subjects::data,
            ))
            .load::<SubjectRow>(c)?;
        let opted_out = opt_outs::table
            .filter(opt_outs::municipality_code.eq(code))
            .select(opt_outs::resident_no)
            .load::<String>(c)?;
        let rows = records::table
            .filter(records::municipality_code.eq(code))
            .filter(records::retracted.eq(false))
            .filter(records::record_type.eq_any(record_types))
            .filter(records::record_type.ne(SUBJECT_TYPE))
            .filter(records::subject_resident_no.is_not_null())
            .select((
                records::subject_resident_no.assume_not_null(),
                records::record_type,
                records::source,
                records::source_record_id,
                records::effective_date,
                records::data,
            ))
            .load::<RecordRow>(c)?;
        let provenance = record_provenance::table
            .filter(record_provenance::municipality_code.eq(code))
            .select((
                record_provenance::source,
                record_provenance::source_record_id,
            ))
            .load::<(String, String)>(c)?;
        diesel::QueryResult::Ok((people, opted_out, rows, provenance))
    })?;
    let provenance: HashSet<(String, String)> = provenance.into_iter().collect();
    let people = people
        .into_iter()
        .map(|(resident_no, birth_date, household_no, role, data)| {
            let fields: SubjectFields = serde_json::from_str(&data).unwrap_or_default();
            Person {
                birth_date: birth_date.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
                resident_no,
                household_no,
                role,
                guardians: fields.guardians,
                moved_in_on: fields.moved_in_on,
                moved_out_on: fields.moved_out_on,
            }
        })
        .collect();
    let facts = rows
        .into_iter()
        .filter_map(
            |(about, record_type, source, source_record_id, effective_date, data)| {
                let transferred = provenance.contains(&(source, source_record_id.clone()));
                Some(Fact {
                    about,
                    record_type,
                    source_record_id,
                    effective_date,
                    data: serde_json::from_str(&data).ok()?,
                    transferred,
                })
            },
        )
        .collect();
    Ok(TownData {
        code: code.to_string(),
        people,
        opted_out: opted_out.into_iter().collect(),
        facts,
    })
}

/// A release about to be stored.
pub struct NewRelease<'a> {
    pub fiscal_year: i32,
    pub published_by: &'a str,
    pub rule_set_version: &'a str,
    pub disclosure: &'a DisclosureConfig,
    pub towns: &'a [Town],
    pub audit: &'a AuditSummary,
    pub cells: &'a [Cell],
}

type ReleaseRow = (i64, i32, String, String, String, String, String, String);
type CellRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<f64>,
    bool,
    Option<String>,
    i64,
    Option<i64>,
);

fn invalid(what: &str) -> StoreError {
    StoreError::Invalid(format!("the indicator ledger holds an unreadable {what}"))
}

fn release_from(row: ReleaseRow, cells: Vec<Cell>) -> StoreResult<StoredRelease> {
    let (id, fiscal_year, published_at, published_by, rule_set_version, disclosure, towns, audit) =
        row;
    Ok(StoredRelease {
        id,
        fiscal_year,
        published_at,
        published_by,
        rule_set_version,
        disclosure: serde_json::from_str(&disclosure).map_err(|_| invalid("configuration"))?,
        towns: serde_json::from_str(&towns).map_err(|_| invalid("town list"))?,
        audit: serde_json::from_str(&audit).map_err(|_| invalid("audit summary"))?,
        cells,
    })
}

fn cell_from(row: CellRow) -> StoreResult<(i64, Cell)> {
    let (
        release,
        level,
        geography,
        indicator,
        category,
        unit,
        value,
        rounded,
        suppressed,
        floor,
        true_value,
    ) = row;
    let level = Level::parse(&level).ok_or_else(|| invalid("level"))?;
    Ok((
        release,
        Cell {
            key: CellKey {
                level,
                geography,
                measure: Measure {
                    indicator,
                    category,
                },
            },
            unit: Unit::parse(&unit).ok_or_else(|| invalid("unit"))?,
            value,
            rounded,
            suppressed: match suppressed {
                Some(s) => Some(Suppression::parse(&s).ok_or_else(|| invalid("suppression"))?),
                None => None,
            },
            floor,
            true_value,
        },
    ))
}

macro_rules! release_columns {
    () => {
        (
            indicator_releases::id,
            indicator_releases::fiscal_year,
            indicator_releases::published_at,
            indicator_releases::published_by,
            indicator_releases::rule_set_version,
            indicator_releases::disclosure,
            indicator_releases::towns,
            indicator_releases::audit,
        )
    };
}

macro_rules! cell_columns {
    () => {
        (
            indicator_cells::release_id,
            indicator_cells::level,
            indicator_cells::geography,
            indicator_cells::indicator,
            indicator_cells::category,
            indicator_cells::unit,
            indicator_cells::value,
            indicator_cells::rounded,
            indicator_cells::suppressed,
            indicator_cells::floor,
            indicator_cells::true_value,
        )
    };
}

/// Releases (all, or the one with `only`), oldest first, with their cells.
fn load(conn: &mut DbConn, only: Option<i64>) -> StoreResult<Vec<StoredRelease>> {
    let (releases, cells) = on_conn!(conn, |c| {
        let mut releases = indicator_releases::table
            .select(release_columns!())
            .order(indicator_releases::id)
            .into_boxed();
        let mut cells = indicator_cells::table
            .select(cell_columns!())
            .order((
                indicator_cells::release_id,
                indicator_cells::level,
                indicator_cells::geography,
                indicator_cells::indicator,
                indicator_cells::category,
            ))
            .into_boxed();
        if let Some(id) = only {
            releases = releases.filter(indicator_releases::id.eq(id));
            cells = cells.filter(indicator_cells::release_id.eq(id));
        }
        diesel::QueryResult::Ok((releases.load::<ReleaseRow>(c)?, cells.load::<CellRow>(c)?))
    })?;
    let mut by_release: std::collections::BTreeMap<i64, Vec<Cell>> = Default::default();
    for row in cells {
        let (release, cell) = cell_from(row)?;
        by_release.entry(release).or_default().push(cell);
    }
    releases
        .into_iter()
        .map(|row| {
            let cells = by_release.remove(&row.0).unwrap_or_default();
            release_from(row, cells)
        })
        .collect()
}

/// Every stored release with its cells, oldest first (the audit's input).
pub fn ledger(conn: &mut DbConn) -> StoreResult<Vec<StoredRelease>> {
    load(conn, None)
}

pub fn release(conn: &mut DbConn, id: i64) -> StoreResult<Option<StoredRelease>> {
    Ok(load(conn, Some(id))?.into_iter().next())
}

/// Releases without their cells, oldest first.
pub fn list(conn: &mut DbConn) -> StoreResult<Vec<(StoredRelease, usize)>> {
    let (releases, counts) = on_conn!(conn, |c| {
        let releases = indicator_releases::table
            .select(release_columns!())
            .order(indicator_releases::id)
            .load::<ReleaseRow>(c)?;
        let counts = indicator_cells::table
            .group_by(indicator_cells::release_id)
            .select((indicator_cells::release_id, diesel::dsl::count_star()))
            .load::<(i64, i64)>(c)?;
        diesel::QueryResult::Ok((releases, counts))
    })?;
    let counts: std::collections::HashMap<i64, i64> = counts.into_iter().collect();
    releases
        .into_iter()
        .map(|row| {
            let n = counts.get(&row.0).copied().unwrap_or(0) as usize;
            Ok((release_from(row, Vec::new())?, n))
        })
        .collect()
}

/// Store a release and its audit entry in one transaction. `audited_through` is the newest
/// release the audit included: if another release was stored meanwhile the audit is stale
/// and nothing is stored.
pub fn publish(
    conn: &mut DbConn,
    release: &NewRelease,
    audited_through: Option<i64>,
    audit: &AuditEntry,
) -> StoreResult<i64> {
    let now = now_rfc3339();
    let disclosure =
        serde_json::to_string(release.disclosure).map_err(|_| invalid("configuration"))?;
    let towns = serde_json::to_string(release.towns).map_err(|_| invalid("town list"))?;
    let summary = serde_json::to_string(release.audit).map_err(|_| invalid("audit summary"))?;
    write_tx!(conn, |c| {
        let newest = indicator_releases::table
            .select(diesel::dsl::max(indicator_releases::id))
            .first::<Option<i64>>(c)?;
        if newest != audited_through {
            return Err(StoreError::Conflict(
                "another release was published while this one was audited; run the release again"
                    .into(),
            ));
        }
        let id = diesel::insert_into(indicator_releases::table)
            .values((
                indicator_releases::municipality_code.eq("*"),
                indicator_releases::fiscal_year.eq(release.fiscal_year),
                indicator_releases::published_at.eq(&now),
                indicator_releases::published_by.eq(release.published_by),
                indicator_releases::rule_set_version.eq(release.rule_set_version),
                indicator_releases::disclosure.eq(&disclosure),
                indicator_releases::towns.eq(&towns),
                indicator_releases::audit.eq(&summary),
            ))
            .returning(indicator_releases::id)
            .get_result::<i64>(c)?;
        let rows: Vec<_> = release
            .cells
            .iter()
            .map(|cell| {
                let town = if cell.key.level == Level::Municipality {
                    cell.key.geography.as_str()
                } else {
                    "*"
                };
                (
                    indicator_cells::release_id.eq(id),
                    indicator_cells::municipality_code.eq(town),
                    indicator_cells::level.eq(cell.key.level.as_str()),
                    indicator_cells::geography.eq(&cell.key.geography),
                    indicator_cells::indicator.eq(&cell.key.measure.indicator),
                    indicator_cells::category.eq(&cell.key.measure.category),
                    indicator_cells::unit.eq(cell.unit.as_str()),
                    indicator_cells::value.eq(cell.value),
                    indicator_cells::rounded.eq(cell.rounded),
                    indicator_cells::suppressed.eq(cell.suppressed.map(Suppression::as_str)),
                    indicator_cells::floor.eq(cell.floor),
                    indicator_cells::true_value.eq(cell.true_value),
                )
            })
            .collect();
        for chunk in rows.chunks(1000) {
            diesel::insert_into(indicator_cells::table)
                .values(chunk)
                .execute(c)?;
        }
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"release": id, "fiscal_year": release.fiscal_year, "cells": release.cells.len()})
                .to_string(),
        );
        c.append_audit(&entry)?;
        Ok(id)
    })
}
