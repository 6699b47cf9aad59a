//! `kodomo-hub conformance …`: the conformance kit's command line (exit codes: 0 conformant,
//! 1 a SHALL test failed, 2 incomplete, 3 usage error, 4 tool error).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use crate::conformance::{self, Capabilities, Run, catalog, files, report, server, vectors};
use crate::ingest::Ingestor;
use crate::schema::Standard;

pub const USAGE_ERROR: u8 = 3;
pub const TOOL_ERROR: u8 = 4;

#[derive(Subcommand)]
pub enum ConformanceCommand {
    /// Check export files (JSON, NDJSON, CSV in UTF-8 or CP932) offline, without a hub.
    Files {
        /// Major schema version the files claim to follow.
        #[arg(long)]
        schema_version: u32,
        /// Where result.json, junit.xml and report.html go.
        #[arg(long, default_value = "conformance-report")]
        out: PathBuf,
        /// Files or directories (walked) to check.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run the API scenarios against a server that claims to implement the hub API.
    Server {
        /// Base URL of the server under test (e.g. http://127.0.0.1:8080 or https://…).
        #[arg(long)]
        base_url: String,
        /// CA certificates (PEM) that sign the server's certificate, for a private CA; the
        /// public web roots are trusted otherwise.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Client certificate chain (PEM) to present for mutual TLS.
        #[arg(long, requires = "client_key")]
        client_cert: Option<PathBuf>,
        /// Private key (PEM) of the client certificate.
        #[arg(long, requires = "client_cert")]
        client_key: Option<PathBuf>,
        /// Environment variable holding a `source` token of the municipality.
        #[arg(long)]
        token_env: String,
        /// Environment variable holding a token that may read the change feed (caseworker);
        /// the source token is used when omitted.
        #[arg(long)]
        reader_token_env: Option<String>,
        /// The municipality (6-digit code) the tokens belong to.
        #[arg(long)]
        municipality: String,
        /// The municipality's name, printed in report.html (e.g. 〇〇市).
        #[arg(long)]
        municipality_name: Option<String>,
        /// Record type the scenarios push (the token must be allowed to push it).
        #[arg(long, default_value = "school-attendance")]
        record_type: String,
        /// JSON file declaring optional features: {"features": [...], "max_batch_records": N}.
        #[arg(long)]
        capabilities: Option<PathBuf>,
        /// Major version of the standard to test against.
        #[arg(long, default_value = "1")]
        schema_version: u32,
        /// Directory for result.json, junit.xml and report.html.
        #[arg(long, default_value = "conformance-report")]
        out: PathBuf,
    },
    /// Start a sandbox hub for a vendor's client to push to: it injects 429, 503, a slow
    /// answer, a lost answer and a partial rejection, and judges how the client retried.
    Client {
        /// Address the sandbox listens on (loopback only unless --insecure-listen; port 0
        /// takes any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8480")]
        listen: String,
        /// Allow a non-loopback --listen address (plain HTTP; the sandbox holds only what
        /// the client sends it).
        #[arg(long)]
        insecure_listen: bool,
        /// Seconds to wait for the client to go through the plan; incomplete (exit 2) if it
        /// has not.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        time_limit_secs: u64,
        /// Seconds the client must stay quiet after the plan for the run to end (longer
        /// than any Retry-After the sandbox sends).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(3..=3600))]
        quiet_secs: u64,
        /// Seconds the plan's slow answer is held back.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        slow_secs: u64,
        /// The client's product name, printed in the reports.
        #[arg(long)]
        client_name: Option<String>,
        /// Major version of the standard the sandbox hub serves.
        #[arg(long, default_value = "1")]
        schema_version: u32,
        /// Directory for result.json, junit.xml and report.html.
        #[arg(long, default_value = "conformance-report")]
        out: PathBuf,
    },
    /// List every test id with its level and requirement.
    List,
    /// Explain one test id: requirement, level, source, where it is verified.
    Explain {
        /// A test id such as KDL-API-014.
        id: String,
    },
    /// Regenerate the test vectors from the schemas (committed under conformance/vectors).
    GenerateVectors {
        /// Directory the vectors are written to.
        #[arg(long, default_value = "conformance/vectors")]
        out: PathBuf,
    },
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("usage error: {message}");
    ExitCode::from(USAGE_ERROR)
}

fn tool_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tool error: {message}");
    ExitCode::from(TOOL_ERROR)
}

fn finish(run: &Run, out: &std::path::Path) -> ExitCode {
    if let Err(e) = report::write_all(run, out) {
        return tool_error(format!(
            "cannot write the reports to {}: {e}",
            out.display()
        ));
    }
    for test in &run.tests {
        println!(
            "{:<13} {:<6} {:<14} {}",
            test.id,
            test.level.as_str(),
            test.status.as_str(),
            test.issues.len()
        );
    }
    // Why tests were left unverified or failed to run, each reason once with its tests.
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for test in run.tests.iter().filter(|t| {
        matches!(
            t.status,
            conformance::Status::Incomplete | conformance::Status::Error
        )
    }) {
        let reason = test.reason.as_deref().unwrap_or("no reason given");
        match reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, ids)) => ids.push(&test.id),
            None => reasons.push((reason, vec![&test.id])),
        }
    }
    for (reason, ids) in reasons {
        println!("{}: {reason}", ids.join(", "));
    }
    println!(
        "verdict: {} — reports in {}",
        serde_json::to_value(run.verdict)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        out.display()
    );
    ExitCode::from(run.verdict.exit_code())
}

pub fn run(command: ConformanceCommand) -> ExitCode {
    let standard = Arc::new(Standard::load());
    match command {
        ConformanceCommand::Files {
            schema_version,
            out,
            paths,
        } => {
            let Some(version) = standard.major(schema_version) else {
                return usage(format!("schema version {schema_version} is not supported"));
            };
            let found = match files::collect(&paths) {
                Ok(found) => found,
                Err(e) => return usage(e),
            };
            if found.is_empty() {
                return usage("no .json, .ndjson, .jsonl, .csv or .xml file among the paths");
            }
            let ingestor = Ingestor::new(standard.clone());
            let run = files::run(&ingestor, version, &found);
            finish(&run, &out)
        }
        ConformanceCommand::Server {
            base_url,
            ca_file,
            client_cert,
            client_key,
            token_env,
            reader_token_env,
            municipality,
            municipality_name,
            record_type,
            capabilities,
            schema_version,
            out,
        } => {
            let Some(version) = standard.major(schema_version) else {
                return usage(format!("schema version {schema_version} is not supported"));
            };
            if !version.records.contains_key(&record_type) {
                return usage(format!("unknown record type {record_type}"));
            }
            let Ok(token) = std::env::var(&token_env) else {
                return usage(format!("environment variable {token_env} is not set"));
            };
            let reader_token = match reader_token_env {
                Some(name) => match std::env::var(&name) {
                    Ok(token) => Some(token),
                    Err(_) => return usage(format!("environment variable {name} is not set")),
                },
                None => None,
            };
            let (capabilities, inputs) = match capabilities {
                Some(path) => match Capabilities::load(&path) {
                    Ok((capabilities, input)) => (capabilities, vec![input]),
                    Err(e) => return usage(format!("capabilities file {}: {e}", path.display())),
                },
                None => (Capabilities::default(), Vec::new()),
            };
            let client = client_cert.as_deref().zip(client_key.as_deref());
            let tls = match server::tls_config(ca_file.as_deref(), client) {
                Ok(tls) => tls,
                Err(e) => return usage(e),
            };
            let target = server::Target {
                base_url,
                token,
                reader_token,
                municipality,
                municipality_name,
                record_type,
                tls,
            };
            let run = server::run(&target, &capabilities, inputs, version);
            finish(&run, &out)
        }
        ConformanceCommand::Client {
            listen,
            insecure_listen,
            time_limit_secs,
            quiet_secs,
            slow_secs,
            client_name,
            schema_version,
            out,
        } => {
            let Some(version) = standard.major(schema_version) else {
                return usage(format!("schema version {schema_version} is not supported"));
            };
            if !super::is_loopback(&listen) && !insecure_listen {
                return usage(format!(
                    "refusing to listen on {listen}: the sandbox answers on loopback only unless --insecure-listen"
                ));
            }
            let settings = super::sandbox::Settings {
                listen,
                time_limit: Duration::from_secs(time_limit_secs),
                quiet: Duration::from_secs(quiet_secs),
                slow: Duration::from_secs(slow_secs),
                client_name,
            };
            match super::sandbox::run(&settings, version) {
                Ok(run) => finish(&run, &out),
                Err(e) => tool_error(format!("the sandbox could not run: {e:#}")),
            }
        }
        ConformanceCommand::List => {
            for r in catalog::requirements() {
                println!(
                    "{:<13} {:<6} {:<14} {}",
                    r.id,
                    r.level.as_str(),
                    r.suites.iter().cloned().collect::<Vec<_>>().join("+"),
                    r.text_en
                );
            }
            ExitCode::SUCCESS
        }
        ConformanceCommand::Explain { id } => match catalog::requirement(&id) {
            Some(r) => {
                println!("{}  [{}]", r.id, r.level.as_str());
                println!("{}", r.text_ja);
                println!("{}", r.text_en);
                println!("source: {}", r.source);
                println!(
                    "verified by: {}",
                    if r.suites.is_empty() {
                        "no test".to_string()
                    } else {
                        r.suites.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                );
                if let Some(feature) = &r.feature {
                    println!("optional feature: {feature}");
                }
                if let Some(reason) = &r.untested_reason {
                    println!("note: {reason}");
                }
                ExitCode::SUCCESS
            }
            None => match catalog::retired_ids().into_iter().find(|r| r.id == id) {
                Some(retired) => {
                    println!(
                        "{} was retired in suite {}: {}",
                        retired.id, retired.retired_in_suite, retired.reason
                    );
                    ExitCode::SUCCESS
                }
                None => usage(format!("unknown test id {id}")),
            },
        },
        ConformanceCommand::GenerateVectors { out } => {
            let mut total = 0;
            for version in &standard.versions {
                match vectors::write_all(version, &out.join(format!("v{}", version.major))) {
                    Ok(count) => total += count,
                    Err(e) => return tool_error(e),
                }
            }
            println!(
                "{total} vector files written under {} (suite {})",
                out.display(),
                conformance::SUITE_VERSION
            );
            ExitCode::SUCCESS
        }
    }
}

/// Is this invocation of the conformance kit (whose usage errors exit with 3)?
pub fn invoked() -> bool {
    std::env::args().nth(1).as_deref() == Some("conformance")
}
