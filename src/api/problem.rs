//! RFC 9457 problem details: every error the API returns has this shape.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::ingest::{FormatError, IngestError, IngestReport};
use crate::schema::FieldError;
use crate::schema::validate::MAX_ERRORS_PER_RECORD;
use crate::store::StoreError;
use crate::transfer::exchange::{ExchangeError, Imported};

pub const PROBLEM_BASE: &str = "https://kodomo-hub.jp/problems/";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI naming the problem type (`https://kodomo-hub.jp/problems/<code>`).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub type_uri: Box<str>,
    pub title: &'static str,
    pub status: u16,
    #[schema(value_type = String)]
    pub detail: Box<str>,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Field-level problems (JSON pointer or CSV row/column, code, message).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Vec<FieldError>)]
    pub errors: Box<[FieldError]>,
    /// For rejected batches: the per-record report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<IngestReport>>,
    /// For a transfer package imported before: the original receipt (nothing was imported
    /// again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_receipt: Option<Box<Imported>>,
    /// For a failed precondition (412): the record as it is now (absent when there is no
    /// such record). Boxed, like the other rare members, to keep every answer's error small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<CurrentVersion>>,
    /// Seconds until a rate-limited client may retry (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

/// The version a conditional write found instead of the one it expected.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrentVersion {
    pub version: i32,
    /// Its entity tag (also sent as `ETag`).
    #[schema(max_length = 16)]
    pub etag: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            type_uri: format!("{PROBLEM_BASE}{code}").into(),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into().into(),
            code,
            errors: Box::default(),
            report: None,
            original_receipt: None,
            current: None,
            retry_after: None,
        }
    }

    /// Attach field problems (at most [`MAX_ERRORS_PER_RECORD`], so that an answer stays
    /// small whatever the request held).
    pub fn with_errors(mut self, mut errors: Vec<FieldError>) -> Problem {
        errors.truncate(MAX_ERRORS_PER_RECORD);
        self.errors = errors.into_boxed_slice();
        self
    }

    /// `Ok` when `problems` is empty; otherwise 400 `invalid_request` listing every problem.
    pub fn refuse_fields(problems: Vec<FieldError>) -> Result<(), Problem> {
        if problems.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        let detail = format!("invalid fields: {}", fields.join(", "));
        Err(Problem::bad_request("invalid_request", detail).with_errors(problems))
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The single answer for anything the caller may not see or that does not exist, so the
    /// two cannot be told apart.
    pub fn not_found() -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource, or you may not see it",
        )
    }

    pub fn unauthorized(detail: &str) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// Too many requests from one client; retry after `seconds`.
    pub fn rate_limited(seconds: u32) -> Problem {
        let mut problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests from this client; retry after {seconds} s"),
        );
        problem.retry_after = Some(seconds);
        problem
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the hub could not complete the request; nothing partial was kept for the failed part",
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(current) = &self.current {
            response.insert_header(("ETag", current.etag.as_str()));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(self)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound => Problem::not_found(),
            StoreError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            StoreError::Invalid(detail) => Problem::bad_request("invalid", detail),
            StoreError::Unprocessable(detail) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
            }
            StoreError::Connection(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is not reachable; retry later",
            ),
            StoreError::Db(e) => {
                // Database messages can quote row values (personal data): log the kind only.
                tracing::error!(kind = db_error_kind(&e), "database error");
                Problem::internal()
            }
            StoreError::RolledBack => {
                tracing::error!("a rolled-back workflow reached a client unanswered");
                Problem::internal()
            }
            StoreError::PreconditionFailed { current } => {
                let detail = match current {
                    None => "there is no such record; nothing was written".to_string(),
                    Some(state) => format!(
                        "the record is now at version {} (ETag {}{}); nothing was written — read it again and retry",
                        state.version,
                        crate::store::records::etag(state.version),
                        if state.retracted { ", retracted" } else { "" },
                    ),
                };
                let mut problem = Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition_failed",
                    detail,
                );
                problem.current = current.map(|state| {
                    Box::new(CurrentVersion {
                        version: state.version,
                        etag: crate::store::records::etag(state.version),
                    })
                });
                problem
            }
        }
    }
}

impl From<ExchangeError> for Problem {
    fn from(e: ExchangeError) -> Problem {
        match e {
            ExchangeError::Package(e) => {
                let detail = match e.offset {
                    Some(offset) => format!("{} (byte {offset})", e.message),
                    None => e.message.clone(),
                };
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, detail).with_errors(vec![
                    FieldError {
                        pointer: e.pointer,
                        code: e.code.to_string(),
                        message: e.message,
                        row: None,
                        column: None,
                    },
                ])
            }
            ExchangeError::AlreadyImported(original) => {
                let mut problem = Problem::new(
                    StatusCode::CONFLICT,
                    "package_already_imported",
                    format!(
                        "package {} was imported before as transfer {}; nothing was imported again; the original receipt is included",
                        original.package_id, original.transfer_id
                    ),
                );
                problem.original_receipt = Some(original);
                problem
            }
            ExchangeError::Store(e) => e.into(),
        }
    }
}

impl From<FormatError> for Problem {
    fn from(e: FormatError) -> Problem {
        // A batch over its record limit breaks the documented schema (maxItems), like a
        // duplicate header or a CSV that names no record type: the document is readable but
        // not acceptable. 413 stays for bodies
        // over the byte limit.
        let status = match e.code {
            "batch_too_large" | "csv_header_duplicate" | "record_type_required" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Problem::new(status, e.code, e.message).with_errors(e.errors)
    }
}

impl From<IngestError> for Problem {
    fn from(e: IngestError) -> Problem {
        match e {
            IngestError::Store(e) => e.into(),
            IngestError::AtomicRejected(report) => {
                let mut problem = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "atomic_batch_rejected",
                    format!(
                        "{} of {} records are invalid; the batch was atomic, so nothing was stored",
                        report.rejected, report.received
                    ),
                );
                problem.report = Some(report);
                problem
            }
        }
    }
}

/// A description of a database error that never quotes the values involved.
fn db_error_kind(e: &diesel::result::Error) -> &'static str {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => "unique violation",
        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => "foreign key violation",
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => "serialization failure",
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => "closed connection",
        Error::DatabaseError(_, _) => "database error",
        Error::NotFound => "not found",
        Error::RollbackTransaction => "rolled back",
        _ => "query error",
    }
}
