//! `kodomo-hub screening …`: the screening workflow at the hub's console — adopt a rule set,
//! run a worklist, list it, link a school's client to its school. The console acts as an
//! operator of the town it names (every role a town's staff can hold), through the same
//! workflows and policy as the API, and is audited like it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::schema::{Standard, rules};
use crate::screening::{self, workflow};
use crate::store::Store;
use crate::store::screening::Acting;

#[derive(Subcommand)]
pub enum ScreeningCommand {
    /// Store the default rule set (one point per applicable basic item) as a new version and
    /// adopt it.
    AdoptDefault {
        /// The town (6-digit code).
        #[arg(long)]
        municipality: String,
        /// Minimum count of applicable items extracted.
        #[arg(long, default_value_t = screening::DEFAULT_MIN_ITEMS)]
        min_items: u32,
        /// The staff member doing it.
        #[arg(long)]
        actor: String,
    },
    /// Store a rule-set document (JSON, schema/v1/screening-rules.json) as a new version and
    /// adopt it.
    Adopt {
        /// The town (6-digit code).
        #[arg(long)]
        municipality: String,
        /// The rule-set document.
        file: PathBuf,
        /// The staff member doing it (recorded in the audit trail).
        #[arg(long)]
        actor: String,
    },
    /// Compute the worklist as of a date with the adopted rule set and store it; prints the
    /// run's summary as JSON.
    Run {
        /// The town (6-digit code).
        #[arg(long)]
        municipality: String,
        /// YYYY-MM-DD (default today in Japan).
        #[arg(long)]
        as_of: Option<String>,
        /// The staff member doing it (recorded in the audit trail).
        #[arg(long)]
        actor: String,
    },
    /// Print a run's worklist as JSON (every child listed is audited).
    List {
        /// The town (6-digit code).
        #[arg(long)]
        municipality: String,
        /// The run's number (`screening run` prints it).
        #[arg(long)]
        run: i64,
        /// The staff member doing it (recorded in the audit trail).
        #[arg(long)]
        actor: String,
    },
    /// Schools' clients.
    School {
        #[command(subcommand)]
        command: SchoolCommand,
    },
}

#[derive(Subcommand)]
pub enum SchoolCommand {
    /// Link a client holding the school role to the school it speaks for (the school_code of
    /// its pupils' education records).
    Link {
        /// The town (6-digit code).
        #[arg(long)]
        municipality: String,
        /// The client's name.
        #[arg(long)]
        client: String,
        /// The school's code.
        #[arg(long)]
        school: String,
    },
}

/// The audit entry of a console action.
fn entry(municipality: &str, action: &str, actor: Option<&str>) -> AuditEntry {
    AuditEntry {
        municipality_code: municipality.to_string(),
        client_name: Some(CLIENT.into()),
        roles: Some(Principal::console_operator(municipality).roles_text()),
        actor: actor.map(str::to_string),
        action: action.to_string(),
        purpose: Some(PURPOSE.into()),
        result: "ok".into(),
        ..AuditEntry::default()
    }
}

const CLIENT: &str = "screening-cli";
const PURPOSE: &str = "screening_review";

fn actor(actor: &str) -> anyhow::Result<Acting> {
    anyhow::ensure!(
        crate::auth::is_valid_actor(actor),
        "--actor must be visible ASCII without surrounding spaces, at most 100 characters"
    );
    Ok(Acting {
        actor: actor.to_string(),
        client_name: CLIENT.into(),
    })
}

fn store_and_adopt(
    store_: &Store,
    standard: &Standard,
    municipality: &str,
    document: &serde_json::Value,
    by: &Acting,
) -> anyhow::Result<i32> {
    let mut conn = store_.conn()?;
    let audit = entry(municipality, "screening.rules.adopt", Some(&by.actor));
    match workflow::store_and_adopt(
        &mut conn,
        standard.latest(),
        municipality,
        document,
        by,
        &audit,
    ) {
        Err(workflow::ScreeningError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{} {}: {}", p.pointer, p.code, p.message);
            }
            anyhow::bail!("the rule set is invalid ({} problems)", problems.len());
        }
        other => other.map_err(|e| anyhow::anyhow!("{e}")),
    }
}

fn print<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn run(command: ScreeningCommand, store_: &Store) -> anyhow::Result<()> {
    let standard = Standard::load();
    match command {
        ScreeningCommand::AdoptDefault {
            municipality,
            min_items,
            actor: who,
        } => {
            let document =
                serde_json::to_value(screening::default_rule_set(standard.latest(), min_items))?;
            let version =
                store_and_adopt(store_, &standard, &municipality, &document, &actor(&who)?)?;
            println!("version {version} of {municipality}'s rule set adopted");
        }
        ScreeningCommand::Adopt {
            municipality,
            file,
            actor: who,
        } => {
            let text = std::fs::read(&file).with_context(|| format!("read {}", file.display()))?;
            let document = crate::schema::strict_json::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let version =
                store_and_adopt(store_, &standard, &municipality, &document, &actor(&who)?)?;
            println!("version {version} of {municipality}'s rule set adopted");
        }
        ScreeningCommand::Run {
            municipality,
            as_of,
            actor: who,
        } => {
            let by = actor(&who)?;
            let as_of = match as_of {
                None => rules::today_in_japan(),
                Some(text) => rules::parse_date(&text)
                    .filter(|d| *d <= rules::today_in_japan())
                    .context("--as-of must be a date YYYY-MM-DD, not in the future")?,
            };
            let mut conn = store_.conn()?;
            let operator = Principal::console_operator(&municipality);
            let audit = entry(&municipality, "screening.run", Some(&by.actor));
            let id = workflow::run(
                &mut conn,
                standard.latest(),
                &municipality,
                as_of,
                &by,
                &audit,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let summary = workflow::run_summary(&mut conn, &operator, &municipality, id)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(&summary)?;
        }
        ScreeningCommand::List {
            municipality,
            run,
            actor: who,
        } => {
            let by = actor(&who)?;
            let mut conn = store_.conn()?;
            let operator = Principal::console_operator(&municipality);
            let audit = entry(&municipality, "screening.worklist.read", Some(&by.actor));
            let worklist = workflow::worklist(&mut conn, &operator, &municipality, run, &audit)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print(&worklist)?;
        }
        ScreeningCommand::School {
            command:
                SchoolCommand::Link {
                    municipality,
                    client,
                    school,
                },
        } => {
            anyhow::ensure!(
                !school.is_empty()
                    && school.len() <= 20
                    && school
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "--school must be 1–20 letters, digits or dashes (the school_code of education records)"
            );
            let mut conn = store_.conn()?;
            let mut audit = entry(&municipality, "admin.screening.school_link", None);
            audit.purpose = None;
            audit.detail =
                Some(serde_json::json!({"client": client, "school_code": school}).to_string());
            workflow::link_school(&mut conn, &municipality, &client, &school, &audit)
                .map_err(|e| anyhow::anyhow!("{client}: {e}"))?;
            println!("client {client} of {municipality} speaks for school {school}");
        }
    }
    Ok(())
}
