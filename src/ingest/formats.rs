//! Reading records from the wire formats: JSON batches, NDJSON lines and CSV files (UTF-8,
//! UTF-8 with BOM, or Shift_JIS/CP932). Problems that spoil the whole input are
//! [`FormatError`]s; problems with one record stay with that record.

use serde_json::Value;

use super::Candidate;
use crate::schema::csv_layout::check_headers;
use crate::schema::strict_json::{self, StrictJsonError};
use crate::schema::{CsvLayout, FieldError, SchemaVersion};

/// The input as a whole cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FormatError {
    pub code: &'static str,
    pub message: String,
    /// Field-level detail (e.g. each bad CSV header).
    pub errors: Vec<FieldError>,
}

impl FormatError {
    pub fn new(code: &'static str, message: impl Into<String>) -> FormatError {
        FormatError {
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

fn json_syntax_error(e: &serde_json::Error) -> FieldError {
    FieldError::new(
        "",
        "json_syntax",
        format!(
            "invalid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ),
    )
}

/// A body that is not JSON, or has a key twice in one object (pointer to the second).
pub fn json_body_error(e: &StrictJsonError) -> FieldError {
    match e {
        StrictJsonError::Syntax(e) => json_syntax_error(e),
        StrictJsonError::DuplicateKey(pointer) => FieldError::new(
            pointer.clone(),
            "duplicate_key",
            "this key appears twice in its object; send each key once",
        ),
    }
}

/// `{"records": [...]}` — the batch must be exactly that shape.
pub fn json_batch_candidates(
    body: &[u8],
    max_records: usize,
) -> Result<Vec<Candidate>, FormatError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(FormatError::new(
            "utf8",
            format!(
                "the body is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        ));
    }
    let value = strict_json::parse(body).map_err(|e| {
        let detail = json_body_error(&e);
        FormatError {
            code: if detail.code == "json_syntax" {
                "json_syntax"
            } else {
                "duplicate_key"
            },
            message: detail.message.clone(),
            errors: vec![detail],
        }
    })?;
    let Value::Object(mut object) = value else {
        return Err(FormatError::new(
            "batch_shape",
            "the body must be an object of the form {\"records\": [...]}",
        ));
    };
    let records = match object.remove("records") {
        Some(Value::Array(records)) => records,
        _ => {
            return Err(FormatError::new(
                "batch_shape",
                "the body must have a \"records\" array",
            ));
        }
    };
    if let Some(unknown) = object.keys().next() {
        return Err(FormatError {
            code: "unknown_field",
            message: format!("unknown field {unknown:?} in the batch"),
            errors: vec![FieldError::new(
                format!("/{unknown}"),
                "unknown_field",
                "the batch object has only \"records\"",
            )],
        });
    }
    if records.len() > max_records {
        let message = format!(
            "{} records in one JSON batch; the limit is {max_records} (use NDJSON for larger pushes)",
            records.len()
        );
        return Err(FormatError {
            code: "batch_too_large",
            errors: vec![FieldError::new(
                "/records",
                "batch_too_large",
                format!("at most {max_records} items (the document's maxItems)"),
            )],
            message,
        });
    }
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(index, record)| Candidate {
            index,
            row: None,
            parsed: Ok(record),
        })
        .collect())
}

/// One NDJSON line (without its newline). Blank lines carry no record.
/// A record sent alone as a JSON body (`PUT …/records/{source_record_id}`).
pub fn json_record_candidate(body: &[u8]) -> Candidate {
    Candidate {
        index: 0,
        row: None,
        parsed: strict_json::parse(body).map_err(|e| vec![json_body_error(&e)]),
    }
}

pub fn ndjson_candidate(index: usize, line_no: u64, line: &[u8]) -> Candidate {
    let parsed = match std::str::from_utf8(line) {
        Err(e) => Err(vec![FieldError::new(
            "",
            "utf8",
            format!(
                "line {line_no} is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )]),
        Ok(text) => strict_json::parse(text.trim_end_matches('\r').as_bytes())
            .map_err(|e| vec![json_body_error(&e)]),
    };
    Candidate {
        index,
        row: Some(line_no),
        parsed,
    }
}

/// Decode a CSV body: UTF-8 (a BOM is dropped) or Shift_JIS/CP932 when the charset says so.
pub fn decode_csv(body: &[u8], charset: Option<&str>) -> Result<String, FormatError> {
    let charset = charset.map(|c| c.trim().trim_matches('"').to_ascii_lowercase());
    match charset.as_deref() {
        None | Some("utf-8") | Some("utf8") => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
            String::from_utf8(body.to_vec()).map_err(|e| {
                FormatError::new(
                    "encoding",
                    format!(
                        "the CSV is not valid UTF-8 (bad byte at offset {}); send charset=shift_jis for CP932 files",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })
        }
        Some("shift_jis" | "shift-jis" | "sjis" | "cp932" | "windows-31j" | "ms932") => {
            // encoding_rs's Shift_JIS is the WHATWG definition, i.e. CP932 (Windows-31J).
            let (text, had_errors) = encoding_rs::SHIFT_JIS
                .decode_without_bom_handling_and_without_replacement(body)
                .map(|t| (t.into_owned(), false))
                .unwrap_or_else(|| (String::new(), true));
            if had_errors {
                return Err(FormatError::new(
                    "encoding",
                    "the CSV contains bytes that are not valid CP932 (Shift_JIS)",
                ));
            }
            Ok(text)
        }
        Some(other) => Err(FormatError::new(
            "encoding",
            format!("charset {other:?} is not supported; use utf-8 or shift_jis"),
        )),
    }
}

/// Read a decoded CSV into candidates. Each row's record type comes from its `record_type`
/// column, or from `record_type` (the request's) when the file has none. Header problems
/// reject the file; row problems stay with their row.
pub fn csv_candidates(
    text: &str,
    version: &SchemaVersion,
    record_type: Option<&str>,
    max_records: usize,
) -> Result<Vec<Candidate>, FormatError> {
    let unknown_type = |t: &str| {
        FieldError::new(
            "/record_type",
            "record_type_unknown",
            format!(
                "unknown record_type {t:?}; known types: {}",
                version.record_types().collect::<Vec<_>>().join(", ")
            ),
        )
    };
    if let Some(t) = record_type
        && !version.csv.contains_key(t)
    {
        let error = unknown_type(t);
        return Err(FormatError {
            code: "record_type_unknown",
            message: error.message.clone(),
            errors: vec![error],
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FormatError::new("csv_syntax", format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let type_column = headers.iter().position(|h| h == "record_type");
    if type_column.is_none() && record_type.is_none() {
        return Err(FormatError::new(
            "record_type_required",
            "a CSV push needs a record_type column or ?record_type=<type>",
        ));
    }
    let layouts: Vec<&CsvLayout> = match (type_column, record_type) {
        (None, Some(t)) => vec![&version.csv[t]],
        _ => version.csv.values().collect(),
    };
    check_headers(
        &headers,
        |h| layouts.iter().any(|l| l.column(h).is_some()),
        || {
            let mut all: Vec<&str> = layouts
                .iter()
                .flat_map(|l| l.columns.iter().map(|c| c.name.as_str()))
                .collect();
            all.sort_unstable();
            all.dedup();
            all
        },
    )
    .map_err(|errors| {
        // A repeated column is well-formed text that cannot be read one way (422); an
        // unknown column is outside the published layout (400).
        if errors.iter().all(|e| e.code == "csv_header_duplicate") {
            FormatError {
                code: "csv_header_duplicate",
                message: "a column appears more than once in the header row".into(),
                errors,
            }
        } else {
            FormatError {
                code: "csv_header",
                message: "the header row has columns the record types do not define".into(),
                errors,
            }
        }
    })?;
    let mut candidates = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let row_no = index as u64 + 2;
        if index >= max_records {
            return Err(FormatError::new(
                "batch_too_large",
                format!("more than {max_records} rows in one CSV; split the file"),
            ));
        }
        let parsed = match row {
            Err(e) => Err(vec![FieldError {
                row: Some(row_no),
                ..FieldError::new("", "csv_syntax", format!("row {row_no}: {e}"))
            }]),
            Ok(row) => {
                let cells: Vec<&str> = row.iter().collect();
                let row_type = type_column
                    .and_then(|i| cells.get(i).map(|c| c.trim()))
                    .filter(|c| !c.is_empty())
                    .or(record_type);
                match row_type {
                    None => Err(vec![FieldError {
                        row: Some(row_no),
                        column: Some("record_type".into()),
                        ..FieldError::new("/record_type", "required", "record_type is required")
                    }]),
                    Some(t) => match version.csv.get(t) {
                        Some(layout) => layout.record_from_cells(t, &headers, &cells, row_no),
                        None => Err(vec![FieldError {
                            row: Some(row_no),
                            column: Some("record_type".into()),
                            ..unknown_type(t)
                        }]),
                    },
                }
            }
        };
        candidates.push(Candidate {
            index,
            row: Some(row_no),
            parsed,
        });
    }
    Ok(candidates)
}

/// Point CSV-born errors at their row and column (columns are the dotted JSON paths).
pub fn locate_csv_errors(version: &SchemaVersion, row: u64, errors: &mut [FieldError]) {
    for error in errors {
        error.row.get_or_insert(row);
        if error.column.is_none() {
            let name = error.pointer.trim_start_matches('/').replace('/', ".");
            if version.csv.values().any(|l| l.column(&name).is_some()) {
                error.column = Some(name);
            }
        }
    }
}
