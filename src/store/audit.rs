//! The audit trail's storage: appending to a municipality's chain inside the caller's write
//! transaction, walking the chains to verify them, and the listings for disclosure requests.
//! The entry and its hashes are the domain's (`crate::audit`).

use diesel::prelude::*;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::tables::audit_log;
use super::{DbConn, StoreResult};
use crate::audit::{
    AuditEntry, ChainHead, GENESIS, SignedHead, Verification, head_signed_by, keyed_hash,
};
use crate::keys::AuditKey;
use crate::on_conn;

/// A stored entry.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
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

impl AuditRecord {
    /// The entry as it was appended (for recomputing its hash).
    pub fn entry(&self) -> AuditEntry {
        AuditEntry {
            municipality_code: self.municipality_code.clone(),
            client_id: self.client_id,
            client_name: self.client_name.clone(),
            actor: self.actor.clone(),
            roles: self.roles.clone(),
            subject: self.subject.clone(),
            action: self.action.clone(),
            purpose: self.purpose.clone(),
            legal_basis: self.legal_basis.clone(),
            result: self.result.clone(),
            detail: self.detail.clone(),
        }
    }
}

/// Serialises appends to one chain. SQLite needs nothing: the write transaction holds the
/// database's write lock. PostgreSQL takes a transaction lock per chain, so appends to
/// different towns' chains never wait on each other for the tail.
pub trait ChainLock {
    fn lock_chain(&mut self, chain: &str) -> QueryResult<()>;
}

impl ChainLock for diesel::SqliteConnection {
    fn lock_chain(&mut self, _chain: &str) -> QueryResult<()> {
        Ok(())
    }
}

impl ChainLock for diesel::PgConnection {
    fn lock_chain(&mut self, chain: &str) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7402, hashtext($1))")
            .bind::<diesel::sql_types::Text, _>(chain)
            .execute(self)
            .map(|_| ())
    }
}

/// An entry as inserted: its chain position and hashes computed, borrowing the entry's text.
#[derive(Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
struct NewAuditRow<'a> {
    municipality_code: &'a str,
    at: &'a str,
    client_id: Option<i64>,
    client_name: Option<&'a str>,
    actor: Option<&'a str>,
    roles: Option<&'a str>,
    subject: Option<&'a str>,
    action: &'a str,
    purpose: Option<&'a str>,
    legal_basis: Option<&'a str>,
    result: &'a str,
    detail: Option<&'a str>,
    prev_hash: String,
    hash: String,
    chain: &'a str,
    chain_seq: i64,
}

/// How a backend takes a batch of audit rows (a run or a list read: tens of thousands): SQLite
/// one row per INSERT, a statement diesel keeps prepared (preparing a 1,000-row INSERT cost about
/// as much as running it); PostgreSQL one binary COPY (no statement text to parse, no parameters
/// to bind).
trait AuditRowWrites {
    fn insert_audit_rows(&mut self, rows: &[NewAuditRow<'_>]) -> QueryResult<()>;
}

impl AuditRowWrites for diesel::SqliteConnection {
    fn insert_audit_rows(&mut self, rows: &[NewAuditRow<'_>]) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(audit_log::table)
                .values(row)
                .execute(self)?;
        }
        Ok(())
    }
}

impl AuditRowWrites for diesel::PgConnection {
    fn insert_audit_rows(&mut self, rows: &[NewAuditRow<'_>]) -> QueryResult<()> {
        diesel::copy_from(audit_log::table)
            .from_insertable(rows)
            .execute(self)
            .map(|_| ())
    }
}

/// Append `$entries`, in order, on connection `$c` inside the caller's write transaction: each
/// to the chain of its municipality if that is registered here, else to the hub chain. Each
/// chain's tail is read once and the chained hashes are computed in order, then the rows go in
/// as the backend takes them fastest (`AuditRowWrites`) — a list read or a screening run of tens of
/// thousands of children is one batch, not one round of lookups per child.
macro_rules! audit_append_body {
    ($c:expr, $entries:expr) => {{
        use $crate::store::tables::{audit_log, municipalities};
        let entries: &[$crate::audit::AuditEntry] = $entries;
        let keys = $crate::keys::in_transaction()?;
        let mut chain_of: std::collections::HashMap<&str, String> =
            std::collections::HashMap::new();
        for entry in entries {
            if chain_of.contains_key(entry.municipality_code.as_str()) {
                continue;
            }
            let registered = municipalities::table
                .find(&entry.municipality_code)
                .select(municipalities::municipality_code)
                .first::<String>(&mut *$c)
                .optional()?;
            chain_of.insert(
                &entry.municipality_code,
                registered.unwrap_or_else(|| $crate::audit::HUB_CHAIN.to_string()),
            );
        }
        // Each chain's newest position and hash; locked in a fixed order so two batches
        // never wait on each other crosswise.
        let mut tails: std::collections::BTreeMap<&str, (i64, String)> = chain_of
            .values()
            .map(|chain| (chain.as_str(), (0, String::new())))
            .collect();
        for (chain, tail) in tails.iter_mut() {
            $crate::store::audit::ChainLock::lock_chain(&mut *$c, chain)?;
            *tail = audit_log::table
                .filter(audit_log::chain.eq(*chain))
                .select((audit_log::chain_seq, audit_log::hash))
                .order(audit_log::chain_seq.desc())
                .first::<(Option<i64>, String)>(&mut *$c)
                .optional()?
                .map(|(seq, hash)| (seq.unwrap_or(0), hash))
                .unwrap_or_else(|| (0, $crate::audit::GENESIS.to_string()));
        }
        let at = $crate::store::now_rfc3339();
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let chain = chain_of[entry.municipality_code.as_str()].as_str();
            let tail = tails.get_mut(chain).expect("every chain's tail was read");
            let chain_seq = tail.0 + 1;
            let hash =
                $crate::audit::keyed_hash(&keys.audit, chain, chain_seq, &tail.1, &at, entry);
            let prev_hash = std::mem::replace(tail, (chain_seq, hash.clone())).1;
            rows.push($crate::store::audit::NewAuditRow {
                municipality_code: &entry.municipality_code,
                at: &at,
                client_id: entry.client_id,
                client_name: entry.client_name.as_deref(),
                actor: entry.actor.as_deref(),
                roles: entry.roles.as_deref(),
                subject: entry.subject.as_deref(),
                action: &entry.action,
                purpose: entry.purpose.as_deref(),
                legal_basis: entry.legal_basis.as_deref(),
                result: &entry.result,
                detail: entry.detail.as_deref(),
                prev_hash,
                hash,
                chain,
                chain_seq,
            });
        }
        $crate::store::audit::AuditRowWrites::insert_audit_rows(&mut *$c, &rows)?;
        Ok(())
    }};
}

/// Appending to a chain, compiled once per backend; part of the write transaction
/// (`super::WriteTx`).
pub trait AuditWrites {
    /// Append entries in order (see `audit_append_body`).
    fn append_entries(&mut self, entries: &[AuditEntry]) -> StoreResult<()>;
    /// See [`key_legacy_entries`].
    fn key_legacy(&mut self, key: &AuditKey) -> StoreResult<u64>;
}

macro_rules! impl_audit_writes {
    ($conn:ty) => {
        impl AuditWrites for $conn {
            fn append_entries(&mut self, entries: &[AuditEntry]) -> StoreResult<()> {
                audit_append_body!(self, entries)
            }

            fn key_legacy(&mut self, key: &AuditKey) -> StoreResult<u64> {
                audit_key_legacy_body!(self, key)
            }
        }
    };
}

/// Append one entry in its own transaction (for events with no other write: reads, failed
/// authentication), beside the writes of other towns.
pub fn append(conn: &mut DbConn, entry: &AuditEntry) -> StoreResult<()> {
    append_all(conn, std::slice::from_ref(entry))
}

/// Append several entries, in order, in one transaction (a list read: one entry per child
/// shown). Entries of one town run beside other towns' writes, like any write of that town.
pub fn append_all(conn: &mut DbConn, entries: &[AuditEntry]) -> StoreResult<()> {
    match entries.first().map(|e| e.municipality_code.as_str()) {
        None => Ok(()),
        Some(town) if entries.iter().all(|e| e.municipality_code == town) => {
            super::tx::in_town_write_transaction(conn, town, |tx| tx.append_audits(entries))
        }
        Some(_) => super::tx::in_write_transaction(conn, |tx| tx.append_audits(entries)),
    }
}

/// The hash of the first entry: it names this database (every hub writes one on setup).
pub fn first_hash(conn: &mut DbConn) -> StoreResult<Option<String>> {
    Ok(on_conn!(conn, |c| audit_log::table
        .select(audit_log::hash)
        .order(audit_log::seq)
        .first::<String>(c)
        .optional())?)
}

/// A stored entry with its place in its chain.
type ChainedRow = (AuditRecord, Option<String>, Option<i64>);

/// Walk every chain in order, recomputing every keyed hash.
pub fn verify(conn: &mut DbConn, key: &AuditKey) -> StoreResult<Verification> {
    let mut verification = Verification {
        entries: 0,
        broken_at: None,
        heads: Vec::new(),
    };
    let unchained = on_conn!(conn, |c| audit_log::table
        .filter(
            audit_log::chain
                .is_null()
                .or(audit_log::chain_seq.is_null())
        )
        .select(audit_log::seq)
        .order(audit_log::seq)
        .first::<i64>(c)
        .optional())?;
    if let Some(seq) = unchained {
        verification.broken_at = Some((
            seq,
            "it belongs to no chain (it was inserted by hand)".into(),
        ));
        return Ok(verification);
    }
    let mut head: Option<ChainHead> = None;
    let (mut after_chain, mut after_seq) = (String::new(), 0i64);
    loop {
        let page: Vec<ChainedRow> = on_conn!(conn, |c| audit_log::table
            .filter(
                audit_log::chain.gt(&after_chain).or(audit_log::chain
                    .eq(&after_chain)
                    .and(audit_log::chain_seq.gt(after_seq))),
            )
            .order((audit_log::chain, audit_log::chain_seq))
            .select((
                AuditRecord::as_select(),
                audit_log::chain,
                audit_log::chain_seq
            ))
            .limit(5000)
            .load::<ChainedRow>(c))?;
        if page.is_empty() {
            verification.heads.extend(head);
            return Ok(verification);
        }
        for (row, chain, chain_seq) in page {
            let (chain, chain_seq) = (chain.unwrap_or_default(), chain_seq.unwrap_or_default());
            (after_chain, after_seq) = (chain.clone(), chain_seq);
            verification.entries += 1;
            let (expected_seq, expected_prev) = match &head {
                Some(h) if h.chain == chain => (h.seq + 1, h.hash.clone()),
                _ => {
                    verification.heads.extend(head.take());
                    (1, GENESIS.to_string())
                }
            };
            let why = if row.prev_hash != expected_prev || chain_seq != expected_seq {
                Some(
                    "does not follow the entry before it in its chain (an entry was removed or reordered)",
                )
            } else if keyed_hash(
                key,
                &chain,
                chain_seq,
                &row.prev_hash,
                &row.at,
                &row.entry(),
            ) != row.hash
            {
                Some("its content was changed after it was written")
            } else {
                None
            };
            if let Some(why) = why {
                verification.broken_at = Some((
                    row.seq,
                    format!("{why} (chain {chain}, position {chain_seq})"),
                ));
                return Ok(verification);
            }
            head = Some(ChainHead {
                chain,
                seq: chain_seq,
                hash: row.hash,
            });
        }
    }
}

/// Check a signed head against this hub's public key and the (already verified) trail: every
/// chain it names must still hold the entry it anchors, with the same hash. Returns why not.
pub fn check_head(
    conn: &mut DbConn,
    head: &SignedHead,
    hub_key: &VerifyingKey,
) -> StoreResult<Result<(), String>> {
    if let Err(why) = head_signed_by(head, hub_key) {
        return Ok(Err(why));
    }
    for anchored in &head.body.chains {
        let stored = on_conn!(conn, |c| audit_log::table
            .filter(audit_log::chain.eq(&anchored.chain))
            .filter(audit_log::chain_seq.eq(anchored.seq))
            .select(audit_log::hash)
            .first::<String>(c)
            .optional())?;
        let newest = on_conn!(conn, |c| audit_log::table
            .filter(audit_log::chain.eq(&anchored.chain))
            .select(diesel::dsl::max(audit_log::chain_seq))
            .first::<Option<i64>>(c))?
        .unwrap_or(0);
        match stored {
            Some(hash) if hash == anchored.hash => {}
            Some(_) => {
                return Ok(Err(format!(
                    "chain {}: position {} differs from the signed head of {} (the chain was rewritten)",
                    anchored.chain, anchored.seq, head.body.taken_at
                )));
            }
            None => {
                return Ok(Err(format!(
                    "chain {}: the signed head of {} anchors position {}, but the chain now ends at {newest} (entries were removed)",
                    anchored.chain, head.body.taken_at, anchored.seq
                )));
            }
        }
    }
    Ok(Ok(()))
}

/// Convert entries written before the trail was keyed (one unkeyed chain, `chain` unset) into
/// keyed chains, in one transaction, after checking the old chain is intact: the conversion
/// must not launder an earlier change. Records the old head in a `audit.chains_keyed` entry on
/// the hub chain. Returns how many entries were converted.
pub fn key_legacy_entries(conn: &mut DbConn, key: &AuditKey) -> StoreResult<u64> {
    super::tx::in_write_transaction(conn, |tx| tx.key_legacy_audit(key))
}

/// The body of `key_legacy_entries` for one backend's connection, inside a write transaction.
macro_rules! audit_key_legacy_body {
    ($c:expr, $key:expr) => {{
        use $crate::store::tables::{audit_log, municipalities};
        use diesel::SelectableHelper;
        let key: &$crate::keys::AuditKey = $key;
        let registered: std::collections::HashSet<String> = municipalities::table
            .select(municipalities::municipality_code)
            .load::<String>(&mut *$c)?
            .into_iter()
            .collect();
        let mut heads: std::collections::HashMap<String, (i64, String)> =
            std::collections::HashMap::new();
        for (chain, seq, hash) in audit_log::table
            .filter(audit_log::chain.is_not_null())
            .group_by(audit_log::chain)
            .select((audit_log::chain, diesel::dsl::max(audit_log::chain_seq)))
            .load::<(Option<String>, Option<i64>)>(&mut *$c)?
            .into_iter()
            .filter_map(|(chain, seq)| Some((chain?, seq?)))
            .map(|(chain, seq)| {
                audit_log::table
                    .filter(audit_log::chain.eq(&chain))
                    .filter(audit_log::chain_seq.eq(seq))
                    .select(audit_log::hash)
                    .first::<String>(&mut *$c)
                    .map(|hash| (chain, seq, hash))
            })
            .collect::<Result<Vec<_>, _>>()?
        {
            heads.insert(chain, (seq, hash));
        }
        let mut legacy_prev = $crate::audit::GENESIS.to_string();
        let mut converted = 0u64;
        let mut after = 0i64;
        loop {
            let page = audit_log::table
                .filter(audit_log::chain.is_null())
                .filter(audit_log::seq.gt(after))
                .order(audit_log::seq)
                .select($crate::store::audit::AuditRecord::as_select())
                .limit(5000)
                .load::<$crate::store::audit::AuditRecord>(&mut *$c)?;
            if page.is_empty() {
                break;
            }
            for row in page {
                after = row.seq;
                let entry = row.entry();
                if row.prev_hash != legacy_prev
                    || $crate::audit::entry_hash(&row.prev_hash, &row.at, &entry) != row.hash
                {
                    return Err($crate::store::StoreError::Invalid(format!(
                        "the audit trail written before it was keyed is broken at entry {}; nothing was converted (inspect it before starting the hub)",
                        row.seq
                    )));
                }
                legacy_prev = row.hash.clone();
                let chain = if registered.contains(&row.municipality_code) {
                    row.municipality_code.clone()
                } else {
                    $crate::audit::HUB_CHAIN.to_string()
                };
                let (seq, prev) = heads
                    .get(&chain)
                    .cloned()
                    .unwrap_or_else(|| (0, $crate::audit::GENESIS.to_string()));
                let hash = $crate::audit::keyed_hash(key, &chain, seq + 1, &prev, &row.at, &entry);
                diesel::update(audit_log::table.find(row.seq))
                    .set((
                        audit_log::chain.eq(&chain),
                        audit_log::chain_seq.eq(seq + 1),
                        audit_log::prev_hash.eq(&prev),
                        audit_log::hash.eq(&hash),
                    ))
                    .execute(&mut *$c)?;
                heads.insert(chain, (seq + 1, hash));
                converted += 1;
            }
        }
        if converted > 0 {
            let entry = $crate::audit::AuditEntry {
                municipality_code: String::new(),
                client_name: Some("kodomo-hub".into()),
                action: "audit.chains_keyed".into(),
                result: "ok".into(),
                detail: Some(
                    serde_json::json!({"converted_entries": converted, "unkeyed_head": legacy_prev})
                        .to_string(),
                ),
                ..$crate::audit::AuditEntry::default()
            };
            let appended: $crate::store::StoreResult<()> =
                audit_append_body!($c, std::slice::from_ref(&entry));
            appended?;
        }
        Ok(converted)
    }};
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
        .select(AuditRecord::as_select())
        .load::<AuditRecord>(c))?)
}

/// Accesses to a municipality's children by clients of other municipalities, newest last —
/// what the data owner is notified of (as England's CP-IS notifies the responsible authority).
pub fn external_reads(conn: &mut DbConn, municipality: &str) -> StoreResult<Vec<AuditRecord>> {
    use crate::store::tables::clients;
    Ok(on_conn!(conn, |c| audit_log::table
        .inner_join(clients::table.on(clients::id.nullable().eq(audit_log::client_id)))
        .filter(audit_log::municipality_code.eq(municipality))
        // Council and national clients belong to no town, so they are always from outside.
        .filter(
            clients::municipality_code
                .is_null()
                .or(clients::municipality_code.ne(municipality))
        )
        .select(AuditRecord::as_select())
        .order(audit_log::seq)
        .load::<AuditRecord>(c))?)
}

impl_audit_writes!(diesel::SqliteConnection);
impl_audit_writes!(diesel::PgConnection);
