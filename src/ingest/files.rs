//! Files carried on media between network segments: import (CSV in UTF-8, UTF-8 with BOM or
//! CP932; NDJSON; JSON) through exactly the API's validation and upsert path, resumable after
//! an interruption, with a per-row error file and a summary; and export back to the same forms.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    CHUNK_SIZE, Candidate, IngestError, Ingestor, ResultDetail, Submission, csv_candidates,
    decode_csv, json_batch_candidates, ndjson_candidate,
};
use crate::ingest::formats::locate_csv_errors;
use crate::schema::csv_layout::guard_formula;
use crate::store::{DbConn, StoreError};

/// Progress of one file, saved after every committed chunk so a rerun resumes after it.
#[derive(Debug, Default, Serialize, Deserialize, Clone)]
pub struct ImportState {
    pub file_sha256: String,
    pub municipality: String,
    pub source: String,
    /// Records (in file order) whose chunk has committed.
    pub committed: usize,
    pub total: usize,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Length of the error file at the last commit (later rows are rewritten on resume).
    pub errors_len: u64,
    /// Which database the progress belongs to (its first audit entry's hash): a state file
    /// from another database (staging, then production) must not skip anything.
    #[serde(default)]
    pub database: String,
    pub complete: bool,
}

/// Where an import writes next to its file.
pub struct Outputs {
    pub state: PathBuf,
    pub errors: PathBuf,
    pub summary: PathBuf,
}

impl Outputs {
    pub fn beside(file: &Path) -> Outputs {
        let with = |suffix: &str| {
            let mut name = file.file_name().unwrap_or_default().to_os_string();
            name.push(suffix);
            file.with_file_name(name)
        };
        Outputs {
            state: with(".import-state.json"),
            errors: with(".errors.csv"),
            summary: with(".summary.json"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{}: {}", .0.code, .0.message)]
    Format(#[from] super::FormatError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IngestError> for ImportError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(e) => ImportError::Store(e),
            // Imports are never atomic, so this cannot happen; keep the message if it does.
            IngestError::AtomicRejected(_) => {
                ImportError::Store(StoreError::Invalid("atomic rejection in an import".into()))
            }
        }
    }
}

/// Decode a CSV file: a BOM or valid UTF-8 is UTF-8; otherwise CP932 (or as told).
fn decode_file_csv(bytes: &[u8], encoding: Option<&str>) -> Result<String, super::FormatError> {
    match encoding {
        Some(e) => decode_csv(bytes, Some(e)),
        None if std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
            .is_ok() =>
        {
            decode_csv(bytes, None)
        }
        None => decode_csv(bytes, Some("cp932")),
    }
}

/// Read every candidate of a file, choosing the format by extension.
pub fn read_candidates(
    ingestor: &Ingestor,
    path: &Path,
    bytes: &[u8],
    record_type: Option<&str>,
    encoding: Option<&str>,
) -> Result<Vec<Candidate>, ImportError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(match extension.as_str() {
        "csv" | "txt" => {
            let text = decode_file_csv(bytes, encoding)?;
            csv_candidates(&text, ingestor.standard.latest(), record_type, usize::MAX)?
        }
        "ndjson" | "jsonl" => bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .enumerate()
            .map(|(index, (line_no, line))| ndjson_candidate(index, line_no as u64 + 1, line))
            .collect(),
        _ => match crate::schema::strict_json::parse(bytes) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(index, record)| Candidate {
                    index,
                    row: None,
                    parsed: Ok(record),
                })
                .collect(),
            _ => json_batch_candidates(bytes, usize::MAX)?,
        },
    })
}

fn save_state(path: &Path, state: &ImportState) -> std::io::Result<()> {
    // Write then rename, so a crash never leaves a half-written state file.
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(state).expect("state serialises"),
    )?;
    std::fs::rename(tmp, path)
}

/// Import one file. `progress(done, total)` is called after every chunk.
pub fn import_file(
    conn: &mut DbConn,
    ingestor: &Ingestor,
    submission: &Submission,
    path: &Path,
    record_type: Option<&str>,
    encoding: Option<&str>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportState, ImportError> {
    let bytes = std::fs::read(path)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let outputs = Outputs::beside(path);
    let database = crate::store::audit::first_hash(conn)?.unwrap_or_default();
    let mut state = std::fs::read(&outputs.state)
        .ok()
        .and_then(|s| serde_json::from_slice::<ImportState>(&s).ok())
        .filter(|s| {
            s.file_sha256 == sha
                && s.municipality == submission.municipality
                && s.source == submission.source
                && s.database == database
        })
        .unwrap_or_else(|| ImportState {
            file_sha256: sha,
            database: database.clone(),
            municipality: submission.municipality.clone(),
            source: submission.source.clone(),
            ..ImportState::default()
        });
    let candidates = read_candidates(ingestor, path, &bytes, record_type, encoding)?;
    state.total = candidates.len();
    // Rows after the last checkpoint are written again; cut what an interrupted run left.
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&outputs.errors)?
        .set_len(state.errors_len)?;
    let mut errors = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .append(true)
            .open(&outputs.errors)?,
    );
    if state.errors_len == 0 {
        writeln!(errors, "row,column,pointer,code,message")?;
    }
    let version = ingestor.standard.latest();
    let mut remaining = candidates.into_iter().skip(state.committed).peekable();
    progress(state.committed, state.total);
    while remaining.peek().is_some() {
        let chunk: Vec<Candidate> = remaining.by_ref().take(CHUNK_SIZE).collect();
        let size = chunk.len();
        let report = ingestor.ingest(
            conn,
            submission,
            false,
            ResultDetail::Rejected,
            std::iter::once(chunk),
        )?;
        for mut result in report.results {
            let row = result.row.unwrap_or(result.index as u64 + 1);
            locate_csv_errors(version, row, &mut result.errors);
            for error in result.errors {
                let mut line = csv::Writer::from_writer(Vec::new());
                // Opened by staff in a spreadsheet; a column name or message may quote input.
                let column = error.column.unwrap_or_default();
                line.write_record([
                    row.to_string().as_str(),
                    &guard_formula(&column),
                    &guard_formula(&error.pointer),
                    &error.code,
                    &guard_formula(&error.message),
                ])
                .map_err(std::io::Error::other)?;
                errors.write_all(
                    &line
                        .into_inner()
                        .map_err(|e| std::io::Error::other(e.to_string()))?,
                )?;
            }
        }
        errors.flush()?;
        state.committed += size;
        state.created += report.created;
        state.updated += report.updated;
        state.unchanged += report.unchanged;
        state.rejected += report.rejected;
        state.errors_len = std::fs::metadata(&outputs.errors)?.len();
        save_state(&outputs.state, &state)?;
        progress(state.committed, state.total);
    }
    state.complete = true;
    save_state(&outputs.state, &state)?;
    std::fs::write(
        &outputs.summary,
        serde_json::to_vec_pretty(&serde_json::json!({
            "file": path.display().to_string(),
            "sha256": state.file_sha256,
            "municipality_code": state.municipality,
            "source": state.source,
            "records": state.total,
            "created": state.created,
            "updated": state.updated,
            "unchanged": state.unchanged,
            "rejected": state.rejected,
            "errors_file": outputs.errors.display().to_string(),
        }))
        .expect("summary serialises"),
    )?;
    Ok(state)
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// The current records of one type as CSV (with a `record_type` column, so the file imports
/// back as is) or NDJSON; `cp932` encodes the CSV for systems that need Shift_JIS.
pub fn export(
    records: &[Value],
    ingestor: &Ingestor,
    record_type: &str,
    format: ExportFormat,
    cp932: bool,
) -> Result<Vec<u8>, String> {
    let text = match format {
        ExportFormat::Ndjson => records.iter().map(|r| format!("{r}\n")).collect::<String>(),
        ExportFormat::Csv => {
            let layout = ingestor
                .standard
                .latest()
                .csv
                .get(record_type)
                .ok_or_else(|| format!("unknown record type {record_type}"))?;
            let mut headers = vec!["record_type"];
            headers.extend(layout.columns.iter().map(|c| c.name.as_str()));
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&headers).map_err(|e| e.to_string())?;
            for record in records {
                writer
                    .write_record(layout.cells_of(record, &headers))
                    .map_err(|e| e.to_string())?;
            }
            String::from_utf8(writer.into_inner().map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
        }
    };
    if !cp932 {
        return Ok(text.into_bytes());
    }
    encode_cp932(&text)
}

/// CP932 with its user-defined area: encoding_rs reads 外字 (U+E000–U+E757 ↔ F040–F9FC) but
/// does not write them, so they are written here, the reverse of the decoder.
fn encode_cp932(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut segment = String::new();
    let flush = |segment: &mut String, out: &mut Vec<u8>| -> Result<(), String> {
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(segment);
        if unmappable {
            return Err("some characters cannot be written in CP932; export as UTF-8".into());
        }
        out.extend_from_slice(&bytes);
        segment.clear();
        Ok(())
    };
    for ch in text.chars() {
        let code = ch as u32;
        if (0xE000..=0xE757).contains(&code) {
            flush(&mut segment, &mut out)?;
            let pointer = 8836 + (code - 0xE000);
            let (lead, trail) = (pointer / 188, pointer % 188);
            out.push((lead + if lead < 0x1F { 0x81 } else { 0xC1 }) as u8);
            out.push((trail + if trail < 0x3F { 0x40 } else { 0x41 }) as u8);
        } else {
            segment.push(ch);
        }
    }
    flush(&mut segment, &mut out)?;
    Ok(out)
}
