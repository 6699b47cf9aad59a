//! Commands for developers and evaluators, not for production: the benchmarks and the
//! synthetic demo council. Behind the default `tools` feature; a production build leaves them
//! out with `cargo build --release --no-default-features`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;

use super::DbArgs;
use crate::demo;
use crate::ingest::Ingestor;
use crate::schema::Standard;
use crate::store::{Location, Store, clients};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Raw insert vs the hub's full ingest path (library, HTTP NDJSON, HTTP JSON).
    Ingest {
        /// Synthetic records to ingest.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
    /// A household transfer (10 children, 5,000 records) offered and accepted.
    Transfer {
        /// Children in the household.
        #[arg(long, default_value_t = 10)]
        children: usize,
        /// Records frozen with them.
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
    /// One town's screening run over its whole population (seeded with synthetic households),
    /// then its worklist read back.
    Screening {
        /// Synthetic households in the town (about two children each).
        #[arg(long, default_value_t = 50_000)]
        households: u64,
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

/// Run one benchmark and write its result as JSON under `out`.
pub fn bench(command: BenchCommand, db: &DbArgs, out: &Path) -> anyhow::Result<()> {
    let backend = match db.location() {
        Location::Postgres(_) => "postgresql",
        Location::Sqlite(_) => "sqlite",
    };
    let store = db.open()?;
    std::fs::create_dir_all(out)?;
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
        BenchCommand::Screening { households } => (
            "screening",
            serde_json::to_value(crate::bench::screening::screening(
                store, backend, households,
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

/// Load the demo into an empty database; prints tokens and writes them to
/// `<data-dir>/demo-tokens.env` so the README's examples can use them.
pub fn load_demo_if_empty(store: &Store, db: &DbArgs, households: u64) -> anyhow::Result<bool> {
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
    for (binding, name, token) in &tokens.lines {
        println!("  {:<22} {name:<16} {token}", binding.label());
        let short = format!("KH_{}", name.to_uppercase().replace('-', "_"));
        if let crate::auth::Binding::Municipality(town) = binding {
            writeln!(env, "{short}_{town}={token}")?;
        }
        // The first town's staff, and the council's and the nation's clients, by role alone.
        if *binding == first_town || !matches!(binding, crate::auth::Binding::Municipality(_)) {
            writeln!(env, "{short}={token}")?;
        }
    }
    if let crate::auth::Binding::Municipality(town) = &first_town {
        writeln!(env, "KH_TOWN={town}")?;
    }
    println!("Tokens also written to {}", env_path.display());
    Ok(true)
}
