//! The `kodomo-hub` command line: one module per command (serve and migrate stay here).

mod admin;
mod audit;
mod conformance;
mod exchange;
mod files;
mod indicators;
mod review;
mod sandbox;
mod screening;
#[cfg(feature = "tools")]
mod tools;
mod transfer;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::api::{self, AppState, Limits};
use crate::ingest::Ingestor;
use crate::ingest::files::ExportFormat;
use crate::schema::Standard;
use crate::store::{Location, Store};

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
        /// Failed authentications each source address may make in a minute; beyond it wrong
        /// tokens from the address get 429 (a valid token is never refused for its address)
        /// and the failures are counted into the next audit entry.
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
        #[cfg(feature = "tools")]
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
        command: admin::AdminCommand,
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
        command: transfer::TransferCommand,
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
    /// Screening worklists (判定・抽出) for a case meeting, which decides.
    Screening {
        #[command(subcommand)]
        command: screening::ScreeningCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// The identity review queue (名寄せ).
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
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
        command: audit::AuditCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Measure the hub side by side with the raw limit of its database.
    #[cfg(feature = "tools")]
    Bench {
        #[command(subcommand)]
        command: tools::BenchCommand,
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
    #[cfg(feature = "tools")]
    Demo {
        /// Synthetic households per town.
        #[arg(long, default_value_t = 60)]
        households_per_town: u64,
        #[command(flatten)]
        db: DbArgs,
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

/// Is `listen` (address:port) a loopback address?
pub(crate) fn is_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or_else(|_| listen.starts_with("localhost:"))
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
            #[cfg(feature = "tools")]
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
            if tls.is_none() && !is_loopback(&listen) && !insecure_listen {
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
            #[cfg(feature = "tools")]
            if demo {
                tools::load_demo_if_empty(&store, &db, 60)?;
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
        #[cfg(feature = "tools")]
        Command::Demo {
            households_per_town,
            db,
        } => {
            let store = db.open()?;
            if !tools::load_demo_if_empty(&store, &db, households_per_town)? {
                anyhow::bail!(
                    "the database already holds municipalities; the demo loads only into an empty database"
                );
            }
            Ok(())
        }
        Command::Admin { command, db } => admin::admin(command, &db.open()?),
        Command::Import {
            municipality,
            source,
            record_type,
            encoding,
            files,
            db,
        } => files::import(
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
        Command::Review { command, db } => review::review(command, &db.open()?),
        Command::Indicators { command, db } => indicators::run(command, &db.open()?),
        Command::Screening { command, db } => screening::run(command, &db.open()?),
        Command::Transfer { command, db } => transfer::transfer(command, &db.open()?),
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
        Command::Audit { command, db } => audit::audit(command, &db.open()?),
        #[cfg(feature = "tools")]
        Command::Bench { command, db, out } => tools::bench(command, &db, &out),
    }
}

fn describe(db: &DbArgs) -> String {
    match db.location() {
        Location::Postgres(_) => "PostgreSQL".into(),
        Location::Sqlite(path) => format!("SQLite at {}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command, option and argument says what it is for in `--help`.
    #[test]
    fn every_command_and_option_has_a_help_line() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "kodomo-hub", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:#?}");
    }
}
