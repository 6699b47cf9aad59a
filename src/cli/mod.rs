//! The `kodomo-hub` command line: serve, migrate, admin, demo.

mod conformance;
mod indicators;

use std::io::Write;

mod exchange;

use crate::auth::Principal;
use crate::ingest::files::ExportFormat;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::api::{self, AppState, Limits};
use crate::auth::{self, Role};
use crate::demo;
use crate::ingest::Ingestor;
use crate::schema::{Standard, rules};
use crate::store::{Location, Store, clients};

#[derive(Parser)]
#[command(
    name = "kodomo-hub",
    version,
    about = "Children's data linkage hub (こどもデータ連携)"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the data lives; every command that touches the database takes these.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// Directory for the embedded SQLite database.
    #[arg(long, env = "KODOMO_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL (or a SQLite file path); overrides --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// The secret that keys the audit chains (created 0600 on a new hub; default
    /// <data-dir>/audit.key). Every process of one hub must use the same file; back it up.
    #[arg(long, env = "KODOMO_AUDIT_KEY_FILE", global = true)]
    pub audit_key_file: Option<PathBuf>,
    /// The hub's Ed25519 signing key (created 0600 on a new hub; default
    /// <data-dir>/signing.key). Peer hubs trust its public half; back it up.
    #[arg(long, env = "KODOMO_SIGNING_KEY_FILE", global = true)]
    pub signing_key_file: Option<PathBuf>,
}

impl DbArgs {
    pub fn location(&self) -> Location {
        Location::resolve(self.database_url.as_deref(), &self.data_dir)
    }

    /// Where the key files are: as given, else in the data directory (made private to the
    /// hub's user when the hub keeps its keys there).
    pub fn key_paths(&self) -> anyhow::Result<crate::keys::KeyPaths> {
        let defaults = crate::keys::KeyPaths::in_dir(&self.data_dir);
        if self.audit_key_file.is_none() || self.signing_key_file.is_none() {
            crate::keys::ensure_private_dir(&self.data_dir)?;
        }
        Ok(crate::keys::KeyPaths {
            audit: self.audit_key_file.clone().unwrap_or(defaults.audit),
            signing: self.signing_key_file.clone().unwrap_or(defaults.signing),
        })
    }

    pub fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.location(), &self.key_paths()?)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve {
        /// Address and port to listen on (plain HTTP only on loopback, see --insecure-listen).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Server certificate chain (PEM); with --tls-key the hub serves HTTPS only.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// Private key of the server certificate (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// CA (PEM) whose certificates clients must present (mutual TLS).
        #[arg(long, requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
        #[arg(long)]
        insecure_listen: bool,
        /// Requests per second each client may make (bursts up to twice as many).
        #[arg(long, default_value_t = 2000)]
        rate_limit: u32,
        /// Failed authentications each source address may make in a minute; beyond it the
        /// address gets 429 and its failures are counted into the next audit entry.
        #[arg(long, env = "KODOMO_FAILED_AUTH_PER_MINUTE", default_value_t = 30)]
        failed_auth_per_minute: u32,
        /// Seconds an Idempotency-Key stays reserved after its request stopped renewing it
        /// (its server process died); a retry then runs. Renewed every third of it.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=86_400))]
        idempotency_lease_secs: u64,
        /// NDJSON streams one client may push at the same time (more are answered 429).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
        max_streams_per_client: u64,
        /// Seconds a request body may pause before the request is answered 408.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        body_idle_timeout_secs: u64,
        /// Load the synthetic demo council into an empty database.
        #[arg(long)]
        demo: bool,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        disclosure: indicators::DisclosureArgs,
    },
    /// Apply database migrations.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage municipalities and clients.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Import files (CSV in UTF-8 or CP932, NDJSON, JSON) through the same validation and
    /// upsert path as the API; resumable after an interruption.
    Import {
        /// The town the records belong to (6-digit code).
        #[arg(long)]
        municipality: String,
        /// Source system the records come from (records are keyed by it).
        #[arg(long)]
        source: String,
        /// Record type of CSV rows without a record_type column.
        #[arg(long)]
        record_type: Option<String>,
        /// CSV encoding (utf-8 or cp932); detected when omitted.
        #[arg(long)]
        encoding: Option<String>,
        /// Files to import (CSV, NDJSON or JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Export current records of one type as CSV or NDJSON (imports back as is).
    Export {
        /// The town whose records are exported.
        #[arg(long)]
        municipality: String,
        /// Record type to export (see GET /v1/schemas).
        #[arg(long)]
        record_type: String,
        /// Only records of this source (default: every source).
        #[arg(long)]
        source: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// `cp932` writes Shift_JIS for systems that need it.
        #[arg(long, default_value = "utf-8")]
        encoding: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Transfers between towns of this hub (転出入時の引継ぎ).
    Transfer {
        #[command(subcommand)]
        command: TransferCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Anonymised outcome indicators: releases and their disclosure audit.
    Indicators {
        #[command(subcommand)]
        command: indicators::IndicatorsCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// The identity review queue (名寄せ).
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Print the OpenAPI document (the committed openapi/openapi.json is this output).
    Openapi {
        /// Print instead the openapi-python-client configuration that gives generated classes
        /// ASCII names (the committed openapi/python-client.json).
        #[arg(long)]
        python_client_config: bool,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Measure the hub side by side with the raw limit of its database.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
        #[command(flatten)]
        db: DbArgs,
        /// Where to write the results as JSON.
        #[arg(long, default_value = "bench-results", global = true)]
        out: PathBuf,
    },
    /// The conformance kit: check export files offline or a server's API (see conformance/).
    Conformance {
        #[command(subcommand)]
        command: conformance::ConformanceCommand,
    },
    /// Load the synthetic demo council (synthetic children only) and print its tokens.
    Demo {
        /// Synthetic households per town.
        #[arg(long, default_value_t = 60)]
        households_per_town: u64,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Raw insert vs the hub's full ingest path (library, HTTP NDJSON, HTTP JSON).
    Ingest {
        /// Synthetic records to ingest.
        /// Records frozen with them.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
    /// A household transfer (10 children, 5,000 records) offered and accepted.
    Transfer {
        /// Children in the household.
        /// Synthetic children written into the empty database.
        #[arg(long, default_value_t = 10)]
        children: usize,
        #[arg(long, default_value_t = 5000)]
        records: usize,
    },
    /// Identity resolution precision on synthetic children with realistic perturbations.
    Matching {
        /// Children in the register.
        #[arg(long, default_value_t = 10_000)]
        children: usize,
        /// Seed of the synthetic perturbations (same seed, same run).
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// National indicators over synthetic children written into an empty database.
    Indicators {
        /// Children in all.
        #[arg(long, default_value_t = 1_000_000)]
        children: usize,
        /// Towns (with --realistic; default 1,741, every municipality of Japan).
        #[arg(long, requires = "realistic")]
        towns: Option<usize>,
        /// Japan's skewed town populations (many small towns, so many small cells) instead
        /// of uniform towns of 10,000 children.
        #[arg(long)]
        realistic: bool,
    },
    /// Medians of profile reads a caller may not see (missing, another town's, DV without the
    /// role, opted out in a screening view) beside a missing child's.
    Access {
        /// Requests per case.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Records each child holds (the work a visible profile does).
        #[arg(long, default_value_t = 200)]
        records: usize,
    },
    /// Single-record pushes at a fixed rate over loopback; prints p50/p95/p99/max.
    Latency {
        /// Pushes per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// How long to push.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Towns (municipalities).
    Municipality {
        #[command(subcommand)]
        command: MunicipalityCommand,
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
enum MunicipalityCommand {
    /// Register a town by its 6-digit code (check digit verified).
    Add {
        code: String,
        name: String,
        /// The joint-use council (共同利用) the town belongs to.
        #[arg(long)]
        council: Option<String>,
        /// Population (decides the disclosure floor of its indicators).
        #[arg(long)]
        population: Option<i64>,
    },
    List,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client; its bearer token is printed once and only its hash is stored.
    Add {
        /// The town the client is bound to.
        #[arg(long)]
        municipality: String,
        /// Client name (unique within the town; a source's records are keyed by it).
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
    List,
    /// Revoke a client; its token stops working at once.
    Revoke {
        /// The client's town.
        #[arg(long)]
        municipality: String,
        /// The client's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// List queue items with their candidates and the fields that differ.
    List {
        /// The town whose queue is listed.
        #[arg(long)]
        municipality: String,
        /// Which items to list.
        #[arg(long, value_enum, default_value = "review")]
        status: crate::identity::QueueStatus,
    },
    /// Link a queued record to a subject.
    Confirm {
        /// The town of the queue item.
        #[arg(long)]
        municipality: String,
        /// Queue item id (see review list).
        #[arg(long)]
        id: i64,
        /// The subject (宛名番号) the record is about.
        #[arg(long)]
        resident_no: String,
        /// Staff member deciding (recorded in the audit trail).
        #[arg(long)]
        actor: String,
    },
    /// None of the candidates is this child.
    Reject {
        /// The town of the queue item.
        #[arg(long)]
        municipality: String,
        /// Queue item id (see review list).
        #[arg(long)]
        id: i64,
        /// Staff member deciding (recorded in the audit trail).
        #[arg(long)]
        actor: String,
    },
}

/// Free text the hub stores (a legal basis, a note, an officer's name): not blank, at most
/// 2,000 characters, and no My Number however written — the API's rule for the same fields.
pub(crate) fn free_text(text: &str) -> Result<String, String> {
    match crate::schema::rules::free_text_problem("", text, 2000) {
        Some(problem) => Err(problem.message),
        None => Ok(text.to_string()),
    }
}

#[derive(Subcommand)]
enum TransferCommand {
    /// Transfers of a town: inbox, outbox, held, arrivals (held transfers whose family may
    /// have arrived in this town) or escalated (open past the deadline; the named officer each
    /// is escalated to is listed).
    List {
        /// The town whose transfers are listed.
        #[arg(long)]
        municipality: String,
        /// Which box to list.
        #[arg(long, value_enum, default_value = "inbox")]
        r#box: crate::transfer::TransferBox,
    },
    /// Offer a household's children to a destination town (omit --destination to hold).
    Offer {
        /// The origin town.
        #[arg(long)]
        municipality: String,
        /// Destination town; omit when the family left for an unknown town (held).
        #[arg(long)]
        destination: Option<String>,
        /// Origin resident numbers of the children.
        #[arg(long, value_delimiter = ',', required = true)]
        children: Vec<String>,
        /// Legal basis of the provision (e.g. 個人情報保護法第69条第2項第3号).
        #[arg(long, value_parser = free_text)]
        legal_basis: String,
        /// Why the origin transfers.
        #[arg(long, value_enum)]
        reason: crate::transfer::TransferReason,
        /// Free note to the destination (no personal data beyond the transfer).
        #[arg(long, value_parser = free_text)]
        note: Option<String>,
        /// Days the destination has to answer before the transfer is escalated (1–365).
        #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(i64).range(1..=365))]
        deadline_days: i64,
        /// The officer an unanswered transfer is escalated to.
        #[arg(long, value_parser = free_text)]
        escalate_to: String,
        /// Officer offering (recorded in the audit trail).
        #[arg(long, value_parser = free_text)]
        actor: String,
    },
    #[command(flatten)]
    BetweenHubs(exchange::ExchangeCommand),
}

#[derive(Subcommand)]
enum GaijiCommand {
    /// Import a 外字 conversion table: `code_point,standard[,note]` (e.g. `U+E001,髙`).
    Import {
        file: PathBuf,
        /// Municipality the table is for (default: the whole council).
        #[arg(long)]
        municipality: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a new token for a client; the old one stops working at once.
    Rotate {
        /// The client's town.
        #[arg(long)]
        municipality: String,
        /// The client's name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every chain (one per municipality, plus `hub`), recomputing the keyed hashes, and
    /// report the first broken entry.
    Verify {
        /// A signed head printed earlier by `audit head`: the chains must still reach it.
        #[arg(long)]
        expect_head: Option<PathBuf>,
    },
    /// Print a signed head of the (verified) chains, to keep outside the hub.
    Head {
        /// Only these chains (a municipality code, or `hub`); default all.
        #[arg(long = "chain", value_delimiter = ',')]
        chains: Vec<String>,
    },
}

fn audit(command: AuditCommand, store: &Store) -> anyhow::Result<()> {
    let mut conn = store.conn()?;
    let verification = crate::audit::verify(&mut conn, &store.keys().audit)?;
    match command {
        AuditCommand::Verify { expect_head } => {
            if let Some((seq, why)) = verification.broken_at {
                anyhow::bail!("audit trail broken at entry {seq}: {why}");
            }
            let anchored = match expect_head {
                None => String::new(),
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("read {}", path.display()))?;
                    let head: crate::audit::SignedHead =
                        serde_json::from_str(&text).with_context(|| {
                            format!("{} is not a signed audit head", path.display())
                        })?;
                    let key = store.keys().signing.verifying_key();
                    if let Err(why) = crate::audit::check_head(&mut conn, &head, &key)? {
                        anyhow::bail!("audit trail does not match {}: {why}", path.display());
                    }
                    format!("; it reaches the signed head of {}", head.body.taken_at)
                }
            };
            println!(
                "audit trail intact: {} entries in {} chains{anchored}",
                verification.entries,
                verification.heads.len()
            );
            Ok(())
        }
        AuditCommand::Head { chains } => {
            let head = crate::audit::sign_head(&verification, &chains, &store.keys().signing)?;
            println!("{}", serde_json::to_string_pretty(&head)?);
            Ok(())
        }
    }
}

/// How the admin CLI names itself in the audit trail.
const ADMIN_CLI: &str = "admin-cli";

pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: a log written to a file or a journal
        // keeps no escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if conformance::invoked() && e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(conformance::USAGE_ERROR);
        }
        Err(e) => e.exit(),
    };
    if let Command::Conformance { command } = cli.command {
        return conformance::run(command);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            client_ca,
            insecure_listen,
            rate_limit,
            failed_auth_per_minute,
            idempotency_lease_secs,
            max_streams_per_client,
            body_idle_timeout_secs,
            demo,
            db,
            disclosure,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(crate::auth::tls::server_config(
                    cert,
                    key,
                    client_ca.as_deref(),
                )?),
                _ => None,
            };
            let loopback = listen
                .parse::<std::net::SocketAddr>()
                .map(|a| a.ip().is_loopback())
                .unwrap_or_else(|_| listen.starts_with("localhost:"));
            if tls.is_none() && !loopback && !insecure_listen {
                anyhow::bail!(
                    "refusing plain HTTP on {listen}: configure --tls-cert/--tls-key, or pass --insecure-listen if a TLS proxy sits in front"
                );
            }
            if tls.is_none() {
                eprintln!(
                    "no TLS configured: serving plain HTTP on {listen} (loopback only unless --insecure-listen)"
                );
            }
            let store = db.open()?;
            if demo {
                load_demo_if_empty(&store, &db, 60)?;
            }
            let limits = Limits {
                idempotency_lease: std::time::Duration::from_secs(idempotency_lease_secs),
                max_streams_per_client: max_streams_per_client as usize,
                body_idle_timeout: std::time::Duration::from_secs(body_idle_timeout_secs),
                ..Limits::default()
            };
            let mut state = AppState::new(store, limits);
            state.rate_limit = api::RateLimit::new(rate_limit);
            state.failed_auth = api::FailedAuthThrottle::new(failed_auth_per_minute);
            state.disclosure = disclosure.config();
            actix_web::rt::System::new().block_on(api::serve(state, &listen, tls))?;
            Ok(())
        }
        Command::Migrate { db } => {
            let ran = Store::migrate_only(&db.location())?;
            println!("{ran} migrations applied ({})", describe(&db));
            Ok(())
        }
        Command::Demo {
            households_per_town,
            db,
        } => {
            let store = db.open()?;
            if !load_demo_if_empty(&store, &db, households_per_town)? {
                anyhow::bail!(
                    "the database already holds municipalities; the demo loads only into an empty database"
                );
            }
            Ok(())
        }
        Command::Admin { command, db } => admin(command, &db.open()?),
        Command::Import {
            municipality,
            source,
            record_type,
            encoding,
            files,
            db,
        } => import(
            &db.open()?,
            &municipality,
            &source,
            record_type.as_deref(),
            encoding.as_deref(),
            &files,
        ),
        Command::Export {
            municipality,
            record_type,
            source,
            format,
            encoding,
            db,
        } => {
            let store = db.open()?;
            let records = crate::store::records::current_of_type(
                &mut store.conn()?,
                &municipality,
                &record_type,
                source.as_deref(),
            )?;
            let ingestor = Ingestor::new(Arc::new(Standard::load()));
            let cp932 = matches!(
                encoding.to_ascii_lowercase().as_str(),
                "cp932" | "shift_jis" | "sjis"
            );
            let bytes =
                crate::ingest::files::export(&records, &ingestor, &record_type, format, cp932)
                    .map_err(anyhow::Error::msg)?;
            std::io::stdout().write_all(&bytes)?;
            eprintln!("{} {record_type} records exported", records.len());
            Ok(())
        }
        Command::Review { command, db } => review(command, &db.open()?),
        Command::Indicators { command, db } => indicators::run(command, &db.open()?),
        Command::Transfer { command, db } => transfer(command, &db.open()?),
        Command::Conformance { .. } => unreachable!("handled in main for its exit codes"),
        Command::Openapi {
            python_client_config,
        } => {
            let standard = Standard::load();
            if python_client_config {
                print!("{}", api::openapi::python_client_config_text(&standard));
            } else {
                print!("{}", api::openapi::document_text(&standard));
            }
            Ok(())
        }
        Command::Audit { command, db } => audit(command, &db.open()?),
        Command::Bench { command, db, out } => {
            let backend = match db.location() {
                Location::Postgres(_) => "postgresql",
                Location::Sqlite(_) => "sqlite",
            };
            let store = db.open()?;
            std::fs::create_dir_all(&out)?;
            let (name, result) = match command {
                BenchCommand::Ingest { records } => (
                    "ingest",
                    serde_json::to_value(crate::bench::ingest(store, backend, records)?)?,
                ),
                BenchCommand::Transfer { children, records } => (
                    "transfer",
                    serde_json::to_value(crate::bench::transfer::transfer(
                        store, backend, children, records,
                    )?)?,
                ),
                BenchCommand::Matching { children, seed } => (
                    "matching",
                    serde_json::to_value(crate::bench::matching::matching(store, children, seed)?)?,
                ),
                BenchCommand::Indicators {
                    children,
                    towns,
                    realistic,
                } => (
                    "indicators",
                    serde_json::to_value(crate::bench::indicators::indicators(
                        store,
                        backend,
                        &crate::bench::indicators::Shape {
                            children,
                            towns,
                            realistic,
                        },
                    )?)?,
                ),
                BenchCommand::Access { requests, records } => (
                    "access",
                    serde_json::to_value(crate::bench::access::access(
                        store, backend, requests, records,
                    )?)?,
                ),
                BenchCommand::Latency { rate, seconds } => (
                    "latency",
                    serde_json::to_value(crate::bench::latency(store, backend, rate, seconds)?)?,
                ),
            };
            let text = serde_json::to_string_pretty(&result)?;
            println!("{text}");
            let path = out.join(format!("{name}-{backend}.json"));
            std::fs::write(&path, text + "\n")?;
            eprintln!("results written to {}", path.display());
            Ok(())
        }
    }
}

fn describe(db: &DbArgs) -> String {
    match db.location() {
        Location::Postgres(_) => "PostgreSQL".into(),
        Location::Sqlite(path) => format!("SQLite at {}", path.display()),
    }
}

/// Load the demo into an empty database; prints tokens and writes them to
/// `<data-dir>/demo-tokens.env` so the README's examples can use them.
fn load_demo_if_empty(store: &Store, db: &DbArgs, households: u64) -> anyhow::Result<bool> {
    let mut conn = store.conn()?;
    if !clients::list_municipalities(&mut conn)?.is_empty() {
        return Ok(false);
    }
    let ingestor = Ingestor::new(Arc::new(Standard::load()));
    let tokens = demo::load(&mut conn, &ingestor, households)?;
    crate::keys::ensure_private_dir(&db.data_dir)?;
    let env_path = db.data_dir.join("demo-tokens.env");
    // Bearer tokens: readable by the hub's user only.
    let mut env = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&env_path)?
    };
    crate::keys::make_private(&env_path)?;
    println!("Demo council loaded (synthetic data only). Tokens (shown once):");
    let first_town = tokens.lines[0].0.clone();
    for (municipality, name, token) in &tokens.lines {
        println!("  {municipality} {name:<14} {token}");
        let var = format!(
            "KH_{}_{}",
            name.to_uppercase().replace('-', "_"),
            municipality
        );
        writeln!(env, "{var}={token}")?;
        if *municipality == first_town {
            let short = format!("KH_{}", name.to_uppercase().replace('-', "_"));
            writeln!(env, "{short}={token}")?;
        }
    }
    writeln!(env, "KH_TOWN={}", tokens.lines[0].0)?;
    println!("Tokens also written to {}", env_path.display());
    Ok(true)
}

fn admin(command: AdminCommand, store: &Store) -> anyhow::Result<()> {
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
        AdminCommand::Client { command } => match command {
            ClientCommand::Add {
                municipality,
                name,
                role,
                record_types,
                cert_fingerprint,
            } => {
                if clients::municipality(&mut conn, &municipality)?.is_none() {
                    anyhow::bail!("municipality {municipality} is not registered");
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
                        municipality_code: &municipality,
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
                    "client {name} added to {municipality}; the token above is shown only once"
                );
            }
            ClientCommand::Revoke { municipality, name } => {
                if !clients::revoke_client(&mut conn, &municipality, &name, ADMIN_CLI)? {
                    anyhow::bail!("no active client {name:?} in {municipality}");
                }
                println!("client {name} of {municipality} revoked");
            }
            ClientCommand::List => {
                for c in clients::list_clients(&mut conn)? {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        c.id,
                        c.municipality_code,
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
            command: TokenCommand::Rotate { municipality, name },
        } => {
            let (token, hash) = auth::new_token();
            if !clients::rotate_token(&mut conn, &municipality, &name, &hash, ADMIN_CLI)? {
                anyhow::bail!("no active client {name:?} in {municipality}");
            }
            println!("{token}");
            eprintln!("new token for {name} of {municipality}; the old token no longer works");
        }
    }
    Ok(())
}

fn import(
    store: &Store,
    municipality: &str,
    source: &str,
    record_type: Option<&str>,
    encoding: Option<&str>,
    files: &[PathBuf],
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let mut conn = store.conn()?;
    if clients::municipality(&mut conn, municipality)?.is_none() {
        anyhow::bail!("municipality {municipality} is not registered");
    }
    let ingestor = Ingestor::new(Arc::new(Standard::load()));
    let submission = crate::ingest::Submission {
        municipality: municipality.to_string(),
        source: source.to_string(),
        allowed_types: None,
        client_id: None,
    };
    for file in files {
        // A progress bar with rate and ETA on a terminal; nothing when output is captured.
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} records {per_sec} eta {eta}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_message(file.display().to_string());
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let state = crate::ingest::files::import_file(
            &mut conn,
            &ingestor,
            &submission,
            file,
            record_type,
            encoding,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )?;
        bar.finish_and_clear();
        let outputs = crate::ingest::files::Outputs::beside(file);
        println!(
            "{}: {} records, {} created, {} updated, {} unchanged, {} rejected (errors: {}, summary: {})",
            file.display(),
            state.total,
            state.created,
            state.updated,
            state.unchanged,
            state.rejected,
            outputs.errors.display(),
            outputs.summary.display()
        );
    }
    Ok(())
}

fn review(command: ReviewCommand, store: &Store) -> anyhow::Result<()> {
    use crate::store::identity::{self as queue, Verdict};
    let mut conn = store.conn()?;
    let decide = |conn: &mut crate::store::DbConn,
                  municipality: &str,
                  id: i64,
                  verdict: Verdict,
                  actor: &str,
                  subject: Option<String>| {
        let entry = crate::audit::AuditEntry {
            municipality_code: municipality.to_string(),
            client_name: Some("review-cli".into()),
            actor: Some(actor.to_string()),
            subject,
            action: if matches!(verdict, Verdict::Confirm(..)) {
                "identity.confirm"
            } else {
                "identity.reject"
            }
            .into(),
            result: "ok".into(),
            detail: Some(serde_json::json!({"queue_item": id}).to_string()),
            ..Default::default()
        };
        queue::decide(conn, municipality, id, verdict, actor, &entry)
    };
    match command {
        ReviewCommand::List {
            municipality,
            status,
        } => {
            for item in queue::queue(&mut conn, &municipality, status)? {
                let candidates: Vec<String> = item
                    .candidates()
                    .iter()
                    .map(|c| {
                        if c.differing_fields.is_empty() {
                            format!("{} (all agree)", c.resident_no)
                        } else {
                            format!(
                                "{} (differs: {})",
                                c.resident_no,
                                c.differing_fields.join(", ")
                            )
                        }
                    })
                    .collect();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    item.id,
                    item.source_record_id,
                    item.status,
                    item.reason,
                    candidates.join("; ")
                );
            }
        }
        ReviewCommand::Confirm {
            municipality,
            id,
            resident_no,
            actor,
        } => {
            let item = decide(
                &mut conn,
                &municipality,
                id,
                Verdict::Confirm(&resident_no, true),
                &actor,
                Some(resident_no.clone()),
            )?;
            println!("queue item {} linked to {}", item.id, resident_no);
        }
        ReviewCommand::Reject {
            municipality,
            id,
            actor,
        } => {
            let item = decide(&mut conn, &municipality, id, Verdict::Reject, &actor, None)?;
            println!("queue item {} rejected", item.id);
        }
    }
    Ok(())
}

fn transfer(command: TransferCommand, store: &Store) -> anyhow::Result<()> {
    use crate::store::transfers;
    let mut conn = store.conn()?;
    match command {
        TransferCommand::BetweenHubs(command) => return exchange::exchange(command, store),
        TransferCommand::List {
            municipality,
            r#box,
        } => {
            // The operator at the hub's console acts for the town with every role, so the
            // policy shows it every transfer the town is a party to.
            let operator = Principal::console_operator(&municipality);
            for t in crate::transfer::workflow::mailbox(&mut conn, &operator, r#box)? {
                println!(
                    "{}\t{} -> {}\t{}\tdeadline {}\tescalate to {}{}",
                    t.id,
                    t.municipality_code,
                    t.destination_code.as_deref().unwrap_or("(unknown)"),
                    t.status,
                    t.deadline,
                    t.escalate_to,
                    t.escalated_at
                        .map(|at| format!("\tESCALATED {at}"))
                        .unwrap_or_default()
                );
            }
        }
        TransferCommand::Offer {
            municipality,
            destination,
            children,
            legal_basis,
            reason,
            note,
            deadline_days,
            escalate_to,
            actor,
        } => {
            let entry = crate::audit::AuditEntry {
                municipality_code: municipality.clone(),
                client_name: Some("transfer-cli".into()),
                actor: Some(actor.clone()),
                legal_basis: Some(legal_basis.clone()),
                action: "transfer.offer".into(),
                result: "ok".into(),
                ..Default::default()
            };
            let id = transfers::create(
                &mut conn,
                &transfers::NewTransfer {
                    origin: &municipality,
                    destination: destination.as_deref(),
                    children: &children,
                    legal_basis: &legal_basis,
                    reason,
                    note: note.as_deref(),
                    offered_by: &actor,
                    deadline_days,
                    escalate_to: &escalate_to,
                },
                &entry,
            )?;
            println!(
                "transfer {id} {}",
                if destination.is_some() {
                    "offered"
                } else {
                    "held"
                }
            );
        }
    }
    Ok(())
}
