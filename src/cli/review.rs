//! `kodomo-hub review`: the identity-review queue (名寄せの確認) from the command line.

use clap::Subcommand;

use crate::store::Store;

#[derive(Subcommand)]
pub enum ReviewCommand {
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

pub fn review(command: ReviewCommand, store: &Store) -> anyhow::Result<()> {
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
