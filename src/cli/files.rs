//! `kodomo-hub import`: files carried on media (CSV in UTF-8 or CP932, NDJSON, JSON).

use std::path::PathBuf;
use std::sync::Arc;

use crate::ingest::Ingestor;
use crate::schema::Standard;
use crate::store::{Store, clients};

pub fn import(
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
    crate::store::records::analyze_after_bulk_load(&mut conn)?;
    Ok(())
}
