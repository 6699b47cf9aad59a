//! Schemas served by version, health, readiness and metrics.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::{Problem, State, blocking, json};

/// `GET /v1/schemas`: every supported version and its record types.
pub async fn list_schemas(state: State) -> HttpResponse {
    let versions: Vec<_> = state
        .standard
        .versions
        .iter()
        .map(|v| {
            serde_json::json!({
                "version": format!("{}.{}", v.major, v.minor),
                "major": v.major,
                "record_types": v.records.iter().map(|(name, doc)| serde_json::json!({
                    "record_type": name,
                    "title": doc.get("title"),
                    "basic_items": doc.get("x-basic-item"),
                    "href": format!("/v1/schemas/{}/{name}", v.major),
                    "csv_columns": v.csv.get(name).map(|l| l.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>()),
                })).collect::<Vec<_>>(),
                "applicability_rule_set": v.applicability.rule_set_version,
            })
        })
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "versions": versions }))
}

/// `GET /v1/schemas/{version}/{record_type}`: the schema file itself (`common` and
/// `applicability` are served too). Version may be `1`, `v1` or `1.0`.
pub async fn get_schema(
    state: State,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (version, record_type) = path.into_inner();
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    let schema = major.and_then(|m| state.standard.major(m));
    let file = schema.and_then(|s| match record_type.trim_end_matches(".json") {
        name @ ("common" | "applicability") => s.file(&format!("{name}.json")),
        name => s.file(&format!("records/{name}.json")),
    });
    match file {
        Some(text) => Ok(HttpResponse::Ok()
            .content_type("application/schema+json")
            .body(text)),
        None => Err(Problem::not_found()),
    }
}

pub async fn healthz() -> HttpResponse {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers.
pub async fn readyz(state: State) -> Result<HttpResponse, Problem> {
    let worker = state.clone();
    blocking(move || {
        worker.store.ping().map_err(|_| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is not reachable",
            )
        })
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"status": "ready"}),
    ))
}

/// Prometheus text exposition.
pub async fn metrics(state: State) -> HttpResponse {
    let m = &state.metrics;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let body = format!(
        "# HELP kodomo_hub_http_requests_total HTTP requests answered.\n\
         # TYPE kodomo_hub_http_requests_total counter\n\
         kodomo_hub_http_requests_total {}\n\
         # HELP kodomo_hub_http_errors_total HTTP error answers by class.\n\
         # TYPE kodomo_hub_http_errors_total counter\n\
         kodomo_hub_http_errors_total{{class=\"4xx\"}} {}\n\
         kodomo_hub_http_errors_total{{class=\"5xx\"}} {}\n\
         # HELP kodomo_hub_records_total Pushed records by outcome.\n\
         # TYPE kodomo_hub_records_total counter\n\
         kodomo_hub_records_total{{outcome=\"created\"}} {}\n\
         kodomo_hub_records_total{{outcome=\"updated\"}} {}\n\
         kodomo_hub_records_total{{outcome=\"unchanged\"}} {}\n\
         kodomo_hub_records_total{{outcome=\"rejected\"}} {}\n",
        get(&m.requests),
        get(&m.responses_4xx),
        get(&m.responses_5xx),
        get(&m.records_created),
        get(&m.records_updated),
        get(&m.records_unchanged),
        get(&m.records_rejected),
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// `GET /v1/access-purposes`: the published purposes for `X-Purpose`.
pub async fn access_purposes(state: State) -> HttpResponse {
    json(
        StatusCode::OK,
        &serde_json::json!({ "purposes": state.standard.latest().purposes }),
    )
}
