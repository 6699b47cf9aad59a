//! The indicator pipeline over the store: compute a fiscal year's true table, protect it,
//! audit it together with the stored releases (hiding more cells where the audit finds one
//! exposed), and publish it — or refuse it with the audit's report.

use std::collections::{BTreeMap, BTreeSet};

use super::audit::{self, AuditReport, AuditSummary, AuditedRelease};
use super::disclosure::{self, Cell, DisclosureConfig};
use super::table::{self, CellKey, TrueTable};
use super::{Catalogue, FiscalYear, SUPPORT_OUTCOME, compute};
use crate::audit::AuditEntry;
use crate::schema::SchemaVersion;
use crate::store::indicators::{self as ledger, NewRelease, StoredRelease};
use crate::store::{DbConn, StoreResult};

/// Rounds of extra suppression tried before a release is refused.
const REPAIR_ROUNDS: usize = 25;

/// The audit-trail action of a release (published or refused).
pub const ACTION_RELEASE: &str = "indicators.release";

/// A protected table, audited, not (yet) stored.
pub struct Candidate {
    pub fiscal_year: i32,
    pub towns: Vec<table::Town>,
    pub cells: Vec<Cell>,
    pub report: AuditReport,
    /// Newest stored release when the audit ran.
    pub audited_through: Option<i64>,
    pub rule_set_version: String,
    pub disclosure: DisclosureConfig,
}

/// Count every town's indicators for the fiscal year and aggregate them.
pub fn true_table(conn: &mut DbConn, version: &SchemaVersion, fy: FiscalYear) -> StoreResult<TrueTable> {
    let catalogue = Catalogue::from_standard(version);
    let rules = &version.applicability;
    let mut record_types: Vec<&str> = rules.rules.iter().map(|r| r.record_type.as_str()).collect();
    record_types.push(SUPPORT_OUTCOME);
    record_types.sort_unstable();
    record_types.dedup();
    let towns = ledger::towns(conn)?;
    let transfers = ledger::transfers(conn)?;
    let mut by_town = BTreeMap::new();
    for town in &towns {
        let data = ledger::town_data(conn, &town.code, &record_types)?;
        let counts = compute::town_counts(&data, &transfers, rules, &catalogue, fy);
        by_town.insert(town.code.clone(), counts);
    }
    Ok(TrueTable::build(fy.0, towns, &by_town, &catalogue))
}

fn audited<'a>(release: &'a StoredRelease) -> AuditedRelease<'a> {
    AuditedRelease {
        id: Some(release.id),
        fiscal_year: release.fiscal_year,
        towns: &release.towns,
        cells: &release.cells,
        rounding_base: release.disclosure.rounding_base,
    }
}

/// Protect `table` and audit it with the earlier releases of its fiscal year (releases of
/// other years share no unknown with it, so they cannot narrow its cells). Where the audit
/// finds a cell exposed, hide more and audit again; give up after `REPAIR_ROUNDS`.
pub fn protect_and_audit(
    table: &TrueTable,
    earlier: &[StoredRelease],
    config: &DisclosureConfig,
    catalogue: &Catalogue,
) -> (Vec<Cell>, AuditReport) {
    let present: BTreeSet<CellKey> = table.counts.keys().cloned().collect();
    let relations = table::relations(&table.towns, catalogue, &present);
    let mut cells = disclosure::protect(table, config, &relations);
    let same_year: Vec<&StoredRelease> = earlier
        .iter()
        .filter(|r| r.fiscal_year == table.fiscal_year)
        .collect();
    let mut round = 0;
    loop {
        let mut releases: Vec<AuditedRelease> = same_year.iter().map(|r| audited(r)).collect();
        releases.push(AuditedRelease {
            id: None,
            fiscal_year: table.fiscal_year,
            towns: &table.towns,
            cells: &cells,
            rounding_base: config.rounding_base,
        });
        let report = audit::audit(&releases, catalogue);
        round += 1;
        if report.passed() || !config.complementary_suppression || round > REPAIR_ROUNDS {
            return (cells, report);
        }
        let exposed: Vec<CellKey> = report.exposed.iter().map(|i| i.key.clone()).collect();
        match disclosure::hide_more(&cells, &relations, &exposed, table, config) {
            Some(more) => cells = more,
            None => return (cells, report),
        }
    }
}

/// The release the hub would publish now for `fy`, audited against the ledger.
pub fn candidate(
    conn: &mut DbConn,
    version: &SchemaVersion,
    fy: FiscalYear,
    config: &DisclosureConfig,
) -> StoreResult<Candidate> {
    let catalogue = Catalogue::from_standard(version);
    let table = true_table(conn, version, fy)?;
    let stored = ledger::ledger(conn)?;
    let (cells, report) = protect_and_audit(&table, &stored, config, &catalogue);
    Ok(Candidate {
        fiscal_year: fy.0,
        towns: table.towns,
        cells,
        report,
        audited_through: stored.last().map(|r| r.id),
        rule_set_version: version.applicability.rule_set_version.clone(),
        disclosure: config.clone(),
    })
}

/// Publish `fy` if the audit passes: the release and its audit entry are stored in one
/// transaction. A refused release is audited too. Returns the candidate and the new id.
pub fn release(
    conn: &mut DbConn,
    version: &SchemaVersion,
    fy: FiscalYear,
    config: &DisclosureConfig,
    published_by: &str,
) -> StoreResult<(Candidate, Option<i64>)> {
    let candidate = candidate(conn, version, fy, config)?;
    let mut entry = AuditEntry {
        municipality_code: "*".into(),
        client_name: Some(published_by.to_string()),
        roles: Some("admin".into()),
        action: ACTION_RELEASE.into(),
        result: "ok".into(),
        ..AuditEntry::default()
    };
    if !candidate.report.passed() {
        entry.result = "refused".into();
        entry.detail = Some(
            serde_json::json!({
                "fiscal_year": fy.0,
                "exposed_cells": candidate.report.exposed.len(),
                "errors": candidate.report.errors.len(),
            })
            .to_string(),
        );
        crate::audit::append(conn, &entry)?;
        return Ok((candidate, None));
    }
    let summary = AuditSummary::from(&candidate.report);
    let id = ledger::publish(
        conn,
        &NewRelease {
            fiscal_year: fy.0,
            published_by,
            rule_set_version: &candidate.rule_set_version,
            disclosure: &candidate.disclosure,
            towns: &candidate.towns,
            audit: &summary,
            cells: &candidate.cells,
        },
        candidate.audited_through,
        &entry,
    )?;
    Ok((candidate, Some(id)))
}

/// Audit every stored release together, as an attacker holding all of them would.
pub fn reaudit(conn: &mut DbConn, version: &SchemaVersion) -> StoreResult<AuditReport> {
    let stored = ledger::ledger(conn)?;
    let releases: Vec<AuditedRelease> = stored.iter().map(audited).collect();
    Ok(audit::audit(&releases, &Catalogue::from_standard(version)))
}
