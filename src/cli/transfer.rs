//! `kodomo-hub transfer`: transfers within this hub, and (through `exchange`) packages to
//! and from peer hubs.

use clap::Subcommand;

use super::{exchange, free_text};
use crate::auth::Principal;
use crate::store::Store;

#[derive(Subcommand)]
pub enum TransferCommand {
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

pub fn transfer(command: TransferCommand, store: &Store) -> anyhow::Result<()> {
    use crate::transfer::workflow;
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
            let id = workflow::offer(
                &mut conn,
                &workflow::NewTransfer {
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
