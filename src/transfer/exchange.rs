//! Transfers between hubs (転出入 across joint-use clouds): exporting an offered transfer as a
//! signed package, importing a peer's package into the destination's inbox, and importing the
//! destination hub's signed receipt. The protocol rules (who signs, who may speak for which
//! town, replays, digests and counts) are decided here; each step runs in one write
//! transaction (`store::in_transfer_transaction`) where the store only answers and records.

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::package::{
    self, Child, ChildDecision, ChildOutcome, DetachedSignature, Header, Objection, Outcome,
    Package, PackageError, PackageRecord, Receipt,
};
use super::workflow::audit_per_child;
use super::{DeclineReason, Step, TransferStatus};
use crate::audit::AuditEntry;
use crate::schema::{SUBJECT_TYPE, Standard};
use crate::store::packages::{
    self as store_packages, Direction, KnownPackage, SignedPackage, StoredPackage,
};
use crate::store::transfers::{FrozenRecord, StandingObjection, Transfer, TransferRow};
use crate::store::{
    DbConn, StoreError, StoreResult, TransferTx, in_transfer_transaction, now_rfc3339,
};

/// A package step refused: either the package itself (with code and pointer) or the store.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("{0}")]
    Package(PackageError),
    /// The package was imported before; nothing was imported again. Carries the original
    /// receipt.
    #[error("package {} was already imported", .0.package_id)]
    AlreadyImported(Box<Imported>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PackageError> for ExchangeError {
    fn from(e: PackageError) -> Self {
        ExchangeError::Package(e)
    }
}

impl From<diesel::result::Error> for ExchangeError {
    fn from(e: diesel::result::Error) -> Self {
        ExchangeError::Store(e.into())
    }
}

type Result<T> = std::result::Result<T, ExchangeError>;

fn refuse(code: &'static str, pointer: &str, message: impl Into<String>) -> ExchangeError {
    ExchangeError::Package(PackageError::new(code, pointer, message))
}

/// Export an offered transfer to a town of a peer hub as a signed package. The package is
/// made once and stored; exporting again returns the same bytes.
pub fn export(
    conn: &mut DbConn,
    transfer_id: i64,
    origin: &str,
    audit: &AuditEntry,
) -> Result<SignedPackage> {
    let key = store_packages::hub_key(conn)?;
    let created = Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    in_transfer_transaction(conn, |c| {
        let transfer = c
            .transfer(transfer_id)?
            .filter(|t| t.municipality_code == origin)
            .ok_or(StoreError::NotFound)?;
        if let Some(existing) = c.outbound_package(transfer_id)? {
            return Ok(existing);
        }
        let destination = transfer.destination_code.clone().ok_or_else(|| {
            StoreError::Unprocessable("a held transfer has no destination to send to".into())
        })?;
        let peer = c.peer_serving(&destination)?.ok_or_else(|| {
            StoreError::Unprocessable(format!(
                "{destination} is a town of this hub: its officers accept the transfer in their inbox"
            ))
        })?;
        if transfer.status != TransferStatus::Offered {
            return Err(StoreError::Conflict(format!(
                "a transfer that is {} cannot be sent",
                transfer.status
            ))
            .into());
        }
        let children = c.children_of(transfer_id)?;
        let mut records = Vec::new();
        for frozen in c.frozen_records(transfer_id)? {
            let data: Value = serde_json::from_str(&frozen.data)
                .map_err(|e| StoreError::Invalid(format!("frozen record is not JSON: {e}")))?;
            records.push(PackageRecord {
                origin_resident_no: frozen.origin_resident_no,
                source: frozen.source,
                source_record_id: frozen.source_record_id,
                record_type: frozen.record_type,
                data,
            });
        }
        // Objections standing now travel with the package: the destination cannot see this
        // hub's opt-outs.
        let mut objections: std::collections::HashMap<String, Objection> = c
            .opt_outs_of(origin, &children)?
            .into_iter()
            .map(|o| {
                (
                    o.resident_no,
                    Objection {
                        objected_on: o.objected_on,
                        legal_note: o.legal_note,
                    },
                )
            })
            .collect();
        let package_children = children
            .iter()
            .map(|origin_resident_no| Child {
                support_measure: records.iter().any(|r| {
                    &r.origin_resident_no == origin_resident_no
                        && r.record_type == SUBJECT_TYPE
                        && r.data["support_measure"] == Value::Bool(true)
                }),
                objection: objections.remove(origin_resident_no),
                origin_resident_no: origin_resident_no.clone(),
            })
            .collect();
        let mut package = Package {
            header: Header {
                schema_version: "1".into(),
                package_id: package::random_id(),
                conversation_id: package::random_id(),
                origin: origin.to_string(),
                destination,
                created: created.clone(),
                legal_basis: transfer.legal_basis.clone(),
                reason: transfer.reason_code.clone(),
            },
            manifest: Vec::new(),
            children: Some(package_children),
            records: Some(records),
        };
        package.manifest = package::manifest_of(&package);
        let xml = String::from_utf8(package::to_xml(&package)).expect("the writer emits UTF-8");
        let signature = package::sign_package(&key, &package).to_string();
        c.store_package(&StoredPackage {
            package_id: &package.header.package_id,
            municipality: origin,
            direction: Direction::Outbound,
            transfer_id,
            peer: &peer,
            package_sha256: &hex::encode(Sha256::digest(xml.as_bytes())),
            xml: &xml,
            signature: &signature,
            receipt: None,
            created_at: &now_rfc3339(),
        })?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": transfer_id, "package": package.header.package_id, "peer": peer, "destination": transfer.destination_code})
                .to_string(),
        );
        entry.legal_basis = Some(transfer.legal_basis.clone());
        audit_per_child(c, &entry, origin, &children)?;
        Ok(SignedPackage {
            package_id: package.header.package_id,
            xml,
            signature,
        })
    })
}

/// The result of importing a package: the inbound transfer and the signed receipt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Imported {
    pub package_id: String,
    /// The transfer in the destination's inbox.
    pub transfer_id: i64,
    /// The receipt's canonical XML.
    pub receipt: String,
    /// Its detached signature (`ed25519;key=…;sig=…`).
    pub receipt_signature: String,
    /// The receipt's JSON form: the same fields, covered by the same signature (send it to the
    /// origin as `application/json` with that signature).
    pub receipt_fields: Receipt,
}

/// Who imports a package, and who it escalates to if nobody answers.
pub struct Importer<'a> {
    pub municipality: &'a str,
    pub escalate_to: &'a str,
    pub deadline_days: i64,
}

/// The trusted peer hub whose key made `signature`, if that key may verify a message created
/// at `created` (the field `pointer` names).
fn trusted_peer(
    conn: &mut DbConn,
    signature: &DetachedSignature,
    created: &str,
    pointer: &str,
) -> Result<String> {
    let Some(key) = store_packages::peer_key(conn, &signature.public_key)? else {
        return Err(refuse(
            "signer_unknown",
            "/signature",
            "signed by a hub that is not in this hub's trust store (admin peer add)",
        ));
    };
    key.verifies(created, pointer, Utc::now())?;
    Ok(key.peer)
}

/// What a package id seen before means for a package imported again: the same bytes answer
/// the original receipt; anything else reusing the id is refused.
fn replayed(known: KnownPackage, package_id: &str, package_sha256: &str) -> ExchangeError {
    match (
        known.direction == Direction::Inbound && known.package_sha256 == package_sha256,
        known.receipt,
    ) {
        (true, Some((receipt, receipt_signature))) => {
            match package::parse_receipt(receipt.as_bytes()) {
                Ok(receipt_fields) => ExchangeError::AlreadyImported(Box::new(Imported {
                    package_id: package_id.to_string(),
                    transfer_id: known.transfer_id,
                    receipt,
                    receipt_signature,
                    receipt_fields,
                })),
                Err(e) => ExchangeError::Store(StoreError::Invalid(format!(
                    "the stored receipt of {package_id} does not read back: {e}"
                ))),
            }
        }
        _ => refuse(
            "package_id_reused",
            "/package_id",
            "another package with this id was seen before; nothing was imported",
        ),
    }
}

/// Verify a package from a peer hub (signature by a trusted peer that serves the origin town,
/// digests, counts, schema) and import it into the destination's inbox as an offered transfer,
/// exactly once per package id. Answers the signed receipt.
pub fn import(
    conn: &mut DbConn,
    standard: &Standard,
    bytes: &[u8],
    signature: &str,
    importer: &Importer,
    audit: &AuditEntry,
) -> Result<Imported> {
    let (package, xml) = package::parse_canonical(bytes)?;
    let signature = DetachedSignature::parse(signature)?;
    let peer = trusted_peer(conn, &signature, &package.header.created, "/created")?;
    package::verify_package_signature(&package, &signature)?;
    package::check_contents(&package, standard)?;
    let xml = String::from_utf8(xml.into_owned()).expect("checked to be UTF-8 or rendered");
    let package_sha256 = hex::encode(Sha256::digest(xml.as_bytes()));
    let key = store_packages::hub_key(conn)?;
    let header = &package.header;
    let now = now_rfc3339();
    let deadline = (Utc::now() + chrono::Duration::days(importer.deadline_days))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    in_transfer_transaction(conn, |c| {
        if c.peer_serving(&header.origin)?.as_deref() != Some(peer.as_str()) {
            return Err(refuse(
                "origin_not_served_by_signer",
                "/origin",
                format!(
                    "the signing hub {peer} does not speak for town {}",
                    header.origin
                ),
            ));
        }
        if header.destination != importer.municipality {
            return Err(refuse(
                "destination_mismatch",
                "/destination",
                format!(
                    "the package is addressed to {}, not to {}",
                    header.destination, importer.municipality
                ),
            ));
        }
        if let Some(known) = c.package(&header.package_id)? {
            return Err(replayed(known, &header.package_id, &package_sha256));
        }
        let offered_at = chrono::DateTime::parse_from_rfc3339(&header.created)
            .map(|t| {
                t.with_timezone(&Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
            .unwrap_or_else(|_| now.clone());
        let offered_by = format!("hub:{peer}");
        let transfer_id = c.insert_transfer(&TransferRow {
            origin: &header.origin,
            destination: Some(&header.destination),
            status: TransferStatus::Offered,
            legal_basis: &header.legal_basis,
            reason_code: &header.reason,
            note: None,
            offered_by: &offered_by,
            offered_at: &offered_at,
            deadline: &deadline,
            escalate_to: importer.escalate_to,
        })?;
        let children = package.children.as_deref().unwrap_or_default();
        let records = package.records.as_deref().unwrap_or_default();
        let child_rows: Vec<_> = children
            .iter()
            .map(|child| {
                let objection = child.objection.as_ref().map(|o| StandingObjection {
                    resident_no: child.origin_resident_no.clone(),
                    objected_on: o.objected_on.clone(),
                    legal_note: o.legal_note.clone(),
                });
                (child.origin_resident_no.clone(), objection)
            })
            .collect();
        c.insert_children(transfer_id, &header.origin, &child_rows)?;
        let frozen: Vec<FrozenRecord> = records
            .iter()
            .enumerate()
            .map(|(i, r)| FrozenRecord {
                record_id: i as i64 + 1,
                origin_resident_no: r.origin_resident_no.clone(),
                source: r.source.clone(),
                source_record_id: r.source_record_id.clone(),
                record_type: r.record_type.clone(),
                data: r.data.to_string(),
            })
            .collect();
        c.insert_frozen_records(transfer_id, &header.origin, &frozen)?;
        let receipt = Receipt {
            package_id: header.package_id.clone(),
            conversation_id: header.conversation_id.clone(),
            origin: header.origin.clone(),
            destination: header.destination.clone(),
            package_sha256: package_sha256.clone(),
            received: now.clone(),
            children: children.len() as u64,
            records: records.len() as u64,
        };
        let receipt_xml =
            String::from_utf8(package::receipt_to_xml(&receipt)).expect("the writer emits UTF-8");
        let receipt_signature = DetachedSignature::sign(&key, receipt_xml.as_bytes()).to_string();
        c.store_package(&StoredPackage {
            package_id: &header.package_id,
            municipality: &header.destination,
            direction: Direction::Inbound,
            transfer_id,
            peer: &peer,
            package_sha256: &package_sha256,
            xml: &xml,
            signature: &signature.to_string(),
            receipt: Some((&receipt_xml, &receipt_signature)),
            created_at: &now,
        })?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({
                "transfer": transfer_id, "package": header.package_id, "peer": peer,
                "children": children.len(), "records": records.len(),
            })
            .to_string(),
        );
        c.append_audit(&entry)?;
        Ok(Imported {
            package_id: header.package_id.clone(),
            transfer_id,
            receipt: receipt_xml,
            receipt_signature,
            receipt_fields: receipt,
        })
    })
}

/// The package `origin` sent that a receipt or outcome (`what`) answers: it must exist, be
/// answered by the hub it was sent to, and name the bytes that were sent.
fn answered_package(
    c: &mut dyn TransferTx,
    what: &str,
    origin: &str,
    signer: &str,
    package_id: &str,
    package_sha256: &str,
) -> Result<KnownPackage> {
    let sent = c
        .package(package_id)?
        .filter(|p| p.direction == Direction::Outbound && p.municipality == origin)
        .ok_or_else(|| {
            refuse(
                "package_unknown",
                "/package_id",
                format!("{origin} sent no package with this id"),
            )
        })?;
    if signer != sent.peer {
        return Err(refuse(
            "signer_unknown",
            "/signature",
            format!(
                "the {what} is not signed by {}, the hub the package was sent to",
                sent.peer
            ),
        ));
    }
    if package_sha256 != sent.package_sha256 {
        return Err(refuse(
            "package_digest_mismatch",
            "/package_sha256",
            format!("the {what} names other bytes than the package sent"),
        ));
    }
    Ok(sent)
}

/// Import the destination hub's signed receipt for a package this hub sent: the transfer is
/// delivered (closed here) and its children are marked moved out. Importing it again is
/// harmless.
pub fn import_receipt(
    conn: &mut DbConn,
    bytes: &[u8],
    signature: &str,
    origin: &str,
    audit: &AuditEntry,
) -> Result<Transfer> {
    let (receipt, xml) = package::parse_receipt_canonical(bytes)?;
    let signature = DetachedSignature::parse(signature)?;
    signature.verify(&xml)?;
    let signer = trusted_peer(conn, &signature, &receipt.received, "/received")?;
    in_transfer_transaction(conn, |c| {
        let sent = answered_package(
            c,
            "receipt",
            origin,
            &signer,
            &receipt.package_id,
            &receipt.package_sha256,
        )?;
        let transfer_id = sent.transfer_id;
        let transfer = c.transfer(transfer_id)?.ok_or(StoreError::NotFound)?;
        let counts = c.transfer_size(transfer_id)?;
        if counts != (receipt.children, receipt.records) {
            return Err(refuse(
                "count_mismatch",
                "/records",
                format!(
                    "the receipt counts {} children and {} records; the package held {} and {}",
                    receipt.children, receipt.records, counts.0, counts.1
                ),
            ));
        }
        let receipt_xml = std::str::from_utf8(&xml).unwrap_or_default();
        if transfer.status == TransferStatus::Delivered {
            // Delivered already (by this receipt before, or by the outcome that proved it):
            // keep the receipt, change nothing else.
            c.store_receipt(&receipt.package_id, receipt_xml, &signature.to_string())?;
            return Ok(transfer);
        }
        let destination = transfer.destination_code.clone().unwrap_or_default();
        let children = c.children_of(transfer_id)?;
        deliver(
            c,
            &transfer,
            origin,
            &sent.peer,
            &receipt.received,
            &children,
        )?;
        c.store_receipt(&receipt.package_id, receipt_xml, &signature.to_string())?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": transfer_id, "package": receipt.package_id, "peer": sent.peer, "destination": destination})
                .to_string(),
        );
        audit_per_child(c, &entry, origin, &children)?;
        Ok(c.transfer(transfer_id)?.ok_or(StoreError::NotFound)?)
    })
}

/// What the destination did with one child of an imported package.
pub struct ChildResult {
    pub decision: ChildDecision,
    pub reason: Option<DeclineReason>,
    pub records_copied: u64,
    pub records_declined: u64,
}

/// When the destination town decides on a transfer that came in a package, sign the outcome
/// message for the origin hub and keep it with the package (inside the decision's transaction,
/// so a decision never exists without its outcome). `result_of` answers for each child by
/// origin resident number; the message names children only by their position in the package.
/// A transfer made in this hub has no package and no outcome.
pub fn write_outcome(
    c: &mut dyn TransferTx,
    key: &ed25519_dalek::SigningKey,
    transfer_id: i64,
    decided: &str,
    result_of: &dyn Fn(&str) -> ChildResult,
) -> StoreResult<()> {
    let Some(received) = c.package_of(transfer_id, Direction::Inbound)? else {
        return Ok(());
    };
    let package = package::parse(received.xml.as_bytes()).map_err(|e| {
        StoreError::Invalid(format!(
            "the stored package {} does not read back: {e}",
            received.package_id
        ))
    })?;
    let children = package.children.as_deref().unwrap_or_default();
    let outcome = Outcome {
        package_id: package.header.package_id.clone(),
        conversation_id: package.header.conversation_id.clone(),
        origin: package.header.origin.clone(),
        destination: package.header.destination.clone(),
        package_sha256: received.package_sha256,
        decided: decided.to_string(),
        children: children
            .iter()
            .enumerate()
            .map(|(position, child)| {
                let result = result_of(&child.origin_resident_no);
                ChildOutcome {
                    position: position as u64,
                    decision: result.decision,
                    reason: result.reason,
                    records_copied: result.records_copied,
                    records_declined: result.records_declined,
                }
            })
            .collect(),
    };
    let xml = String::from_utf8(package::outcome_to_xml(&outcome)).expect("the writer emits UTF-8");
    let signature = DetachedSignature::sign(key, xml.as_bytes()).to_string();
    c.store_outcome(&received.package_id, &xml, &signature)
}

/// The signed outcome message of a transfer (this hub's own for an imported package, or the
/// one the destination hub sent for a package this hub sent), if its town decided.
pub fn outcome(conn: &mut DbConn, transfer_id: i64) -> Result<Option<SignedOutcome>> {
    let Some((xml, signature)) = store_packages::outcome_of(conn, transfer_id)? else {
        return Ok(None);
    };
    let fields = package::parse_outcome(xml.as_bytes())?;
    Ok(Some(SignedOutcome {
        xml,
        signature,
        fields,
    }))
}

/// An outcome message as it travels: canonical XML, its detached signature, and its fields.
#[derive(Debug, Clone)]
pub struct SignedOutcome {
    /// The outcome's canonical XML.
    pub xml: String,
    /// Its detached signature (`ed25519;key=…;sig=…`).
    pub signature: String,
    /// The outcome's JSON form: the same fields, covered by the same signature.
    pub fields: Outcome,
}

/// Import the destination hub's signed outcome for a package this hub sent: the transfer shows
/// the destination's decision; children the destination declined are no longer marked moved
/// out (the origin keeps following them). An outcome also proves delivery, so it closes a
/// transfer whose receipt has not been imported yet. The same outcome again changes nothing;
/// a different outcome for the same package is refused.
pub fn import_outcome(
    conn: &mut DbConn,
    bytes: &[u8],
    signature: &str,
    origin: &str,
    audit: &AuditEntry,
) -> Result<Transfer> {
    let (outcome, xml) = package::parse_outcome_canonical(bytes)?;
    let signature = DetachedSignature::parse(signature)?;
    signature.verify(&xml)?;
    let signer = trusted_peer(conn, &signature, &outcome.decided, "/decided")?;
    let xml = String::from_utf8(xml.into_owned()).expect("checked to be UTF-8 or rendered");
    in_transfer_transaction(conn, |c| {
        let sent = answered_package(
            c,
            "outcome",
            origin,
            &signer,
            &outcome.package_id,
            &outcome.package_sha256,
        )?;
        let transfer_id = sent.transfer_id;
        let exchanged = c
            .package_of(transfer_id, Direction::Outbound)?
            .ok_or(StoreError::NotFound)?;
        if let Some((known, _)) = &exchanged.outcome {
            return if *known == xml {
                Ok(c.transfer(transfer_id)?.ok_or(StoreError::NotFound)?)
            } else {
                Err(refuse(
                    "outcome_conflict",
                    "/package_id",
                    "another outcome for this package was imported before; a decision is final",
                ))
            };
        }
        let package = package::parse(exchanged.xml.as_bytes()).map_err(|e| {
            StoreError::Invalid(format!("the sent package does not read back: {e}"))
        })?;
        let children = package.children.as_deref().unwrap_or_default();
        let records = package.records.as_deref().unwrap_or_default();
        if outcome.children.len() != children.len() {
            return Err(refuse(
                "count_mismatch",
                "/children",
                format!(
                    "the outcome names {} children; the package held {}",
                    outcome.children.len(),
                    children.len()
                ),
            ));
        }
        for (at, (decided, child)) in outcome.children.iter().zip(children).enumerate() {
            let held = records
                .iter()
                .filter(|r| r.origin_resident_no == child.origin_resident_no)
                .count() as u64;
            if decided.records_copied + decided.records_declined > held {
                return Err(refuse(
                    "count_mismatch",
                    &format!("/children/{at}/records_copied"),
                    format!("the package held {held} records of this child"),
                ));
            }
        }
        let transfer = c.transfer(transfer_id)?.ok_or(StoreError::NotFound)?;
        let destination = transfer.destination_code.clone().unwrap_or_default();
        let all_children = c.children_of(transfer_id)?;
        if transfer.status != TransferStatus::Delivered {
            deliver(
                c,
                &transfer,
                origin,
                &sent.peer,
                &outcome.decided,
                &all_children,
            )?;
        }
        let declined: Vec<String> = outcome
            .children
            .iter()
            .zip(children)
            .filter(|(decided, _)| decided.decision == ChildDecision::Declined)
            .map(|(_, child)| child.origin_resident_no.clone())
            .collect();
        c.clear_moved_out(origin, &declined, &destination)?;
        c.store_outcome(&outcome.package_id, &xml, &signature.to_string())?;
        for (decided, child) in outcome.children.iter().zip(children) {
            let mut entry = audit.clone();
            entry.detail = Some(
                serde_json::json!({
                    "transfer": transfer_id, "package": outcome.package_id, "peer": sent.peer,
                    "decision": decided.decision.as_str(), "reason": decided.reason.map(DeclineReason::code),
                    "records_copied": decided.records_copied, "records_declined": decided.records_declined,
                })
                .to_string(),
            );
            audit_per_child(c, &entry, origin, [&child.origin_resident_no])?;
        }
        Ok(c.transfer(transfer_id)?.ok_or(StoreError::NotFound)?)
    })
}

/// The package reached the destination hub: the transfer is delivered and its children are
/// marked moved out there.
fn deliver(
    c: &mut dyn TransferTx,
    transfer: &Transfer,
    origin: &str,
    peer: &str,
    at: &str,
    children: &[String],
) -> Result<()> {
    let delivered = transfer
        .status
        .after(Step::Deliver)
        .map_err(StoreError::Conflict)?;
    let destination = transfer.destination_code.clone().unwrap_or_default();
    c.mark_moved_out(origin, children, &destination)?;
    c.record_decision(transfer.id, delivered, at, &format!("hub:{peer}"), None)?;
    Ok(())
}
