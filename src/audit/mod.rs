//! The audit trail: every read and write of personal data, every admin action and every failed
//! authentication appends an entry, in the same transaction as the action it records.
//!
//! Entries form one chain per municipality, plus the `hub` chain for hub-level actions (a town
//! never waits on another town's tail). Each entry commits to the previous entry of its chain
//! with an HMAC-SHA256 keyed with the audit key, which lives in a file outside the database:
//! someone who can write the database but not read that file can neither change, reorder nor
//! remove an entry and recompute the hashes after it. What such a person *can* still do —
//! drop the newest entries of a chain, or all of them — is caught by a signed head
//! (`kodomo-hub audit head`): a town keeps it elsewhere and `audit verify --expect-head`
//! checks that the chain still reaches it.

use diesel::prelude::*;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::AuditKey;
use crate::on_conn;
use crate::store::tables::audit_log;
use crate::store::{DbConn, StoreError, StoreResult};

/// The hash the first entry of every chain commits to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain of actions that concern no single registered municipality (hub administration,
/// council-wide indicators, failed authentication naming no known town).
pub const HUB_CHAIN: &str = "hub";

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

/// The fields of an entry, in a fixed order, as the JSON array its hashes are computed over.
fn fields(e: &AuditEntry) -> [serde_json::Value; 11] {
    use serde_json::json;
    [
        json!(e.municipality_code),
        json!(e.client_id),
        json!(e.client_name),
        json!(e.actor),
        json!(e.roles),
        json!(e.subject),
        json!(e.action),
        json!(e.purpose),
        json!(e.legal_basis),
        json!(e.result),
        json!(e.detail),
    ]
}

/// The unkeyed hash of the single chain written before the trail was keyed: SHA-256 over the
/// previous hash and every field. Only used to check such a trail before converting it.
pub fn entry_hash(prev_hash: &str, at: &str, e: &AuditEntry) -> String {
    let mut all = vec![serde_json::json!(prev_hash), serde_json::json!(at)];
    all.extend(fields(e));
    hex::encode(Sha256::digest(
        serde_json::Value::Array(all).to_string().as_bytes(),
    ))
}

/// Tells keyed hashes apart from any other use of the key.
const KEYED_DOMAIN: &str = "kodomo-hub audit chain v2";

/// The keyed hash of an entry at position `chain_seq` of `chain`: HMAC-SHA256 with the audit
/// key over the chain, the position, the previous entry's hash, the time and every field.
pub fn keyed_hash(
    key: &AuditKey,
    chain: &str,
    chain_seq: i64,
    prev_hash: &str,
    at: &str,
    e: &AuditEntry,
) -> String {
    let mut all = vec![
        serde_json::json!(KEYED_DOMAIN),
        serde_json::json!(chain),
        serde_json::json!(chain_seq),
        serde_json::json!(prev_hash),
        serde_json::json!(at),
    ];
    all.extend(fields(e));
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key size");
    mac.update(serde_json::Value::Array(all).to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
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

/// Append `$entry` on connection `$c` inside the caller's write transaction: to the chain of
/// its municipality if that is registered here, else to the hub chain.
#[macro_export]
macro_rules! audit_append_body {
    ($c:expr, $entry:expr) => {{
        use $crate::store::tables::{audit_log, municipalities};
        let entry: &$crate::audit::AuditEntry = $entry;
        let keys = $crate::keys::in_transaction()?;
        let registered = municipalities::table
            .find(&entry.municipality_code)
            .select(municipalities::municipality_code)
            .first::<String>(&mut *$c)
            .optional()?;
        let chain = registered.unwrap_or_else(|| $crate::audit::HUB_CHAIN.to_string());
        $crate::audit::ChainLock::lock_chain(&mut *$c, &chain)?;
        let (prev_seq, prev) = audit_log::table
            .filter(audit_log::chain.eq(&chain))
            .select((audit_log::chain_seq, audit_log::hash))
            .order(audit_log::chain_seq.desc())
            .first::<(Option<i64>, String)>(&mut *$c)
            .optional()?
            .map(|(seq, hash)| (seq.unwrap_or(0), hash))
            .unwrap_or_else(|| (0, $crate::audit::GENESIS.to_string()));
        let chain_seq = prev_seq + 1;
        let at = $crate::store::now_rfc3339();
        let hash = $crate::audit::keyed_hash(&keys.audit, &chain, chain_seq, &prev, &at, entry);
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
                audit_log::chain.eq(&chain),
                audit_log::chain_seq.eq(chain_seq),
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

/// The newest entry of one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub chain: String,
    /// Position of the newest entry in the chain (the first entry is 1).
    pub seq: i64,
    pub hash: String,
}

/// Outcome of walking every chain.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub entries: u64,
    /// The first entry that does not match (its row number, `seq`), and why.
    pub broken_at: Option<(i64, String)>,
    /// The head of every chain that verified, ordered by chain name.
    pub heads: Vec<ChainHead>,
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

/// What a signed head commits to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadBody {
    pub format: String,
    pub taken_at: String,
    /// The hub's Ed25519 public key (hex) that signed this head.
    pub hub_public_key: String,
    pub chains: Vec<ChainHead>,
}

/// A checkpoint of chain heads signed with the hub's signing key, for a town (or the council)
/// to keep outside the hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedHead {
    #[serde(flatten)]
    pub body: HeadBody,
    /// Ed25519 signature (hex) over the JSON of every other field, in this order.
    pub signature: String,
}

pub const HEAD_FORMAT: &str = "kodomo-hub audit head 1";

fn head_message(body: &HeadBody) -> Vec<u8> {
    serde_json::to_vec(body).expect("a head serialises")
}

/// Sign the heads of `chains` (all of them if empty) of a verified trail.
pub fn sign_head(
    verification: &Verification,
    chains: &[String],
    key: &ed25519_dalek::SigningKey,
) -> StoreResult<SignedHead> {
    if let Some((seq, why)) = &verification.broken_at {
        return Err(StoreError::Invalid(format!(
            "the audit trail is broken at entry {seq}: {why}; no head is signed for it"
        )));
    }
    let mut heads = Vec::new();
    for wanted in chains {
        let head = verification
            .heads
            .iter()
            .find(|h| &h.chain == wanted)
            .ok_or_else(|| StoreError::Invalid(format!("there is no audit chain {wanted}")))?;
        heads.push(head.clone());
    }
    let body = HeadBody {
        format: HEAD_FORMAT.into(),
        taken_at: crate::store::now_rfc3339(),
        hub_public_key: hex::encode(key.verifying_key().as_bytes()),
        chains: if chains.is_empty() {
            verification.heads.clone()
        } else {
            heads
        },
    };
    let signature = hex::encode(key.sign(&head_message(&body)).to_bytes());
    Ok(SignedHead { body, signature })
}

/// Check a signed head against this hub's public key and the (already verified) trail: every
/// chain it names must still hold the entry it anchors, with the same hash. Returns why not.
pub fn check_head(
    conn: &mut DbConn,
    head: &SignedHead,
    hub_key: &VerifyingKey,
) -> StoreResult<Result<(), String>> {
    if head.body.format != HEAD_FORMAT {
        return Ok(Err(format!("unknown head format {:?}", head.body.format)));
    }
    let signature = hex::decode(&head.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    let signed = signature.is_some_and(|s| hub_key.verify(&head_message(&head.body), &s).is_ok());
    if !signed || head.body.hub_public_key != hex::encode(hub_key.as_bytes()) {
        return Ok(Err(
            "the head is not signed by this hub's signing key (or it was altered)".into(),
        ));
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
    crate::store::records::in_write_transaction(conn, |tx| tx.key_legacy_audit(key))
}

/// The body of `key_legacy_entries` for one backend's connection, inside a write transaction.
#[macro_export]
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
                .select($crate::audit::AuditRecord::as_select())
                .limit(5000)
                .load::<$crate::audit::AuditRecord>(&mut *$c)?;
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
            let appended: $crate::store::StoreResult<()> = $crate::audit_append_body!($c, &entry);
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
        .filter(clients::municipality_code.ne(municipality))
        .select(AuditRecord::as_select())
        .order(audit_log::seq)
        .load::<AuditRecord>(c))?)
}
