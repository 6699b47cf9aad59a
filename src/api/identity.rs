//! The identity review queue for caseworkers: records pushed without a resident number that a
//! person must link (or that wait for their subject), with the candidates and what differs.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Actor, Caller, IdentityQueueRead, PersonalRead};
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access::{self, ChildUse};
use crate::auth::Role;
use crate::identity::QueueStatus;
use crate::identity::resolve::Candidate;
use crate::store::identity::{self as store_identity, QueueItem, Verdict};
use crate::store::records as store_records;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// `review` (default): a person must decide; `pending`: no candidate yet; `linked`, `rejected`.
    pub status: Option<QueueStatus>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    #[serde(flatten)]
    pub item: QueueItem,
    /// The identifying part of the record as the source sent it (never altered).
    #[schema(value_type = Object)]
    pub basic_info: Value,
    pub candidates: Vec<Candidate>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    pub municipality_code: String,
    pub status: QueueStatus,
    pub items: Vec<ReviewItem>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resident_no": "1310160000110"}))]
pub struct ConfirmRequest {
    /// The subject the record is about.
    pub resident_no: String,
}

/// 名寄せ確認待ちの一覧 — Identity review queue
///
/// 宛名番号のない記録のうち、名寄せ（同一人物の判定）を待っているものを、候補者と一致しない項目とともに返します。`status` で絞り込めます。
///
/// Records waiting for identity resolution (名寄せ), with their candidates and the fields that differ. Filter with `status`.
#[utoipa::path(
    operation_id = "list_identity_reviews", get, path = "/v1/municipalities/{code}/identity-reviews", tag = "identity",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        QueueQuery,
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "case_handling"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
    ),
    responses(
        (status = 200, description = "Queue items", body = ReviewQueue),
        (status = 400, description = "Missing purpose or actor, bad status", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    state: State,
    read: PersonalRead<IdentityQueueRead>,
    path: web::Path<String>,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let PersonalRead {
        principal,
        mut entry,
        ..
    } = read;
    if !principal.may(Role::Caseworker, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    let status = query.status.unwrap_or(QueueStatus::Review);
    let m = municipality.clone();
    let items = with_conn(&state, move |conn, _| {
        let queue = store_identity::queue(conn, &m, status)?;
        let mut items = Vec::with_capacity(queue.len());
        for item in queue {
            let basic_info = store_records::record_data(conn, item.record_id)?
                .and_then(|d| d.pointer("/subject/basic_info").cloned())
                .unwrap_or(Value::Null);
            let mut candidates = item.candidates();
            // A candidate the caseworker may not see is not offered as a match.
            let names: Vec<String> = candidates.iter().map(|c| c.resident_no.clone()).collect();
            let facts = store_records::children_facts(conn, &m, &names)?;
            candidates.retain(|c| {
                access::decide(
                    &principal,
                    &m,
                    ChildUse::ReviewIdentity,
                    facts.get(&c.resident_no),
                )
                .is_allowed()
            });
            items.push(ReviewItem {
                candidates,
                basic_info,
                item,
            });
        }
        entry.detail =
            Some(serde_json::json!({"status": status.as_str(), "items": items.len()}).to_string());
        crate::store::audit::append(conn, &entry)?;
        Ok(items)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &ReviewQueue {
            municipality_code: municipality,
            status,
            items,
        },
    ))
}

async fn apply(
    state: State,
    caller: Caller,
    actor: Actor,
    municipality: String,
    id: i64,
    resident_no: Option<String>,
) -> Result<HttpResponse, Problem> {
    let Caller(principal) = caller;
    if !principal.may(Role::Caseworker, &municipality) {
        return Err(Problem::not_found());
    }
    let Actor(actor) = actor;
    let action = if resident_no.is_some() {
        "identity.confirm"
    } else {
        "identity.reject"
    };
    let mut entry = audit_entry(&principal, &municipality, action);
    entry.actor = Some(actor.clone());
    entry.subject = resident_no.clone();
    entry.detail = Some(serde_json::json!({"queue_item": id}).to_string());
    let item = with_conn(&state, move |conn, _| {
        let verdict = match &resident_no {
            Some(r) => {
                // A child the caseworker may not see is answered like one that does not
                // exist: the store is asked about a number no subject has.
                let facts = store_records::child_facts(conn, &municipality, r)?;
                let visible = access::decide(
                    &principal,
                    &municipality,
                    ChildUse::ReviewIdentity,
                    facts.as_ref(),
                )
                .is_allowed();
                Verdict::Confirm(r, visible)
            }
            None => Verdict::Reject,
        };
        Ok(store_identity::decide(
            conn,
            &municipality,
            id,
            verdict,
            &actor,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &item))
}

/// 名寄せの確定（候補者と結び付ける） — Confirm an identity
///
/// 確認待ちの記録を、指定した宛名番号の子どもに結び付けます。連携元のローカルID（学籍番号など）は記憶され、次回からは自動で結び付きます。
///
/// Link a queued record to a subject (by resident number); the source's local id is remembered, so the next record with it links by itself.
#[utoipa::path(
    operation_id = "confirm_identity", post, path = "/v1/municipalities/{code}/identity-reviews/{id}/confirm", tag = "identity",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("id" = i64, Path, description = "Queue item id"),
        ("X-Actor" = String, Header, description = "Staff member deciding", example = "staff-001"),
    ),
    request_body(content = ConfirmRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Linked", body = QueueItem),
        (status = 400, description = "Missing actor, or not a subject of this municipality", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided otherwise", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn confirm(
    state: State,
    caller: Caller,
    actor: Actor,
    path: web::Path<(String, i64)>,
    body: web::Json<ConfirmRequest>,
) -> Result<HttpResponse, Problem> {
    let (municipality, id) = path.into_inner();
    apply(
        state,
        caller,
        actor,
        municipality,
        id,
        Some(body.into_inner().resident_no),
    )
    .await
}

/// 名寄せの否認（どの候補者でもない） — Reject the candidates
///
/// どの候補者もこの子どもではないと判断したときに使います。記録は保存されたまま、誰にも結び付けられません。
///
/// None of the candidates is this child: the record stays stored and unlinked.
#[utoipa::path(
    operation_id = "reject_identity", post, path = "/v1/municipalities/{code}/identity-reviews/{id}/reject", tag = "identity",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("id" = i64, Path, description = "Queue item id"),
        ("X-Actor" = String, Header, description = "Staff member deciding", example = "staff-001"),
    ),
    responses(
        (status = 200, description = "Rejected", body = QueueItem),
        (status = 400, description = "Missing actor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such item, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already decided otherwise", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reject(
    state: State,
    caller: Caller,
    actor: Actor,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, id) = path.into_inner();
    apply(state, caller, actor, municipality, id, None).await
}
