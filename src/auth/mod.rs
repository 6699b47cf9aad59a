//! Who is calling: bearer tokens (only their SHA-256 is stored) mapped to clients with roles,
//! each bound to one municipality.

use sha2::{Digest, Sha256};

use crate::store::clients::ClientRow;

/// Roles a client may hold (several at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Pushes records of its allowed types.
    Source,
    /// Reads subjects and records of its own municipality.
    Caseworker,
    TransferOfficer,
    CouncilAdmin,
    /// Aggregates only, never a personal record.
    NationalAnalyst,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Caseworker => "caseworker",
            Role::TransferOfficer => "transfer-officer",
            Role::CouncilAdmin => "council-admin",
            Role::NationalAnalyst => "national-analyst",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [
            Role::Source,
            Role::Caseworker,
            Role::TransferOfficer,
            Role::CouncilAdmin,
            Role::NationalAnalyst,
            Role::Auditor,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: i64,
    pub name: String,
    pub municipality: String,
    pub roles: Vec<Role>,
    pub record_types: Option<Vec<String>>,
}

impl Principal {
    pub fn from_row(row: ClientRow) -> Principal {
        Principal {
            client_id: row.id,
            roles: row.roles.split(',').filter_map(Role::parse).collect(),
            record_types: row
                .record_types
                .map(|t| t.split(',').map(str::to_string).collect()),
            name: row.name,
            municipality: row.municipality_code,
        }
    }

    /// May this caller act with `role` in `municipality`?
    pub fn may(&self, role: Role, municipality: &str) -> bool {
        self.municipality == municipality && self.roles.contains(&role)
    }
}

/// A new random bearer token (256 bits) and the hash the hub stores.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    let token = format!("khub_{}", hex::encode(bytes));
    let hash = hash_token(&token);
    (token, hash)
}

/// Tokens carry 256 bits of entropy, so a plain SHA-256 is enough to store them safely.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
