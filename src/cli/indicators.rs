//! `kodomo-hub indicators …`: publish a fiscal year's anonymised indicators (after the audit),
//! re-audit the whole ledger, list releases.

use clap::{Args, Subcommand};

use crate::indicators::audit::AuditReport;
use crate::indicators::disclosure::{DisclosureConfig, InformationLoss};
use crate::indicators::progress::Progress;
use crate::indicators::{FiscalYear, pipeline};
use crate::schema::Standard;
use crate::store::Store;

/// The deployment's disclosure rules; each can also be set in the environment.
#[derive(Args, Clone, Debug)]
pub struct DisclosureArgs {
    /// Smallest non-zero count shown.
    #[arg(long, env = "KODOMO_DISCLOSURE_FLOOR", default_value_t = DisclosureConfig::default().floor)]
    pub floor: i64,
    /// Hide zeros too (by default a zero is shown: it identifies nobody).
    #[arg(long, env = "KODOMO_DISCLOSURE_HIDE_ZERO")]
    pub hide_zero: bool,
    /// Towns with fewer people show no counts.
    #[arg(long, env = "KODOMO_DISCLOSURE_NO_COUNTS_BELOW", default_value_t = DisclosureConfig::default().no_counts_below_population)]
    pub no_counts_below_population: i64,
    /// Towns with fewer people get the small-town floor.
    #[arg(long, env = "KODOMO_DISCLOSURE_SMALL_TOWN_POPULATION", default_value_t = DisclosureConfig::default().small_town_population)]
    pub small_town_population: i64,
    /// The floor for those towns: counts below it are hidden.
    #[arg(long, env = "KODOMO_DISCLOSURE_SMALL_TOWN_FLOOR", default_value_t = DisclosureConfig::default().small_town_floor)]
    pub small_town_floor: i64,
    /// Prefectural and national totals are rounded to a multiple of this.
    #[arg(long, env = "KODOMO_DISCLOSURE_ROUNDING", default_value_t = DisclosureConfig::default().rounding_base)]
    pub rounding_base: i64,
    /// Turn complementary suppression off (only to demonstrate that the audit then refuses).
    #[arg(long)]
    pub no_complementary_suppression: bool,
}

impl DisclosureArgs {
    pub fn config(&self) -> DisclosureConfig {
        DisclosureConfig {
            floor: self.floor,
            show_zero: !self.hide_zero,
            no_counts_below_population: self.no_counts_below_population,
            small_town_population: self.small_town_population,
            small_town_floor: self.small_town_floor,
            rounding_base: self.rounding_base,
            complementary_suppression: !self.no_complementary_suppression,
        }
    }
}

#[derive(Subcommand)]
pub enum IndicatorsCommand {
    /// Compute, protect and audit a fiscal year; publish it if the audit passes (exit 1 and
    /// the report when refused).
    Release {
        /// Fiscal year (年度): 2025 is 1 April 2025 – 31 March 2026.
        #[arg(long)]
        fiscal_year: i32,
        /// Operator publishing (recorded in the ledger and the audit trail).
        #[arg(long, default_value = "indicators-cli")]
        published_by: String,
        #[command(flatten)]
        disclosure: DisclosureArgs,
    },
    /// Audit every stored release together (exit 1 if any hidden cell is exposed).
    Audit,
    /// Stored releases.
    List,
}

fn print_report(report: &AuditReport) {
    println!(
        "audit: {} release(s) together, {} hidden cells, {} proven ({} before any linear program, by {} checked alternative tables or an earlier repair round; the rest by {} linear programs over {} sub-tables, {} cells exactly over their component), narrowest proven interval {}",
        report.releases,
        report.hidden_cells,
        report.checked_cells,
        report.certified_cells,
        report.certificates,
        report.linear_programs,
        report.sub_tables,
        report.exact_cells,
        report
            .narrowest_width
            .map_or("unbounded".to_string(), |w| w.to_string())
    );
    for cell in &report.exposed {
        let how = if cell.exact {
            "derivable as"
        } else {
            "not proven wider than"
        };
        println!(
            "  EXPOSED {} {} {}/{} (fiscal year {}{}): {how} {}…{} — needs a width of at least {}",
            cell.level,
            cell.geography,
            cell.indicator,
            cell.category,
            cell.fiscal_year,
            cell.release
                .map(|r| format!(", release {r}"))
                .unwrap_or_default(),
            cell.lower,
            cell.upper.map_or("∞".to_string(), |u| u.to_string()),
            cell.required_width
        );
    }
    for error in &report.errors {
        println!("  ERROR {error}");
    }
}

pub fn run(command: IndicatorsCommand, store: &Store) -> anyhow::Result<()> {
    let standard = Standard::load();
    let version = standard.latest();
    let mut conn = store.conn()?;
    match command {
        IndicatorsCommand::Release {
            fiscal_year,
            published_by,
            disclosure,
        } => {
            let config = disclosure.config();
            let (candidate, id) = pipeline::release(
                store,
                version,
                FiscalYear(fiscal_year),
                &config,
                &published_by,
                &Progress::for_terminal(),
            )?;
            print_report(&candidate.report);
            let loss = InformationLoss::of(&candidate.cells);
            println!(
                "information loss: {} of {} count cells hidden by primary suppression (value {}), {} by secondary suppression (value {})",
                loss.primary_cells,
                loss.count_cells,
                loss.primary_value,
                loss.secondary_cells,
                loss.secondary_value
            );
            let hidden = candidate.cells.iter().filter(|c| c.hidden()).count();
            match id {
                Some(id) => println!(
                    "fiscal year {fiscal_year}: release {id} published ({} cells, {hidden} shown as X)",
                    candidate.cells.len()
                ),
                None => anyhow::bail!(
                    "fiscal year {fiscal_year}: release refused — an attacker could narrow a hidden cell below its floor"
                ),
            }
        }
        IndicatorsCommand::Audit => {
            let report = pipeline::reaudit(&mut conn, version, &Progress::for_terminal())?;
            print_report(&report);
            if !report.passed() {
                anyhow::bail!("the ledger exposes hidden cells");
            }
            println!("ledger intact: no hidden cell can be narrowed below its floor");
        }
        IndicatorsCommand::List => {
            for (release, cells) in crate::store::indicators::list(&mut conn)? {
                println!(
                    "{}\tfiscal year {}\t{}\t{} cells\tby {}",
                    release.id,
                    release.fiscal_year,
                    release.published_at,
                    cells,
                    release.published_by
                );
            }
        }
    }
    Ok(())
}
