//! What a joint-use council's operator sees of its council: the clients registered under it
//! and its towns. No personal data: who may see a council is decided by
//! [`access::operates_council`]; a council the caller may not see answers like one that does
//! not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::Caller;
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access;
use crate::auth::Principal;
use crate::store::clients::{self, Council};

/// A client as its council's operator sees it (never its token).
#[derive(Serialize, ToSchema)]
pub struct CouncilClient {
    pub id: i64,
    pub name: String,
    /// `municipality:<code>`, `council:<code>`.
    pub scope: String,
    pub roles: Vec<String>,
    /// Record types a source may push (absent: all).
    pub record_types: Option<Vec<String>>,
    pub active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CouncilClients {
    pub council: Council,
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
