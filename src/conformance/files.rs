//! `conformance files`: offline checks of a supplier's export files with the hub's own
//! decoders and validator — the same path a push or an import takes, without a database.

use std::path::{Path, PathBuf};

use super::{Input, Issue, Run, Status, TestResult, catalog, messages};
use crate::ingest::files::{ImportError, read_candidates};
use crate::ingest::formats::locate_csv_errors;
use crate::ingest::{Ingestor, Submission};
use crate::schema::SchemaVersion;
use crate::transfer::package::{self, PackageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Json,
    Ndjson,
    Csv,
    /// A transfer package between hubs (SPEC §6).
    TransferXml,
}

impl FileKind {
    pub fn of(path: &Path) -> Option<FileKind> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "json" => Some(FileKind::Json),
            "ndjson" | "jsonl" => Some(FileKind::Ndjson),
            "csv" => Some(FileKind::Csv),
            "xml" => Some(FileKind::TransferXml),
            _ => None,
        }
    }

    /// The requirement on the file's format itself (encoding, syntax, shape).
    fn format_requirement(self) -> &'static str {
        match self {
            FileKind::Json => "KDL-FILE-001",
            FileKind::Ndjson => "KDL-FILE-002",
            FileKind::Csv => "KDL-FILE-003",
            FileKind::TransferXml => "KDL-XFER-001",
        }
    }

    /// Which kinds of input a requirement is about (it is not applicable without one).
    fn concerns(self, requirement: &str) -> bool {
        match requirement {
            "KDL-FILE-001" => self == FileKind::Json,
            "KDL-FILE-002" => self == FileKind::Ndjson,
            "KDL-FILE-003" | "KDL-FILE-004" | "KDL-FILE-005" => self == FileKind::Csv,
            "KDL-XFER-001" | "KDL-XFER-002" | "KDL-XFER-003" => self == FileKind::TransferXml,
            _ => self != FileKind::TransferXml,
        }
    }
}

/// What checking one file found: each issue with the requirement it violates.
#[derive(Debug, Clone)]
pub struct FileCheck {
    pub kind: FileKind,
    pub records: usize,
    pub issues: Vec<(&'static str, Issue)>,
    /// Set when the file could not be verified at all (its requirement becomes incomplete).
    pub unverified: Option<Issue>,
}

fn from_field_error(error: crate::schema::FieldError) -> Issue {
    Issue {
        row: error.row,
        column: error.column,
        ..Issue::new(error.pointer, &error.code)
    }
}

/// The requirement a code found in a file of `kind` violates.
fn requirement_for(kind: FileKind, code: &str) -> &'static str {
    match code {
        "encoding" | "utf8" | "json_syntax" | "csv_syntax" | "batch_shape" => {
            kind.format_requirement()
        }
        other => messages::requirement_of(other),
    }
}

/// Check one file's bytes as a file of `kind`.
pub fn check_bytes(
    ingestor: &Ingestor,
    version: &SchemaVersion,
    kind: FileKind,
    path: &Path,
    bytes: &[u8],
) -> FileCheck {
    // Transfer packages and outcomes also exist in a JSON form (same fields); checked as such.
    let kind = if kind == FileKind::Json && (is_package_json(bytes) || is_outcome(bytes)) {
        FileKind::TransferXml
    } else {
        kind
    };
    let mut check = FileCheck {
        kind,
        records: 0,
        issues: Vec::new(),
        unverified: None,
    };
    if kind == FileKind::TransferXml {
        check.issues = if is_outcome(bytes) {
            check_transfer_outcome(path, bytes)
        } else {
            check_transfer_package(&ingestor.standard, path, bytes)
        };
        return check;
    }
    let candidates = match read_candidates(ingestor, path, bytes, None, None) {
        Ok(candidates) => candidates,
        Err(ImportError::Format(error)) => {
            let requirement =
                if error.code.starts_with("csv_header") || error.code == "record_type_required" {
                    "KDL-FILE-004"
                } else {
                    kind.format_requirement()
                };
            if error.errors.is_empty() {
                check.issues.push((requirement, Issue::new("", error.code)));
            }
            for detail in error.errors {
                let requirement = if requirement == "KDL-FILE-004" {
                    requirement
                } else {
                    requirement_for(kind, &detail.code)
                };
                check.issues.push((requirement, from_field_error(detail)));
            }
            return check;
        }
        Err(other) => {
            check.unverified = Some(Issue::explained(
                "unreadable",
                "ファイルを読み込めませんでした。",
                format!("The file could not be read: {other}"),
            ));
            return check;
        }
    };
    check.records = candidates.len();
    // No allowed-type list: a supplier's file may hold any record type of the standard.
    let submission = Submission {
        municipality: String::new(),
        source: String::new(),
        allowed_types: None,
        client_id: None,
    };
    for candidate in candidates {
        let mut errors = match candidate.parsed {
            Err(errors) => errors,
            Ok(record) => match ingestor.prepare(&submission, candidate.index, &record) {
                Ok(_) => continue,
                Err(errors) => errors,
            },
        };
        if let (Some(row), FileKind::Csv) = (candidate.row, kind) {
            locate_csv_errors(version, row, &mut errors);
        }
        for error in errors {
            let requirement = requirement_for(kind, &error.code);
            let mut issue = from_field_error(error);
            match kind {
                FileKind::Json => issue.record = Some(candidate.index),
                _ => issue.row = candidate.row.or(issue.row),
            }
            check.issues.push((requirement, issue));
        }
    }
    check
}

/// Is this JSON a transfer package (its header and manifest) rather than records?
fn is_package_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("package_id").is_some() && v.get("manifest").is_some())
}

/// Is this an outcome message (its XML root, or the JSON form's fields) rather than a package?
fn is_outcome(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    head.windows(b"<transfer-outcome".len())
        .any(|w| w == b"<transfer-outcome")
        || serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .is_some_and(|v| v.get("decided").is_some() && v.get("package_sha256").is_some())
}

/// An outcome message read as an origin hub does (canonical XML or its JSON form, one entry
/// per child position, reasons exactly with declines) and its detached signature verified over
/// the canonical XML. Whether it answers a package the origin sent is the origin's decision.
fn check_transfer_outcome(path: &Path, bytes: &[u8]) -> Vec<(&'static str, Issue)> {
    let issue = |e: PackageError| {
        vec![(
            "KDL-XFER-003",
            Issue {
                offset: e.offset,
                ..Issue::new(e.pointer, e.code)
            },
        )]
    };
    let xml = match package::parse_outcome_canonical(bytes) {
        Ok((_, xml)) => xml,
        Err(e) => return issue(e),
    };
    let verified = match std::fs::read_to_string(package::signature_path(path)) {
        Err(_) => Err(PackageError::new(
            "signature_missing",
            "/signature",
            "no detached signature beside the outcome",
        )),
        Ok(text) => package::DetachedSignature::parse(&text).and_then(|s| s.verify(&xml)),
    };
    verified.err().map(issue).unwrap_or_default()
}

/// A transfer package read and checked as a receiving hub does (canonical XML, manifest,
/// contents against the standard), and its detached signature verified against the header and
/// manifest. Whether the signing key is the origin hub's is the receiver's trust-store
/// decision, which an offline check cannot make.
fn check_transfer_package(
    standard: &crate::schema::Standard,
    path: &Path,
    bytes: &[u8],
) -> Vec<(&'static str, Issue)> {
    let issue = |e: PackageError| Issue {
        offset: e.offset,
        ..Issue::new(e.pointer, e.code)
    };
    let package = match package::parse(bytes) {
        Ok(package) => package,
        Err(e) => return vec![("KDL-XFER-001", issue(e))],
    };
    let mut issues = Vec::new();
    if let Err(e) = package::check_contents(&package, standard) {
        issues.push(("KDL-XFER-001", issue(e)));
    }
    let signature = match std::fs::read_to_string(package::signature_path(path)) {
        Err(_) => Err(PackageError::new(
            "signature_missing",
            "/signature",
            "no detached signature beside the package",
        )),
        Ok(text) => package::DetachedSignature::parse(&text)
            .and_then(|s| package::verify_package_signature(&package, &s)),
    };
    if let Err(e) = signature {
        issues.push(("KDL-XFER-002", issue(e)));
    }
    issues
}

/// Files under `paths` (directories walked, sorted) that the kit knows how to check.
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for path in paths {
        if !path.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} does not exist", path.display()),
            ));
        }
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            found.extend(collect(&entries)?);
        } else if FileKind::of(path).is_some() {
            found.push(path.clone());
        }
    }
    Ok(found)
}

/// Run the files suite over `files` (already collected).
pub fn run(ingestor: &Ingestor, version: &SchemaVersion, files: &[PathBuf]) -> Run {
    let mut run = Run::new("files", &version.major.to_string(), Vec::new());
    let mut checks = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let kind = FileKind::of(path).expect("collect keeps known kinds only");
        let mut check = match std::fs::read(path) {
            Ok(bytes) => {
                run.inputs.push(Input::of(&name, &bytes));
                let signature = package::signature_path(path);
                if kind == FileKind::TransferXml
                    && let Ok(signature_bytes) = std::fs::read(&signature)
                {
                    run.inputs.push(Input::of(
                        &signature.display().to_string(),
                        &signature_bytes,
                    ));
                }
                check_bytes(ingestor, version, kind, path, &bytes)
            }
            Err(e) => FileCheck {
                kind,
                records: 0,
                issues: Vec::new(),
                unverified: Some(Issue::explained(
                    "unreadable",
                    "ファイルを読み込めませんでした。",
                    format!("The file could not be read: {e}"),
                )),
            },
        };
        for (_, issue) in &mut check.issues {
            issue.file = Some(name.clone());
        }
        if let Some(issue) = &mut check.unverified {
            issue.file = Some(name.clone());
        }
        checks.push(check);
    }
    for requirement in catalog::of_suite("files") {
        let relevant: Vec<&FileCheck> = checks
            .iter()
            .filter(|c| c.kind.concerns(&requirement.id))
            .collect();
        let issues: Vec<Issue> = relevant
            .iter()
            .flat_map(|c| c.issues.iter())
            .filter(|(id, _)| *id == requirement.id)
            .map(|(_, issue)| issue.clone())
            .collect();
        let unverified: Vec<Issue> = relevant
            .iter()
            .filter_map(|c| c.unverified.clone())
            .collect();
        let (status, reason) = if relevant.is_empty() {
            (
                Status::NotApplicable,
                Some("no input file of the kind this requirement is about".to_string()),
            )
        } else if !issues.is_empty() {
            (Status::Fail, None)
        } else if !unverified.is_empty() {
            (
                Status::Incomplete,
                Some(format!(
                    "{} file(s) could not be verified",
                    unverified.len()
                )),
            )
        } else {
            (Status::Pass, None)
        };
        run.tests.push(TestResult {
            id: requirement.id.clone(),
            level: requirement.level,
            requirement_ja: requirement.text_ja.clone(),
            requirement_en: requirement.text_en.clone(),
            status,
            reason,
            issues: issues.into_iter().chain(unverified).collect(),
        });
    }
    run.decide();
    run
}
