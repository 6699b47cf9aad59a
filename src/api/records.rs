//! Pushing, retracting and reading records, and the change feed.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::extract::{Caller, ChangesRead, HistoryRead, PersonalRead};
use super::idempotency::{
    KeyState, claim_key, finish_push, idempotency_key, key_in_progress, record_metrics,
    replay_response,
};
use super::views::{ChangesPage, History, Retraction, ValidationReport, ValidationResult};
use super::{AppState, Limits, Problem, State, audit_entry, blocking, json, with_conn};
use crate::access::{self, ChildUse, RecordScope, Verdict};
use crate::auth::{Principal, Role};
use crate::ingest::formats::locate_csv_errors;
use crate::ingest::{
    Candidate, ConnectionPerChunk, IngestError, IngestReport, RecordStatus, ResultDetail,
    Submission, chunked, csv_candidates, decode_csv, json_batch_candidates, json_record_candidate,
    ndjson_candidate,
};
use crate::schema::FieldError;
use crate::store::records as store_records;
use crate::store::records::{Expected, etag};

/// Most changes one page of the feed holds.
pub const MAX_CHANGES_PAGE: usize = 1000;

/// A JSON batch of records.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBatch {
    /// Records, each an object of one record type (see `#/components/schemas/Record`).
    /// Anything else is reported as a rejected record, not refused with the whole batch.
    pub records: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    /// Reject the whole batch if any record is invalid.
    #[serde(default)]
    pub atomic: bool,
    /// Record type of every row of a CSV body without a `record_type` column.
    pub record_type: Option<String>,
    #[serde(default)]
    pub results: ResultDetail,
}

enum BodyFormat {
    Json,
    Ndjson,
    Csv { charset: Option<String> },
}

fn body_format(req: &HttpRequest) -> Result<BodyFormat, Problem> {
    let content_type = req
        .headers()
        .get("Content-Type")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("").to_ascii_lowercase();
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.to_string());
    match mime.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson" | "application/ndjson" => Ok(BodyFormat::Ndjson),
        "text/csv" => Ok(BodyFormat::Csv { charset }),
        _ => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type:?} is not accepted; use application/json, application/x-ndjson or text/csv"
            ),
        )),
    }
}

/// The next piece of a request body; 408 when the client sends nothing for `idle` (a stalled
/// or deliberately slow client must not keep a request open for ever).
pub(super) async fn next_chunk(
    payload: &mut web::Payload,
    idle: std::time::Duration,
) -> Result<Option<web::Bytes>, Problem> {
    match actix_web::rt::time::timeout(idle, payload.next()).await {
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "no part of the request body arrived for {} s; send the body without pauses",
                idle.as_secs()
            ),
        )),
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk
            .map(Some)
            .map_err(|e| Problem::bad_request("body_read", e.to_string())),
    }
}

/// Read a whole body up to `limits.max_body_bytes`.
pub(super) async fn read_body(
    payload: &mut web::Payload,
    limits: &Limits,
) -> Result<Vec<u8>, Problem> {
    let (mut body, limit) = (Vec::new(), limits.max_body_bytes);
    while let Some(chunk) = next_chunk(payload, limits.body_idle_timeout).await? {
        if body.len() + chunk.len() > limit {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {limit} bytes; use NDJSON for large pushes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// 記録の送信（JSON・NDJSON・CSV） — Push records
///
/// 連携元システムが記録を送ります。形式は JSON バッチ、NDJSON ストリーム、または1レコード種別の CSV ファイルです。各記録はそのレコード種別のスキーマ（`#/components/schemas/Record`）で検証され、応答は記録ごとに created・updated・unchanged・rejected（JSON ポインタ・コード・メッセージ付き）を返します。`Idempotency-Key` を付けた再送には最初の応答を返します。
///
/// A source system pushes records: a JSON batch, an NDJSON stream or a CSV file of one record type. Every record is validated against its schema (`#/components/schemas/Record`); the answer reports each record as created, updated, unchanged or rejected (with pointer, code and message). A retry with the same `Idempotency-Key` gets the first answer.
#[utoipa::path(
    post, path = "/v1/municipalities/{code}/records", tag = "records",
    params(
        ("code" = String, Path, description = "Municipality code (全国地方公共団体コード)", example = "119016"),
        PushQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "A retried request with the same key gets the first answer", pattern = "^[!-~]{1,255}$"),
    ),
    request_body(
        description = "Records to store. Each record is checked against `#/components/schemas/Record`; an invalid record is reported in the results, not refused at the HTTP level (unless `atomic=true`).",
        content(
            (PushBatch = "application/json", example = json!({"records": [{"record_type": "postnatal-checkup", "schema_version": "1.0", "source_record_id": "pn-0001", "subject": {"resident_no": "1190160000101"}, "effective_date": "2025-06-01", "visited_on": "2025-06-01", "epds_total": 12, "epds_item10": 1}]})),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )
    ),
    responses(
        (status = 200, description = "Per-record outcome", body = IngestReport),
        (status = 400, description = "The body cannot be read (bad JSON, encoding, CSV header…)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client may not push to this municipality", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body stopped arriving for longer than the hub waits (`body_timeout`); the report carries the complete records before the pause (none if atomic)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or line too large (an atomic NDJSON stream is bounded like a JSON body)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported Content-Type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Atomic batch with an invalid record (nothing stored), more records than one batch may hold (`batch_too_large`, pointer `/records`), an Idempotency-Key reused with another body, a CSV header naming a column twice, or a CSV that names no record type (`record_type_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited, or this client already pushes as many NDJSON streams as it may (`too_many_streams`); see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn push(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PushQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let principal = caller.require(Role::Source, &municipality)?;
    let format = body_format(&req)?;
    let key = idempotency_key(&req)?;
    let query = query.into_inner();
    // `?record_type=` is one of the record types whatever the body (only CSV uses it).
    if let Some(t) = query.record_type.as_deref()
        && !state.standard.latest().csv.contains_key(t)
    {
        return Err(Problem::bad_request(
            "record_type_unknown",
            format!("unknown record_type {t:?} in the query"),
        ));
    }
    let submission = submission(&principal, &municipality);
    if let BodyFormat::Ndjson = format {
        let limit = state.limits.max_streams_per_client;
        let Some(_slot) = state.streams.take(principal.client_id, limit) else {
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "this client already pushes {limit} NDJSON streams; retry when one has finished"
                ),
            );
            problem.retry_after = Some(1);
            return Err(problem);
        };
        // A stream's hash is known only at its end: claim the key first, record the hash later.
        let claimed = match claim_key(&state, &principal, &municipality, key, "").await? {
            KeyState::Earlier(answer) if answer.in_progress() => return Err(key_in_progress()),
            KeyState::Earlier(answer) => {
                let hash = hash_stream(&mut payload, &state.limits).await?;
                return Ok(replay_response(answer, &hash));
            }
            KeyState::Run(claimed) => claimed,
        };
        let (outcome, hash) = push_ndjson(&state, submission, &query, payload).await;
        return finish_push(&state, claimed, hash, outcome).await;
    }
    let body = read_body(&mut payload, &state.limits).await?;
    let hash = hex::encode(Sha256::digest(&body));
    let claimed = match claim_key(&state, &principal, &municipality, key, &hash).await? {
        KeyState::Earlier(answer) => return Ok(replay_response(answer, &hash)),
        KeyState::Run(claimed) => claimed,
    };
    let limits = state.limits.clone();
    let worker = state.clone();
    let outcome = blocking(move || {
        let layout_version = worker.standard.latest();
        let (candidates, from_csv) = match format {
            BodyFormat::Json => (
                json_batch_candidates(&body, limits.max_batch_records)?,
                false,
            ),
            BodyFormat::Csv { charset } => {
                let text = decode_csv(&body, charset.as_deref())?;
                let candidates = csv_candidates(
                    &text,
                    layout_version,
                    query.record_type.as_deref(),
                    limits.max_batch_records,
                )?;
                (candidates, true)
            }
            BodyFormat::Ndjson => unreachable!("NDJSON is streamed above"),
        };
        let mut conn = worker.store.conn()?;
        let outcome = worker.ingestor.ingest(
            &mut conn,
            &submission,
            query.atomic,
            query.results,
            chunked(candidates.into_iter()),
        );
        match (outcome, from_csv) {
            (Ok(mut report), true) => {
                locate_report(&worker, &mut report);
                Ok(report)
            }
            (Err(IngestError::AtomicRejected(mut report)), true) => {
                locate_report(&worker, &mut report);
                Err(IngestError::AtomicRejected(report).into())
            }
            (outcome, _) => outcome.map_err(Problem::from),
        }
    })
    .await;
    finish_push(&state, claimed, hash, outcome).await
}

/// What `principal`, a source, pushes into `municipality`.
fn submission(principal: &Principal, municipality: &str) -> Submission {
    Submission {
        municipality: municipality.to_string(),
        source: principal.name.clone(),
        allowed_types: principal.record_types.clone(),
        client_id: Some(principal.client_id),
    }
}

/// May a write's condition ask for the record to be absent (`If-None-Match: *`)?
#[derive(Clone, Copy, PartialEq, Eq)]
enum CreateOnly {
    /// A write that creates records (`PUT`).
    Allowed,
    /// A write that can only change an existing record (`DELETE`).
    Meaningless,
}

fn header_text<'r>(req: &'r HttpRequest, name: &str) -> Result<Option<&'r str>, Problem> {
    req.headers()
        .get(name)
        .map(|value| {
            value.to_str().map(str::trim).map_err(|_| {
                Problem::bad_request(
                    "precondition_invalid",
                    format!("{name} must be visible ASCII"),
                )
            })
        })
        .transpose()
}

/// The condition a write states with `If-Match` or `If-None-Match` (RFC 9110 §13.1). If-Match
/// compares strongly, so a weak tag (`W/"…"`) never matches.
fn expected_record(req: &HttpRequest, create_only: CreateOnly) -> Result<Expected, Problem> {
    let if_match = header_text(req, "If-Match")?;
    let if_none_match = header_text(req, "If-None-Match")?;
    match (if_match, if_none_match) {
        (None, None) => Ok(Expected::Anything),
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "precondition_invalid",
            "send either If-Match or If-None-Match, not both",
        )),
        (Some("*"), None) => Ok(Expected::Present),
        (Some(list), None) => {
            let tags: Vec<&str> = list.split(',').map(str::trim).collect();
            let well_formed = |tag: &&str| {
                let opaque = tag.strip_prefix("W/").unwrap_or(tag);
                opaque.len() >= 2 && opaque.starts_with('"') && opaque.ends_with('"')
            };
            if !tags.iter().all(well_formed) {
                return Err(Problem::bad_request(
                    "precondition_invalid",
                    "If-Match must be * or a list of quoted entity tags, such as \"v3\"",
                ));
            }
            Ok(Expected::OneOf(
                tags.into_iter()
                    .filter(|tag| !tag.starts_with("W/"))
                    .map(str::to_string)
                    .collect(),
            ))
        }
        (None, Some("*")) if create_only == CreateOnly::Allowed => Ok(Expected::Absent),
        (None, Some(_)) => Err(Problem::bad_request(
            "precondition_invalid",
            match create_only {
                CreateOnly::Allowed => "only If-None-Match: * (create only) is supported here",
                CreateOnly::Meaningless => "If-None-Match is not supported here; use If-Match",
            },
        )),
    }
}

/// `response` with the entity tag of `version` in `ETag`.
fn with_etag(mut response: HttpResponse, version: i32) -> HttpResponse {
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&etag(version)) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ETAG, value);
    }
    response
}

/// 記録1件の作成・置換 — Put one record
///
/// 自分のIDで指定した記録1件を作成または置き換えます（送信の1件版で、条件付きにできます）。`If-Match` に読み取り（または直前の書込み）の `ETag` を付けると、その後だれも変えていないときだけ保存し、そうでなければ現在の版を示す 412 `precondition_failed` を返して何も書き込みません。`If-None-Match: *` は新規作成のみです。
///
/// Create or replace one record, addressed by its own id: the single-record form of a push,
/// which can be made conditional. `If-Match` with the `ETag` of a read (or of the last write)
/// stores the record only if no one changed it since — otherwise 412 `precondition_failed`
/// naming the current version, and nothing is written. `If-None-Match: *` creates only.
#[utoipa::path(
    put, path = "/v1/municipalities/{code}/records/{source_record_id}", tag = "records",
    params(
        ("code" = String, Path, description = "Municipality code (全国地方公共団体コード)", example = "119016"),
        ("source_record_id" = String, Path, description = "The source's own record id; must equal the record's `source_record_id`", example = "pn-0001"),
        ("If-Match" = Option<String>, Header, description = "Store only if the record's current entity tag is one of these (or, for `*`, if it exists and is not retracted)", example = "\"v2\""),
        ("If-None-Match" = Option<String>, Header, description = "`*`: store only if there is no live record under this id (create only)", example = "*"),
    ),
    request_body(
        description = "One record (`#/components/schemas/Record`).",
        content(
            (Object = "application/json", example = json!({"record_type": "postnatal-checkup", "schema_version": "1.0", "source_record_id": "pn-0001", "subject": {"resident_no": "1190160000101"}, "effective_date": "2025-06-01", "visited_on": "2025-06-01", "epds_total": 12, "epds_item10": 1})),
        )
    ),
    responses(
        (status = 200, description = "Updated or unchanged; `ETag` names the stored version", body = IngestReport),
        (status = 201, description = "Created; `ETag` names the stored version", body = IngestReport),
        (status = 400, description = "A malformed If-Match or If-None-Match (`precondition_invalid`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client may not push to this municipality", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The record is not as the condition expects (`precondition_failed`, with `current` (`version`, `etag`)); nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported Content-Type (only application/json)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The record is invalid, or its `source_record_id` is not the one in the URL (`record_rejected`, with pointers); nothing was written", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_record(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let (municipality, source_record_id) = path.into_inner();
    let principal = caller.require(Role::Source, &municipality)?;
    if !matches!(body_format(&req)?, BodyFormat::Json) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "one record is sent as application/json",
        ));
    }
    let expected = expected_record(&req, CreateOnly::Allowed)?;
    let body = read_body(&mut payload, &state.limits).await?;
    let submission = submission(&principal, &municipality);
    let worker = state.clone();
    let report = blocking(move || {
        let mut conn = worker.store.conn()?;
        worker
            .ingestor
            .put_one(
                &mut conn,
                &submission,
                &source_record_id,
                json_record_candidate(&body),
                &expected,
            )
            .map_err(|e| match e {
                IngestError::AtomicRejected(report) => Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "record_rejected",
                    "the record is invalid; nothing was stored",
                )
                .with_errors(report.results.into_iter().flat_map(|r| r.errors).collect()),
                e => e.into(),
            })
    })
    .await?;
    record_metrics(&state, &report);
    let stored = report
        .results
        .first()
        .and_then(|r| r.version.map(|v| (r.status, v)));
    let Some((status, version)) = stored else {
        return Err(Problem::internal());
    };
    let code = if status == RecordStatus::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(json(code, &report), version))
}

fn locate_report(state: &AppState, report: &mut IngestReport) {
    let version = state.standard.latest();
    for result in report
        .results
        .iter_mut()
        .filter(|r| r.status == RecordStatus::Rejected)
    {
        if let Some(row) = result.row {
            locate_csv_errors(version, row, &mut result.errors);
        }
    }
}

async fn hash_stream(payload: &mut web::Payload, limits: &Limits) -> Result<String, Problem> {
    let (mut hasher, limit) = (Sha256::new(), limits.max_stream_bytes);
    let mut total = 0u64;
    while let Some(chunk) = next_chunk(payload, limits.body_idle_timeout).await? {
        total += chunk.len() as u64;
        if total > limit {
            return Err(stream_too_large(limit, false));
        }
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn stream_too_large(limit: u64, atomic: bool) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!(
            "the NDJSON stream exceeds {limit} bytes; {}",
            if atomic {
                "the push was atomic, so nothing was stored"
            } else {
                "the complete records before the limit were kept (see the report)"
            }
        ),
    )
}

/// Lines cut from the stream: (record index, line number, the line or why it was refused).
type RawLines = Vec<(usize, u64, Result<Vec<u8>, FieldError>)>;

/// Stream NDJSON into the ingest worker: lines are cut here and parsed, validated and stored
/// on the blocking pool, a bounded channel between them keeping memory constant. If the
/// stream breaks off (too large, a line without end, a read error), the complete lines before
/// the break are still ingested — and an atomic push is rolled back — and the problem carries
/// the report of what was kept.
async fn push_ndjson(
    state: &State,
    submission: Submission,
    query: &PushQuery,
    mut payload: web::Payload,
) -> (Result<IngestReport, Problem>, String) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RawLines>(4);
    let worker = state.clone();
    let (atomic, detail) = (query.atomic, query.results);
    let job = web::block(move || {
        let chunks = std::iter::from_fn(move || rx.blocking_recv()).map(|lines| {
            lines
                .into_iter()
                .map(|(index, line_no, line)| match line {
                    Ok(line) => ndjson_candidate(index, line_no, &line),
                    Err(error) => Candidate {
                        index,
                        row: Some(line_no),
                        parsed: Err(vec![error]),
                    },
                })
                .collect::<Vec<Candidate>>()
        });
        Ok::<_, Problem>(
            worker
                .ingestor
                .ingest_from(
                    ConnectionPerChunk(&worker.store),
                    &submission,
                    atomic,
                    detail,
                    chunks,
                )
                .map_err(Problem::from),
        )
    });
    let limits = &state.limits;
    // An atomic push is gathered whole before its one transaction (see `ingest_from`), so it
    // is bounded like a JSON body.
    let stream_limit = if atomic {
        limits.max_body_bytes as u64
    } else {
        limits.max_stream_bytes
    };
    let mut hasher = Sha256::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut batch: RawLines = Vec::with_capacity(crate::ingest::CHUNK_SIZE);
    let (mut index, mut line_no, mut total) = (0usize, 0u64, 0u64);
    let mut read_error = None;
    let mut worker_gone = false;
    'read: loop {
        let chunk = match next_chunk(&mut payload, limits.body_idle_timeout).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(problem) => {
                read_error = Some(problem);
                break;
            }
        };
        total += chunk.len() as u64;
        if total > stream_limit {
            read_error = Some(stream_too_large(stream_limit, atomic));
            break;
        }
        hasher.update(&chunk);
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + pos];
            line_no += 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                let line = if line.len() > limits.max_line_bytes {
                    Err(FieldError::new(
                        "",
                        "line_too_long",
                        format!(
                            "line {line_no} has {} bytes; the limit is {}",
                            line.len(),
                            limits.max_line_bytes
                        ),
                    ))
                } else {
                    Ok(line.to_vec())
                };
                batch.push((index, line_no, line));
                index += 1;
            }
            start += pos + 1;
            if batch.len() >= crate::ingest::CHUNK_SIZE
                && tx.send(std::mem::take(&mut batch)).await.is_err()
            {
                worker_gone = true;
                break 'read;
            }
        }
        pending.drain(..start);
        if pending.len() > limits.max_line_bytes {
            read_error = Some(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "line_too_long",
                format!(
                    "line {} exceeds {} bytes without ending; {}",
                    line_no + 1,
                    limits.max_line_bytes,
                    if atomic {
                        "the push was atomic, so nothing was stored"
                    } else {
                        "the complete records before it were kept (see the report)"
                    }
                ),
            ));
            break;
        }
    }
    if read_error.is_none() && !worker_gone && !pending.iter().all(u8::is_ascii_whitespace) {
        line_no += 1;
        batch.push((index, line_no, Ok(std::mem::take(&mut pending))));
        index += 1;
    }
    if let Some(problem) = &read_error
        && atomic
    {
        // An atomic push that broke off must not keep anything: one refused entry makes the
        // whole transaction roll back.
        batch.push((
            index,
            line_no + 1,
            Err(FieldError::new("", problem.code, problem.detail.clone())),
        ));
    }
    if !worker_gone && !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let hash = hex::encode(hasher.finalize());
    let outcome = match job.await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(problem)) => Err(problem),
        Err(_) => Err(Problem::internal()),
    };
    match read_error {
        None => (outcome, hash),
        Some(mut problem) => {
            problem.report = match outcome {
                Ok(report) => Some(Box::new(report)),
                Err(rejected) => rejected.report,
            };
            (Err(problem), hash)
        }
    }
}

/// 記録の取消し — Retract a record
///
/// 呼び出し元の連携元が送った記録を取り消します（tombstone）。履歴は残り、取消しは変更フィードに現れます。`If-Match` があれば、呼び出し元が読んだ後に誰も変えていない場合だけ取り消します。
///
/// Retract (tombstone) one of the calling source's records; its history is kept and the retraction appears in the change feed. With `If-Match`, only if no one changed the record since the caller read it.
#[utoipa::path(
    delete, path = "/v1/municipalities/{code}/records/{source_record_id}", tag = "records",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("source_record_id" = String, Path, description = "The source's own record id"),
        ("If-Match" = Option<String>, Header, description = "Retract only if the record's current entity tag is one of these (or, for `*`, if it is not retracted)", example = "\"v2\""),
    ),
    responses(
        (status = 200, description = "Retracted (again, harmlessly, if it already was); `ETag` names the tombstone", body = Retraction),
        (status = 400, description = "A malformed If-Match, or an If-None-Match (`precondition_invalid`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The client may not write in this municipality", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record of this source", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The record is not as If-Match expects (`precondition_failed`, with `current` (`version`, `etag`)); nothing was written", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retract(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, source_record_id) = path.into_inner();
    let principal = caller.require(Role::Source, &municipality)?;
    let expected = expected_record(&req, CreateOnly::Meaningless)?;
    let mut entry = audit_entry(&principal, &municipality, "record.retract");
    entry.detail = Some(serde_json::json!({ "source_record_id": source_record_id }).to_string());
    let worker = state.clone();
    let (m, id) = (municipality.clone(), source_record_id.clone());
    let version = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(store_records::retract(
            &mut conn,
            &m,
            &principal.name,
            &id,
            &expected,
            &entry,
        )?)
    })
    .await?;
    let retraction = Retraction {
        municipality_code: municipality,
        source_record_id,
        status: "retracted".into(),
        version,
    };
    Ok(with_etag(json(StatusCode::OK, &retraction), version))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Source that owns the record (defaults to every source holding this id).
    pub source: Option<String>,
}

/// Drop versions about children under a DV support measure unless the caller may see them.
fn hide_support_measure(
    conn: &mut crate::store::DbConn,
    principal: &Principal,
    municipality: &str,
    changes: &mut Vec<store_records::Change>,
) -> Result<(), Problem> {
    if access::lists_support_measure(principal, municipality) {
        return Ok(());
    }
    let hidden = store_records::support_measure_subjects(conn, municipality)?;
    if !hidden.is_empty() {
        changes.retain(|c| !c.about().is_some_and(|r| hidden.contains(&r)));
    }
    Ok(())
}

/// 記録の履歴 — History of a record
///
/// 1つの記録のすべての版を古い順に返します。ケースワーカーはすべての連携元の記録を、連携元は自分の記録を読めます。
///
/// Every version of a record, oldest first: caseworkers see any source's records, a source its own.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/records/{source_record_id}/history", tag = "records",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("source_record_id" = String, Path, description = "The source's own record id", example = "juki-0000001"),
        HistoryQuery,
        ("X-Purpose" = String, Header, description = "Declared purpose, a code of GET /v1/access-purposes", example = "case_handling"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "Every version, oldest first; when they are all one source's, `ETag` names the current one", body = History),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such record, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    state: State,
    read: PersonalRead<HistoryRead>,
    path: web::Path<(String, String)>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, Problem> {
    let (municipality, source_record_id) = path.into_inner();
    let PersonalRead {
        principal,
        context,
        mut entry,
        ..
    } = read;
    entry.detail = Some(serde_json::json!({ "source_record_id": source_record_id }).to_string());
    let source = match access::record_scope(&principal, &municipality) {
        Some(RecordScope::EverySource) => query.into_inner().source,
        Some(RecordScope::OwnSource(own)) => Some(own),
        None => return super::refuse_quietly(&state, entry).await,
    };
    let (m, id) = (municipality.clone(), source_record_id.clone());
    let versions = with_conn(&state, move |conn, _| {
        let mut versions = store_records::history(conn, &m, source.as_deref(), &id)?;
        hide_support_measure(conn, &principal, &m, &mut versions)?;
        // The child concerned, so disclosure requests find history reads too.
        entry.subject = versions.iter().find_map(store_records::Change::about);
        let verdict = match &entry.subject {
            _ if versions.is_empty() => Verdict::Hide(access::Hidden::Missing),
            None => Verdict::Allow,
            Some(about) => {
                let facts = store_records::child_facts(conn, &m, about)?;
                let using = ChildUse::Read {
                    screening: context.purpose.screening,
                };
                // A child unknown to the register (records waiting for it) is no one's secret.
                facts.map_or(Verdict::Allow, |f| {
                    access::visible_child(&principal, using, Some(&f))
                })
            }
        };
        entry.result = verdict.audit_result().into();
        crate::store::audit::append(conn, &entry)?;
        if !verdict.is_allowed() {
            versions.clear();
        }
        Ok(versions)
    })
    .await?;
    let Some(latest) = versions.last() else {
        return Err(Problem::not_found());
    };
    // The history of one source's record names its current version, ready for If-Match.
    let current = versions
        .iter()
        .all(|v| v.version.source == latest.version.source)
        .then_some(latest.version.version);
    let response = json(
        StatusCode::OK,
        &History {
            municipality_code: municipality,
            source_record_id,
            versions,
        },
    );
    Ok(match current {
        Some(version) => with_etag(response, version),
        None => response,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Cursor from the previous page (`next_cursor`); 0 or absent for the beginning.
    #[serde(default)]
    #[param(minimum = 0)]
    pub after: i64,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// 変更フィード — Change feed
///
/// 新しい版と取消しを、コミット順にカーソルでページングして返します。`next_cursor` を次の `after` に渡して続きを読みます。
///
/// Every new version and retraction in commit order, paged by cursor: pass `next_cursor` as the next `after`.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/changes", tag = "records",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ChangesQuery,
        ("X-Purpose" = String, Header, description = "Declared purpose, a code of GET /v1/access-purposes", example = "case_handling"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "Changes after the cursor, oldest first", body = ChangesPage),
        (status = 400, description = "Bad cursor or limit, or missing purpose or actor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn changes(
    state: State,
    read: PersonalRead<ChangesRead>,
    path: web::Path<String>,
    query: web::Query<ChangesQuery>,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let PersonalRead {
        principal,
        context,
        mut entry,
        ..
    } = read;
    if access::record_scope(&principal, &municipality) != Some(RecordScope::EverySource) {
        return super::refuse_quietly(&state, entry).await;
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_CHANGES_PAGE as i64).contains(&limit) || query.after < 0 {
        return Err(Problem::bad_request(
            "invalid_query",
            "limit must be 1–1000 and after a non-negative cursor",
        ));
    }
    let after = query.after;
    let m = municipality.clone();
    let (changes, next_cursor) = with_conn(&state, move |conn, _| {
        let mut changes = store_records::changes(conn, &m, after, limit)?;
        // The cursor moves past hidden entries too, so a consumer never stalls on them.
        let next_cursor = changes.last().map_or(after, |c| c.version.seq);
        hide_support_measure(conn, &principal, &m, &mut changes)?;
        if context.purpose.screening {
            // Opted-out children leave screening views, the feed included.
            let objected = store_records::opted_out_subjects(conn, &m)?;
            changes.retain(|c| !c.about().is_some_and(|r| objected.contains(&r)));
        }
        entry.detail =
            Some(serde_json::json!({"after": after, "returned": changes.len()}).to_string());
        crate::store::audit::append(conn, &entry)?;
        // How far this consumer has read, for the council operator's lag figures.
        crate::store::operations::record_feed_read(
            conn,
            &m,
            principal.client_id,
            &principal.name,
            next_cursor,
        )?;
        Ok((changes, next_cursor))
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &ChangesPage {
            municipality_code: municipality,
            after,
            next_cursor,
            changes,
        },
    ))
}

/// 記録の検証のみ（保存しない） — Validate only (dry run)
///
/// JSON バッチを送信時と同じ規則で検証し、何も保存せずに結果を返します。
///
/// Dry run: validate a JSON batch as a push would, storing nothing.
#[utoipa::path(
    post, path = "/v1/validate", tag = "records",
    request_body(content = PushBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Validity of each record; nothing stored", body = ValidationReport),
        (status = 400, description = "The body cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More records than one batch may hold (`batch_too_large`, pointer `/records`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn validate(
    state: State,
    Caller(principal): Caller,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let body = read_body(&mut payload, &state.limits).await?;
    let worker = state.clone();
    let report = blocking(move || {
        let candidates = json_batch_candidates(&body, worker.limits.max_batch_records)?;
        let submission = Submission {
            municipality: principal.municipality.clone(),
            source: principal.name.clone(),
            allowed_types: principal.record_types.clone(),
            client_id: Some(principal.client_id),
        };
        let results: Vec<ValidationResult> = candidates
            .into_iter()
            .map(|candidate| {
                let errors = match candidate.parsed.and_then(|v| {
                    worker
                        .ingestor
                        .prepare(&submission, candidate.index, &v)
                        .map(|_| ())
                }) {
                    Ok(()) => Vec::new(),
                    Err(errors) => errors,
                };
                ValidationResult {
                    index: candidate.index,
                    valid: errors.is_empty(),
                    errors,
                }
            })
            .collect();
        Ok(results)
    })
    .await?;
    let invalid = report.iter().filter(|r| !r.valid).count();
    Ok(json(
        StatusCode::OK,
        &ValidationReport {
            received: report.len(),
            valid: report.len() - invalid,
            invalid,
            stored: false,
            results: report,
        },
    ))
}
