//! `kodomo-hub audit`: verify the trail and sign chain heads to keep elsewhere.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::store::Store;

#[derive(Subcommand)]
pub enum AuditCommand {
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

pub fn audit(command: AuditCommand, store: &Store) -> anyhow::Result<()> {
    let mut conn = store.conn()?;
    let verification = crate::store::audit::verify(&mut conn, &store.keys().audit)?;
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
                    // A head taken before a key rotation is checked with the key it names,
                    // if this hub ever signed with it.
                    let key = crate::store::packages::own_public_keys(&mut conn)?
                        .into_iter()
                        .find(|k| *k == head.body.hub_public_key)
                        .and_then(|k| hex::decode(k).ok())
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
                        .unwrap_or_else(|| store.keys().signing.verifying_key());
                    if let Err(why) = crate::store::audit::check_head(&mut conn, &head, &key)? {
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
            let head = crate::audit::sign_head(&verification, &chains, &store.keys().signing)
                .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&head)?);
            Ok(())
        }
    }
}
