//! The HTTP API under `/v1`. Handlers are thin: they authenticate, read the request and call
//! capability code (`ingest`, `store`, `schema`) on the blocking pool.

pub mod audit_api;
pub mod councils;
pub mod docs;
pub mod extract;
pub mod guard;
mod idempotency;
pub mod identity;
pub mod indicators;
pub mod meta;
pub mod openapi;
pub mod openapi_text;
pub mod packages;
pub mod problem;
pub mod records;
pub mod sandbox;
pub mod screening;
pub mod subjects;
pub mod transfers;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::dev::Service;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::ingest::Ingestor;
use crate::schema::Standard;
use crate::store::{DbConn, Store};
pub use problem::Problem;

/// Header on every answer: the requests a second each client may make.
pub const RATE_LIMIT_HEADER: &str = "X-RateLimit-Limit";

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
    /// How long an Idempotency-Key stays reserved for a request that stops renewing it (its
    /// process died): a retry after that runs.
    pub idempotency_lease: std::time::Duration,
    /// NDJSON streams one client may push at the same time (429 beyond).
    pub max_streams_per_client: usize,
    /// How long a request body may pause before the request is answered 408.
    pub body_idle_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_records: 10_000,
            max_stream_bytes: 8 * 1024 * 1024 * 1024,
            max_line_bytes: 1024 * 1024,
            idempotency_lease: std::time::Duration::from_secs(60),
            max_streams_per_client: 4,
            body_idle_timeout: std::time::Duration::from_secs(30),
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

/// Per-client token buckets: each client may make `per_second` requests a second, in bursts
/// of up to twice that.
pub struct RateLimit {
    per_second: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<i64, (f64, std::time::Instant)>>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second: f64::from(per_second.max(1)),
            buckets: Default::default(),
        }
    }

    /// Requests a second each client may make (bursts of up to twice that).
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Take one request from the client's bucket; `Err(seconds)` says when to retry.
    pub fn take(&self, client_id: i64) -> Result<(), u32> {
        let now = std::time::Instant::now();
        let burst = self.per_second * 2.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(client_id).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u32)
        }
    }
}

/// Failed authentications per source address: at most `per_minute` are audited in a minute;
/// beyond that further guesses from the address get 429, and the failures it made meanwhile are
/// counted into the next audited one instead of each writing an entry — so guessing tokens, or
/// flooding the trail, costs an attacker a minute per batch.
pub struct FailedAuthThrottle {
    per_minute: u32,
    windows: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, FailureWindow>>,
}

struct FailureWindow {
    started: std::time::Instant,
    failures: u32,
    /// Failures answered 429 without an audit entry of their own since the last entry.
    suppressed: u64,
}

const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl FailedAuthThrottle {
    pub fn new(per_minute: u32) -> FailedAuthThrottle {
        FailedAuthThrottle {
            per_minute: per_minute.max(1),
            windows: Default::default(),
        }
    }

    fn window<T>(&self, address: std::net::IpAddr, f: impl FnOnce(&mut FailureWindow) -> T) -> T {
        let now = std::time::Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 100_000 {
            // Bounded memory under a spray of addresses: forget expired windows.
            windows.retain(|_, w| now.duration_since(w.started) < FAILURE_WINDOW);
        }
        let window = windows.entry(address).or_insert(FailureWindow {
            started: now,
            failures: 0,
            suppressed: 0,
        });
        if now.duration_since(window.started) >= FAILURE_WINDOW {
            window.started = now;
            window.failures = 0;
        }
        f(window)
    }

    /// Count a failure; answers how many earlier failures went unaudited (to note in this
    /// failure's audit entry), or `Err(seconds)` when this one is over the limit.
    pub fn fail(&self, address: std::net::IpAddr) -> Result<u64, u32> {
        let per_minute = self.per_minute;
        self.window(address, |w| {
            w.failures += 1;
            if w.failures > per_minute {
                w.suppressed += 1;
                let left = FAILURE_WINDOW.saturating_sub(w.started.elapsed());
                return Err(left.as_secs().max(1) as u32);
            }
            Ok(std::mem::take(&mut w.suppressed))
        })
    }
}

/// NDJSON streams running per client. Streams wait on the network for as long as their
/// senders take, so one client's share is bounded.
#[derive(Default)]
pub struct StreamSlots {
    running: Arc<std::sync::Mutex<std::collections::HashMap<i64, usize>>>,
}

/// One running stream; its slot is given back when dropped.
pub struct StreamSlot {
    running: Arc<std::sync::Mutex<std::collections::HashMap<i64, usize>>>,
    client_id: i64,
}

impl StreamSlots {
    /// A slot for another stream of `client_id`, unless it already runs `limit`.
    pub fn take(&self, client_id: i64, limit: usize) -> Option<StreamSlot> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let count = running.entry(client_id).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            running: self.running.clone(),
            client_id,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = running.get_mut(&self.client_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.client_id);
            }
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub streams: StreamSlots,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
    pub rate_limit: RateLimit,
    pub failed_auth: FailedAuthThrottle,
    pub standard: Arc<Standard>,
    pub ingestor: Ingestor,
    pub limits: Limits,
    pub metrics: Metrics,
    /// The deployment's disclosure rules (for indicator previews).
    pub disclosure: crate::indicators::disclosure::DisclosureConfig,
}

impl AppState {
    pub fn new(store: Store, limits: Limits) -> AppState {
        let standard = Arc::new(Standard::load());
        AppState {
            openapi: openapi::document_text(&standard),
            store,
            ingestor: Ingestor::new(standard.clone()),
            standard,
            limits,
            streams: StreamSlots::default(),
            metrics: Metrics::default(),
            rate_limit: RateLimit::new(2000),
            failed_auth: FailedAuthThrottle::new(30),
            disclosure: Default::default(),
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

/// Run `work` on the blocking pool with a pooled connection and the hub's state.
pub async fn with_conn<T: Send + 'static>(
    state: &State,
    work: impl FnOnce(&mut DbConn, &AppState) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let worker = state.clone();
    blocking(move || {
        let mut conn = worker.store.conn()?;
        work(&mut conn, &worker)
    })
    .await
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
    with_conn(state, move |conn, _| {
        Ok(crate::store::audit::append(conn, &entry)?)
    })
    .await
}

/// A caller without a role in the town learns nothing: audited, then "not found".
pub async fn refuse_quietly(state: &State, mut entry: AuditEntry) -> Result<HttpResponse, Problem> {
    entry.result = crate::access::Hidden::Role.audit_result().into();
    record_audit(state, entry).await?;
    Err(Problem::not_found())
}

/// Whether the `Accept` header names `media` (the client asks for that form of the answer).
pub fn accepts(req: &HttpRequest, media: &str) -> bool {
    header(req, "Accept").is_some_and(|accept| accept.to_ascii_lowercase().contains(media))
}

/// A header as text. Declared purposes' legal bases are often Japanese, so UTF-8 is accepted
/// (HTTP's `to_str` would drop them as absent).
pub fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get(name)
        .and_then(|h| std::str::from_utf8(h.as_bytes()).ok())
}

/// A JSON body, read only after the caller is authenticated (so strangers learn nothing from
/// its errors). A key twice in one object is refused (`duplicate_key`), never last-wins.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let value = crate::schema::strict_json::parse(body).map_err(|e| {
        let error = crate::ingest::formats::json_body_error(&e);
        match error.code.as_str() {
            "duplicate_key" => Problem::bad_request("duplicate_key", format!("invalid body: {e}"))
                .with_errors(vec![error]),
            _ => Problem::bad_request("invalid_request", format!("invalid body: {e}")),
        }
    })?;
    serde_json::from_value(value)
        .map_err(|e| Problem::bad_request("invalid_request", format!("invalid body: {e}")))
}

fn extractor_error(detail: String) -> actix_web::Error {
    Problem::bad_request("invalid_request", detail).into()
}

async fn route_not_found() -> Result<HttpResponse, Problem> {
    Err(Problem::not_found())
}

/// One path with its methods; any other method answers 405 with the `Allow` header.
fn resource(path: &str, routes: Vec<(&'static str, actix_web::Route)>) -> actix_web::Resource {
    let allow = routes
        .iter()
        .map(|(m, _)| *m)
        .collect::<Vec<_>>()
        .join(", ");
    routes
        .into_iter()
        .fold(web::resource(path), |r, (_, route)| r.route(route))
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                let mut response = actix_web::ResponseError::error_response(&Problem::new(
                    actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("this resource supports {allow} (see /openapi.json)"),
                ));
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
                    response
                        .headers_mut()
                        .insert(actix_web::http::header::ALLOW, value);
                }
                response
            }
        }))
}

/// Mount every route, with problem-details answers for the framework's own errors.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .app_data(web::JsonConfig::default().error_handler(|e, _| extractor_error(e.to_string())))
        .service(resource(
            "/openapi.json",
            vec![("GET", web::get().to(docs::openapi_json))],
        ))
        .service(resource(
            "/docs",
            vec![("GET", web::get().to(docs::viewer))],
        ))
        .service(resource(
            "/docs/redoc.standalone.js",
            vec![("GET", web::get().to(docs::redoc_bundle))],
        ))
        .service(resource(
            "/docs/redoc-init.js",
            vec![("GET", web::get().to(docs::redoc_init))],
        ))
        .service(resource(
            "/docs/licenses.txt",
            vec![("GET", web::get().to(docs::redoc_licence))],
        ))
        .service(resource(
            "/docs/data-dictionary",
            vec![("GET", web::get().to(docs::data_dictionary))],
        ))
        .service(resource(
            "/docs/data-dictionary.csv",
            vec![("GET", web::get().to(docs::data_dictionary_csv))],
        ))
        .service(resource(
            "/healthz",
            vec![("GET", web::get().to(meta::healthz))],
        ))
        .service(resource(
            "/readyz",
            vec![("GET", web::get().to(meta::readyz))],
        ))
        .service(resource(
            "/metrics",
            vec![("GET", web::get().to(meta::metrics))],
        ))
        .service(
            web::scope("/v1")
                .service(resource(
                    "/schemas",
                    vec![("GET", web::get().to(meta::list_schemas))],
                ))
                .service(resource(
                    "/schemas/{version}/{record_type}",
                    vec![("GET", web::get().to(meta::get_schema))],
                ))
                .service(resource(
                    "/validate",
                    vec![("POST", web::post().to(records::validate))],
                ))
                .service(resource(
                    "/municipalities/{code}/records",
                    vec![("POST", web::post().to(records::push))],
                ))
                .service(resource(
                    "/municipalities/{code}/records/{source_record_id}",
                    vec![
                        ("PUT", web::put().to(records::put_record)),
                        ("DELETE", web::delete().to(records::retract)),
                    ],
                ))
                .service(resource(
                    "/municipalities/{code}/records/{source_record_id}/history",
                    vec![("GET", web::get().to(records::history))],
                ))
                .service(resource(
                    "/municipalities/{code}/changes",
                    vec![("GET", web::get().to(records::changes))],
                ))
                .service(resource(
                    "/municipalities/{code}/subjects/{resident_no}",
                    vec![("GET", web::get().to(subjects::profile))],
                ))
                .service(resource(
                    "/municipalities/{code}/subjects/{resident_no}/opt-out",
                    vec![
                        ("PUT", web::put().to(subjects::put_opt_out)),
                        ("DELETE", web::delete().to(subjects::delete_opt_out)),
                    ],
                ))
                .service(resource(
                    "/access-purposes",
                    vec![("GET", web::get().to(meta::access_purposes))],
                ))
                .service(resource(
                    "/audit",
                    vec![("GET", web::get().to(audit_api::audit_trail))],
                ))
                .service(resource(
                    "/audit/external-reads",
                    vec![("GET", web::get().to(audit_api::external_reads))],
                ))
                .service(resource(
                    "/municipalities/{code}/identity-reviews",
                    vec![("GET", web::get().to(identity::list))],
                ))
                .service(resource(
                    "/municipalities/{code}/identity-reviews/{id}/confirm",
                    vec![("POST", web::post().to(identity::confirm))],
                ))
                .service(resource(
                    "/municipalities/{code}/identity-reviews/{id}/reject",
                    vec![("POST", web::post().to(identity::reject))],
                ))
                .service(resource(
                    "/transfers",
                    vec![
                        ("GET", web::get().to(transfers::list)),
                        ("POST", web::post().to(transfers::offer)),
                    ],
                ))
                .service(resource(
                    "/transfers/{id}",
                    vec![("GET", web::get().to(transfers::show))],
                ))
                .service(resource(
                    "/transfers/{id}/accept",
                    vec![("POST", web::post().to(transfers::accept))],
                ))
                .service(resource(
                    "/transfers/{id}/decline",
                    vec![("POST", web::post().to(transfers::decline))],
                ))
                .service(resource(
                    "/transfers/{id}/cancel",
                    vec![("POST", web::post().to(transfers::cancel))],
                ))
                .service(resource(
                    "/transfers/{id}/claim",
                    vec![("POST", web::post().to(transfers::claim))],
                ))
                .service(resource(
                    "/transfers/{id}/package",
                    vec![("GET", web::get().to(packages::export))],
                ))
                .service(resource(
                    "/transfer-packages",
                    vec![("POST", web::post().to(packages::import))],
                ))
                .service(resource(
                    "/transfer-receipts",
                    vec![("POST", web::post().to(packages::receipt))],
                ))
                .service(resource(
                    "/transfers/{id}/outcome",
                    vec![("GET", web::get().to(packages::outcome))],
                ))
                .service(resource(
                    "/transfer-outcomes",
                    vec![("POST", web::post().to(packages::import_outcome))],
                ))
                .service(resource(
                    "/indicators/releases",
                    vec![("GET", web::get().to(indicators::list))],
                ))
                .service(resource(
                    "/indicators/releases/{id}",
                    vec![("GET", web::get().to(indicators::show))],
                ))
                .service(resource(
                    "/indicators/preview",
                    vec![("GET", web::get().to(indicators::preview))],
                ))
                .service(resource(
                    "/councils/{code}/clients",
                    vec![("GET", web::get().to(councils::clients))],
                ))
                .service(resource(
                    "/councils/{code}/operations",
                    vec![("GET", web::get().to(councils::operations))],
                ))
                .configure(screening_routes),
        )
        .default_service(web::to(route_not_found));
}

/// Screening worklists (判定・抽出): rule sets, runs, decisions, fairness, school shares.
fn screening_routes(cfg: &mut web::ServiceConfig) {
    const TOWN: &str = "/municipalities/{code}";
    let routes: [(String, Vec<(&'static str, actix_web::Route)>); 11] = [
        (
            "/screening-rules/default".into(),
            vec![("GET", web::get().to(screening::default_rules))],
        ),
        (
            format!("{TOWN}/screening-rules"),
            vec![
                ("GET", web::get().to(screening::list_rules)),
                ("POST", web::post().to(screening::add_rules)),
            ],
        ),
        (
            format!("{TOWN}/screening-rules/{{version}}"),
            vec![("GET", web::get().to(screening::show_rules))],
        ),
        (
            format!("{TOWN}/screening-rules/{{version}}/adopt"),
            vec![("POST", web::post().to(screening::adopt_rules))],
        ),
        (
            format!("{TOWN}/screening-rules/{{version}}/preview"),
            vec![("GET", web::get().to(screening::preview))],
        ),
        (
            format!("{TOWN}/screening-runs"),
            vec![
                ("GET", web::get().to(screening::list_runs)),
                ("POST", web::post().to(screening::create_run)),
            ],
        ),
        (
            format!("{TOWN}/screening-runs/{{run}}"),
            vec![("GET", web::get().to(screening::worklist))],
        ),
        (
            format!("{TOWN}/screening-runs/{{run}}/entries/{{resident_no}}"),
            vec![("GET", web::get().to(screening::entry))],
        ),
        (
            format!("{TOWN}/screening-runs/{{run}}/entries/{{resident_no}}/decision"),
            vec![("PUT", web::put().to(screening::decide))],
        ),
        (
            format!("{TOWN}/screening-runs/{{run}}/close"),
            vec![("POST", web::post().to(screening::close))],
        ),
        (
            format!("{TOWN}/screening-runs/{{run}}/fairness"),
            vec![("GET", web::get().to(screening::fairness))],
        ),
    ];
    for (path, methods) in routes {
        cfg.service(resource(&path, methods));
    }
    cfg.service(resource(
        &format!("{TOWN}/school-shares"),
        vec![("GET", web::get().to(screening::school_shares))],
    ));
}

/// Start the HTTP server (HTTPS only when `tls` is given) and run until stopped.
pub async fn serve(
    state: AppState,
    listen: &str,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<()> {
    tracing::info!(%listen, "kodomo-hub listening");
    server(state, Bind::Address(listen), tls, None)?.await
}

/// Where the server listens: an address it binds, or a listener bound already (whose port
/// the caller knows before the server runs).
pub enum Bind<'a> {
    Address(&'a str),
    Listener(std::net::TcpListener),
}

/// A layer a tool puts in front of every route — the conformance kit's client sandbox, which
/// injects faults into the answers a vendor's client gets and records what the client did.
pub type Interposer = Arc<
    dyn Fn(
            actix_web::dev::ServiceRequest,
            actix_web::middleware::Next<actix_web::body::BoxBody>,
        ) -> futures_util::future::LocalBoxFuture<
            'static,
            Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error>,
        > + Send
        + Sync,
>;

/// The hub's HTTP server (plain or TLS), with an optional interposer; the caller runs it
/// (awaits it) and may stop it through its handle.
pub fn server(
    state: AppState,
    bind: Bind,
    tls: Option<rustls::ServerConfig>,
    interposer: Option<Interposer>,
) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::new(state);
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        let interposer = interposer.clone();
        actix_web::App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(
                move |req, next: actix_web::middleware::Next<actix_web::body::BoxBody>| {
                    let answer: futures_util::future::LocalBoxFuture<'static, _> = match &interposer
                    {
                        Some(interpose) => interpose(req, next),
                        None => Box::pin(next.call(req)),
                    };
                    answer
                },
            ))
            .wrap(actix_web::middleware::from_fn(guard::refuse_early))
            .wrap_fn(move |req, srv| {
                let metrics = req.app_data::<State>().cloned();
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    if let Some(state) = metrics {
                        // Every answer tells clients their quota (documented in OpenAPI).
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_bytes(
                                RATE_LIMIT_HEADER.as_bytes(),
                            )
                            .expect("a valid header name"),
                            actix_web::http::header::HeaderValue::from(
                                state.rate_limit.per_second() as u64,
                            ),
                        );
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
    .on_connect(crate::auth::tls::remember_peer);
    Ok(match (bind, tls) {
        (Bind::Address(listen), Some(config)) => server.bind_rustls_0_23(listen, config)?.run(),
        (Bind::Address(listen), None) => server.bind(listen)?.run(),
        (Bind::Listener(listener), Some(config)) => {
            server.listen_rustls_0_23(listener, config)?.run()
        }
        (Bind::Listener(listener), None) => server.listen(listener)?.run(),
    })
}

/// A JSON answer with the standard content type.
pub fn json<T: serde::Serialize>(status: actix_web::http::StatusCode, body: &T) -> HttpResponse {
    HttpResponse::build(status).json(body)
}
