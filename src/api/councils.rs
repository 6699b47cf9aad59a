//! What a joint-use council's operator sees of its council: the clients registered under it
//! and the operational figures of its towns. No personal data: who may see a council is
//! decided by [`access::operates_council`]; a council the caller may not see answers like one
//! that does not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Caller;
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access;
use crate::auth::Principal;
use crate::store::clients::{self, Council};
use crate::store::operations::{self, TownOperations};

/// A client as its council's operator sees it (never its token).
#[derive(Serialize, ToSchema)]
pub struct CouncilClient {
    pub id: i64,
    pub name: String,
    /// `municipality:<code>`, `council:<code>`.
    pub scope: String,
    #[schema(max_items = 8)]
    pub roles: Vec<String>,
    /// Record types a source may push (absent: all).
    #[schema(max_items = 100)]
    pub record_types: Option<Vec<String>>,
    pub active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CouncilClients {
    pub council: Council,
    #[schema(max_items = 10000)]
    pub clients: Vec<CouncilClient>,
}

/// The council `code` if the caller operates it, audited under `action`; `None` (answered as
/// not found) for a council the caller may not see or that does not exist.
pub(super) fn operated_council(
    conn: &mut crate::store::DbConn,
    principal: &Principal,
    code: &str,
    action: &str,
) -> Result<Option<Council>, Problem> {
    let mut entry = audit_entry(principal, &principal.municipality, action);
    entry.detail = Some(serde_json::json!({"council": code}).to_string());
    let council = if access::operates_council(principal, code) {
        clients::council(conn, code)?
    } else {
        None
    };
    if council.is_none() {
        entry.result = access::Hidden::Scope.audit_result().into();
    }
    crate::store::audit::append(conn, &entry)?;
    Ok(council)
}

/// 協議会のクライアント一覧 — A council's clients
///
/// 協議会に紐づくクライアントと、構成自治体に紐づくクライアントの一覧です（トークンは含みません）。その協議会の運営者（協議会に紐づく `council-admin`）のみ。他の協議会は存在しないものとして 404 を返します。
///
/// The clients bound to the council and to its member towns (never a token). For the council's own operator (a `council-admin` bound to the council) only; any other council answers 404 as if it did not exist.
#[utoipa::path(
    operation_id = "council_clients", get, path = "/v1/councils/{code}/clients", tag = "councils",
    params(("code" = String, Path, description = "Council code")),
    responses(
        (status = 200, description = "The council and its clients", body = CouncilClients),
        (status = 404, description = "No such council for the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn clients(
    state: State,
    Caller(principal): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let code = path.into_inner();
    let listed = with_conn(&state, move |conn, _| {
        let Some(council) = operated_council(conn, &principal, &code, "council.clients")? else {
            return Ok(None);
        };
        let clients = clients::council_clients(conn, &council)?
            .into_iter()
            .map(|row| CouncilClient {
                id: row.id,
                scope: row.binding().label(),
                roles: row.roles.split(',').map(str::to_string).collect(),
                record_types: row
                    .record_types
                    .as_ref()
                    .map(|t| t.split(',').map(str::to_string).collect()),
                active: row.revoked_at.is_none(),
                name: row.name,
            })
            .collect();
        Ok(Some(CouncilClients { council, clients }))
    })
    .await?;
    match listed {
        Some(listed) => Ok(json(StatusCode::OK, &listed)),
        None => Err(Problem::not_found()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OperationsQuery {
    /// Days of pushes to show, today (UTC) included: 1–90, default 7.
    #[param(minimum = 1, maximum = 90, example = 7)]
    pub days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct CouncilOperations {
    pub council: Council,
    /// The first day (UTC) of the pushes shown.
    pub since: String,
    #[schema(max_items = 1741)]
    pub towns: Vec<TownOperations>,
}

/// 協議会の運用状況 — A council's operational figures
///
/// 構成自治体ごと・送信元ごとの運用状況です：最後の送信、日ごとの送信件数、エラーコード別の不受理率、名寄せの確認待ち（`pending`・`review`）、未決の引継ぎ（エスカレーション済みを含む）、変更フィードの利用者ごとの遅れ。件数と名前だけで、個人情報は含みません。その協議会の運営者のみ。他の協議会は存在しないものとして 404 を返します。
///
/// Per member town and per source: last push, records pushed per day, rejection rate by error code, identity queue sizes (`pending`, `review`), open and escalated transfers, and how far each change-feed consumer lags. Counts and names only, never personal data. For the council's own operator only; any other council answers 404 as if it did not exist.
#[utoipa::path(
    operation_id = "council_operations", get, path = "/v1/councils/{code}/operations", tag = "councils",
    params(("code" = String, Path, description = "Council code"), OperationsQuery),
    responses(
        (status = 200, description = "The council's operational figures", body = CouncilOperations),
        (status = 400, description = "Bad number of days", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such council for the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn operations(
    state: State,
    Caller(principal): Caller,
    path: web::Path<String>,
    query: web::Query<OperationsQuery>,
) -> Result<HttpResponse, Problem> {
    let days = query.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(Problem::bad_request(
            "invalid_query",
            "days must be between 1 and 90",
        ));
    }
    let since = (chrono::Utc::now() - chrono::Duration::days(days - 1))
        .format("%Y-%m-%d")
        .to_string();
    let code = path.into_inner();
    let figures = with_conn(&state, move |conn, _| {
        let Some(council) = operated_council(conn, &principal, &code, "council.operations")? else {
            return Ok(None);
        };
        let towns = operations::town_operations(conn, Some(&council.towns), Some(&since))?;
        Ok(Some(CouncilOperations {
            council,
            since,
            towns,
        }))
    })
    .await?;
    match figures {
        Some(figures) => Ok(json(StatusCode::OK, &figures)),
        None => Err(Problem::not_found()),
    }
}
