//! Idempotent pushes: a request with an `Idempotency-Key` claims the key on a lease it renews
//! while it runs; its answer is stored for retries (the first answer again, 422 for another
//! body, 409 while the first request still runs), or the key is released when it fails.

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::{AppState, Metrics, Problem, State, blocking};
use crate::auth::Principal;
use crate::ingest::IngestReport;
use crate::store::clients;

pub(super) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(key)
                if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Ok(Some(key.to_string()))
            }
            _ => Err(Problem::bad_request(
                "idempotency_key_invalid",
                "Idempotency-Key must be 1–255 visible ASCII characters",
            )),
        },
    }
}

pub(super) fn record_metrics(state: &AppState, report: &IngestReport) {
    let m = &state.metrics;
    Metrics::count(&m.records_created, report.created);
    Metrics::count(&m.records_updated, report.updated);
    Metrics::count(&m.records_unchanged, report.unchanged);
    Metrics::count(&m.records_rejected, report.rejected);
}

/// An idempotency key this request has claimed; answered or released when the request ends.
/// While the request runs its lease is renewed, so only a request whose process died loses
/// the key to a retry.
pub(super) struct ClaimedKey {
    municipality: String,
    client_id: i64,
    key: String,
    /// Names this request's lease.
    owner: String,
    _renewal: LeaseRenewal,
}

/// Renews a lease every third of its length until dropped.
struct LeaseRenewal(actix_web::rt::task::JoinHandle<()>);

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LeaseRenewal {
    fn start(state: &State, municipality: &str, client_id: i64, key: &str, owner: &str) -> Self {
        let lease = state.limits.idempotency_lease;
        let (state, municipality, key, owner) = (
            state.clone(),
            municipality.to_string(),
            key.to_string(),
            owner.to_string(),
        );
        LeaseRenewal(actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(lease / 3).await;
                let (worker, m, k, o) = (
                    state.clone(),
                    municipality.clone(),
                    key.clone(),
                    owner.clone(),
                );
                let renewed = blocking(move || {
                    let mut conn = worker.store.conn()?;
                    Ok(clients::renew_key(&mut conn, &m, client_id, &k, &o, lease)?)
                })
                .await;
                // Lost (taken over after a stall) or the database is away: nothing to renew.
                if !matches!(renewed, Ok(true)) {
                    tracing::warn!(municipality, "an idempotency lease could not be renewed");
                    return;
                }
            }
        }))
    }
}

pub(super) enum KeyState {
    /// No key, or this request owns it.
    Run(Option<ClaimedKey>),
    /// An earlier request with this key has answered (or is still running).
    Earlier(clients::StoredAnswer),
}

pub(super) async fn claim_key(
    state: &State,
    principal: &Principal,
    municipality: &str,
    key: Option<String>,
    request_hash: &str,
) -> Result<KeyState, Problem> {
    let Some(key) = key else {
        return Ok(KeyState::Run(None));
    };
    let (worker, hash, lease) = (
        state.clone(),
        request_hash.to_string(),
        state.limits.idempotency_lease,
    );
    let (m, k, client_id) = (municipality.to_string(), key.clone(), principal.client_id);
    let reservation = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(clients::reserve_key(
            &mut conn, &m, client_id, &k, &hash, lease,
        )?)
    })
    .await?;
    Ok(match reservation {
        clients::Reservation::Reserved { owner } => KeyState::Run(Some(ClaimedKey {
            _renewal: LeaseRenewal::start(state, municipality, client_id, &key, &owner),
            municipality: municipality.to_string(),
            client_id,
            key,
            owner,
        })),
        clients::Reservation::Existing(answer) => KeyState::Earlier(answer),
    })
}

pub(super) fn key_in_progress() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_progress",
        "a request with this Idempotency-Key is still running; retry after it has answered",
    )
}

/// The answer to a request whose key was used before: the first answer again, 422 when the
/// body differs, 409 while the first request is still running.
pub(super) fn replay_response(answer: clients::StoredAnswer, request_hash: &str) -> HttpResponse {
    if answer.request_hash != request_hash && !answer.in_progress() {
        return actix_web::ResponseError::error_response(&Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        ));
    }
    if answer.in_progress() {
        return actix_web::ResponseError::error_response(&key_in_progress());
    }
    let content_type = if answer.status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK))
        .content_type(content_type)
        .insert_header(("Idempotent-Replayed", "true"))
        .body(answer.response)
}

/// Turn an ingest outcome into the response; a claimed key stores it (a 200 report or a 422
/// rejection) or is released (any other failure) so that a retry can run.
pub(super) async fn finish_push(
    state: &State,
    claimed: Option<ClaimedKey>,
    request_hash: String,
    outcome: Result<IngestReport, Problem>,
) -> Result<HttpResponse, Problem> {
    let answer = match outcome {
        Ok(report) => {
            record_metrics(state, &report);
            serde_json::to_string(&report)
                .map(|body| (StatusCode::OK, body, "application/json"))
                .map_err(|_| Problem::internal())
        }
        Err(problem) if problem.status == 422 => {
            if let Some(report) = &problem.report {
                record_metrics(state, report);
            }
            serde_json::to_string(&problem)
                .map(|body| {
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        body,
                        "application/problem+json",
                    )
                })
                .map_err(|_| Problem::internal())
        }
        Err(problem) => Err(problem),
    };
    if let Some(claimed) = claimed {
        let stored = answer
            .as_ref()
            .ok()
            .map(|(status, body, _)| clients::StoredAnswer {
                request_hash,
                status: status.as_u16(),
                response: body.clone(),
            });
        let worker = state.clone();
        blocking(move || {
            let mut conn = worker.store.conn()?;
            let ClaimedKey {
                municipality,
                client_id,
                key,
                owner,
                _renewal,
            } = claimed;
            match stored {
                Some(stored) => clients::complete_key(
                    &mut conn,
                    &municipality,
                    client_id,
                    &key,
                    &owner,
                    &stored,
                )?,
                None => clients::release_key(&mut conn, &municipality, client_id, &key, &owner)?,
            }
            Ok(())
        })
        .await?;
    }
    let (status, body, content_type) = answer?;
    Ok(HttpResponse::build(status)
        .content_type(content_type)
        .body(body))
}
