//! `kodomo-hub admin`: towns, councils, clients and their tokens, 外字 tables and peer hubs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{ADMIN_CLI, exchange};
use crate::auth::{self, Binding, Role};
use crate::schema::{Standard, rules};
use crate::store::{Store, clients};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Towns (municipalities).
    Municipality {
        #[command(subcommand)]
        command: MunicipalityCommand,
    },
    /// Joint-use councils (共同利用) and their member towns.
    Council {
        #[command(subcommand)]
        command: CouncilCommand,
    },
    /// API clients and their tokens.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The council's 外字 (private-use character) conversion table.
    Gaiji {
        #[command(subcommand)]
        command: GaijiCommand,
    },
    /// Peer hubs this hub exchanges signed transfer packages with (the trust store).
    Peer {
        #[command(subcommand)]
        command: exchange::PeerCommand,
    },
}

#[derive(Subcommand)]
pub enum MunicipalityCommand {
    /// Register a town by its 6-digit code (check digit verified).
    Add {
        /// The town's 6-digit code (JIS X 0402 with its check digit; prefecture 01–47).
        code: String,
        /// The town's name as staff know it (e.g. 架空市).
        name: String,
        /// The joint-use council (共同利用) the town belongs to.
        #[arg(long)]
        council: Option<String>,
        /// Population (decides the disclosure floor of its indicators).
        #[arg(long)]
        population: Option<i64>,
    },
    /// List the registered towns with their council and population.
    List,
}

#[derive(Subcommand)]
pub enum CouncilCommand {
    /// Register a council by its code.
    Add {
        /// The council's code (how clients and towns name it).
        code: String,
        /// The council's name (e.g. 架空広域連携協議会).
        name: String,
        /// How the council's operator is reached (mail address or phone of the desk).
        #[arg(long)]
        operator_contact: Option<String>,
    },
    /// A council's member towns.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// List the councils with their operator contact and member towns.
    List,
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Add a registered town to a council (a town belongs to one council at most).
    Add {
        /// The council's code.
        council: String,
        /// The town's code.
        municipality: String,
    },
    /// Take a town out of a council.
    Remove {
        /// The council's code.
        council: String,
        /// The town's code.
        municipality: String,
    },
}

/// What a client is bound to: exactly one of a town, a council or the nation.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// A town: its staff and sources.
    #[arg(long)]
    municipality: Option<String>,
    /// A joint-use council: its operator (`council-admin`).
    #[arg(long)]
    council: Option<String>,
    /// The nation: national staff (`national-analyst`).
    #[arg(long)]
    nation: bool,
}

impl ScopeArgs {
    fn binding(self) -> Binding {
        match (self.municipality, self.council) {
            (Some(town), _) => Binding::Municipality(town),
            (None, Some(council)) => Binding::Council(council),
            (None, None) => Binding::Nation,
        }
    }
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create a client; its bearer token is printed once and only its hash is stored.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Client name (unique within its scope; a source's records are keyed by it).
        #[arg(long)]
        name: String,
        /// Role(s); repeat or separate with commas.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        role: Vec<Role>,
        /// Record types a source may push (default: all).
        #[arg(long, value_delimiter = ',')]
        record_types: Option<Vec<String>>,
        /// Bind the client to a TLS client certificate (SHA-256 of its DER, hex): its token
        /// is refused on any other connection.
        #[arg(long)]
        cert_fingerprint: Option<String>,
    },
    /// List every client: id, scope, name, roles, record types, active or revoked.
    List,
    /// Revoke a client; its token stops working at once.
    Revoke {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The client's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum GaijiCommand {
    /// Import a 外字 conversion table: `code_point,standard[,note]` (e.g. `U+E001,髙`).
    Import {
        /// The CSV file of the table (UTF-8).
        file: PathBuf,
        /// Municipality the table is for (default: the whole council).
        #[arg(long)]
        municipality: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a new token for a client; the old one stops working at once.
    Rotate {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The client's name.
        #[arg(long)]
        name: String,
    },
}

pub fn admin(command: AdminCommand, store: &Store) -> anyhow::Result<()> {
    let mut conn = store.conn()?;
    match command {
        AdminCommand::Municipality { command } => match command {
            MunicipalityCommand::Add {
                code,
                name,
                council,
                population,
            } => {
                if !rules::is_valid_municipality_code(&code) {
                    anyhow::bail!(
                        "{code} is not a valid municipality code (6 digits: prefecture 01–47, town, check digit)"
                    );
                }
                clients::add_municipality(
                    &mut conn,
                    &code,
                    &name,
                    council.as_deref(),
                    population,
                    ADMIN_CLI,
                )?;
                println!("municipality {code} {name} added");
            }
            MunicipalityCommand::List => {
                for m in clients::list_municipalities(&mut conn)? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        m.municipality_code,
                        m.name,
                        m.council.unwrap_or_default(),
                        m.population.map(|p| p.to_string()).unwrap_or_default()
                    );
                }
            }
        },
        AdminCommand::Council { command } => council(command, &mut conn)?,
        AdminCommand::Client { command } => match command {
            ClientCommand::Add {
                scope,
                name,
                role,
                record_types,
                cert_fingerprint,
            } => {
                let binding = scope.binding();
                let registered = match &binding {
                    Binding::Municipality(town) => {
                        clients::municipality(&mut conn, town)?.is_some()
                    }
                    Binding::Council(code) => clients::council(&mut conn, code)?.is_some(),
                    Binding::Nation => true,
                };
                if !registered {
                    anyhow::bail!("{} is not registered", binding.label());
                }
                if let Some(refused) = role.iter().find(|r| !binding.kind().admits(**r)) {
                    anyhow::bail!(
                        "a client bound to {} cannot hold {} (municipality: town staff roles and council-admin; council: council-admin; nation: national-analyst)",
                        binding.label(),
                        refused.as_str()
                    );
                }
                let standard = Standard::load();
                if let Some(types) = &record_types
                    && let Some(unknown) =
                        types.iter().find(|t| !standard.latest().validator.knows(t))
                {
                    anyhow::bail!("unknown record type {unknown}");
                }
                let (token, hash) = auth::new_token();
                let roles: Vec<String> = role.iter().map(|r| r.as_str().to_string()).collect();
                clients::add_client(
                    &mut conn,
                    &clients::NewClient {
                        binding: &binding,
                        name: &name,
                        roles: &roles,
                        record_types: record_types.as_deref(),
                        token_hash: &hash,
                        cert_fingerprint: cert_fingerprint.as_deref(),
                    },
                    ADMIN_CLI,
                )?;
                println!("{token}");
                eprintln!(
                    "client {name} added to {}; the token above is shown only once",
                    binding.label()
                );
            }
            ClientCommand::Revoke { scope, name } => {
                let binding = scope.binding();
                if !clients::revoke_client(&mut conn, &binding, &name, ADMIN_CLI)? {
                    anyhow::bail!("no active client {name:?} in {}", binding.label());
                }
                println!("client {name} of {} revoked", binding.label());
            }
            ClientCommand::List => {
                for c in clients::list_clients(&mut conn)? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        c.id,
                        c.binding().label(),
                        c.name,
                        c.roles,
                        c.record_types.unwrap_or_else(|| "*".into()),
                        if c.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        },
        AdminCommand::Peer { command } => exchange::peer(command, store, ADMIN_CLI)?,
        AdminCommand::Gaiji {
            command: GaijiCommand::Import { file, municipality },
        } => {
            let scope = municipality.unwrap_or_else(|| "*".into());
            let text = std::fs::read_to_string(&file)?;
            let entry = crate::audit::AuditEntry {
                municipality_code: scope.clone(),
                client_name: Some(ADMIN_CLI.into()),
                roles: Some("admin".into()),
                action: "admin.gaiji.import".into(),
                result: "ok".into(),
                detail: Some(serde_json::json!({"file": file.display().to_string()}).to_string()),
                ..Default::default()
            };
            let n = crate::store::identity::import_gaiji(&mut conn, &scope, &text, &entry)?;
            println!("{n} 外字 conversions imported for {scope}");
        }
        AdminCommand::Token {
            command: TokenCommand::Rotate { scope, name },
        } => {
            let binding = scope.binding();
            let (token, hash) = auth::new_token();
            if !clients::rotate_token(&mut conn, &binding, &name, &hash, ADMIN_CLI)? {
                anyhow::bail!("no active client {name:?} in {}", binding.label());
            }
            println!("{token}");
            eprintln!(
                "new token for {name} of {}; the old token no longer works",
                binding.label()
            );
        }
    }
    Ok(())
}

fn council(command: CouncilCommand, conn: &mut crate::store::DbConn) -> anyhow::Result<()> {
    match command {
        CouncilCommand::Add {
            code,
            name,
            operator_contact,
        } => {
            clients::add_council(conn, &code, &name, operator_contact.as_deref(), ADMIN_CLI)?;
            println!("council {code} {name} added");
        }
        CouncilCommand::Member { command } => {
            let (council, town, change) = match command {
                MemberCommand::Add {
                    council,
                    municipality,
                } => (council, municipality, clients::Membership::Join),
                MemberCommand::Remove {
                    council,
                    municipality,
                } => (council, municipality, clients::Membership::Leave),
            };
            match clients::change_council_member(conn, &council, &town, change, ADMIN_CLI) {
                Err(crate::store::StoreError::NotFound) => anyhow::bail!(match change {
                    clients::Membership::Join =>
                        format!("council {council} or municipality {town} is not registered"),
                    clients::Membership::Leave =>
                        format!("{town} is not a member of council {council}"),
                }),
                other => other?,
            }
            let done = match change {
                clients::Membership::Join => "joined",
                clients::Membership::Leave => "left",
            };
            println!("{town} {done} council {council}");
        }
        CouncilCommand::List => {
            for c in clients::list_councils(conn)? {
                println!(
                    "{}\t{}\t{}\t{}",
                    c.code,
                    c.name,
                    c.operator_contact.unwrap_or_default(),
                    c.towns.join(",")
                );
            }
        }
    }
    Ok(())
}
