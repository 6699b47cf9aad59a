//! Commands for transfers between hubs: the trust store (`admin peer …`) and signed packages
//! and receipts as files (`transfer export | import | receipt`).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::audit::AuditEntry;
use crate::schema::{Standard, rules};
use crate::store::Store;
use crate::store::packages;
use crate::transfer::exchange::{self, ExchangeError, Importer};
use crate::transfer::package;

#[derive(Subcommand)]
pub enum PeerCommand {
    /// Trust another hub's public key for the towns it serves.
    Add {
        /// A name for the peer hub in lists and the audit trail (e.g. the council it serves).
        #[arg(long)]
        name: String,
        /// The peer's Ed25519 public key, 64 hex digits (`admin peer key` on that hub).
        #[arg(long)]
        public_key: String,
        /// A town the peer serves, as CODE=NAME; repeat for several.
        #[arg(long = "town", required = true, value_parser = parse_town)]
        towns: Vec<(String, String)>,
    },
    /// List the peer hubs with their current keys and towns (removed ones marked).
    List,
    /// Print this hub's public signing key (give it to peer hubs), or rotate it.
    Key {
        #[command(subcommand)]
        command: Option<KeyCommand>,
    },
    /// Accept a peer hub's new key (it rotated its own): the new key signs messages created
    /// from --valid-from; the key it replaces keeps verifying messages created before then,
    /// for the overlap.
    Update {
        /// The peer hub (`admin peer list`).
        #[arg(long)]
        name: String,
        /// Its new Ed25519 public key, 64 hex digits (`admin peer key rotate` on that hub
        /// prints it).
        #[arg(long)]
        public_key: String,
        /// When the new key took over, RFC 3339 with offset (printed by the rotation).
        #[arg(long, value_parser = parse_moment)]
        valid_from: chrono::DateTime<chrono::Utc>,
        /// Days after --valid-from during which the replaced key still verifies messages
        /// created before then (packages and receipts on their way); 0 ends it at once.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i64).range(0..=365))]
        overlap_days: i64,
    },
    /// Remove a peer hub from the trust store: everything signed by any of its keys is
    /// refused from now on (`signer_revoked`); what was exchanged with it stays on record.
    Remove {
        /// The peer hub (`admin peer list`).
        #[arg(long)]
        name: String,
    },
    /// Every key a peer hub signs or signed with, and the span each verifies.
    Keys {
        /// The peer hub (`admin peer list`).
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Sign with a new key from now on. Prints the command each peer hub runs to accept it;
    /// restart this hub's processes so that they sign with it.
    Rotate {
        /// Days the peers are asked to keep accepting the old key for messages created
        /// before the rotation.
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i64).range(0..=365))]
        overlap_days: i64,
    },
    /// This hub's public keys: the current one first, then the rotated-out ones.
    History,
}

fn parse_moment(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            format!("{text:?} is not an RFC 3339 time with offset, e.g. 2026-12-01T09:00:00+09:00")
        })
}

fn parse_town(text: &str) -> Result<(String, String), String> {
    let (code, name) = text
        .split_once('=')
        .ok_or("expected CODE=NAME, e.g. 139998=架空区")?;
    if !rules::is_valid_municipality_code(code) {
        return Err(format!(
            "{code} is not a valid municipality code (6 digits, last a check digit)"
        ));
    }
    Ok((code.to_string(), name.to_string()))
}

#[derive(Subcommand)]
pub enum ExchangeCommand {
    /// Write an offered transfer to a peer hub's town as a signed package (PACKAGE-ID.xml or
    /// .json, with its detached signature in the same name + .sig).
    Export {
        /// The origin town (6-digit code) that offered the transfer.
        #[arg(long)]
        municipality: String,
        /// The transfer's id (`transfer list --box outbox`).
        #[arg(long)]
        id: i64,
        /// Directory the package and its signature are written to.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// xml (canonical, the default) or json (the same fields).
        #[arg(long, value_enum, default_value = "xml")]
        format: PackageFormat,
        /// Officer sending (recorded in the audit trail).
        #[arg(long, value_parser = super::free_text)]
        actor: String,
    },
    /// Verify and import a package from a peer hub into a town's inbox; writes the signed
    /// receipt (PACKAGE-ID.receipt.xml and .sig) to return to the origin hub.
    Import {
        /// The destination town (6-digit code) whose inbox receives the transfer.
        #[arg(long)]
        municipality: String,
        /// The package (.xml or .json); its signature is read from the same path + .sig.
        package: PathBuf,
        /// The detached signature file, when it is not beside the package as PACKAGE.sig.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Where the receipt is written (default: beside the package).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The officer the transfer is escalated to if nobody answers.
        #[arg(long, value_parser = super::free_text)]
        escalate_to: String,
        /// Days to answer before escalation (1–365).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i64).range(1..=365))]
        deadline_days: i64,
        /// Officer importing (recorded in the audit trail).
        #[arg(long, value_parser = super::free_text)]
        actor: String,
    },
    /// Import the destination hub's signed receipt: the transfer is delivered.
    Receipt {
        /// The origin town (6-digit code) whose transfer the receipt closes.
        #[arg(long)]
        municipality: String,
        /// The receipt (.receipt.xml); its signature is read from the same path + .sig.
        receipt: PathBuf,
        /// The detached signature file, when it is not beside the receipt as RECEIPT.sig.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Officer importing the receipt (recorded in the audit trail).
        #[arg(long, value_parser = super::free_text)]
        actor: String,
    },
    /// Write the signed outcome of a transfer that came from another hub, once this town
    /// accepted or declined it (PACKAGE-ID.outcome.xml and .sig), to return to the origin hub.
    OutcomeExport {
        /// The destination town (6-digit code) that decided.
        #[arg(long)]
        municipality: String,
        /// The transfer's id (`transfer list --box inbox`).
        #[arg(long)]
        id: i64,
        /// Directory the outcome and its signature are written to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import the destination hub's signed outcome (accepted or declined, per child): the
    /// transfer shows the decision; declined children are no longer marked moved out.
    Outcome {
        /// The origin town (6-digit code) whose transfer the outcome answers.
        #[arg(long)]
        municipality: String,
        /// The outcome (.outcome.xml or its JSON form); its signature is read from the same
        /// path + .sig.
        outcome: PathBuf,
        /// The detached signature file, when it is not beside the outcome as OUTCOME.sig.
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Officer importing the outcome (recorded in the audit trail).
        #[arg(long, value_parser = super::free_text)]
        actor: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PackageFormat {
    Xml,
    Json,
}

pub fn peer(command: PeerCommand, store: &Store, by: &str) -> anyhow::Result<()> {
    let mut conn = store.conn()?;
    match command {
        PeerCommand::Add {
            name,
            public_key,
            towns,
        } => {
            packages::add_peer(&mut conn, &name, &public_key, &towns, by)?;
            println!("peer hub {name} trusted for {} town(s)", towns.len());
        }
        PeerCommand::List => {
            for peer in packages::list_peers(&mut conn)? {
                let removed = peer
                    .removed_at
                    .map(|at| format!("\tremoved {at}"))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}{removed}",
                    peer.name,
                    peer.public_key,
                    peer.towns.join(",")
                );
            }
        }
        PeerCommand::Key { command: None } => {
            let key = packages::hub_key(&conn)?;
            println!("{}", hex::encode(key.verifying_key().as_bytes()));
        }
        PeerCommand::Key {
            command: Some(KeyCommand::Rotate { overlap_days }),
        } => {
            let new_key = ed25519_dalek::SigningKey::from_bytes(&crate::keys::random_key());
            let public = hex::encode(new_key.verifying_key().as_bytes());
            // The new key waits beside the key file until the database records the rotation.
            let staged = crate::keys::stage_key(&store.key_paths().signing, &new_key.to_bytes())?;
            let rotation = packages::rotate_hub_key(
                &mut conn,
                &public,
                chrono::Duration::days(overlap_days),
                by,
            )?;
            staged.commit()?;
            println!("this hub signs with {public} from {}", rotation.valid_from);
            println!(
                "the old key {} stays valid for what it signed before, until {}",
                rotation.previous_key, rotation.previous_verifies_until
            );
            println!("restart this hub's processes; each peer hub runs:");
            println!(
                "  kodomo-hub admin peer update --name <this hub> --public-key {public} --valid-from {} --overlap-days {overlap_days}",
                rotation.valid_from
            );
        }
        PeerCommand::Key {
            command: Some(KeyCommand::History),
        } => {
            for key in packages::own_public_keys(&mut conn)? {
                println!("{key}");
            }
        }
        PeerCommand::Update {
            name,
            public_key,
            valid_from,
            overlap_days,
        } => {
            let overlap = chrono::Duration::days(overlap_days);
            packages::update_peer_key(&mut conn, &name, &public_key, valid_from, overlap, by)?;
            println!(
                "peer hub {name} signs with {} from {}",
                public_key.trim(),
                valid_from.to_rfc3339()
            );
        }
        PeerCommand::Remove { name } => {
            packages::remove_peer(&mut conn, &name, by)?;
            println!("peer hub {name} removed: nothing signed by it is accepted from now on");
        }
        PeerCommand::Keys { name } => {
            let unset = |t: Option<String>| t.unwrap_or_else(|| "-".into());
            for key in packages::peer_key_history(&mut conn, &name)? {
                println!(
                    "{}\tvalid_from={}\tvalid_until={}\tverifies_until={}",
                    key.public_key,
                    unset(key.valid_from),
                    unset(key.valid_until),
                    unset(key.verify_until)
                );
            }
        }
    }
    Ok(())
}

fn entry(municipality: &str, actor: &str, action: &str) -> AuditEntry {
    AuditEntry {
        municipality_code: municipality.to_string(),
        client_name: Some("transfer-cli".into()),
        actor: Some(actor.to_string()),
        action: action.into(),
        result: "ok".into(),
        ..Default::default()
    }
}

fn signature_path(file: &Path, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| package::signature_path(file))
}

fn read_signature(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "signature_missing: cannot read the detached signature {}: {e}",
            path.display()
        )
    })
}

/// Write `name` (made by `package::file_name`, so a plain file name) and its `.sig` into `dir`.
fn write_pair(dir: &Path, name: &str, body: &[u8], signature: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    std::fs::write(&path, body)?;
    std::fs::write(signature_path(&path, None), format!("{signature}\n"))?;
    Ok(path)
}

/// A refused package or receipt: the code and pointer first, so scripts can match them.
fn explain(error: ExchangeError) -> anyhow::Error {
    match error {
        ExchangeError::Package(e) => anyhow::anyhow!("{e}"),
        other => other.into(),
    }
}

pub fn exchange(command: ExchangeCommand, store: &Store) -> anyhow::Result<()> {
    let mut conn = store.conn()?;
    match command {
        ExchangeCommand::Export {
            municipality,
            id,
            out,
            format,
            actor,
        } => {
            let audit = entry(&municipality, &actor, "transfer.package.export");
            let signed = exchange::export(&mut conn, id, &municipality, &audit).map_err(explain)?;
            let (name, body) = match format {
                PackageFormat::Xml => (
                    package::file_name(&signed.package_id, ".xml")?,
                    signed.xml.into_bytes(),
                ),
                PackageFormat::Json => {
                    let package = package::parse(signed.xml.as_bytes())?;
                    (
                        package::file_name(&signed.package_id, ".json")?,
                        package::to_json(&package),
                    )
                }
            };
            let path = write_pair(&out, &name, &body, &signed.signature)?;
            println!("{}", path.display());
        }
        ExchangeCommand::Import {
            municipality,
            package,
            signature,
            out,
            escalate_to,
            deadline_days,
            actor,
        } => {
            let bytes = std::fs::read(&package)?;
            let signature = read_signature(&signature_path(&package, signature))?;
            let audit = entry(&municipality, &actor, "transfer.package.import");
            let importer = Importer {
                municipality: &municipality,
                escalate_to: &escalate_to,
                deadline_days,
            };
            let standard = Standard::load();
            let (imported, replay) =
                match exchange::import(&mut conn, &standard, &bytes, &signature, &importer, &audit)
                {
                    Ok(imported) => (imported, false),
                    Err(ExchangeError::AlreadyImported(original)) => (*original, true),
                    Err(e) => return Err(explain(e)),
                };
            let dir = out.unwrap_or_else(|| {
                package
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            let path = write_pair(
                &dir,
                &package::file_name(&imported.package_id, ".receipt.xml")?,
                imported.receipt.as_bytes(),
                &imported.receipt_signature,
            )?;
            if replay {
                println!(
                    "package {} was already imported (transfer {}); nothing imported again; original receipt: {}",
                    imported.package_id,
                    imported.transfer_id,
                    path.display()
                );
            } else {
                println!(
                    "package {} imported as transfer {}; receipt: {}",
                    imported.package_id,
                    imported.transfer_id,
                    path.display()
                );
            }
        }
        ExchangeCommand::Receipt {
            municipality,
            receipt,
            signature,
            actor,
        } => {
            let bytes = std::fs::read(&receipt)?;
            let signature = read_signature(&signature_path(&receipt, signature))?;
            let audit = entry(&municipality, &actor, "transfer.receipt.import");
            let transfer =
                exchange::import_receipt(&mut conn, &bytes, &signature, &municipality, &audit)
                    .map_err(explain)?;
            println!("transfer {} {}", transfer.id, transfer.status);
        }
        ExchangeCommand::OutcomeExport {
            municipality,
            id,
            out,
        } => {
            let signed = exchange::outcome(&mut conn, id)
                .map_err(explain)?
                .filter(|s| s.fields.destination == municipality)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "transfer {id} to {municipality} has no outcome: it was not decided yet, or it did not come from another hub"
                    )
                })?;
            let path = write_pair(
                &out,
                &package::file_name(&signed.fields.package_id, ".outcome.xml")?,
                signed.xml.as_bytes(),
                &signed.signature,
            )?;
            println!("{}", path.display());
        }
        ExchangeCommand::Outcome {
            municipality,
            outcome,
            signature,
            actor,
        } => {
            let bytes = std::fs::read(&outcome)?;
            let signature = read_signature(&signature_path(&outcome, signature))?;
            let audit = entry(&municipality, &actor, "transfer.outcome.import");
            let transfer =
                exchange::import_outcome(&mut conn, &bytes, &signature, &municipality, &audit)
                    .map_err(explain)?;
            let decided = exchange::outcome(&mut conn, transfer.id)
                .map_err(explain)?
                .map(|o| {
                    o.fields
                        .children
                        .iter()
                        .map(|c| match c.reason {
                            Some(reason) => format!("{} ({})", c.decision.as_str(), reason.code()),
                            None => c.decision.as_str().to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            println!(
                "transfer {} {}; destination decided: {decided}",
                transfer.id, transfer.status
            );
        }
    }
    Ok(())
}
