//! Municipalities, joint-use councils, API clients and idempotency keys.

use diesel::prelude::*;
use serde::Serialize;

use super::tables::{clients, councils, idempotency_keys, municipalities};
use super::{DbConn, StoreError, StoreResult, now_rfc3339};
use crate::audit::{AuditEntry, HUB_CHAIN};
use crate::auth::{Binding, Principal, Role, Scope, ScopeKind};
use crate::store::WriteTx;
use crate::{on_conn, write_tx};

#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Municipality {
    pub municipality_code: String,
    pub name: String,
    pub council: Option<String>,
    pub population: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct ClientRow {
    pub id: i64,
    pub scope: String,
    pub municipality_code: Option<String>,
    pub council_code: Option<String>,
    pub name: String,
    pub roles: String,
    pub record_types: Option<String>,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// SHA-256 (hex) of the TLS client certificate this client must present, if bound.
    pub cert_fingerprint: Option<String>,
}

impl ClientRow {
    /// What the client is registered under. The table's checks keep the columns consistent;
    /// were they not, the nation (which sees no child) is the safe reading.
    pub fn binding(&self) -> Binding {
        match (
            ScopeKind::parse(&self.scope),
            &self.municipality_code,
            &self.council_code,
        ) {
            (Some(ScopeKind::Municipality), Some(town), _) => Binding::Municipality(town.clone()),
            (Some(ScopeKind::Council), _, Some(council)) => Binding::Council(council.clone()),
            _ => Binding::Nation,
        }
    }
}

/// A joint-use council (共同利用) with its member towns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Council {
    pub code: String,
    pub name: String,
    /// How the council's operator is reached.
    pub operator_contact: Option<String>,
    #[schema(max_items = 1741)]
    pub towns: Vec<String>,
}

pub struct NewClient<'a> {
    pub binding: &'a Binding,
    pub name: &'a str,
    pub roles: &'a [String],
    pub record_types: Option<&'a [String]>,
    pub token_hash: &'a str,
    pub cert_fingerprint: Option<&'a str>,
}

fn unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The audit entry of an administrative action taken by `by` (an operator or a tool).
fn admin_entry(
    by: &str,
    municipality: &str,
    action: &str,
    detail: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        municipality_code: municipality.to_string(),
        client_name: Some(by.to_string()),
        roles: Some("admin".into()),
        action: action.to_string(),
        result: "ok".into(),
        detail: Some(detail.to_string()),
        ..AuditEntry::default()
    }
}

/// Register a town. A council named here that is not registered yet is registered with the
/// label as its code and name, as the label-only councils of earlier versions were migrated.
pub fn add_municipality(
    conn: &mut DbConn,
    code: &str,
    name: &str,
    council: Option<&str>,
    population: Option<i64>,
    by: &str,
) -> StoreResult<()> {
    let entry = admin_entry(
        by,
        code,
        "admin.municipality.add",
        serde_json::json!({"name": name, "council": council}),
    );
    let now = now_rfc3339();
    let row = (
        municipalities::municipality_code.eq(code),
        municipalities::name.eq(name),
        municipalities::council.eq(council),
        municipalities::population.eq(population),
        municipalities::created_at.eq(&now),
    );
    let result = write_tx!(conn, |c| {
        if let Some(council) = council {
            diesel::insert_into(councils::table)
                .values((
                    councils::code.eq(council),
                    councils::name.eq(council),
                    councils::created_at.eq(&now),
                ))
                .on_conflict_do_nothing()
                .execute(c)?;
        }
        diesel::insert_into(municipalities::table)
            .values(row)
            .execute(c)?;
        c.append_audit(&entry)
    });
    match result {
        Err(StoreError::Db(e)) if unique_violation(&e) => Err(StoreError::Conflict(format!(
            "municipality {code} is already registered"
        ))),
        other => other,
    }
}

pub fn list_municipalities(conn: &mut DbConn) -> StoreResult<Vec<Municipality>> {
    Ok(on_conn!(conn, |c| municipalities::table
        .order(municipalities::municipality_code)
        .load::<Municipality>(c))?)
}

pub fn municipality(conn: &mut DbConn, code: &str) -> StoreResult<Option<Municipality>> {
    Ok(on_conn!(conn, |c| municipalities::table
        .find(code)
        .first::<Municipality>(c)
        .optional())?)
}

pub fn add_council(
    conn: &mut DbConn,
    code: &str,
    name: &str,
    operator_contact: Option<&str>,
    by: &str,
) -> StoreResult<()> {
    let entry = admin_entry(
        by,
        HUB_CHAIN,
        "admin.council.add",
        serde_json::json!({"council": code, "name": name}),
    );
    let now = now_rfc3339();
    let row = (
        councils::code.eq(code),
        councils::name.eq(name),
        councils::operator_contact.eq(operator_contact),
        councils::created_at.eq(&now),
    );
    let result = write_tx!(conn, |c| {
        diesel::insert_into(councils::table)
            .values(row)
            .execute(c)?;
        c.append_audit(&entry)
    });
    match result {
        Err(StoreError::Db(e)) if unique_violation(&e) => Err(StoreError::Conflict(format!(
            "council {code} is already registered"
        ))),
        other => other,
    }
}

/// A change to a council's member towns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Join,
    Leave,
}

/// Add a town to a council or take it out. A town belongs to one council at most: joining
/// while it belongs to another is a conflict. Leaving a council the town is not in is
/// `NotFound`, as are an unknown council or town.
pub fn change_council_member(
    conn: &mut DbConn,
    council: &str,
    town: &str,
    change: Membership,
    by: &str,
) -> StoreResult<()> {
    let action = match change {
        Membership::Join => "admin.council.member.add",
        Membership::Leave => "admin.council.member.remove",
    };
    let entry = admin_entry(by, town, action, serde_json::json!({"council": council}));
    write_tx!(conn, |c| {
        let known = councils::table.find(council).count().get_result::<i64>(c)?;
        let current = municipalities::table
            .find(town)
            .select(municipalities::council)
            .first::<Option<String>>(c)
            .optional()?;
        let (Some(current), true) = (current, known > 0) else {
            return Err(StoreError::NotFound);
        };
        let new = match (change, current.as_deref()) {
            (Membership::Join, None) => Some(council),
            (Membership::Join, Some(same)) if same == council => return Ok(()),
            (Membership::Join, Some(other)) => {
                return Err(StoreError::Conflict(format!(
                    "{town} already belongs to council {other}"
                )));
            }
            (Membership::Leave, Some(same)) if same == council => None,
            (Membership::Leave, _) => return Err(StoreError::NotFound),
        };
        diesel::update(municipalities::table.find(town))
            .set(municipalities::council.eq(new))
            .execute(c)?;
        c.append_audit(&entry)
    })
}

fn councils_with_towns(conn: &mut DbConn, only: Option<&str>) -> StoreResult<Vec<Council>> {
    let (rows, members) = on_conn!(conn, |c| {
        let mut query = councils::table
            .select((councils::code, councils::name, councils::operator_contact))
            .order(councils::code)
            .into_boxed();
        if let Some(code) = only {
            query = query.filter(councils::code.eq(code));
        }
        let rows = query.load::<(String, String, Option<String>)>(c)?;
        let members = municipalities::table
            .filter(municipalities::council.is_not_null())
            .select((
                municipalities::council.assume_not_null(),
                municipalities::municipality_code,
            ))
            .order(municipalities::municipality_code)
            .load::<(String, String)>(c)?;
        Ok::<_, diesel::result::Error>((rows, members))
    })?;
    Ok(rows
        .into_iter()
        .map(|(code, name, operator_contact)| Council {
            towns: members
                .iter()
                .filter(|(council, _)| *council == code)
                .map(|(_, town)| town.clone())
                .collect(),
            code,
            name,
            operator_contact,
        })
        .collect())
}

pub fn list_councils(conn: &mut DbConn) -> StoreResult<Vec<Council>> {
    councils_with_towns(conn, None)
}

pub fn council(conn: &mut DbConn, code: &str) -> StoreResult<Option<Council>> {
    Ok(councils_with_towns(conn, Some(code))?.pop())
}

pub fn add_client(conn: &mut DbConn, client: &NewClient, by: &str) -> StoreResult<i64> {
    let binding = client.binding;
    let entry = admin_entry(
        by,
        &binding.audit_municipality(),
        "admin.client.add",
        serde_json::json!({"client": client.name, "scope": binding.label(), "roles": client.roles}),
    );
    let now = now_rfc3339();
    let (town, council) = match binding {
        Binding::Municipality(town) => (Some(town.as_str()), None),
        Binding::Council(council) => (None, Some(council.as_str())),
        Binding::Nation => (None, None),
    };
    let row = (
        clients::scope.eq(binding.kind().as_str()),
        clients::municipality_code.eq(town),
        clients::council_code.eq(council),
        clients::name.eq(client.name),
        clients::roles.eq(client.roles.join(",")),
        clients::record_types.eq(client.record_types.map(|t| t.join(","))),
        clients::token_hash.eq(client.token_hash),
        clients::created_at.eq(&now),
        clients::cert_fingerprint.eq(client.cert_fingerprint),
    );
    let result = write_tx!(conn, |c| {
        if let Some(town) = town {
            let peer_town = super::tables::peer_towns::table
                .find(town)
                .count()
                .get_result::<i64>(c)?;
            if peer_town > 0 {
                return Err(StoreError::Unprocessable(format!(
                    "{town} is a town of a peer hub; its clients belong to that hub"
                )));
            }
        }
        let id = diesel::insert_into(clients::table)
            .values(row)
            .returning(clients::id)
            .get_result::<i64>(c)?;
        c.append_audit(&entry)?;
        Ok::<_, StoreError>(id)
    });
    match result {
        Err(StoreError::Db(e)) if unique_violation(&e) => Err(StoreError::Conflict(format!(
            "a client named {:?} already exists in {}",
            client.name,
            binding.label()
        ))),
        other => other,
    }
}

/// The active client holding a token (by its hash), as a caller: its scope with a council's
/// current member towns, and only the roles its scope admits.
pub fn principal_by_token_hash(conn: &mut DbConn, hash: &str) -> StoreResult<Option<Principal>> {
    let row = on_conn!(conn, |c| clients::table
        .filter(clients::token_hash.eq(hash))
        .filter(clients::revoked_at.is_null())
        .first::<ClientRow>(c)
        .optional())?;
    row.map(|row| principal(conn, row)).transpose()
}

fn principal(conn: &mut DbConn, row: ClientRow) -> StoreResult<Principal> {
    let binding = row.binding();
    let scope = match &binding {
        Binding::Municipality(town) => Scope::Municipality(town.clone()),
        Binding::Council(code) => Scope::Council {
            code: code.clone(),
            towns: council(conn, code)?.map(|c| c.towns).unwrap_or_default(),
        },
        Binding::Nation => Scope::Nation,
    };
    let kind = binding.kind();
    Ok(Principal {
        client_id: row.id,
        roles: row
            .roles
            .split(',')
            .filter_map(Role::parse)
            .filter(|role| kind.admits(*role))
            .collect(),
        record_types: row
            .record_types
            .map(|t| t.split(',').map(str::to_string).collect()),
        name: row.name,
        municipality: binding.audit_municipality(),
        scope,
        cert_fingerprint: row.cert_fingerprint,
    })
}

/// The active client of `municipality` named `name`, as a caller.
pub fn active_client(
    conn: &mut DbConn,
    municipality: &str,
    name: &str,
) -> StoreResult<Option<Principal>> {
    let row = on_conn!(conn, |c| clients::table
        .filter(clients::municipality_code.eq(municipality))
        .filter(clients::name.eq(name))
        .filter(clients::revoked_at.is_null())
        .first::<ClientRow>(c)
        .optional())?;
    row.map(|row| principal(conn, row)).transpose()
}

pub fn list_clients(conn: &mut DbConn) -> StoreResult<Vec<ClientRow>> {
    Ok(on_conn!(conn, |c| clients::table
        .order(clients::id)
        .load::<ClientRow>(c))?)
}

/// The clients of a council: its own and those of its member towns.
pub fn council_clients(conn: &mut DbConn, council: &Council) -> StoreResult<Vec<ClientRow>> {
    Ok(on_conn!(conn, |c| clients::table
        .filter(
            clients::council_code
                .eq(&council.code)
                .or(clients::municipality_code.eq_any(&council.towns))
        )
        .order(clients::id)
        .load::<ClientRow>(c))?)
}

/// The active clients registered under `binding` named `name`.
macro_rules! active_client {
    ($binding:expr, $name:expr) => {{
        let query = clients::table
            .filter(clients::scope.eq($binding.kind().as_str()))
            .filter(clients::name.eq($name))
            .filter(clients::revoked_at.is_null())
            .into_boxed();
        match $binding {
            Binding::Municipality(town) => query.filter(clients::municipality_code.eq(town)),
            Binding::Council(code) => query.filter(clients::council_code.eq(code)),
            Binding::Nation => query,
        }
    }};
}

/// What an administrator changes on an active client.
enum ClientChange<'a> {
    Revoke,
    NewToken(&'a str),
}

/// Apply a change to an active client with its audit entry; false if there is no such client.
fn change_active_client(
    conn: &mut DbConn,
    binding: &Binding,
    name: &str,
    change: ClientChange,
    by: &str,
) -> StoreResult<bool> {
    let action = match change {
        ClientChange::Revoke => "admin.client.revoke",
        ClientChange::NewToken(_) => "admin.token.rotate",
    };
    let entry = admin_entry(
        by,
        &binding.audit_municipality(),
        action,
        serde_json::json!({"client": name, "scope": binding.label()}),
    );
    let now = now_rfc3339();
    write_tx!(conn, |c| {
        let ids = active_client!(binding, name)
            .select(clients::id)
            .load::<i64>(c)?;
        let targets = clients::table.filter(clients::id.eq_any(&ids));
        let changed = match change {
            ClientChange::Revoke => diesel::update(targets)
                .set(clients::revoked_at.eq(&now))
                .execute(c)?,
            ClientChange::NewToken(hash) => diesel::update(targets)
                .set(clients::token_hash.eq(hash))
                .execute(c)?,
        };
        if changed > 0 {
            c.append_audit(&entry)?;
        }
        Ok(changed > 0)
    })
}

/// Revoke a client: its token stops working at once. Returns false if no such active client.
pub fn revoke_client(
    conn: &mut DbConn,
    binding: &Binding,
    name: &str,
    by: &str,
) -> StoreResult<bool> {
    change_active_client(conn, binding, name, ClientChange::Revoke, by)
}

/// Replace a client's token; the old one stops working at once. Returns false if no such
/// active client.
pub fn rotate_token(
    conn: &mut DbConn,
    binding: &Binding,
    name: &str,
    new_hash: &str,
    by: &str,
) -> StoreResult<bool> {
    change_active_client(conn, binding, name, ClientChange::NewToken(new_hash), by)
}

/// A stored answer to an earlier request with the same idempotency key. Status 0 marks a
/// request that is still running.
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: u16,
    pub response: String,
}

impl StoredAnswer {
    pub fn in_progress(&self) -> bool {
        self.status == 0
    }
}

pub enum Reservation {
    /// This request holds the key under a lease named `owner`: run it, renewing the lease
    /// (`renew_key`) while it runs, then `complete_key` or `release_key`.
    Reserved { owner: String },
    /// The key was used before (or is in use right now).
    Existing(StoredAnswer),
}

/// When a lease taken now for `lease` runs out (RFC 3339 with fixed width, so the text
/// compares like the time).
fn lease_end(lease: std::time::Duration) -> String {
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    (chrono::Utc::now() + lease).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Claim an idempotency key before running the request, so overlapping retries cannot both
/// run: the database's primary key decides who was first. A key whose request is still
/// unanswered but whose lease ran out (the process running it died) is taken over.
pub fn reserve_key(
    conn: &mut DbConn,
    municipality_code: &str,
    client_id: i64,
    key: &str,
    request_hash: &str,
    lease: std::time::Duration,
) -> StoreResult<Reservation> {
    let now = now_rfc3339();
    let owner = hex::encode(crate::keys::random_key());
    let until = lease_end(lease);
    let row = (
        idempotency_keys::municipality_code.eq(municipality_code),
        idempotency_keys::client_id.eq(client_id),
        idempotency_keys::idempotency_key.eq(key),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::status.eq(0),
        idempotency_keys::response.eq(""),
        idempotency_keys::created_at.eq(&now),
        idempotency_keys::lease_owner.eq(&owner),
        idempotency_keys::lease_until.eq(&until),
    );
    let taken = write_tx!(conn, |c| {
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?;
        if inserted == 1 {
            return Ok::<_, diesel::result::Error>(true);
        }
        let expired = idempotency_keys::lease_until
            .is_null()
            .or(idempotency_keys::lease_until.lt(&now));
        let taken_over = diesel::update(
            idempotency_keys::table
                .find((municipality_code, client_id, key))
                .filter(idempotency_keys::status.eq(0))
                .filter(expired),
        )
        .set((
            idempotency_keys::request_hash.eq(request_hash),
            idempotency_keys::lease_owner.eq(&owner),
            idempotency_keys::lease_until.eq(&until),
        ))
        .execute(c)?;
        Ok(taken_over == 1)
    })?;
    if taken {
        return Ok(Reservation::Reserved { owner });
    }
    let (request_hash, status, response) = on_conn!(conn, |c| idempotency_keys::table
        .find((municipality_code, client_id, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::status,
            idempotency_keys::response
        ))
        .first::<(String, i32, String)>(c))?;
    Ok(Reservation::Existing(StoredAnswer {
        request_hash,
        status: status as u16,
        response,
    }))
}

/// The reservation of `key` held by `owner` and not yet answered.
macro_rules! held_by {
    ($municipality_code:expr, $client_id:expr, $key:expr, $owner:expr) => {
        idempotency_keys::table
            .find(($municipality_code, $client_id, $key))
            .filter(idempotency_keys::status.eq(0))
            .filter(idempotency_keys::lease_owner.eq($owner))
    };
}

/// Extend a running request's lease; false if the request no longer holds the key (its
/// lease ran out and a retry took the key over).
pub fn renew_key(
    conn: &mut DbConn,
    municipality_code: &str,
    client_id: i64,
    key: &str,
    owner: &str,
    lease: std::time::Duration,
) -> StoreResult<bool> {
    let until = lease_end(lease);
    let renewed = write_tx!(conn, |c| diesel::update(held_by!(
        municipality_code,
        client_id,
        key,
        owner
    ))
    .set(idempotency_keys::lease_until.eq(&until))
    .execute(c))?;
    Ok(renewed == 1)
}

/// Store the first answer for a key this request still holds (a request that lost its lease
/// leaves the answer to the retry that took the key over).
pub fn complete_key(
    conn: &mut DbConn,
    municipality_code: &str,
    client_id: i64,
    key: &str,
    owner: &str,
    answer: &StoredAnswer,
) -> StoreResult<()> {
    write_tx!(conn, |c| diesel::update(held_by!(
        municipality_code,
        client_id,
        key,
        owner
    ))
    .set((
        idempotency_keys::request_hash.eq(&answer.request_hash),
        idempotency_keys::status.eq(answer.status as i32),
        idempotency_keys::response.eq(&answer.response),
        idempotency_keys::lease_owner.eq(None::<String>),
        idempotency_keys::lease_until.eq(None::<String>),
    ))
    .execute(c))?;
    Ok(())
}

/// Give a reserved key back when the request failed without an answer worth replaying, so a
/// retry can run.
pub fn release_key(
    conn: &mut DbConn,
    municipality_code: &str,
    client_id: i64,
    key: &str,
    owner: &str,
) -> StoreResult<()> {
    write_tx!(conn, |c| diesel::delete(held_by!(
        municipality_code,
        client_id,
        key,
        owner
    ))
    .execute(c))?;
    Ok(())
}
