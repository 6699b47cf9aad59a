//! Transfers between hubs in the database: this hub's signing key, the trust store of peer
//! hubs, and signed packages and receipts. A package is imported exactly once (its id is the
//! primary key); each step is one transaction with its audit entry.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::WriteTx;
use super::tables::{
    hub_key_history, hub_peers, hub_signing_key, municipalities, opt_outs, peer_keys, peer_towns,
    subjects, transfer_children, transfer_packages, transfer_records, transfers,
};
use super::transfers::Transfer;
use super::transfers::audit_per_child;
use super::{DbConn, StoreError, now_rfc3339};
use crate::audit::AuditEntry;
use crate::schema::{SUBJECT_TYPE, Standard};
use crate::transfer::package::{
    self, Child, DetachedSignature, Header, Objection, Package, PackageError, PackageRecord,
    Receipt,
};
use crate::transfer::trust::PeerKey;
use crate::transfer::{Step, TransferStatus};
use crate::{on_conn, write_tx};

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

/// This hub's signing key (kept in its key file; see `keys`).
pub fn hub_key(conn: &DbConn) -> std::result::Result<SigningKey, StoreError> {
    Ok(conn.keys()?.signing.clone())
}

#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub name: String,
    /// The key it signs with now.
    pub public_key: String,
    pub towns: Vec<String>,
    /// When it was removed from the trust store.
    pub removed_at: Option<String>,
}

/// Add a key to a peer's history (a key is in the trust store once, for one peer).
macro_rules! insert_peer_key {
    ($c:expr, $peer:expr, $key:expr, $valid_from:expr, $now:expr) => {
        diesel::insert_into(peer_keys::table)
            .values((
                peer_keys::public_key.eq($key),
                peer_keys::peer.eq($peer),
                peer_keys::valid_from.eq($valid_from),
                peer_keys::added_at.eq($now),
            ))
            .execute($c)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => StoreError::Conflict("this key is already in the trust store".into()),
                e => e.into(),
            })
    };
}

/// Trust a peer hub's public key for the towns it serves (registered as municipalities here so
/// transfers can name them).
pub fn add_peer(
    conn: &mut DbConn,
    name: &str,
    public_key: &str,
    towns: &[(String, String)],
    by: &str,
) -> std::result::Result<(), StoreError> {
    let key = ed25519_key(public_key)?;
    if towns.is_empty() {
        return Err(StoreError::Invalid(
            "name at least one town the peer hub serves".into(),
        ));
    }
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let own = hub_signing_key::table
            .select(hub_signing_key::public_key)
            .first::<String>(c)
            .optional()?;
        if own.as_deref() == Some(key.as_str()) {
            return Err(StoreError::Invalid("that is this hub's own key".into()));
        }
        diesel::insert_into(hub_peers::table)
            .values((
                hub_peers::name.eq(name),
                hub_peers::public_key.eq(&key),
                hub_peers::added_at.eq(&now),
            ))
            .execute(c)
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => StoreError::Conflict("a peer with this name or key is already trusted".into()),
                e => e.into(),
            })?;
        insert_peer_key!(c, name, &key, None::<&str>, &now)?;
        for (code, town) in towns {
            let known = municipalities::table
                .find(code)
                .count()
                .get_result::<i64>(c)?;
            if known > 0 {
                return Err(StoreError::Conflict(format!(
                    "{code} is already a town of this hub or of another peer"
                )));
            }
            diesel::insert_into(municipalities::table)
                .values((
                    municipalities::municipality_code.eq(code),
                    municipalities::name.eq(town),
                    municipalities::created_at.eq(&now),
                ))
                .execute(c)?;
            diesel::insert_into(peer_towns::table)
                .values((
                    peer_towns::municipality_code.eq(code),
                    peer_towns::peer.eq(name),
                ))
                .execute(c)?;
        }
        c.append_audit(&AuditEntry {
            municipality_code: towns[0].0.clone(),
            client_name: Some("admin-cli".into()),
            actor: Some(by.to_string()),
            action: "admin.peer.add".into(),
            result: "ok".into(),
            detail: Some(
                serde_json::json!({"peer": name, "towns": towns.iter().map(|t| &t.0).collect::<Vec<_>>()})
                    .to_string(),
            ),
            ..Default::default()
        })?;
        Ok(())
    })
}

pub fn list_peers(conn: &mut DbConn) -> std::result::Result<Vec<Peer>, StoreError> {
    let (peers, towns) = on_conn!(conn, |c| {
        let peers = hub_peers::table
            .order(hub_peers::name)
            .select((
                hub_peers::name,
                hub_peers::public_key,
                hub_peers::removed_at,
            ))
            .load::<(String, String, Option<String>)>(c)?;
        let towns = peer_towns::table
            .order(peer_towns::municipality_code)
            .select((peer_towns::peer, peer_towns::municipality_code))
            .load::<(String, String)>(c)?;
        diesel::QueryResult::Ok((peers, towns))
    })?;
    Ok(peers
        .into_iter()
        .map(|(name, public_key, removed_at)| Peer {
            towns: towns
                .iter()
                .filter(|(p, _)| *p == name)
                .map(|(_, t)| t.clone())
                .collect(),
            name,
            public_key,
            removed_at,
        })
        .collect())
}

/// One key of a peer hub as the trust store keeps it (times RFC 3339, UTC).
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct PeerKeyRecord {
    pub public_key: String,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub verify_until: Option<String>,
    pub added_at: String,
}

/// Every key a peer hub signs or signed with, oldest first.
pub fn peer_key_history(
    conn: &mut DbConn,
    name: &str,
) -> std::result::Result<Vec<PeerKeyRecord>, StoreError> {
    let keys = on_conn!(conn, |c| peer_keys::table
        .filter(peer_keys::peer.eq(name))
        .order(peer_keys::added_at)
        .select((
            peer_keys::public_key,
            peer_keys::valid_from,
            peer_keys::valid_until,
            peer_keys::verify_until,
            peer_keys::added_at,
        ))
        .load::<PeerKeyRecord>(c))?;
    if keys.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(keys)
}

/// A moment as the trust store keeps it.
fn stored_time(moment: DateTime<Utc>) -> String {
    moment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn read_time(text: Option<String>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The key, as 64 lowercase hex digits, if it is an Ed25519 public key.
fn ed25519_key(public_key: &str) -> std::result::Result<String, StoreError> {
    let key = public_key.trim().to_ascii_lowercase();
    let valid = hex::decode(&key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok());
    if !valid {
        return Err(StoreError::Invalid(
            "the public key must be an Ed25519 key as 64 hex digits (kodomo-hub admin peer key prints a hub's)".into(),
        ));
    }
    Ok(key)
}

fn admin_audit(action: &str, by: &str, detail: Value) -> AuditEntry {
    AuditEntry {
        municipality_code: String::new(),
        client_name: Some("admin-cli".into()),
        actor: Some(by.to_string()),
        action: action.into(),
        result: "ok".into(),
        detail: Some(detail.to_string()),
        ..Default::default()
    }
}

/// Accept a peer hub's new key: it signs messages created from `valid_from`; the key it
/// replaces keeps verifying messages created before then, until `valid_from + overlap`.
pub fn update_peer_key(
    conn: &mut DbConn,
    name: &str,
    public_key: &str,
    valid_from: DateTime<Utc>,
    overlap: chrono::Duration,
    by: &str,
) -> std::result::Result<(), StoreError> {
    let key = ed25519_key(public_key)?;
    let (now, from, until) = (
        now_rfc3339(),
        stored_time(valid_from),
        stored_time(valid_from + overlap),
    );
    write_tx!(conn, |c| {
        let (previous, removed) = hub_peers::table
            .find(name)
            .select((hub_peers::public_key, hub_peers::removed_at))
            .first::<(String, Option<String>)>(c)
            .optional()?
            .ok_or(StoreError::NotFound)?;
        if removed.is_some() {
            return Err(StoreError::Conflict(format!(
                "peer {name} was removed; add it again under a new name"
            )));
        }
        let own = hub_signing_key::table
            .select(hub_signing_key::public_key)
            .first::<String>(c)
            .optional()?;
        if own.as_deref() == Some(key.as_str()) {
            return Err(StoreError::Invalid("that is this hub's own key".into()));
        }
        diesel::update(peer_keys::table.find(&previous))
            .set((
                peer_keys::valid_until.eq(&from),
                peer_keys::verify_until.eq(&until),
            ))
            .execute(c)?;
        insert_peer_key!(c, name, &key, Some(&from), &now)?;
        diesel::update(hub_peers::table.find(name))
            .set(hub_peers::public_key.eq(&key))
            .execute(c)?;
        c.append_audit(&admin_audit(
            "admin.peer.update",
            by,
            serde_json::json!({"peer": name, "public_key": key, "previous_key": previous,
                "valid_from": from, "previous_verifies_until": until}),
        ))?;
        Ok(())
    })
}

/// Remove a peer hub from the trust store: nothing signed by any of its keys is accepted from
/// now on (the record of what was exchanged with it stays).
pub fn remove_peer(conn: &mut DbConn, name: &str, by: &str) -> std::result::Result<(), StoreError> {
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let removed = diesel::update(
            hub_peers::table
                .find(name)
                .filter(hub_peers::removed_at.is_null()),
        )
        .set(hub_peers::removed_at.eq(&now))
        .execute(c)?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        c.append_audit(&admin_audit(
            "admin.peer.remove",
            by,
            serde_json::json!({"peer": name}),
        ))?;
        Ok(())
    })
}

/// This hub's key rotation, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub previous_key: String,
    pub public_key: String,
    /// The new key signs from then on.
    pub valid_from: String,
    /// Peers accept the previous key, for messages created before `valid_from`, until then.
    pub previous_verifies_until: String,
}

/// Record that this hub signs with `new_key` from now on: the current key goes into the
/// history with the overlap its peers are asked to grant. The caller puts the new key in
/// the key file (see `keys::replace_key`).
pub fn rotate_hub_key(
    conn: &mut DbConn,
    new_key: &str,
    overlap: chrono::Duration,
    by: &str,
) -> std::result::Result<Rotation, StoreError> {
    let now = Utc::now();
    let (valid_from, until) = (stored_time(now), stored_time(now + overlap));
    write_tx!(conn, |c| {
        let previous = hub_signing_key::table
            .select(hub_signing_key::public_key)
            .first::<String>(c)?;
        diesel::insert_into(hub_key_history::table)
            .values((
                hub_key_history::public_key.eq(&previous),
                hub_key_history::retired_at.eq(&valid_from),
                hub_key_history::verify_until.eq(&until),
            ))
            .execute(c)?;
        diesel::update(hub_signing_key::table)
            .set((
                hub_signing_key::public_key.eq(new_key),
                hub_signing_key::created_at.eq(&valid_from),
            ))
            .execute(c)?;
        let rotation = Rotation {
            previous_key: previous,
            public_key: new_key.to_string(),
            valid_from: valid_from.clone(),
            previous_verifies_until: until.clone(),
        };
        c.append_audit(&admin_audit(
            "admin.peer.key_rotate",
            by,
            serde_json::to_value(&rotation).unwrap_or_default(),
        ))?;
        Ok(rotation)
    })
}

/// Every public key this hub signed with: the current one first, then the rotated-out ones.
pub fn own_public_keys(conn: &mut DbConn) -> std::result::Result<Vec<String>, StoreError> {
    let (current, retired) = on_conn!(conn, |c| {
        let current = hub_signing_key::table
            .select(hub_signing_key::public_key)
            .load::<String>(c)?;
        let retired = hub_key_history::table
            .order(hub_key_history::retired_at.desc())
            .select(hub_key_history::public_key)
            .load::<String>(c)?;
        diesel::QueryResult::Ok((current, retired))
    })?;
    Ok(current.into_iter().chain(retired).collect())
}

/// A package as it travels: canonical XML and its detached signature.
#[derive(Debug, Clone)]
pub struct SignedPackage {
    pub package_id: String,
    pub xml: String,
    pub signature: String,
}

/// Export an offered transfer to a town of a peer hub as a signed package. The package is
/// made once and stored; exporting again returns the same bytes.
pub fn export(
    conn: &mut DbConn,
    transfer_id: i64,
    origin: &str,
    audit: &AuditEntry,
) -> Result<SignedPackage> {
    let key = hub_key(conn)?;
    let created = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    write_tx!(conn, |c| {
        let transfer = transfers::table
            .find(transfer_id)
            .first::<Transfer>(c)
            .optional()?
            .filter(|t| t.municipality_code == origin)
            .ok_or(StoreError::NotFound)?;
        let existing = transfer_packages::table
            .filter(transfer_packages::transfer_id.eq(transfer_id))
            .filter(transfer_packages::direction.eq("outbound"))
            .select((
                transfer_packages::package_id,
                transfer_packages::package_xml,
                transfer_packages::signature,
            ))
            .first::<(String, String, String)>(c)
            .optional()?;
        if let Some((package_id, xml, signature)) = existing {
            return Ok(SignedPackage {
                package_id,
                xml,
                signature,
            });
        }
        let destination = transfer.destination_code.clone().ok_or_else(|| {
            StoreError::Unprocessable("a held transfer has no destination to send to".into())
        })?;
        let peer = peer_towns::table
            .find(&destination)
            .select(peer_towns::peer)
            .first::<String>(c)
            .optional()?
            .ok_or_else(|| {
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
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(transfer_id))
            .order(transfer_children::origin_resident_no)
            .select(transfer_children::origin_resident_no)
            .load::<String>(c)?;
        let frozen = transfer_records::table
            .filter(transfer_records::transfer_id.eq(transfer_id))
            .order(transfer_records::record_id)
            .select((
                transfer_records::origin_resident_no,
                transfer_records::source,
                transfer_records::source_record_id,
                transfer_records::record_type,
                transfer_records::data,
            ))
            .load::<(String, String, String, String, String)>(c)?;
        let mut records = Vec::with_capacity(frozen.len());
        for (origin_resident_no, source, source_record_id, record_type, data) in frozen {
            let data: Value = serde_json::from_str(&data)
                .map_err(|e| StoreError::Invalid(format!("frozen record is not JSON: {e}")))?;
            records.push(PackageRecord {
                origin_resident_no,
                source,
                source_record_id,
                record_type,
                data,
            });
        }
        // Objections standing now travel with the package: the destination cannot see this
        // hub's opt-outs.
        let mut objections: std::collections::HashMap<String, Objection> = opt_outs::table
            .filter(opt_outs::municipality_code.eq(origin))
            .filter(opt_outs::resident_no.eq_any(&children))
            .select((
                opt_outs::resident_no,
                opt_outs::objected_on,
                opt_outs::legal_note,
            ))
            .load::<(String, String, Option<String>)>(c)?
            .into_iter()
            .map(|(child, objected_on, legal_note)| {
                (
                    child,
                    Objection {
                        objected_on,
                        legal_note,
                    },
                )
            })
            .collect();
        let children = children
            .into_iter()
            .map(|origin_resident_no| Child {
                support_measure: records.iter().any(|r| {
                    r.origin_resident_no == origin_resident_no
                        && r.record_type == SUBJECT_TYPE
                        && r.data["support_measure"] == Value::Bool(true)
                }),
                objection: objections.remove(&origin_resident_no),
                origin_resident_no,
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
            children: Some(children),
            records: Some(records),
        };
        package.manifest = package::manifest_of(&package);
        let xml = String::from_utf8(package::to_xml(&package)).expect("the writer emits UTF-8");
        let signature = package::sign_package(&key, &package).to_string();
        diesel::insert_into(transfer_packages::table)
            .values((
                transfer_packages::package_id.eq(&package.header.package_id),
                transfer_packages::municipality_code.eq(origin),
                transfer_packages::direction.eq("outbound"),
                transfer_packages::transfer_id.eq(transfer_id),
                transfer_packages::peer.eq(&peer),
                transfer_packages::package_sha256.eq(hex::encode(Sha256::digest(xml.as_bytes()))),
                transfer_packages::package_xml.eq(&xml),
                transfer_packages::signature.eq(&signature),
                transfer_packages::created_at.eq(now_rfc3339()),
            ))
            .execute(c)?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": transfer_id, "package": package.header.package_id, "peer": peer, "destination": transfer.destination_code})
                .to_string(),
        );
        entry.legal_basis = Some(transfer.legal_basis.clone());
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(transfer_id))
            .select(transfer_children::origin_resident_no)
            .load::<String>(c)?;
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
}

/// Who imports a package, and who it escalates to if nobody answers.
pub struct Importer<'a> {
    pub municipality: &'a str,
    pub escalate_to: &'a str,
    pub deadline_days: i64,
}

fn refuse(code: &'static str, pointer: &str, message: impl Into<String>) -> ExchangeError {
    ExchangeError::Package(PackageError::new(code, pointer, message))
}

/// The trusted peer hub whose key made `signature`, if that key may verify a message created
/// at `created` (the field `pointer` names).
fn trusted_peer(
    conn: &mut DbConn,
    signature: &DetachedSignature,
    created: &str,
    pointer: &str,
) -> Result<String> {
    let found = on_conn!(conn, |c| peer_keys::table
        .inner_join(hub_peers::table)
        .filter(peer_keys::public_key.eq(&signature.public_key))
        .select((
            peer_keys::peer,
            peer_keys::valid_from,
            peer_keys::valid_until,
            peer_keys::verify_until,
            hub_peers::removed_at,
        ))
        .first::<(
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>
        )>(c)
        .optional())?;
    let Some((peer, valid_from, valid_until, verify_until, removed)) = found else {
        return Err(refuse(
            "signer_unknown",
            "/signature",
            "signed by a hub that is not in this hub's trust store (admin peer add)",
        ));
    };
    let key = PeerKey {
        peer,
        valid_from: read_time(valid_from),
        valid_until: read_time(valid_until),
        verify_until: read_time(verify_until),
        peer_removed: read_time(removed),
    };
    key.verifies(created, pointer, Utc::now())?;
    Ok(key.peer)
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
    let key = hub_key(conn)?;
    let header = &package.header;
    let now = now_rfc3339();
    let deadline = (chrono::Utc::now() + chrono::Duration::days(importer.deadline_days))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    write_tx!(conn, |c| {
        let origin_peer = peer_towns::table
            .find(&header.origin)
            .select(peer_towns::peer)
            .first::<String>(c)
            .optional()?;
        if origin_peer.as_deref() != Some(peer.as_str()) {
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
        let earlier = transfer_packages::table
            .find(&header.package_id)
            .select((
                transfer_packages::direction,
                transfer_packages::transfer_id,
                transfer_packages::package_sha256,
                transfer_packages::receipt_xml,
                transfer_packages::receipt_signature,
            ))
            .first::<(String, i64, String, Option<String>, Option<String>)>(c)
            .optional()?;
        if let Some((direction, transfer_id, sha, receipt, receipt_signature)) = earlier {
            return Err(
                match (
                    direction == "inbound" && sha == package_sha256,
                    receipt,
                    receipt_signature,
                ) {
                    (true, Some(receipt), Some(receipt_signature)) => {
                        ExchangeError::AlreadyImported(Box::new(Imported {
                            package_id: header.package_id.clone(),
                            transfer_id,
                            receipt,
                            receipt_signature,
                        }))
                    }
                    _ => refuse(
                        "package_id_reused",
                        "/package_id",
                        "another package with this id was seen before; nothing was imported",
                    ),
                },
            );
        }
        let offered_at = chrono::DateTime::parse_from_rfc3339(&header.created)
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            })
            .unwrap_or_else(|_| now.clone());
        let transfer_id = diesel::insert_into(transfers::table)
            .values((
                transfers::municipality_code.eq(&header.origin),
                transfers::destination_code.eq(&header.destination),
                transfers::status.eq(TransferStatus::Offered.as_str()),
                transfers::legal_basis.eq(&header.legal_basis),
                transfers::reason_code.eq(&header.reason),
                transfers::offered_by.eq(format!("hub:{peer}")),
                transfers::offered_at.eq(&offered_at),
                transfers::deadline.eq(&deadline),
                transfers::escalate_to.eq(importer.escalate_to),
            ))
            .returning(transfers::id)
            .get_result::<i64>(c)?;
        let children = package.children.as_deref().unwrap_or_default();
        let records = package.records.as_deref().unwrap_or_default();
        for child in children {
            diesel::insert_into(transfer_children::table)
                .values((
                    transfer_children::transfer_id.eq(transfer_id),
                    transfer_children::municipality_code.eq(&header.origin),
                    transfer_children::origin_resident_no.eq(&child.origin_resident_no),
                    transfer_children::objected_on
                        .eq(child.objection.as_ref().map(|o| &o.objected_on)),
                    transfer_children::objection_note
                        .eq(child.objection.as_ref().and_then(|o| o.legal_note.as_ref())),
                ))
                .execute(c)?;
        }
        let rows: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let data = r.data.to_string();
                (
                    transfer_records::transfer_id.eq(transfer_id),
                    transfer_records::municipality_code.eq(&header.origin),
                    transfer_records::record_id.eq(i as i64 + 1),
                    transfer_records::origin_resident_no.eq(&r.origin_resident_no),
                    transfer_records::source.eq(&r.source),
                    transfer_records::source_record_id.eq(&r.source_record_id),
                    transfer_records::record_type.eq(&r.record_type),
                    transfer_records::content_hash.eq(hex::encode(Sha256::digest(data.as_bytes()))),
                    transfer_records::data.eq(data),
                )
            })
            .collect();
        for chunk in rows.chunks(1000) {
            diesel::insert_into(transfer_records::table)
                .values(chunk)
                .execute(c)?;
        }
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
        diesel::insert_into(transfer_packages::table)
            .values((
                transfer_packages::package_id.eq(&header.package_id),
                transfer_packages::municipality_code.eq(&header.destination),
                transfer_packages::direction.eq("inbound"),
                transfer_packages::transfer_id.eq(transfer_id),
                transfer_packages::peer.eq(&peer),
                transfer_packages::package_sha256.eq(&package_sha256),
                transfer_packages::package_xml.eq(&xml),
                transfer_packages::signature.eq(signature.to_string()),
                transfer_packages::receipt_xml.eq(&receipt_xml),
                transfer_packages::receipt_signature.eq(&receipt_signature),
                transfer_packages::created_at.eq(&now),
            ))
            .execute(c)?;
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
        })
    })
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
    let receipt = package::parse_receipt(bytes)?;
    let signature = DetachedSignature::parse(signature)?;
    signature.verify(bytes)?;
    let signer = trusted_peer(conn, &signature, &receipt.received, "/received")?;
    write_tx!(conn, |c| {
        let (transfer_id, peer, sha) = transfer_packages::table
            .find(&receipt.package_id)
            .filter(transfer_packages::direction.eq("outbound"))
            .filter(transfer_packages::municipality_code.eq(origin))
            .select((
                transfer_packages::transfer_id,
                transfer_packages::peer,
                transfer_packages::package_sha256,
            ))
            .first::<(i64, String, String)>(c)
            .optional()?
            .ok_or_else(|| {
                refuse(
                    "package_unknown",
                    "/package_id",
                    format!("{origin} sent no package with this id"),
                )
            })?;
        if signer != peer {
            return Err(refuse(
                "signer_unknown",
                "/signature",
                format!("the receipt is not signed by {peer}, the hub the package was sent to"),
            ));
        }
        if receipt.package_sha256 != sha {
            return Err(refuse(
                "package_digest_mismatch",
                "/package_sha256",
                "the receipt acknowledges other bytes than the package sent",
            ));
        }
        let transfer = transfers::table.find(transfer_id).first::<Transfer>(c)?;
        let counts = (
            transfer_children::table
                .filter(transfer_children::transfer_id.eq(transfer_id))
                .count()
                .get_result::<i64>(c)? as u64,
            transfer_records::table
                .filter(transfer_records::transfer_id.eq(transfer_id))
                .count()
                .get_result::<i64>(c)? as u64,
        );
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
        if transfer.status == TransferStatus::Delivered {
            return Ok(transfer);
        }
        transfer
            .status
            .after(Step::Deliver)
            .map_err(StoreError::Conflict)?;
        let destination = transfer.destination_code.clone().unwrap_or_default();
        let children = transfer_children::table
            .filter(transfer_children::transfer_id.eq(transfer_id))
            .select(transfer_children::origin_resident_no)
            .load::<String>(c)?;
        diesel::update(
            subjects::table
                .filter(subjects::municipality_code.eq(origin))
                .filter(subjects::resident_no.eq_any(&children)),
        )
        .set(subjects::moved_out_to.eq(&destination))
        .execute(c)?;
        diesel::update(transfers::table.find(transfer_id))
            .set((
                transfers::status.eq(TransferStatus::Delivered.as_str()),
                transfers::decided_at.eq(&receipt.received),
                transfers::decided_by.eq(format!("hub:{peer}")),
            ))
            .execute(c)?;
        diesel::update(transfer_packages::table.find(&receipt.package_id))
            .set((
                transfer_packages::receipt_xml.eq(std::str::from_utf8(bytes).unwrap_or_default()),
                transfer_packages::receipt_signature.eq(signature.to_string()),
            ))
            .execute(c)?;
        let mut entry = audit.clone();
        entry.detail = Some(
            serde_json::json!({"transfer": transfer_id, "package": receipt.package_id, "peer": peer, "destination": destination})
                .to_string(),
        );
        audit_per_child(c, &entry, origin, &children)?;
        Ok(transfers::table.find(transfer_id).first::<Transfer>(c)?)
    })
}
