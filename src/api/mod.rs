//! The HTTP API under `/v1`. Handlers are thin: they authenticate, read the request and call
//! capability code (`ingest`, `store`, `schema`) on the blocking pool.

pub mod audit_api;
pub mod meta;
pub mod problem;
pub mod records;
pub mod subjects;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::Service;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::audit::{self, AuditEntry};
use crate::auth::{self, Principal, ReadContext, ReadRefusal, Role};
use crate::ingest::Ingestor;
use crate::schema::Standard;
use crate::store::{Store, clients};
pub use problem::Problem;

/// Request limits; each has a clear 413/400 answer when exceeded.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest JSON or CSV body, in bytes.
    pub max_body_bytes: usize,
    /// Most records in one JSON batch or CSV file.
    pub max_batch_records: usize,
    /// Largest NDJSON stream, in bytes.
    pub max_stream_bytes: u64,
    /// Longest NDJSON line, in bytes.
    pub max_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_records: 10_000,
            max_stream_bytes: 8 * 1024 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
        }
    }
}

/// Counters exported at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub records_created: AtomicU64,
    pub records_updated: AtomicU64,
    pub records_unchanged: AtomicU64,
    pub records_rejected: AtomicU64,
}

impl Metrics {
    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub struct AppState {
    pub store: Store,
    pub standard: Arc<Standard>,
    pub ingestor: Ingestor,
    pub limits: Limits,
    pub metrics: Metrics,
}

impl AppState {
    pub fn new(store: Store, limits: Limits) -> AppState {
        let standard = Arc::new(Standard::load());
        AppState {
            store,
            ingestor: Ingestor::new(standard.clone()),
            standard,
            limits,
            metrics: Metrics::default(),
        }
    }
}

pub type State = web::Data<AppState>;

/// Run blocking capability code on the blocking pool, mapping both failure layers to problems.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    web::block(work).await.map_err(|_| Problem::internal())?
}

/// An audit entry for an action of `principal`.
pub fn audit_entry(principal: &Principal, municipality: &str, action: &str) -> AuditEntry {
    AuditEntry {
        municipality_code: municipality.to_string(),
        client_id: Some(principal.client_id),
        client_name: Some(principal.name.clone()),
        roles: Some(principal.roles_text()),
        action: action.to_string(),
        result: "ok".to_string(),
        ..AuditEntry::default()
    }
}

/// Append an audit entry in its own transaction.
pub async fn record_audit(state: &State, entry: AuditEntry) -> Result<(), Problem> {
    let worker = state.clone();
    blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(audit::append(&mut conn, &entry)?)
    })
    .await
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|h| h.to_str().ok())
}

/// A personal read: the caller must declare a published purpose and the staff member acting.
/// A refused declaration is audited too.
pub async fn personal_read(
    state: &State,
    req: &HttpRequest,
    principal: &Principal,
    entry: &mut AuditEntry,
) -> Result<ReadContext, Problem> {
    entry.actor = header(req, "X-Actor").map(str::to_string);
    entry.purpose = header(req, "X-Purpose").map(str::to_string);
    let declared = ReadContext::declare(
        &state.standard.latest().purposes,
        header(req, "X-Purpose"),
        header(req, "X-Actor"),
        header(req, "X-Legal-Basis"),
    );
    match declared {
        Ok(context) => {
            entry.legal_basis = Some(context.legal_basis.clone());
            Ok(context)
        }
        Err(refusal) => {
            let code = match refusal {
                ReadRefusal::MissingActor => "actor_required",
                _ => "purpose_required",
            };
            let mut refused = entry.clone();
            refused.result = format!("refused:{code}");
            refused.client_name = Some(principal.name.clone());
            record_audit(state, refused).await?;
            Err(Problem::bad_request(code, refusal.to_string()))
        }
    }
}

/// The caller behind the bearer token.
pub async fn authenticate(state: &State, req: &HttpRequest) -> Result<Principal, Problem> {
    let header = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let Some(token) = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(Problem::unauthorized(
            "send the client's token as `Authorization: Bearer <token>`",
        ));
    };
    let hash = auth::hash_token(token);
    let worker = state.clone();
    let row = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(clients::client_by_token_hash(&mut conn, &hash)?)
    })
    .await?;
    match row {
        Some(row) => Ok(Principal::from_row(row)),
        None => {
            record_audit(
                state,
                AuditEntry {
                    municipality_code: req.match_info().get("code").unwrap_or("").to_string(),
                    action: format!("{} {}", req.method(), req.match_pattern().unwrap_or_default()),
                    result: "failed:authentication".into(),
                    ..AuditEntry::default()
                },
            )
            .await?;
            Err(Problem::unauthorized("the token is unknown or revoked"))
        }
    }
}

/// Authenticate and require `role` in `municipality`.
pub async fn authorize(
    state: &State,
    req: &HttpRequest,
    role: Role,
    municipality: &str,
) -> Result<Principal, Problem> {
    let principal = authenticate(state, req).await?;
    if principal.may(role, municipality) {
        Ok(principal)
    } else {
        Err(Problem::forbidden(format!(
            "this client lacks the {} role for municipality {municipality}",
            role.as_str()
        )))
    }
}

fn extractor_error(detail: String) -> actix_web::Error {
    Problem::bad_request("invalid_request", detail).into()
}

async fn route_not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found())
}

/// Mount every route, with problem-details answers for the framework's own errors.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .app_data(web::JsonConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .route("/healthz", web::get().to(meta::healthz))
        .route("/readyz", web::get().to(meta::readyz))
        .route("/metrics", web::get().to(meta::metrics))
        .service(
            web::scope("/v1")
                .route("/schemas", web::get().to(meta::list_schemas))
                .route(
                    "/schemas/{version}/{record_type}",
                    web::get().to(meta::get_schema),
                )
                .route("/validate", web::post().to(records::validate))
                .route(
                    "/municipalities/{code}/records",
                    web::post().to(records::push),
                )
                .route(
                    "/municipalities/{code}/records/{source_record_id}",
                    web::delete().to(records::retract),
                )
                .route(
                    "/municipalities/{code}/records/{source_record_id}/history",
                    web::get().to(records::history),
                )
                .route(
                    "/municipalities/{code}/changes",
                    web::get().to(records::changes),
                )
                .route(
                    "/municipalities/{code}/subjects/{resident_no}",
                    web::get().to(subjects::profile),
                )
                .route(
                    "/municipalities/{code}/subjects/{resident_no}/opt-out",
                    web::put().to(subjects::put_opt_out),
                )
                .route(
                    "/municipalities/{code}/subjects/{resident_no}/opt-out",
                    web::delete().to(subjects::delete_opt_out),
                )
                .route("/access-purposes", web::get().to(meta::access_purposes))
                .route("/audit", web::get().to(audit_api::audit_trail)),
        )
        .default_service(web::to(route_not_found));
}

/// Start the HTTP server and run until stopped.
pub async fn serve(state: AppState, listen: &str) -> std::io::Result<()> {
    let state = web::Data::new(state);
    tracing::info!(%listen, "kodomo-hub listening");
    actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new()
            .app_data(state.clone())
            .wrap_fn(move |req, srv| {
                let metrics = req.app_data::<State>().cloned();
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    if let Some(state) = metrics {
                        let m = &state.metrics;
                        Metrics::count(&m.requests, 1);
                        match res.status().as_u16() {
                            400..=499 => Metrics::count(&m.responses_4xx, 1),
                            500..=599 => Metrics::count(&m.responses_5xx, 1),
                            _ => {}
                        }
                    }
                    Ok(res)
                }
            })
            .configure(configure)
    })
    .bind(listen)?
    .run()
    .await
}

/// A JSON answer with the standard content type.
pub fn json<T: serde::Serialize>(status: actix_web::http::StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status).json(body)
}
