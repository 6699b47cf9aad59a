//! A child's profile (the subject, its household, its current records and the basic items that
//! apply, with reasons) and guardians' objections (opt-out). Every read declares a purpose and
//! is audited; a child the caller may not see answers exactly like one that does not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::extract::{Caller, PersonalRead, SubjectRead};
use super::views::{GuardianRecord, OptOutState, OptOutView, ProfileView};
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access::{self, ChildUse};
use crate::auth::Role;
use crate::schema::applicability::EvaluatedRecord;
use crate::schema::rules;
use crate::store::records as store_records;

/// 子どものプロファイル — A child's profile
///
/// 子ども（対象者）、世帯、現在の記録と、該当する基本連携データ項目とその理由を返します。呼び出し元が見てはならない子どもは、存在しない子どもと同じ応答になります。
///
/// A child's profile: the subject, household, current records and the basic items that apply, with their reasons. Children the caller may not see answer exactly like missing ones.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/subjects/{resident_no}", tag = "subjects",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
        ("X-Purpose" = String, Header, description = "Declared purpose, a code of GET /v1/access-purposes", example = "case_handling"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "The profile", body = ProfileView),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such child, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn profile(
    state: State,
    read: PersonalRead<SubjectRead>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    let PersonalRead {
        principal,
        context,
        mut entry,
        ..
    } = read;
    let outcome = with_conn(&state, move |conn, hub| {
        // Decide on the cheap facts first: a hidden child never reaches the queries below.
        let facts = store_records::child_facts(conn, &municipality, &resident_no)?;
        let verdict = access::decide(
            &principal,
            &municipality,
            ChildUse::Read {
                screening: context.purpose.screening,
            },
            facts.as_ref(),
        );
        entry.result = verdict.audit_result().to_string();
        crate::store::audit::append(conn, &entry)?;
        if !verdict.is_allowed() {
            return Err(Problem::not_found());
        }
        let lists_dv = access::lists_support_measure(&principal, &municipality);
        let profile = store_records::profile(conn, &municipality, &resident_no, lists_dv)?
            .ok_or_else(Problem::not_found)?;
        let rules = &hub.standard.latest().applicability;
        let evaluated: Vec<EvaluatedRecord> = profile
            .records
            .iter()
            .map(|rec| (resident_no.as_str(), rec))
            .chain(
                profile
                    .guardian_records
                    .iter()
                    .map(|(g, rec)| (g.as_str(), rec)),
            )
            .map(|(about, rec)| EvaluatedRecord {
                record_type: &rec.record_type,
                source_record_id: &rec.source_record_id,
                data: &rec.record,
                about,
            })
            .collect();
        // Opted-out children are never shown in applicable-item (screening) views.
        let applicable = if profile.opt_out.is_some() {
            Vec::new()
        } else {
            rules.evaluate(&evaluated)
        };
        Ok(ProfileView {
            municipality_code: municipality,
            resident_no,
            subject: profile.subject,
            opt_out: profile.opt_out,
            moved_out: profile.moved_out,
            household: profile.household,
            records: profile.records,
            guardian_records: profile
                .guardian_records
                .into_iter()
                .map(|(about, record)| GuardianRecord { about, record })
                .collect(),
            applicable_items: applicable,
            rule_set_version: rules.rule_set_version.clone(),
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &outcome))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"objected_on": "2025-04-01", "legal_note": "不同意書 第3号様式"}))]
pub struct OptOutRequest {
    /// Date the guardian's objection (不同意書) was received (YYYY-MM-DD, not in the future).
    #[schema(format = "past-date")]
    pub objected_on: String,
    /// Legal note (e.g. the ordinance or the form number).
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub legal_note: Option<String>,
}

/// 保護者の不同意の登録 — Record an objection
///
/// 保護者の不同意（オプトアウト）を登録します。子どもはスクリーニングの表示と成果指標から外れます。
///
/// Record a guardian's objection (不同意): the child leaves screening views and indicators.
#[utoipa::path(
    put, path = "/v1/municipalities/{code}/subjects/{resident_no}/opt-out", tag = "subjects",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
        ("X-Actor" = Option<String>, Header, description = "Staff member recording the objection"),
    ),
    request_body(content = OptOutRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = OptOutView),
        (status = 400, description = "Bad body or date", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such child, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_opt_out(
    state: State,
    Caller(principal): Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    if !principal.may(Role::Caseworker, &municipality) {
        return Err(Problem::not_found());
    }
    // The body is read only after authentication: strangers learn nothing from its errors.
    let body: OptOutRequest = super::parse_json(&body)?;
    Problem::refuse_fields(
        body.legal_note
            .as_deref()
            .and_then(|note| {
                rules::free_text_problem("/legal_note", note, rules::LEGAL_NOTE_MAX_CHARS)
            })
            .into_iter()
            .collect(),
    )?;
    if !rules::is_past_date(&body.objected_on) {
        return Err(Problem::bad_request(
            "date_format",
            "objected_on must be a date (YYYY-MM-DD) not in the future",
        )
        .with_errors(vec![crate::schema::FieldError::new(
            "/objected_on",
            "date_format",
            "a date YYYY-MM-DD, not in the future",
        )]));
    }
    let mut entry = audit_entry(&principal, &municipality, "subject.opt_out.set");
    entry.subject = Some(resident_no.clone());
    entry.actor = optional_actor(&req)?;
    let (m, r) = (municipality.clone(), resident_no.clone());
    let note = body.legal_note.clone();
    let objected_on = body.objected_on.clone();
    let known = with_conn(&state, move |conn, _| {
        let facts = store_records::child_facts(conn, &m, &r)?;
        if !access::decide(&principal, &m, ChildUse::RecordObjection, facts.as_ref()).is_allowed() {
            return Ok(false);
        }
        Ok(store_records::set_opt_out(
            conn,
            &m,
            &r,
            &objected_on,
            note.as_deref(),
            &entry,
        )?)
    })
    .await?;
    if !known {
        return Err(Problem::not_found());
    }
    Ok(json(
        StatusCode::OK,
        &OptOutView {
            municipality_code: municipality,
            resident_no,
            opt_out: OptOutState {
                objected_on: body.objected_on,
                legal_note: body.legal_note,
            },
        },
    ))
}

/// 保護者の不同意の撤回 — Withdraw an objection
///
/// 登録されている保護者の不同意を撤回します。
///
/// Withdraw a guardian's recorded objection.
#[utoipa::path(
    delete, path = "/v1/municipalities/{code}/subjects/{resident_no}/opt-out", tag = "subjects",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 404, description = "No objection recorded, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_opt_out(
    state: State,
    Caller(principal): Caller,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    if !principal.may(Role::Caseworker, &municipality) {
        return Err(Problem::not_found());
    }
    let mut entry = audit_entry(&principal, &municipality, "subject.opt_out.clear");
    entry.subject = Some(resident_no.clone());
    entry.actor = optional_actor(&req)?;
    let (m, r) = (municipality.clone(), resident_no.clone());
    let removed = with_conn(&state, move |conn, _| {
        let facts = store_records::child_facts(conn, &m, &r)?;
        if !access::decide(&principal, &m, ChildUse::RecordObjection, facts.as_ref()).is_allowed() {
            return Ok(false);
        }
        Ok(store_records::clear_opt_out(conn, &m, &r, &entry)?)
    })
    .await?;
    if !removed {
        return Err(Problem::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `X-Actor` when given (it must then be valid).
fn optional_actor(req: &HttpRequest) -> Result<Option<String>, Problem> {
    match super::header(req, "X-Actor") {
        None => Ok(None),
        Some(actor) if crate::auth::is_valid_actor(actor) => Ok(Some(actor.to_string())),
        Some(_) => Err(Problem::bad_request(
            "actor_invalid",
            "X-Actor must be visible ASCII without surrounding spaces, at most 100 characters",
        )),
    }
}
