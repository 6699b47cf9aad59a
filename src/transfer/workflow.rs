//! Transfers within one hub as officers meet them: offering, and every box, view and step.
//! Each step asks the access policy about the transfer (parties, held, a DV child) before
//! anything else is read, so a transfer the officer may not see answers exactly like one that
//! does not exist; then its rules run inside one write transaction
//! (`store::in_transfer_transaction`) where the store only answers and records.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::access::{self, ChildUse, TransferFacts, TransferUse, Verdict};
use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::schema::SUBJECT_TYPE;
use crate::store::packages as store_packages;
use crate::store::records as store_records;
use crate::store::transfers::{
    self as store_transfers, FrozenRecord, Provenance, StandingObjection, Transfer, TransferRow,
};
use crate::store::{
    DbConn, PreparedRecord, StoreError, StoreResult, TransferTx, WriteTx, in_transfer_transaction,
    now_rfc3339,
};
use crate::transfer::exchange::{self, ChildResult};
use crate::transfer::package::ChildDecision;
use crate::transfer::{
    DeclineReason, Disposition, Step, TransferBox, TransferReason, TransferStatus,
    transferred_source,
};

/// An offer (or a held transfer, without destination) as the origin's officer makes it.
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

/// The answer to an offer naming a child the origin does not have (or the officer may not see).
pub const UNKNOWN_CHILD: &str = "every child must be a subject of the origin municipality";

/// Offer (or hold) a transfer: the children's current records are frozen as of now.
pub fn offer(conn: &mut DbConn, new: &NewTransfer, audit: &AuditEntry) -> StoreResult<i64> {
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
    in_transfer_transaction(conn, |c| {
        if let Some(destination) = new.destination
            && !c.is_town_of_hub(destination)?
        {
            return Err(StoreError::Unprocessable(format!(
                "destination {destination} is not a town of this hub; hold the transfer (no destination) or send a package to the other hub"
            )));
        }
        if c.known_subject_count(new.origin, new.children)? != new.children.len() {
            return Err(StoreError::Unprocessable(UNKNOWN_CHILD.into()));
        }
        let id = c.insert_transfer(&TransferRow {
            origin: new.origin,
            destination: new.destination,
            status,
            legal_basis: new.legal_basis,
            reason_code: new.reason.code(),
            note: new.note,
            offered_by: new.offered_by,
            offered_at: &now,
            deadline: &deadline,
            escalate_to: new.escalate_to,
        })?;
        let children: Vec<_> = new.children.iter().map(|c| (c.clone(), None)).collect();
        c.insert_children(id, new.origin, &children)?;
        c.freeze_current_records(id, new.origin, new.children)?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": id, "destination": new.destination, "children": new.children.len()})
                .to_string(),
        );
        audit_per_child(c, &entry, new.origin, new.children)?;
        Ok(id)
    })
}

/// Offer as `caller`: a child the officer may not see (DV without the role) is refused exactly
/// like a child that does not exist, before anything is written.
pub fn offer_as(
    conn: &mut DbConn,
    caller: &Principal,
    new: &NewTransfer,
    audit: &AuditEntry,
) -> StoreResult<i64> {
    let facts = store_records::children_facts(conn, new.origin, new.children)?;
    let hidden = new.children.iter().any(|child| {
        !access::decide(
            caller,
            new.origin,
            ChildUse::OfferInTransfer,
            facts.get(child),
        )
        .is_allowed()
    });
    if hidden {
        return Err(StoreError::Unprocessable(UNKNOWN_CHILD.into()));
    }
    offer(conn, new, audit)
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

/// The transfer with this id and the policy's verdict on `using` it. The same queries run
/// whether or not the transfer exists.
pub fn judge(
    conn: &mut DbConn,
    caller: &Principal,
    using: TransferUse,
    id: i64,
) -> StoreResult<(Option<Transfer>, Verdict)> {
    let transfer = store_transfers::get(conn, id)?;
    let origin = transfer.as_ref().map(|t| t.municipality_code.as_str());
    let includes_support_measure = store_transfers::includes_support_measure(conn, id, origin)?;
    let verdict = match &transfer {
        None => Verdict::Hide(access::Hidden::Missing),
        Some(t) => access::decide_transfer(caller, using, &facts(t, includes_support_measure)),
    };
    Ok((transfer, verdict))
}

/// The transfer, if `caller` may use it so; otherwise "not found".
pub fn visible(
    conn: &mut DbConn,
    caller: &Principal,
    using: TransferUse,
    id: i64,
) -> StoreResult<Transfer> {
    match judge(conn, caller, using, id)? {
        (Some(transfer), Verdict::Allow) => Ok(transfer),
        _ => Err(StoreError::NotFound),
    }
}

/// Decline, cancel or claim a transfer, if the policy lets `caller` take that step on it;
/// otherwise "not found". Repeating the same step is harmless.
pub fn take_step(
    conn: &mut DbConn,
    caller: &Principal,
    id: i64,
    step: Step,
    decline_reason: Option<DeclineReason>,
    decided_by: &str,
    audit: &AuditEntry,
) -> StoreResult<Transfer> {
    visible(conn, caller, TransferUse::from(step), id)?;
    let town = caller.municipality.as_str();
    let now = now_rfc3339();
    let key = store_packages::hub_key(conn)?;
    in_transfer_transaction(conn, |c| {
        let transfer = c.transfer(id)?.ok_or(StoreError::NotFound)?;
        let state = transfer.status;
        let claimed_by_me = transfer.destination_code.as_deref() == Some(town);
        let repeated = match step {
            Step::Claim => state == TransferStatus::Offered && claimed_by_me,
            _ => TransferStatus::Offered.after(step).ok() == Some(state),
        };
        if repeated {
            return Ok(transfer);
        }
        let done = state.after(step).map_err(StoreError::Conflict)?;
        if step == Step::Cancel && c.packages_sent(id)? > 0 {
            return Err(StoreError::Conflict(
                "the package was already sent to the destination hub and cannot be recalled; ask that hub to decline it".into(),
            ));
        }
        if step == Step::Claim {
            // The destination gets the same time to answer that the origin gave.
            let given = chrono::DateTime::parse_from_rfc3339(&transfer.deadline)
                .ok()
                .zip(chrono::DateTime::parse_from_rfc3339(&transfer.offered_at).ok())
                .map_or(chrono::Duration::days(14), |(d, o)| d - o);
            let deadline =
                (chrono::Utc::now() + given).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            c.record_claim(id, done, town, &deadline)?;
        } else {
            c.record_decision(
                id,
                done,
                &now,
                decided_by,
                decline_reason.map(DeclineReason::code),
            )?;
        }
        if step == Step::Decline {
            let held = records_per_child(&c.frozen_records(id)?);
            let reason = decline_reason.unwrap_or(DeclineReason::Other);
            exchange::write_outcome(c, &key, id, &now, &|child| ChildResult {
                decision: ChildDecision::Declined,
                reason: Some(reason),
                records_copied: 0,
                records_declined: held.get(child).copied().unwrap_or(0),
            })?;
        }
        let mut entry = audit.clone();
        entry.detail = Some(serde_json::json!({"transfer": id, "step": step.as_str()}).to_string());
        let children = c.children_of(id)?;
        audit_per_child(c, &entry, &transfer.municipality_code, &children)?;
        c.transfer(id)?.ok_or(StoreError::NotFound)
    })
}

/// One child's placement at the destination.
pub struct Placement<'a> {
    pub origin_resident_no: &'a str,
    pub destination_resident_no: &'a str,
}

/// What the destination answers when it accepts: where each child is placed, and the records
/// it does not need.
pub struct Acceptance<'a> {
    pub destination: &'a str,
    pub placements: &'a [Placement<'a>],
    pub declined_records: &'a [String],
    pub decided_by: &'a str,
}

/// Accept at the destination: copy the accepted frozen records (rewritten to the destination's
/// resident numbers) through the normal upsert path, record provenance, carry objections and
/// DV support measures, mark the origin's children moved out — all in one transaction.
/// Accepting again answers the same result.
pub fn accept(
    conn: &mut DbConn,
    id: i64,
    answer: &Acceptance,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let key = store_packages::hub_key(conn)?;
    in_transfer_transaction(conn, |c| accept_in(c, &key, id, answer, audit))
}

fn accept_in(
    c: &mut dyn TransferTx,
    key: &SigningKey,
    id: i64,
    answer: &Acceptance,
    audit: &AuditEntry,
) -> StoreResult<()> {
    let destination = answer.destination;
    let now = now_rfc3339();
    let transfer = c
        .transfer(id)?
        .filter(|t| t.destination_code.as_deref() == Some(destination))
        .ok_or(StoreError::NotFound)?;
    if transfer.status == TransferStatus::Accepted {
        return Ok(());
    }
    transfer
        .status
        .after(Step::Accept)
        .map_err(StoreError::Conflict)?;
    let origin = transfer.municipality_code.as_str();
    let children = c.children_of(id)?;
    let mapping = place_children(&children, answer.placements)?;
    let frozen = c.frozen_records(id)?;
    if let Some(unknown) = answer
        .declined_records
        .iter()
        .find(|d| !frozen.iter().any(|f| &f.source_record_id == *d))
    {
        return Err(StoreError::Unprocessable(format!(
            "record {unknown} is not part of this transfer"
        )));
    }
    // A record the origin retracted after the offer was an error there: it must not travel
    // on. (Between hubs the origin's retractions are not visible; none are found.)
    let withdrawn: Vec<String> = c
        .retracted_records(origin, &children)?
        .into_iter()
        .filter(|(source, id)| {
            frozen
                .iter()
                .any(|f| &f.source == source && &f.source_record_id == id)
        })
        .map(|(_, id)| id)
        .collect();
    // Children the destination already knows keep their own subject record (address,
    // household); only a DV support measure is carried over, never lost.
    let placed: Vec<String> = mapping.values().cloned().collect();
    let known_here = c.known_subjects(destination, &placed)?;
    let mut by_source: BTreeMap<String, Vec<PreparedRecord>> = BTreeMap::new();
    let mut copied_from = Vec::new();
    let mut carry_support_measure = Vec::new();
    for record in &frozen {
        if answer.declined_records.contains(&record.source_record_id)
            || withdrawn.contains(&record.source_record_id)
        {
            continue;
        }
        let Some(resident_no) = mapping.get(&record.origin_resident_no) else {
            continue;
        };
        let mut data: Value = serde_json::from_str(&record.data)
            .map_err(|e| StoreError::Invalid(format!("frozen record is not JSON: {e}")))?;
        if record.record_type == SUBJECT_TYPE {
            let flagged = data["support_measure"].as_bool().unwrap_or(false);
            if let Some((_, already)) = known_here.iter().find(|(r, _)| r == resident_no) {
                if flagged && !already {
                    carry_support_measure.push(resident_no.clone());
                }
                continue;
            }
            // Household and guardian numbers are the origin's own: meaningless here. The
            // transferred children of this household share one new household.
            data["household_no"] = serde_json::json!(format!("transfer-{id}"));
            if let Some(fields) = data.as_object_mut() {
                fields.remove("guardians");
            }
        }
        data["subject"] = serde_json::json!({"resident_no": resident_no});
        let target = transferred_source(origin, &record.source);
        let batch = by_source.entry(target.clone()).or_default();
        batch.push(PreparedRecord::from_record(batch.len(), &data));
        copied_from.push((target, record));
    }
    // Dispositions: everything accepted except the records the destination declined.
    c.set_dispositions(
        id,
        Disposition::Accept,
        &[
            (Disposition::Decline, answer.declined_records),
            (Disposition::Withdrawn, &withdrawn),
        ],
    )?;
    let provenance: Vec<Provenance> = copied_from
        .iter()
        .map(|(target, record)| Provenance {
            source: target,
            source_record_id: &record.source_record_id,
            origin_municipality: origin,
            origin_source: &record.source,
            transfer_id: id,
            transferred_at: &now,
        })
        .collect();
    c.record_provenance(destination, &provenance)?;
    for (source, batch) in &by_source {
        c.upsert_in_tx(destination, source, batch)?;
    }
    c.flag_support_measure(destination, &carry_support_measure)?;
    // A guardian's objection travels with the child and holds from acceptance on: the
    // origin's opt-outs when it is a town of this hub, the objections its package carried
    // when it is on another.
    let mut objections = c.opt_outs_of(origin, &children)?;
    objections.extend(c.carried_objections(id)?);
    for objection in objections {
        let Some(resident_no) = mapping.get(&objection.resident_no) else {
            continue;
        };
        let note = format!(
            "transfer {id} from {origin}: {}",
            objection.legal_note.unwrap_or_default()
        );
        let here = StandingObjection {
            resident_no: resident_no.clone(),
            objected_on: objection.objected_on,
            legal_note: Some(note.trim_end_matches(": ").to_string()),
        };
        c.record_opt_out(destination, &here, &now)?;
    }
    for (child, resident_no) in &mapping {
        c.place_child(id, child, resident_no)?;
    }
    c.mark_moved_out(origin, &children, destination)?;
    c.record_decision(id, TransferStatus::Accepted, &now, answer.decided_by, None)?;
    let copied = records_per_child(copied_from.iter().map(|(_, record)| *record));
    let declined = records_per_child(frozen.iter().filter(|f| {
        answer.declined_records.contains(&f.source_record_id)
            || withdrawn.contains(&f.source_record_id)
    }));
    exchange::write_outcome(c, key, id, &now, &|child| ChildResult {
        decision: ChildDecision::Accepted,
        reason: None,
        records_copied: copied.get(child).copied().unwrap_or(0),
        records_declined: declined.get(child).copied().unwrap_or(0),
    })?;
    let mut entry = audit.clone();
    entry.detail = Some(
        serde_json::json!({
            "transfer": id,
            "origin": origin,
            "copied": by_source.values().map(Vec::len).sum::<usize>(),
            "declined": frozen.iter().filter(|f| answer.declined_records.contains(&f.source_record_id)).count(),
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
    audit_per_child(c, &provided, origin, mapping.keys())?;
    Ok(())
}

/// How many of `records` each child (by origin resident number) has.
fn records_per_child<'a>(
    records: impl IntoIterator<Item = &'a FrozenRecord>,
) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.origin_resident_no.clone()).or_default() += 1;
    }
    counts
}

/// Each child's destination resident number. Inconsistent answers are refused rather than
/// guessed: every child placed once, at a distinct number, and no stranger placed.
fn place_children(
    children: &[String],
    placements: &[Placement],
) -> StoreResult<BTreeMap<String, String>> {
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
    for child in children {
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
    Ok(mapping)
}

fn facts(transfer: &Transfer, includes_support_measure: bool) -> TransferFacts<'_> {
    TransferFacts {
        origin: &transfer.municipality_code,
        destination: transfer.destination_code.as_deref(),
        held: transfer.status == TransferStatus::Held,
        includes_support_measure,
    }
}

/// The transfers of one box that `caller` may see. Arrivals are matched against the caller's
/// subjects only for held transfers the policy lets it match.
pub fn mailbox(
    conn: &mut DbConn,
    caller: &Principal,
    which: TransferBox,
) -> StoreResult<Vec<Transfer>> {
    let using = match which {
        TransferBox::Held => TransferUse::View,
        TransferBox::Arrivals => TransferUse::MatchArrivals,
        TransferBox::Inbox | TransferBox::Outbox | TransferBox::Escalated => TransferUse::List,
    };
    let mut shown = Vec::new();
    for transfer in store_transfers::list(conn, &caller.municipality, which)? {
        let dv = store_transfers::includes_support_measure(
            conn,
            transfer.id,
            Some(&transfer.municipality_code),
        )?;
        if !access::decide_transfer(caller, using, &facts(&transfer, dv)).is_allowed() {
            continue;
        }
        if which == TransferBox::Arrivals
            && !store_transfers::has_arrived(conn, transfer.id, &caller.municipality)?
        {
            continue;
        }
        shown.push(transfer);
    }
    Ok(shown)
}
