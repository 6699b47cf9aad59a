//! Transfers between towns of this hub, for transfer officers: offer (or hold), inbox, accept
//! with per-record dispositions, decline with a coded reason, cancel, claim a held transfer,
//! and the escalation list.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Problem, State, audit_entry, authenticate, blocking, json, personal_read};
use crate::auth::{Principal, Role};
use crate::store::transfers::{
    self as store_transfers, NewTransfer, Placement, Transfer, TransferView,
};
use crate::transfer::{DeclineReason, TransferReason};

const PROBLEM: &str = "application/problem+json";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    /// Destination municipality; omit when the family left for an unknown town (held).
    pub destination: Option<String>,
    /// Resident numbers (origin) of the children of the household.
    #[schema(min_items = 1)]
    pub children: Vec<String>,
    pub legal_basis: String,
    pub reason: TransferReason,
    pub note: Option<String>,
    /// Days the destination has to answer before the transfer is escalated (default 14).
    pub deadline_days: Option<i64>,
    /// The officer an unanswered transfer is escalated to.
    pub escalate_to: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    pub origin_resident_no: String,
    pub destination_resident_no: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// The destination's resident number for every child.
    pub placements: Vec<PlacementRequest>,
    /// Source record ids not wanted here (they stay only with the origin).
    #[serde(default)]
    pub declined_records: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineRequest {
    pub reason: DeclineReason,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `inbox` (to my town), `outbox` (from it), `held` (destination unknown, any origin),
    /// `arrivals` (held transfers with a child matching a subject of my town: the family may
    /// have arrived here; claim to confirm), `escalated` (open past the deadline).
    #[serde(rename = "box")]
    pub which: Option<TransferBox>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferBox {
    Inbox,
    Outbox,
    Held,
    Arrivals,
    Escalated,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransferList {
    pub municipality_code: String,
    pub transfers: Vec<Transfer>,
}

pub(super) async fn officer(state: &State, req: &HttpRequest) -> Result<Principal, Problem> {
    let principal = authenticate(state, req).await?;
    if principal.roles.contains(&Role::TransferOfficer) {
        Ok(principal)
    } else {
        Err(Problem::forbidden(
            "this client lacks the transfer-officer role",
        ))
    }
}

pub(super) fn actor(req: &HttpRequest) -> Result<String, Problem> {
    super::required_actor(req, "transfer steps")
}

/// Offer a household's children to a destination town (or hold it until the destination is
/// known). Their current records are frozen as of now.
#[utoipa::path(
    operation_id = "offer_transfer", post, path = "/v1/transfers", tag = "transfers",
    params(("X-Actor" = String, Header, description = "Officer offering", example = "officer-1")),
    request_body(content = OfferRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Offered (or held)", body = TransferView),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A child is not a subject of this town, or the destination is not a town of this hub", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn offer(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let principal = officer(&state, &req).await?;
    let body: OfferRequest = super::parse_json(&body)?;
    let by = actor(&req)?;
    let mut entry = audit_entry(&principal, &principal.municipality, "transfer.offer");
    entry.actor = Some(by.clone());
    entry.legal_basis = Some(body.legal_basis.clone());
    let worker = state.clone();
    let view = blocking(move || {
        let mut conn = worker.store.conn()?;
        let id = store_transfers::create(
            &mut conn,
            &NewTransfer {
                origin: &principal.municipality,
                destination: body.destination.as_deref(),
                children: &body.children,
                legal_basis: &body.legal_basis,
                reason: body.reason,
                note: body.note.as_deref(),
                offered_by: &by,
                deadline_days: body.deadline_days.unwrap_or(14).clamp(0, 365),
                escalate_to: &body.escalate_to,
            },
            &entry,
        )?;
        Ok(store_transfers::view(&mut conn, id, None)?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// Transfers of the caller's town.
#[utoipa::path(
    operation_id = "list_transfers", get, path = "/v1/transfers", tag = "transfers",
    params(ListQuery),
    responses(
        (status = 200, description = "Transfers", body = TransferList),
        (status = 400, description = "Bad query", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn list(
    state: State,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let principal = officer(&state, &req).await?;
    let which = match query.which.unwrap_or(TransferBox::Inbox) {
        TransferBox::Inbox => "inbox",
        TransferBox::Outbox => "outbox",
        TransferBox::Held => "held",
        TransferBox::Arrivals => "arrivals",
        TransferBox::Escalated => "escalated",
    };
    let worker = state.clone();
    let m = principal.municipality.clone();
    let transfers = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(store_transfers::list(&mut conn, &m, which)?)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &TransferList {
            municipality_code: principal.municipality,
            transfers,
        },
    ))
}

/// A transfer with its children, frozen record counts and (for the destination) suggested
/// local resident numbers. Visible to origin and destination officers, and to every officer
/// while held (to find the family among their arrivals).
#[utoipa::path(
    operation_id = "show_transfer", get, path = "/v1/transfers/{id}", tag = "transfers",
    params(
        ("id" = i64, Path, description = "Transfer id"),
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "transfer"),
        ("X-Actor" = String, Header, description = "Officer reading", example = "officer-1"),
    ),
    responses(
        (status = 200, description = "The transfer", body = TransferView),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer, or not visible to the caller", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let principal = authenticate(&state, &req).await?;
    let mut entry = audit_entry(&principal, &principal.municipality, "transfer.read");
    entry.detail = Some(serde_json::json!({"transfer": id}).to_string());
    personal_read(&state, &req, &principal, &mut entry).await?;
    let worker = state.clone();
    let view = blocking(move || {
        let mut conn = worker.store.conn()?;
        let is_officer = principal.roles.contains(&Role::TransferOfficer);
        let visible = store_transfers::get(&mut conn, id)?.filter(|t| {
            is_officer
                && (t.municipality_code == principal.municipality
                    || t.destination_code.as_deref() == Some(principal.municipality.as_str())
                    || t.status == "held")
        });
        entry.result = if visible.is_some() {
            "ok"
        } else {
            "not_found_or_denied"
        }
        .into();
        crate::audit::append(&mut conn, &entry)?;
        let Some(transfer) = visible else {
            return Err(Problem::not_found());
        };
        let suggest_in = (transfer.municipality_code != principal.municipality)
            .then_some(principal.municipality.as_str());
        store_transfers::view(&mut conn, id, suggest_in)?.ok_or_else(Problem::not_found)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// Accept at the destination: every accepted record is copied with provenance in one
/// transaction; repeating it is harmless.
#[utoipa::path(
    operation_id = "accept_transfer", post, path = "/v1/transfers/{id}/accept", tag = "transfers",
    params(
        ("id" = i64, Path, description = "Transfer id"),
        ("X-Actor" = String, Header, description = "Officer accepting", example = "officer-2"),
    ),
    request_body(content = AcceptRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted", body = TransferView),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 422, description = "The answer contradicts the transfer: a child without (or sharing) a destination number, an unknown child or record", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer for this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not in a state that can be accepted", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn accept(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let principal = officer(&state, &req).await?;
    let body: AcceptRequest = super::parse_json(&body)?;
    let by = actor(&req)?;
    let mut entry = audit_entry(&principal, &principal.municipality, "transfer.accept");
    entry.actor = Some(by.clone());
    let worker = state.clone();
    let view = blocking(move || {
        let mut conn = worker.store.conn()?;
        let placements: Vec<Placement> = body
            .placements
            .iter()
            .map(|p| Placement {
                origin_resident_no: &p.origin_resident_no,
                destination_resident_no: &p.destination_resident_no,
            })
            .collect();
        store_transfers::accept(
            &mut conn,
            id,
            &principal.municipality,
            &placements,
            &body.declined_records,
            &by,
            &entry,
        )?;
        store_transfers::view(&mut conn, id, None)?.ok_or_else(Problem::not_found)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

async fn simple_step(
    state: State,
    req: HttpRequest,
    id: i64,
    step: &'static str,
    reason: Option<DeclineReason>,
) -> Result<HttpResponse, Problem> {
    let principal = officer(&state, &req).await?;
    let by = actor(&req)?;
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        &format!("transfer.{step}"),
    );
    entry.actor = Some(by.clone());
    let worker = state.clone();
    let transfer = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(store_transfers::step(
            &mut conn,
            id,
            &principal.municipality,
            step,
            reason,
            &by,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &transfer))
}

/// Decline at the destination, with a coded reason.
#[utoipa::path(
    operation_id = "decline_transfer", post, path = "/v1/transfers/{id}/decline", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-2")),
    request_body(content = DeclineRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Declined", body = Transfer),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer for this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not in a state that can be declined", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn decline(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let body: DeclineRequest = super::parse_json(&body)?;
    simple_step(state, req, path.into_inner(), "decline", Some(body.reason)).await
}

/// Cancel at the origin before acceptance.
#[utoipa::path(
    operation_id = "cancel_transfer", post, path = "/v1/transfers/{id}/cancel", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-1")),
    responses(
        (status = 200, description = "Cancelled", body = Transfer),
        (status = 400, description = "Missing actor", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer from this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already decided", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn cancel(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    simple_step(state, req, path.into_inner(), "cancel", None).await
}

/// A destination that found a held transfer's family among its arrivals claims it; the
/// transfer is then offered to it.
#[utoipa::path(
    operation_id = "claim_transfer", post, path = "/v1/transfers/{id}/claim", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-2")),
    responses(
        (status = 200, description = "Now offered to the caller's town", body = Transfer),
        (status = 400, description = "Missing actor", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such held transfer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not held any more", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn claim(
    state: State,
    req: HttpRequest,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    simple_step(state, req, path.into_inner(), "claim", None).await
}
