//! Transfers between towns of this hub, for transfer officers: offer (or hold), inbox, accept
//! with per-record dispositions, decline with a coded reason, cancel, claim a held transfer,
//! and the escalation list.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::extract::{Actor, Officer, PersonalRead, TransferRead};
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access::TransferUse;
use crate::auth::Principal;
use crate::schema::rules;
use crate::store::transfers::{self as store_transfers, Transfer, TransferView};
use crate::transfer::workflow::{self, Acceptance, NewTransfer, Placement};
use crate::transfer::{DeclineReason, Step, TransferBox, TransferReason};

const PROBLEM: &str = "application/problem+json";

/// Bounds of an offer's free text (characters).
pub const LEGAL_BASIS_MAX_CHARS: usize = 200;
pub const NOTE_MAX_CHARS: usize = 2000;
pub const ESCALATE_TO_MAX_CHARS: usize = 100;
/// Days a destination may be given to answer; a transfer due at once would be escalated to
/// nobody before anyone saw it.
pub const DEADLINE_DAYS: std::ops::RangeInclusive<i64> = 1..=365;
pub const DEFAULT_DEADLINE_DAYS: i64 = 14;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"destination": "011002", "children": ["1310160000110"], "legal_basis": "個人情報保護法第69条第2項第3号", "reason": "moved", "note": "転居のため引継ぎ", "deadline_days": 14, "escalate_to": "課長 山本"}))]
pub struct OfferRequest {
    /// Destination municipality; omit when the family left for an unknown town (held).
    #[schema(pattern = "^[0-9]{6}$")]
    pub destination: Option<String>,
    /// Resident numbers (origin) of the children of the household.
    #[schema(min_items = 1, max_items = 50)]
    pub children: Vec<String>,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub legal_basis: String,
    pub reason: TransferReason,
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub note: Option<String>,
    /// Days the destination has to answer before the transfer is escalated (default 14);
    /// `14.0` counts as 14.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 365)]
    pub deadline_days: Option<i64>,
    /// The officer an unanswered transfer is escalated to.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub escalate_to: String,
}

/// An integer as JSON Schema defines it: any number with a zero fraction (`14` or `14.0`).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    // Beyond 2^53 a float no longer holds every integer; no bounded field needs that.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number")))
}

/// Problems with whom and when an unanswered transfer is escalated (offers and imported
/// packages alike).
pub(super) fn escalation_problems(
    escalate_to: &str,
    deadline_days: Option<i64>,
) -> Vec<crate::schema::FieldError> {
    let mut problems: Vec<_> =
        rules::free_text_problem("/escalate_to", escalate_to, ESCALATE_TO_MAX_CHARS)
            .into_iter()
            .collect();
    if deadline_days.is_some_and(|days| !DEADLINE_DAYS.contains(&days)) {
        problems.push(crate::schema::FieldError::new(
            "/deadline_days",
            "range",
            format!(
                "between {} and {} days",
                DEADLINE_DAYS.start(),
                DEADLINE_DAYS.end()
            ),
        ));
    }
    problems
}

/// Most children one offer moves (a household), and so most placements one acceptance makes.
pub const MAX_CHILDREN: usize = 50;

/// `Some` problem when `list` at `pointer` holds more than `max` items.
fn too_many<T>(pointer: &str, list: &[T], max: usize) -> Option<crate::schema::FieldError> {
    (list.len() > max).then(|| {
        crate::schema::FieldError::new(pointer, "items_count", format!("at most {max} items"))
    })
}

impl OfferRequest {
    fn check(&self) -> Result<(), Problem> {
        let mut problems: Vec<_> = [
            rules::free_text_problem("/legal_basis", &self.legal_basis, LEGAL_BASIS_MAX_CHARS),
            self.note
                .as_deref()
                .and_then(|note| rules::free_text_problem("/note", note, NOTE_MAX_CHARS)),
            too_many("/children", &self.children, MAX_CHILDREN),
        ]
        .into_iter()
        .flatten()
        .collect();
        problems.extend(escalation_problems(&self.escalate_to, self.deadline_days));
        Problem::refuse_fields(problems)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    pub origin_resident_no: String,
    pub destination_resident_no: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"placements": [{"origin_resident_no": "1310160000110", "destination_resident_no": "0110020000501"}], "declined_records": []}))]
pub struct AcceptRequest {
    /// The destination's resident number for every child.
    #[schema(max_items = 50)]
    pub placements: Vec<PlacementRequest>,
    /// Source record ids not wanted here (they stay only with the origin).
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub declined_records: Vec<String>,
}

impl AcceptRequest {
    fn check(&self) -> Result<(), Problem> {
        let max_records = crate::transfer::package::MAX_ITEMS;
        Problem::refuse_fields(
            [
                too_many("/placements", &self.placements, MAX_CHILDREN),
                too_many("/declined_records", &self.declined_records, max_records),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "not_resident"}))]
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

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransferList {
    pub municipality_code: String,
    pub transfers: Vec<Transfer>,
}

/// 引継ぎの申出（転出時） — Offer a transfer
///
/// 世帯の子どもを転出先の自治体へ引き継ぐよう申し出ます（転出先が未定なら保留にできます）。子どもの現在の記録はこの時点の内容で固定されます。引継ぎ担当（`transfer_officer`）のみ。
///
/// Offer a household's children to a destination town (or hold the offer until the destination is known). Their current records are frozen as of now. Transfer officers only.
#[utoipa::path(
    operation_id = "offer_transfer", post, path = "/v1/transfers", tag = "transfers",
    params(("X-Actor" = String, Header, description = "Officer offering", example = "officer-1")),
    request_body(content = OfferRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Offered (or held)", body = TransferView),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A child is not a subject of this town, or the destination is not a town of this hub", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn offer(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let body: OfferRequest = super::parse_json(&body)?;
    body.check()?;
    let mut entry = audit_entry(&principal, &principal.municipality, "transfer.offer");
    entry.actor = Some(by.clone());
    entry.legal_basis = Some(body.legal_basis.clone());
    let view = with_conn(&state, move |conn, _| {
        let id = workflow::offer_as(
            conn,
            &principal,
            &NewTransfer {
                origin: &principal.municipality,
                destination: body.destination.as_deref(),
                children: &body.children,
                legal_basis: &body.legal_basis,
                reason: body.reason,
                note: body.note.as_deref(),
                offered_by: &by,
                deadline_days: body.deadline_days.unwrap_or(DEFAULT_DEADLINE_DAYS),
                escalate_to: &body.escalate_to,
            },
            &entry,
        )?;
        Ok(store_transfers::view(conn, id, None)?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &view))
}

/// 引継ぎの一覧 — Transfers of my town
///
/// 呼び出し元の自治体の引継ぎを `box`（受信箱・送信箱・保留・到着候補・期限超過）ごとに返します。
///
/// Transfers of the caller's town, by `box` (inbox, outbox, held, arrivals, escalated).
#[utoipa::path(
    operation_id = "list_transfers", get, path = "/v1/transfers", tag = "transfers",
    params(ListQuery),
    responses(
        (status = 200, description = "Transfers", body = TransferList),
        (status = 400, description = "Bad query", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn list(
    state: State,
    Officer(principal): Officer,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let which = query.which.unwrap_or(TransferBox::Inbox);
    let municipality = principal.municipality.clone();
    let transfers = with_conn(&state, move |conn, _| {
        Ok(workflow::mailbox(conn, &principal, which)?)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &TransferList {
            municipality_code: municipality,
            transfers,
        },
    ))
}

/// 引継ぎの詳細 — One transfer
///
/// 引継ぎと、その子ども、固定された記録の件数、（転入先には）推定される宛名番号を返します。転出元と転入先の引継ぎ担当が読めます。保留中は、到着した家族を探せるよう、すべての引継ぎ担当が読めます。
///
/// A transfer with its children, frozen record counts and (for the destination) suggested local resident numbers. Visible to origin and destination officers, and to every officer while held (to find the family among their arrivals).
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
        (status = 404, description = "No such transfer, or not visible to the caller", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    state: State,
    read: PersonalRead<TransferRead>,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let PersonalRead {
        principal,
        mut entry,
        ..
    } = read;
    entry.detail = Some(serde_json::json!({"transfer": id}).to_string());
    let view = with_conn(&state, move |conn, _| {
        let (transfer, verdict) = workflow::judge(conn, &principal, TransferUse::View, id)?;
        let (Some(transfer), true) = (transfer, verdict.is_allowed()) else {
            entry.result = verdict.audit_result().into();
            crate::store::audit::append(conn, &entry)?;
            return Err(Problem::not_found());
        };
        // Filed under the town holding the children, one entry each: the origin's auditors
        // see the destination's reads (external reads) and disclosure requests find them.
        let children: Vec<String> = store_transfers::children(conn, id)?
            .into_iter()
            .map(|(origin_resident_no, _)| origin_resident_no)
            .collect();
        crate::store::in_write_transaction(conn, |tx| {
            workflow::audit_per_child(tx, &entry, &transfer.municipality_code, &children)
        })?;
        let suggest_in = (transfer.municipality_code != principal.municipality)
            .then_some(principal.municipality.as_str());
        store_transfers::view(conn, id, suggest_in)?.ok_or_else(Problem::not_found)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// 引継ぎの受入れ（転入先） — Accept a transfer
///
/// 転入先が引継ぎを受け入れます。受け入れた記録はすべて、出所の情報付きで1つのトランザクションで複写されます。繰り返しても問題ありません。
///
/// Accept at the destination: every accepted record is copied with its provenance in one transaction; repeating it is harmless.
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
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer for this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not in a state that can be accepted", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn accept(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let body: AcceptRequest = super::parse_json(&body)?;
    body.check()?;
    let mut entry = audit_entry(&principal, &principal.municipality, "transfer.accept");
    entry.actor = Some(by.clone());
    let view = with_conn(&state, move |conn, _| {
        workflow::visible(conn, &principal, TransferUse::Accept, id)?;
        let placements: Vec<Placement> = body
            .placements
            .iter()
            .map(|p| Placement {
                origin_resident_no: &p.origin_resident_no,
                destination_resident_no: &p.destination_resident_no,
            })
            .collect();
        workflow::accept(
            conn,
            id,
            &Acceptance {
                destination: &principal.municipality,
                placements: &placements,
                declined_records: &body.declined_records,
                decided_by: &by,
            },
            &entry,
        )?;
        store_transfers::view(conn, id, None)?.ok_or_else(Problem::not_found)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

async fn simple_step(
    state: State,
    principal: Principal,
    by: String,
    id: i64,
    step: Step,
    reason: Option<DeclineReason>,
) -> Result<HttpResponse, Problem> {
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        &format!("transfer.{}", step.as_str()),
    );
    entry.actor = Some(by.clone());
    let transfer = with_conn(&state, move |conn, _| {
        Ok(workflow::take_step(
            conn, &principal, id, step, reason, &by, &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &transfer))
}

/// 引継ぎの辞退（転入先） — Decline a transfer
///
/// 転入先が、コード化された理由を付けて引継ぎを辞退します。
///
/// Decline at the destination, with a coded reason.
#[utoipa::path(
    operation_id = "decline_transfer", post, path = "/v1/transfers/{id}/decline", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-2")),
    request_body(content = DeclineRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Declined", body = Transfer),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer for this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not in a state that can be declined", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn decline(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    path: web::Path<i64>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let body: DeclineRequest = super::parse_json(&body)?;
    simple_step(
        state,
        principal,
        by,
        path.into_inner(),
        Step::Decline,
        Some(body.reason),
    )
    .await
}

/// 引継ぎの取消し（転出元） — Cancel a transfer
///
/// 受入れ前に、転出元が引継ぎを取り消します。
///
/// Cancel at the origin before acceptance.
#[utoipa::path(
    operation_id = "cancel_transfer", post, path = "/v1/transfers/{id}/cancel", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-1")),
    responses(
        (status = 200, description = "Cancelled", body = Transfer),
        (status = 400, description = "Missing actor", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer from this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already decided", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn cancel(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    simple_step(state, principal, by, path.into_inner(), Step::Cancel, None).await
}

/// 保留中の引継ぎの引受け — Claim a held transfer
///
/// 保留中の引継ぎの家族が自分の自治体に転入していたとき、転入先として引き受けます。引継ぎは呼び出し元の自治体への申出になります。
///
/// A destination that found a held transfer's family among its arrivals claims it; the transfer is then offered to it.
#[utoipa::path(
    operation_id = "claim_transfer", post, path = "/v1/transfers/{id}/claim", tag = "transfers",
    params(("id" = i64, Path, description = "Transfer id"), ("X-Actor" = String, Header, description = "Officer", example = "officer-2")),
    responses(
        (status = 200, description = "Now offered to the caller's town", body = Transfer),
        (status = 400, description = "Missing actor", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such held transfer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not held any more", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn claim(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    simple_step(state, principal, by, path.into_inner(), Step::Claim, None).await
}
