//! Schemas served by version, access purposes, health, readiness and metrics.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::Value;

use super::views::{PurposeList, RecordTypeInfo, SchemaIndex, SchemaVersionInfo, Status};
use super::{Problem, State, blocking, json, with_conn};
use crate::store::operations::TownOperations;

/// 対応するスキーマの一覧 — Supported schema versions
///
/// このハブが対応する標準（基本連携データ項目）の各バージョンと、そのレコード種別を返します。トークンは不要です。
///
/// Every supported version of the standard and its record types. No token needed.
#[utoipa::path(
    get, path = "/v1/schemas", tag = "schemas",
    responses((status = 200, description = "Versions and record types", body = SchemaIndex)),
    security(())
)]
pub async fn list_schemas(state: State) -> HttpResponse {
    let versions = state
        .standard
        .versions
        .iter()
        .map(|v| SchemaVersionInfo {
            version: format!("{}.{}", v.major, v.minor),
            major: v.major,
            record_types: v
                .records
                .iter()
                .map(|(name, doc)| RecordTypeInfo {
                    record_type: name.clone(),
                    title: doc.get("title").and_then(Value::as_str).map(str::to_string),
                    basic_items: doc
                        .get("x-basic-item")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|n| n.as_u64().map(|n| n as u32))
                        .collect(),
                    href: format!("/v1/schemas/{}/{name}", v.major),
                    csv_columns: v
                        .csv
                        .get(name)
                        .map(|l| l.columns.iter().map(|c| c.name.clone()).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            applicability_rule_set: v.applicability.rule_set_version.clone(),
        })
        .collect();
    json(StatusCode::OK, &SchemaIndex { versions })
}

/// レコード種別の JSON Schema — Schema of a record type
///
/// 1つのレコード種別の JSON Schema を、ハブが検証に使うそのままの形で返します（`common`、`applicability`、`access-purposes` も取得できます）。トークンは不要です。
///
/// The JSON Schema of one record type (also `common`, `applicability` and `access-purposes`), exactly as the hub enforces it. No token needed.
#[utoipa::path(
    get, path = "/v1/schemas/{version}/{record_type}", tag = "schemas",
    params(
        ("version" = String, Path, description = "Major version: `1`, `v1` or `1.0`", example = "1"),
        ("record_type" = String, Path, description = "A record type, or `common`, `applicability`, `access-purposes`", example = "infant-checkup"),
    ),
    responses(
        (status = 200, description = "The schema document", content_type = "application/schema+json", body = Object),
        (status = 404, description = "No such version or record type", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
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
        name @ ("common" | "applicability" | "access-purposes") => s.file(&format!("{name}.json")),
        name => s.file(&format!("records/{name}.json")),
    });
    match file {
        Some(text) => Ok(HttpResponse::Ok()
            .content_type("application/schema+json")
            .body(text)),
        None => Err(Problem::not_found()),
    }
}

/// 利用目的の一覧 — Declared purposes
///
/// 個人情報を読む要求の `X-Purpose` ヘッダーに指定できる利用目的と、それぞれの法的根拠を返します。トークンは不要です。
///
/// The purposes a caller may declare in `X-Purpose` on personal reads, with their legal basis. No token needed.
#[utoipa::path(
    get, path = "/v1/access-purposes", tag = "access",
    responses((status = 200, description = "Published purposes", body = PurposeList)),
    security(())
)]
pub async fn access_purposes(state: State) -> HttpResponse {
    json(
        StatusCode::OK,
        &PurposeList {
            purposes: state.standard.latest().purposes.clone(),
        },
    )
}

/// 死活確認 — Liveness
///
/// プロセスが応答していれば 200 を返します。トークンは不要です。
///
/// The process answers. No token needed.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)),
    security(())
)]
pub async fn healthz() -> HttpResponse {
    json(
        StatusCode::OK,
        &Status {
            status: "ok".into(),
        },
    )
}

/// 稼働準備の確認 — Readiness
///
/// データベース接続が空いていて、データベースが応答すれば 200、そうでなければ 503 を返します。トークンは不要です。
///
/// 200 when a database connection is free and the database answers, 503 otherwise. No token needed.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Database unreachable, or every pooled connection is in use", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn readyz(state: State) -> Result<HttpResponse, Problem> {
    let usage = state.store.pool_usage();
    if usage.saturated() {
        // Said at once: waiting for a connection is exactly what a saturated hub cannot offer.
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_pool_saturated",
            format!(
                "all {} database connections are in use; requests wait for one",
                usage.max
            ),
        ));
    }
    let worker = state.clone();
    blocking(move || {
        worker
            .store
            .ping(std::time::Duration::from_secs(2))
            .map_err(|_| {
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
        &Status {
            status: "ready".into(),
        },
    ))
}

/// 運用メトリクス（Prometheus 形式） — Metrics
///
/// Prometheus のテキスト形式で、要求数や記録の件数などを返します。自治体ごと（`municipality` ラベル）・送信元ごとの運用状況（最後の送信時刻、送信件数、エラーコード別の不受理件数、名寄せの確認待ち、未決・エスカレーション済みの引継ぎ、変更フィードの遅れ）も含みます。個人情報は含みません。トークンは不要です。
///
/// Prometheus text exposition: request and record counters, and per town (`municipality` label) and per source the operational figures (last push time, records pushed, rejections by error code, identity queue sizes, open and escalated transfers, change-feed lag). No personal data. No token needed.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain; version=0.0.4")),
    security(())
)]
pub async fn metrics(state: State) -> HttpResponse {
    // The process's own counters are scraped even when the database cannot answer.
    let towns = with_conn(&state, |conn, _| {
        Ok(crate::store::operations::town_operations(conn, None, None)?)
    })
    .await
    .inspect_err(|_| tracing::warn!("the towns' operational figures could not be read"))
    .unwrap_or_default();
    let m = &state.metrics;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let pool = state.store.pool_usage();
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
         kodomo_hub_records_total{{outcome=\"rejected\"}} {}\n\
         # HELP kodomo_hub_db_connections Pooled database connections: the most the pool \
         opens, and those lent out now.\n\
         # TYPE kodomo_hub_db_connections gauge\n\
         kodomo_hub_db_connections{{state=\"max\"}} {}\n\
         kodomo_hub_db_connections{{state=\"in_use\"}} {}\n",
        get(&m.requests),
        get(&m.responses_4xx),
        get(&m.responses_5xx),
        get(&m.records_created),
        get(&m.records_updated),
        get(&m.records_unchanged),
        get(&m.records_rejected),
        pool.max,
        pool.in_use,
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body + &town_metrics(&towns))
}

/// A label value in the exposition format (backslash, quote and newline escaped).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The operational figures of every town, labelled by `municipality` (and `source`).
fn town_metrics(towns: &[TownOperations]) -> String {
    use std::fmt::Write;
    let mut last_push = String::new();
    let mut received = String::new();
    let mut rejected = String::new();
    let mut queue = String::new();
    let mut transfers = String::new();
    let mut escalated = String::new();
    let mut lag = String::new();
    for town in towns {
        let m = label(&town.municipality_code);
        for source in &town.sources {
            let s = label(&source.source);
            if let Some(at) = source
                .last_push_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            {
                let seconds = at.timestamp_micros() as f64 / 1e6;
                let _ = writeln!(
                    last_push,
                    "kodomo_hub_source_last_push_timestamp_seconds{{municipality=\"{m}\",source=\"{s}\"}} {seconds}"
                );
            }
            let total: i64 = source.days.iter().map(|d| d.received).sum();
            let _ = writeln!(
                received,
                "kodomo_hub_source_records_received_total{{municipality=\"{m}\",source=\"{s}\"}} {total}"
            );
            let mut by_code = std::collections::BTreeMap::<&str, i64>::new();
            for (code, n) in source.days.iter().flat_map(|d| &d.rejections_by_code) {
                *by_code.entry(code).or_default() += n;
            }
            for (code, n) in by_code {
                let _ = writeln!(
                    rejected,
                    "kodomo_hub_source_records_rejected_total{{municipality=\"{m}\",source=\"{s}\",code=\"{}\"}} {n}",
                    label(code)
                );
            }
            for (status, n) in [
                ("pending", source.identity_pending),
                ("review", source.identity_review),
            ] {
                let _ = writeln!(
                    queue,
                    "kodomo_hub_identity_queue{{municipality=\"{m}\",source=\"{s}\",status=\"{status}\"}} {n}"
                );
            }
        }
        for (direction, n) in [
            ("outgoing", town.transfers.outgoing),
            ("incoming", town.transfers.incoming),
        ] {
            let _ = writeln!(
                transfers,
                "kodomo_hub_transfers_open{{municipality=\"{m}\",direction=\"{direction}\"}} {n}"
            );
        }
        let _ = writeln!(
            escalated,
            "kodomo_hub_transfers_escalated{{municipality=\"{m}\"}} {}",
            town.transfers.escalated
        );
        for consumer in &town.feed_consumers {
            let _ = writeln!(
                lag,
                "kodomo_hub_feed_lag_versions{{municipality=\"{m}\",consumer=\"{}\"}} {}",
                label(&consumer.client),
                consumer.lag
            );
        }
    }
    let families = [
        (
            "kodomo_hub_source_last_push_timestamp_seconds",
            "gauge",
            "When each source of a town last pushed (Unix time).",
            last_push,
        ),
        (
            "kodomo_hub_source_records_received_total",
            "counter",
            "Records each source of a town pushed, accepted and rejected.",
            received,
        ),
        (
            "kodomo_hub_source_records_rejected_total",
            "counter",
            "Records refused, by source and error code (a record refused for two reasons counts under both).",
            rejected,
        ),
        (
            "kodomo_hub_identity_queue",
            "gauge",
            "Records waiting in the identity queue: no candidate yet (pending) or for a person (review).",
            queue,
        ),
        (
            "kodomo_hub_transfers_open",
            "gauge",
            "Transfers not yet decided, offered or held by the town (outgoing) or offered to it (incoming).",
            transfers,
        ),
        (
            "kodomo_hub_transfers_escalated",
            "gauge",
            "Open transfers of the town escalated past their deadline.",
            escalated,
        ),
        (
            "kodomo_hub_feed_lag_versions",
            "gauge",
            "Versions of the town recorded after each change-feed consumer's cursor.",
            lag,
        ),
    ];
    let mut text = String::new();
    for (name, kind, help, samples) in families {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{samples}"
        );
    }
    text
}
