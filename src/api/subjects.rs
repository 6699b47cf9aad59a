//! A child's profile (the subject, its household, its current records and the basic items that
//! apply, with reasons) and guardians' objections (opt-out). Every read declares a purpose and
//! is audited; a child the caller may not see answers exactly like one that does not exist.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::views::{GuardianRecord, OptOutState, OptOutView, ProfileView};
use super::{
    Problem, State, audit_entry, authenticate, authorize, blocking, json, personal_read,
    record_audit,
};
use crate::auth::Role;
use crate::schema::applicability::EvaluatedRecord;
use crate::schema::rules;
use crate::store::records as store_records;

/// A child's profile: the subject, household, current records and the basic items that
/// apply with their reasons. Children the caller may not see answer exactly like missing ones.
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
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such child, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn profile(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    let principal = authenticate(&state, &req).await?;
    let mut entry = audit_entry(&principal, &municipality, "subject.read");
    entry.subject = Some(resident_no.clone());
    let context = personal_read(&state, &req, &principal, &mut entry).await?;
    let may_read = principal.may(Role::Caseworker, &municipality);
    let sees_support_measure = principal.may(Role::SupportMeasureReader, &municipality);
    let worker = state.clone();
    let (m, r) = (municipality.clone(), resident_no.clone());
    let outcome = blocking(move || {
        let mut conn = worker.store.conn()?;
        // Look the child up even when the caller may not read it, so that both answers take
        // the same path and about the same time.
        let profile = store_records::profile(&mut conn, &m, &r, sees_support_measure)?;
        let verdict = match &profile {
            _ if !may_read => Err("denied:role"),
            None => Err("not_found"),
            Some(p) if p.support_measure && !sees_support_measure => Err("denied:support_measure"),
            Some(p) if p.opt_out.is_some() && context.purpose.screening => Err("excluded:opt_out"),
            Some(_) => Ok(()),
        };
        entry.result = verdict.err().unwrap_or("ok").to_string();
        crate::audit::append(&mut conn, &entry)?;
        let Some(profile) = profile.filter(|_| verdict.is_ok()) else {
            return Err(Problem::not_found());
        };
        let rules = &worker.standard.latest().applicability;
        let evaluated: Vec<EvaluatedRecord> = profile
            .records
            .iter()
            .map(|rec| (r.as_str(), rec))
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
            municipality_code: m,
            resident_no: r,
            subject: profile.subject,
            opt_out: profile.opt_out,
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
pub struct OptOutRequest {
    /// Date the guardian's objection (不同意書) was received (YYYY-MM-DD, not in the future).
    #[schema(format = "past-date")]
    pub objected_on: String,
    /// Legal note (e.g. the ordinance or the form number).
    pub legal_note: Option<String>,
}

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
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such child, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_opt_out(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    let principal = authorize(&state, &req, Role::Caseworker, &municipality)
        .await
        .map_err(hide_forbidden)?;
    // The body is read only after authentication: strangers learn nothing from its errors.
    let body: OptOutRequest = super::parse_json(&body)?;
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
    let sees_support_measure = principal.may(Role::SupportMeasureReader, &municipality);
    let worker = state.clone();
    let (m, r) = (municipality.clone(), resident_no.clone());
    let note = body.legal_note.clone();
    let objected_on = body.objected_on.clone();
    let known = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(store_records::set_opt_out(
            &mut conn,
            &m,
            &r,
            &objected_on,
            note.as_deref(),
            sees_support_measure,
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

/// Withdraw a guardian's objection.
#[utoipa::path(
    delete, path = "/v1/municipalities/{code}/subjects/{resident_no}/opt-out", tag = "subjects",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No objection recorded, or not visible to the caller", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_opt_out(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    let principal = authorize(&state, &req, Role::Caseworker, &municipality)
        .await
        .map_err(hide_forbidden)?;
    let mut entry = audit_entry(&principal, &municipality, "subject.opt_out.clear");
    entry.subject = Some(resident_no.clone());
    entry.actor = optional_actor(&req)?;
    let sees_support_measure = principal.may(Role::SupportMeasureReader, &municipality);
    let worker = state.clone();
    let (m, r) = (municipality.clone(), resident_no.clone());
    let removed = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(store_records::clear_opt_out(
            &mut conn,
            &m,
            &r,
            sees_support_measure,
            &entry,
        )?)
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

/// Another town's caller learns nothing: a refusal looks like "not found".
pub fn hide_forbidden(problem: Problem) -> Problem {
    if problem.status == 403 {
        Problem::not_found()
    } else {
        problem
    }
}

/// Record that a refused caller tried, then answer like "not found".
pub async fn refuse_quietly(
    state: &State,
    mut entry: crate::audit::AuditEntry,
) -> Result<HttpResponse, Problem> {
    entry.result = "denied:role".into();
    record_audit(state, entry).await?;
    Err(Problem::not_found())
}
