//! Who is calling: bearer tokens (only their SHA-256 is stored) mapped to clients with roles,
//! each bound to a scope: one municipality, one joint-use council, or the nation.

pub mod tls;

use sha2::{Digest, Sha256};

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
    /// May see children under a DV support measure (支援措置); without it they do not exist.
    SupportMeasureReader,
    /// A school's client: sees the screening decisions shared with its school, for its own
    /// pupils only (the school it speaks for is linked with `screening school link`).
    School,
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
            Role::SupportMeasureReader => "support-measure-reader",
            Role::School => "school",
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
            Role::SupportMeasureReader,
            Role::School,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// What a client is bound to. Only a municipality's staff work with children's personal data;
/// a council's operator and national staff see aggregates and operational figures only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Municipality(String),
    /// A joint-use council (共同利用) and its member towns as they are now.
    Council {
        code: String,
        towns: Vec<String>,
    },
    Nation,
}

/// The kind of a scope, as stored and as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Municipality,
    Council,
    Nation,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Municipality => "municipality",
            ScopeKind::Council => "council",
            ScopeKind::Nation => "nation",
        }
    }

    pub fn parse(text: &str) -> Option<ScopeKind> {
        [
            ScopeKind::Municipality,
            ScopeKind::Council,
            ScopeKind::Nation,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// May a client of this scope hold `role`? Town staff roles belong to a town; a council's
    /// operator holds `council-admin` (a town's own `council-admin` previews that town alone);
    /// national staff hold `national-analyst` only. `transfer-officer` stays with the towns: a
    /// transfer carries children's personal data and is offered, accepted or declined by a
    /// town, so a council operator follows transfers through the operational figures instead.
    pub fn admits(self, role: Role) -> bool {
        match self {
            ScopeKind::Municipality => role != Role::NationalAnalyst,
            ScopeKind::Council => role == Role::CouncilAdmin,
            ScopeKind::Nation => role == Role::NationalAnalyst,
        }
    }
}

/// What a client is registered under, named by code (its scope before the council's member
/// towns are looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Municipality(String),
    Council(String),
    Nation,
}

impl Binding {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Binding::Municipality(_) => ScopeKind::Municipality,
            Binding::Council(_) => ScopeKind::Council,
            Binding::Nation => ScopeKind::Nation,
        }
    }

    /// `municipality:131016`, `council:north`, `nation`: how lists and the audit trail show it.
    pub fn label(&self) -> String {
        match self {
            Binding::Municipality(code) | Binding::Council(code) => {
                format!("{}:{code}", self.kind().as_str())
            }
            Binding::Nation => ScopeKind::Nation.as_str().into(),
        }
    }

    /// The audit chain of the client's administrative entries and actions: its town's, or for
    /// a council or the nation its label, which names no town and so lands in the hub's chain.
    pub fn audit_municipality(&self) -> String {
        match self {
            Binding::Municipality(town) => town.clone(),
            other => other.label(),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: i64,
    pub name: String,
    pub scope: Scope,
    /// The town the caller acts for; for a council or the nation, which act for no single
    /// town, the scope's label (see [`Binding::audit_municipality`]).
    pub municipality: String,
    pub roles: Vec<Role>,
    pub record_types: Option<Vec<String>>,
    /// The client certificate this client must connect with, if bound to one.
    pub cert_fingerprint: Option<String>,
}

impl Principal {
    /// The operator at the hub's own console (the CLI, which holds the database anyway): acts
    /// for `municipality` with every role a town's staff can hold.
    pub fn console_operator(municipality: &str) -> Principal {
        Principal {
            client_id: 0,
            name: "console".into(),
            scope: Scope::Municipality(municipality.to_string()),
            municipality: municipality.to_string(),
            roles: vec![
                Role::Caseworker,
                Role::TransferOfficer,
                Role::Auditor,
                Role::SupportMeasureReader,
            ],
            record_types: None,
            cert_fingerprint: None,
        }
    }

    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// May this caller act with `role` in `municipality` as one of its town's staff? Council
    /// and national scopes are nobody's town staff.
    pub fn may(&self, role: Role, municipality: &str) -> bool {
        matches!(&self.scope, Scope::Municipality(town) if town == municipality)
            && self.roles.contains(&role)
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

/// Why a personal read is refused before any data is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRefusal {
    MissingPurpose,
    UnknownPurpose(String),
    MissingActor,
}

impl std::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadRefusal::MissingPurpose => write!(
                f,
                "personal reads must declare X-Purpose (one of the codes at GET /v1/access-purposes)"
            ),
            ReadRefusal::UnknownPurpose(p) => write!(
                f,
                "X-Purpose {p:?} is not a published purpose (see GET /v1/access-purposes)"
            ),
            ReadRefusal::MissingActor => write!(
                f,
                "personal reads must name the staff member in the calling system in X-Actor (visible ASCII, at most 100 characters)"
            ),
        }
    }
}

/// What an `X-Actor` may look like: visible ASCII, no surrounding spaces, at most 100 bytes.
pub const ACTOR_PATTERN: &str = "^[!-~]([ -~]{0,98}[!-~])?$";

pub fn is_valid_actor(actor: &str) -> bool {
    (1..=100).contains(&actor.len())
        && actor.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !actor.starts_with(' ')
        && !actor.ends_with(' ')
}

/// A declared, valid reason for reading personal data.
#[derive(Debug, Clone)]
pub struct ReadContext {
    pub purpose: crate::schema::purposes::Purpose,
    pub actor: String,
    pub legal_basis: String,
}

impl ReadContext {
    /// Check the declared purpose against the published list; the legal basis defaults to the
    /// purpose's own.
    pub fn declare(
        purposes: &[crate::schema::purposes::Purpose],
        purpose: Option<&str>,
        actor: Option<&str>,
        legal_basis: Option<&str>,
    ) -> Result<ReadContext, ReadRefusal> {
        let code = purpose
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .ok_or(ReadRefusal::MissingPurpose)?;
        let purpose = purposes
            .iter()
            .find(|p| p.code == code)
            .cloned()
            .ok_or_else(|| ReadRefusal::UnknownPurpose(code.to_string()))?;
        let actor = actor
            .filter(|a| is_valid_actor(a))
            .ok_or(ReadRefusal::MissingActor)?
            .to_string();
        let legal_basis = legal_basis
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map_or_else(|| purpose.legal_basis.clone(), str::to_string);
        Ok(ReadContext {
            purpose,
            actor,
            legal_basis,
        })
    }
}
