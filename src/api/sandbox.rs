//! The conformance kit's client sandbox in front of the hub's routes: it answers a client's
//! pushes as the client suite's plan says (`conformance::client::PLAN`) and records every
//! push and what the client got, for the verdict.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{Interposer, Problem};
use crate::conformance::client::{
    Attempt, Fate, Injection, PLAN, REFUSED_CODE, Sent, THROTTLED_RETRY_AFTER,
    UNAVAILABLE_RETRY_AFTER, canonical, sha256_hex,
};

/// Largest push body the sandbox reads (the hub's own JSON limit).
const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Default)]
struct Log {
    attempts: Vec<Attempt>,
    /// Pushes that have arrived (answered or not).
    arrived: usize,
    /// Plan steps applied so far.
    step: usize,
    in_flight: usize,
    last_activity: Option<Instant>,
    /// Keys of pushes passed to the hub: a push with one of them is a replay.
    forwarded_keys: HashSet<String>,
}

/// The sandbox's shared state.
pub struct Sandbox {
    slow: Duration,
    municipality: String,
    log: Mutex<Log>,
}

impl Sandbox {
    pub fn new(municipality: &str, slow: Duration) -> Sandbox {
        Sandbox {
            slow,
            municipality: municipality.to_string(),
            log: Mutex::new(Log::default()),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every answered push, in arrival order.
    pub fn attempts(&self) -> Vec<Attempt> {
        let mut attempts = self.log().attempts.clone();
        attempts.sort_by_key(|a| a.number);
        attempts
    }

    /// Plan steps applied so far (of `PLAN.len()`).
    pub fn steps_applied(&self) -> usize {
        self.log().step
    }

    /// Has the plan been applied in full and the client been quiet for `quiet`?
    pub fn done(&self, quiet: Duration) -> bool {
        let log = self.log();
        log.step == PLAN.len()
            && log.in_flight == 0
            && log.last_activity.is_some_and(|at| at.elapsed() >= quiet)
    }

    /// The injection for a push that is not a replay; the partial rejection waits for a push
    /// it can apply to (a non-atomic JSON batch with records).
    fn next_injection(&self, can_refuse_a_record: bool) -> Injection {
        let mut log = self.log();
        match PLAN.get(log.step) {
            Some(Injection::PartialRejection) if !can_refuse_a_record => Injection::Pass,
            Some(injection) => {
                log.step += 1;
                *injection
            }
            None => Injection::Pass,
        }
    }

    /// A push arrived; its number in arrival order.
    fn begin(&self) -> usize {
        let mut log = self.log();
        log.in_flight += 1;
        log.arrived += 1;
        log.last_activity = Some(Instant::now());
        log.arrived
    }

    fn end(&self, attempt: Option<Attempt>) {
        let mut log = self.log();
        log.in_flight -= 1;
        log.last_activity = Some(Instant::now());
        log.attempts.extend(attempt);
    }

    /// Is this the hub's push route of the sandbox town?
    fn is_push(&self, req: &ServiceRequest) -> bool {
        req.method() == actix_web::http::Method::POST
            && req.path() == format!("/v1/municipalities/{}/records", self.municipality)
    }
}

/// The interposer the sandbox's hub runs with.
pub fn interposer(sandbox: Arc<Sandbox>) -> Interposer {
    Arc::new(move |req, next| {
        let sandbox = sandbox.clone();
        Box::pin(async move {
            if !sandbox.is_push(&req) {
                return next.call(req).await;
            }
            let number = sandbox.begin();
            let answered = handle_push(&sandbox, number, req, next).await;
            match answered {
                Ok((response, attempt)) => {
                    sandbox.end(Some(attempt));
                    Ok(response)
                }
                Err(e) => {
                    sandbox.end(None);
                    Err(e)
                }
            }
        })
    })
}

/// The records of a JSON batch or an NDJSON stream (none for CSV or an unreadable body).
fn records_of(content_type: &str, body: &[u8]) -> Vec<Value> {
    if content_type.starts_with("application/json") {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("records").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    } else if content_type.starts_with("application/x-ndjson") {
        body.split(|b| *b == b'\n')
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .filter_map(|line| serde_json::from_slice(line).ok())
            .collect()
    } else {
        Vec::new()
    }
}

fn problem_answer(
    status: StatusCode,
    code: &'static str,
    detail: &str,
    retry_after: u64,
) -> actix_web::HttpResponse {
    let mut problem = Problem::new(status, code, detail);
    problem.retry_after = Some(retry_after as u32);
    actix_web::ResponseError::error_response(&problem)
}

async fn read_body(req: &mut ServiceRequest) -> Result<Vec<u8>, actix_web::Error> {
    let mut payload = req.take_payload();
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > MAX_BODY {
            return Err(actix_web::error::ErrorPayloadTooLarge(
                "the sandbox reads push bodies of up to 32 MiB",
            ));
        }
    }
    Ok(body)
}

/// Fates of a batch's records from the hub's answer: a 200 report stores every record it does
/// not list as rejected; an atomic 422 stores none.
fn fates_from_answer(status: u16, answer: &Value, count: usize) -> Vec<Fate> {
    let (default, report) = match status {
        200 => (Fate::Stored, Some(answer)),
        422 => (Fate::NotProcessed, answer.get("report")),
        _ => (Fate::NotProcessed, None),
    };
    let mut fates = vec![default; count];
    let results = report
        .and_then(|r| r.get("results"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for result in results {
        if let Some(index) = result.get("index").and_then(Value::as_u64)
            && let Some(fate) = fates.get_mut(index as usize)
        {
            *fate = match result.get("status").and_then(Value::as_str) {
                Some("rejected") => Fate::Rejected,
                _ if status == 200 => Fate::Stored,
                _ => Fate::NotProcessed,
            };
        }
    }
    fates
}

/// The hub's report for a batch without its first record, rewritten to report the whole
/// batch: the refused record first, every other result one place further.
fn with_refused_first(mut report: Value) -> Value {
    if let Some(results) = report.get_mut("results").and_then(Value::as_array_mut) {
        for result in results.iter_mut() {
            if let Some(index) = result.get("index").and_then(Value::as_u64) {
                result["index"] = json!(index + 1);
            }
        }
        results.insert(
            0,
            json!({"index": 0, "status": "rejected", "errors": [{
                "pointer": "",
                "code": REFUSED_CODE,
                "message": "the conformance sandbox refused this record (the plan's partial rejection); report it and do not send it again unchanged"
            }]}),
        );
    }
    for counter in ["received", "rejected"] {
        if let Some(n) = report.get(counter).and_then(Value::as_u64) {
            report[counter] = json!(n + 1);
        }
    }
    report
}

async fn handle_push(
    sandbox: &Sandbox,
    number: usize,
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<(ServiceResponse<BoxBody>, Attempt), actix_web::Error> {
    let arrived = Instant::now();
    let body = read_body(&mut req).await?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let idempotency_key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let atomic = req
        .query_string()
        .split('&')
        .any(|pair| pair.eq_ignore_ascii_case("atomic=true"));
    let values = records_of(&content_type, &body);
    let records: Vec<Sent> = values
        .iter()
        .map(|record| Sent {
            source_record_id: record
                .get("source_record_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            canonical: canonical(record),
        })
        .collect();
    let content = if values.is_empty() {
        sha256_hex(&body)
    } else {
        sha256_hex(canonical(&Value::Array(values.clone())).as_bytes())
    };
    let replay = idempotency_key
        .as_ref()
        .is_some_and(|key| sandbox.log().forwarded_keys.contains(key));
    let injection = if replay {
        Injection::Pass
    } else {
        sandbox.next_injection(
            content_type.starts_with("application/json") && !atomic && !values.is_empty(),
        )
    };
    let mut attempt = Attempt {
        number,
        arrived,
        idempotency_key: idempotency_key.clone(),
        content,
        records,
        injection,
        replay,
        status: 0,
        retry_after: None,
        answered: arrived,
        fates: vec![Fate::NotProcessed; values.len()],
    };
    let early = match injection {
        Injection::TooManyRequests => Some(problem_answer(
            StatusCode::TOO_MANY_REQUESTS,
            "sandbox_throttled",
            "the conformance sandbox throttles this push (plan step 1); retry after Retry-After",
            THROTTLED_RETRY_AFTER,
        )),
        Injection::Unavailable => Some(problem_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "sandbox_unavailable",
            "the conformance sandbox is unavailable for this push (plan step 2); retry after Retry-After",
            UNAVAILABLE_RETRY_AFTER,
        )),
        _ => None,
    };
    if let Some(answer) = early {
        attempt.status = answer.status().as_u16();
        attempt.retry_after = Some(match injection {
            Injection::TooManyRequests => THROTTLED_RETRY_AFTER,
            _ => UNAVAILABLE_RETRY_AFTER,
        });
        attempt.answered = Instant::now();
        return Ok((req.into_response(answer).map_into_boxed_body(), attempt));
    }
    // The hub sees the body as sent, or without its first record when the sandbox refuses it.
    let forwarded = if injection == Injection::PartialRejection {
        let mut rest = values.clone();
        rest.remove(0);
        serde_json::to_vec(&json!({"records": rest}))
            .map_err(actix_web::error::ErrorInternalServerError)?
    } else {
        body
    };
    // The hub reads the body the sandbox hands on, whole: its length, not the client's framing.
    req.headers_mut().remove(TRANSFER_ENCODING);
    req.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(forwarded.len()));
    req.set_payload(actix_web::dev::Payload::from(forwarded));
    if let Some(key) = &idempotency_key {
        sandbox.log().forwarded_keys.insert(key.clone());
    }
    let response = next.call(req).await?;
    let (request, response) = response.into_parts();
    let status = response.status().as_u16();
    let (head, hub_body) = response.into_parts();
    let hub_bytes = actix_web::body::to_bytes(hub_body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
    let hub_answer: Value = serde_json::from_slice(&hub_bytes).unwrap_or(Value::Null);
    let refused = injection == Injection::PartialRejection && status == 200;
    attempt.fates = if refused {
        let mut fates = vec![Fate::Refused];
        fates.extend(fates_from_answer(status, &hub_answer, values.len() - 1));
        fates
    } else if injection == Injection::PartialRejection {
        let mut fates = vec![Fate::NotProcessed];
        fates.extend(fates_from_answer(status, &hub_answer, values.len() - 1));
        fates
    } else {
        fates_from_answer(status, &hub_answer, values.len())
    };
    let answer = match injection {
        Injection::AnswerLost => problem_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "sandbox_answer_lost",
            "the conformance sandbox stored this push but withholds its answer (plan step 4); retry with the same Idempotency-Key to get it",
            UNAVAILABLE_RETRY_AFTER,
        ),
        _ if refused => {
            let body = with_refused_first(hub_answer).to_string();
            head.set_body(BoxBody::new(body))
        }
        _ => head.set_body(BoxBody::new(hub_bytes)),
    };
    if injection == Injection::Slow {
        actix_web::rt::time::sleep(sandbox.slow).await;
    }
    attempt.status = answer.status().as_u16();
    attempt.retry_after = answer
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    attempt.answered = Instant::now();
    Ok((ServiceResponse::new(request, answer), attempt))
}
