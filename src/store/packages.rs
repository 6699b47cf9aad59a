//! Transfers between hubs in the database: this hub's signing key, the trust store of peer
//! hubs, and the signed packages and receipts `transfer::exchange` records (`PackageWrites`).
//! A package id is stored once (it is the primary key).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

use super::tables::{
    hub_key_history, hub_peers, hub_signing_key, municipalities, peer_keys, peer_towns,
    transfer_children, transfer_packages, transfer_records,
};
use super::{DbConn, StoreError, StoreResult, WriteTx, now_rfc3339};
use crate::audit::AuditEntry;
use crate::transfer::trust::PeerKey;
use crate::{on_conn, write_tx};

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

/// The trust store's entry for the peer key `public_key`: whose it is and when it may verify.
pub fn peer_key(conn: &mut DbConn, public_key: &str) -> StoreResult<Option<PeerKey>> {
    let found = on_conn!(conn, |c| peer_keys::table
        .inner_join(hub_peers::table)
        .filter(peer_keys::public_key.eq(public_key))
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
    Ok(found.map(
        |(peer, valid_from, valid_until, verify_until, removed)| PeerKey {
            peer,
            valid_from: read_time(valid_from),
            valid_until: read_time(valid_until),
            verify_until: read_time(verify_until),
            peer_removed: read_time(removed),
        },
    ))
}

/// A package as it travels: canonical XML and its detached signature.
#[derive(Debug, Clone)]
pub struct SignedPackage {
    pub package_id: String,
    pub xml: String,
    pub signature: String,
}

/// Which way a stored package went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// A package as this hub keeps it (sent or received), with the receipt once there is one.
pub struct StoredPackage<'a> {
    pub package_id: &'a str,
    pub municipality: &'a str,
    pub direction: Direction,
    pub transfer_id: i64,
    pub peer: &'a str,
    pub package_sha256: &'a str,
    pub xml: &'a str,
    pub signature: &'a str,
    pub receipt: Option<(&'a str, &'a str)>,
    pub created_at: &'a str,
}

/// A package id seen before.
pub struct KnownPackage {
    pub direction: Direction,
    pub municipality: String,
    pub transfer_id: i64,
    pub peer: String,
    pub package_sha256: String,
    /// The receipt's XML and signature.
    pub receipt: Option<(String, String)>,
}

/// The package a transfer travelled in, with the outcome message once there is one.
pub struct ExchangedPackage {
    pub package_id: String,
    pub peer: String,
    pub package_sha256: String,
    pub xml: String,
    /// The outcome's canonical XML and signature.
    pub outcome: Option<(String, String)>,
}

/// The facts of packages that `transfer::exchange` reads and records inside its write
/// transaction.
pub trait PackageWrites {
    /// The package already made of this transfer for another hub.
    fn outbound_package(&mut self, transfer_id: i64) -> StoreResult<Option<SignedPackage>>;
    /// The peer hub that serves `town`, if another hub does.
    fn peer_serving(&mut self, town: &str) -> StoreResult<Option<String>>;
    fn package(&mut self, package_id: &str) -> StoreResult<Option<KnownPackage>>;
    fn store_package(&mut self, package: &StoredPackage) -> StoreResult<()>;
    fn store_receipt(&mut self, package_id: &str, xml: &str, signature: &str) -> StoreResult<()>;
    /// The package `transfer_id` was sent (outbound) or received (inbound) in.
    fn package_of(
        &mut self,
        transfer_id: i64,
        direction: Direction,
    ) -> StoreResult<Option<ExchangedPackage>>;
    fn store_outcome(&mut self, package_id: &str, xml: &str, signature: &str) -> StoreResult<()>;
    /// How many children and records a transfer holds.
    fn transfer_size(&mut self, transfer_id: i64) -> StoreResult<(u64, u64)>;
}

fn direction(text: &str) -> StoreResult<Direction> {
    match text {
        "outbound" => Ok(Direction::Outbound),
        "inbound" => Ok(Direction::Inbound),
        other => Err(StoreError::Invalid(format!(
            "unknown package direction {other:?}"
        ))),
    }
}

macro_rules! impl_package_writes {
    ($conn:ty) => {
        impl PackageWrites for $conn {
            fn outbound_package(&mut self, transfer_id: i64) -> StoreResult<Option<SignedPackage>> {
                Ok(transfer_packages::table
                    .filter(transfer_packages::transfer_id.eq(transfer_id))
                    .filter(transfer_packages::direction.eq(Direction::Outbound.as_str()))
                    .select((
                        transfer_packages::package_id,
                        transfer_packages::package_xml,
                        transfer_packages::signature,
                    ))
                    .first::<(String, String, String)>(self)
                    .optional()?
                    .map(|(package_id, xml, signature)| SignedPackage {
                        package_id,
                        xml,
                        signature,
                    }))
            }

            fn peer_serving(&mut self, town: &str) -> StoreResult<Option<String>> {
                Ok(peer_towns::table
                    .find(town)
                    .select(peer_towns::peer)
                    .first::<String>(self)
                    .optional()?)
            }

            fn package(&mut self, package_id: &str) -> StoreResult<Option<KnownPackage>> {
                let found = transfer_packages::table
                    .find(package_id)
                    .select((
                        transfer_packages::direction,
                        transfer_packages::municipality_code,
                        transfer_packages::transfer_id,
                        transfer_packages::peer,
                        transfer_packages::package_sha256,
                        transfer_packages::receipt_xml,
                        transfer_packages::receipt_signature,
                    ))
                    .first::<(
                        String,
                        String,
                        i64,
                        String,
                        String,
                        Option<String>,
                        Option<String>,
                    )>(self)
                    .optional()?;
                found
                    .map(
                        |(
                            dir,
                            municipality,
                            transfer_id,
                            peer,
                            package_sha256,
                            receipt,
                            signature,
                        )| {
                            Ok(KnownPackage {
                                direction: direction(&dir)?,
                                municipality,
                                transfer_id,
                                peer,
                                package_sha256,
                                receipt: receipt.zip(signature),
                            })
                        },
                    )
                    .transpose()
            }

            fn store_package(&mut self, p: &StoredPackage) -> StoreResult<()> {
                diesel::insert_into(transfer_packages::table)
                    .values((
                        transfer_packages::package_id.eq(p.package_id),
                        transfer_packages::municipality_code.eq(p.municipality),
                        transfer_packages::direction.eq(p.direction.as_str()),
                        transfer_packages::transfer_id.eq(p.transfer_id),
                        transfer_packages::peer.eq(p.peer),
                        transfer_packages::package_sha256.eq(p.package_sha256),
                        transfer_packages::package_xml.eq(p.xml),
                        transfer_packages::signature.eq(p.signature),
                        transfer_packages::receipt_xml.eq(p.receipt.map(|r| r.0)),
                        transfer_packages::receipt_signature.eq(p.receipt.map(|r| r.1)),
                        transfer_packages::created_at.eq(p.created_at),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn store_receipt(
                &mut self,
                package_id: &str,
                xml: &str,
                signature: &str,
            ) -> StoreResult<()> {
                diesel::update(transfer_packages::table.find(package_id))
                    .set((
                        transfer_packages::receipt_xml.eq(xml),
                        transfer_packages::receipt_signature.eq(signature),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn package_of(
                &mut self,
                transfer_id: i64,
                direction: Direction,
            ) -> StoreResult<Option<ExchangedPackage>> {
                Ok(transfer_packages::table
                    .filter(transfer_packages::transfer_id.eq(transfer_id))
                    .filter(transfer_packages::direction.eq(direction.as_str()))
                    .select((
                        transfer_packages::package_id,
                        transfer_packages::peer,
                        transfer_packages::package_sha256,
                        transfer_packages::package_xml,
                        transfer_packages::outcome_xml,
                        transfer_packages::outcome_signature,
                    ))
                    .first::<(
                        String,
                        String,
                        String,
                        String,
                        Option<String>,
                        Option<String>,
                    )>(self)
                    .optional()?
                    .map(
                        |(package_id, peer, package_sha256, xml, outcome, signature)| {
                            ExchangedPackage {
                                package_id,
                                peer,
                                package_sha256,
                                xml,
                                outcome: outcome.zip(signature),
                            }
                        },
                    ))
            }

            fn store_outcome(
                &mut self,
                package_id: &str,
                xml: &str,
                signature: &str,
            ) -> StoreResult<()> {
                diesel::update(transfer_packages::table.find(package_id))
                    .set((
                        transfer_packages::outcome_xml.eq(xml),
                        transfer_packages::outcome_signature.eq(signature),
                    ))
                    .execute(self)?;
                Ok(())
            }

            fn transfer_size(&mut self, transfer_id: i64) -> StoreResult<(u64, u64)> {
                let children = transfer_children::table
                    .filter(transfer_children::transfer_id.eq(transfer_id))
                    .count()
                    .get_result::<i64>(self)?;
                let records = transfer_records::table
                    .filter(transfer_records::transfer_id.eq(transfer_id))
                    .count()
                    .get_result::<i64>(self)?;
                Ok((children as u64, records as u64))
            }
        }
    };
}

impl_package_writes!(diesel::SqliteConnection);
impl_package_writes!(diesel::PgConnection);

/// The outcome message (canonical XML and signature) of the package `transfer_id` travelled
/// in, either way.
pub fn outcome_of(conn: &mut DbConn, transfer_id: i64) -> StoreResult<Option<(String, String)>> {
    let found = on_conn!(conn, |c| transfer_packages::table
        .filter(transfer_packages::transfer_id.eq(transfer_id))
        .filter(transfer_packages::outcome_xml.is_not_null())
        .select((
            transfer_packages::outcome_xml,
            transfer_packages::outcome_signature,
        ))
        .first::<(Option<String>, Option<String>)>(c)
        .optional())?;
    Ok(found.and_then(|(xml, signature)| xml.zip(signature)))
}
