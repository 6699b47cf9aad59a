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

use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::AuditKey;

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
) -> Result<SignedHead, String> {
    if let Some((seq, why)) = &verification.broken_at {
        return Err(format!(
            "the audit trail is broken at entry {seq}: {why}; no head is signed for it"
        ));
    }
    let mut heads = Vec::new();
    for wanted in chains {
        let head = verification
            .heads
            .iter()
            .find(|h| &h.chain == wanted)
            .ok_or_else(|| format!("there is no audit chain {wanted}"))?;
        heads.push(head.clone());
    }
    let body = HeadBody {
        format: HEAD_FORMAT.into(),
        taken_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
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

/// Whether `head` is in a known format and signed by `hub_key` (the hub that wrote the trail);
/// returns why not.
pub fn head_signed_by(head: &SignedHead, hub_key: &VerifyingKey) -> Result<(), String> {
    if head.body.format != HEAD_FORMAT {
        return Err(format!("unknown head format {:?}", head.body.format));
    }
    let signature = hex::decode(&head.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| Signature::from_bytes(&b));
    let signed = signature.is_some_and(|s| hub_key.verify(&head_message(&head.body), &s).is_ok());
    if !signed || head.body.hub_public_key != hex::encode(hub_key.as_bytes()) {
        return Err("the head is not signed by this hub's signing key (or it was altered)".into());
    }
    Ok(())
}
