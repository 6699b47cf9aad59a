//! The audit trail: every read and write of personal data, every admin action and every failed
//! authentication appends an entry. Entries are hash-chained (each commits to the previous
//! entry's hash), so `verify` finds any changed or removed entry. Entries are appended in the
//! same transaction as the action they record.

use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::on_conn;
use crate::store::tables::audit_log;
use crate::store::{DbConn, StoreResult};

/// The hash the first entry commits to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, who did it, to whom and why. Never holds personal data beyond the resident
/// number of the subject concerned.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub municipality_code: String,
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    /// The staff member in the calling system (`X-Actor`).
    pub actor: Option<String>,
    pub roles: Option<String>,
    /// Resident number of the child concerned, if one.
    pub subject: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub result: String,
    /// Counts and ids (no personal data).
    pub detail: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub municipality_code: String,
    pub at: String,
    pub client_id: Option<i64>,
    pub client_name: Option<String>,
    pub actor: Option<String>,
    pub roles: Option<String>,
    pub subject: Option<String>,
    pub action: String,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub result: String,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash and every field, in a fixed order.
pub fn entry_hash(prev_hash: &str, at: &str, e: &AuditEntry) -> String {
    let fields = serde_json::json!([
        prev_hash,
        at,
        e.municipality_code,
        e.client_id,
        e.client_name,
        e.actor,
        e.roles,
        e.subject,
        e.action,
        e.purpose,
        e.legal_basis,
        e.result,
        e.detail,
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Append `$entry` on connection `$c` (inside the caller's write transaction, which holds the
/// write lock, so the chain cannot fork).
#[macro_export]
macro_rules! audit_append_body {
    ($c:expr, $entry:expr) => {{
        use $crate::store::tables::audit_log;
        let entry: &$crate::audit::AuditEntry = $entry;
        let prev: String = audit_log::table
            .select(audit_log::hash)
            .order(audit_log::seq.desc())
            .first::<String>(&mut *$c)
            .optional()?
            .unwrap_or_else(|| $crate::audit::GENESIS.to_string());
        let at = $crate::store::now_rfc3339();
        let hash = $crate::audit::entry_hash(&prev, &at, entry);
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::municipality_code.eq(&entry.municipality_code),
                audit_log::at.eq(&at),
                audit_log::client_id.eq(entry.client_id),
                audit_log::client_name.eq(&entry.client_name),
                audit_log::actor.eq(&entry.actor),
                audit_log::roles.eq(&entry.roles),
                audit_log::subject.eq(&entry.subject),
                audit_log::action.eq(&entry.action),
                audit_log::purpose.eq(&entry.purpose),
                audit_log::legal_basis.eq(&entry.legal_basis),
                audit_log::result.eq(&entry.result),
                audit_log::detail.eq(&entry.detail),
                audit_log::prev_hash.eq(&prev),
                audit_log::hash.eq(&hash),
            ))
            .execute(&mut *$c)?;
        Ok(())
    }};
}

/// Append one entry in its own transaction (for events with no other write: reads, failed
/// authentication).
pub fn append(conn: &mut DbConn, entry: &AuditEntry) -> StoreResult<()> {
    crate::store::records::in_write_transaction(conn, |tx| tx.append_audit(entry))
}

/// The hash of the first entry: it names this database (every hub writes one on setup).
pub fn first_hash(conn: &mut DbConn) -> StoreResult<Option<String>> {
    Ok(on_conn!(conn, |c| audit_log::table
        .select(audit_log::hash)
        .order(audit_log::seq)
        .first::<String>(c)
        .optional())?)
}

/// Outcome of walking the chain.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// The first entry that does not match, and why.
    pub broken_at: Option<(i64, String)>,
    pub head: String,
}

/// Walk the whole chain in order, recomputing every hash.
pub fn verify(conn: &mut DbConn) -> StoreResult<Verification> {
    let mut prev = GENESIS.to_string();
    let mut after = 0i64;
    let mut entries = 0u64;
    loop {
        let page = on_conn!(conn, |c| audit_log::table
            .filter(audit_log::seq.gt(after))
            .order(audit_log::seq)
            .limit(5000)
            .load::<AuditRecord>(c))?;
        if page.is_empty() {
            return Ok(Verification {
                entries,
                broken_at: None,
                head: prev,
            });
        }
        for r in page {
            after = r.seq;
            entries += 1;
            if r.prev_hash != prev {
                return Ok(broken(
                    entries,
                    r.seq,
                    "does not follow the entry before it (an entry was removed or reordered)",
                    prev,
                ));
            }
            let entry = AuditEntry {
                municipality_code: r.municipality_code.clone(),
                client_id: r.client_id,
                client_name: r.client_name.clone(),
                actor: r.actor.clone(),
                roles: r.roles.clone(),
                subject: r.subject.clone(),
                action: r.action.clone(),
                purpose: r.purpose.clone(),
                legal_basis: r.legal_basis.clone(),
                result: r.result.clone(),
                detail: r.detail.clone(),
            };
            if entry_hash(&r.prev_hash, &r.at, &entry) != r.hash {
                return Ok(broken(
                    entries,
                    r.seq,
                    "its content was changed after it was written",
                    prev,
                ));
            }
            prev = r.hash;
        }
    }
}

fn broken(entries: u64, seq: i64, why: &str, head: String) -> Verification {
    Verification {
        entries,
        broken_at: Some((seq, why.to_string())),
        head,
    }
}

/// Entries about one child (for disclosure requests, 開示請求), oldest first.
pub fn for_subject(
    conn: &mut DbConn,
    municipality: &str,
    subject: &str,
) -> StoreResult<Vec<AuditRecord>> {
    Ok(on_conn!(conn, |c| audit_log::table
        .filter(audit_log::municipality_code.eq(municipality))
        .filter(audit_log::subject.eq(subject))
        .order(audit_log::seq)
        .load::<AuditRecord>(c))?)
}

/// Accesses to a municipality's children by clients of other municipalities, newest last —
/// what the data owner is notified of (as England's CP-IS notifies the responsible authority).
pub fn external_reads(conn: &mut DbConn, municipality: &str) -> StoreResult<Vec<AuditRecord>> {
    use crate::store::tables::clients;
    Ok(on_conn!(conn, |c| audit_log::table
        .inner_join(clients::table.on(clients::id.nullable().eq(audit_log::client_id)))
        .filter(audit_log::municipality_code.eq(municipality))
        .filter(clients::municipality_code.ne(municipality))
        .select(audit_log::all_columns)
        .order(audit_log::seq)
        .load::<AuditRecord>(c))?)
}
