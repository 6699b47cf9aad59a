//! The audit trail for auditors: who accessed a child, when and why (開示請求).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::views::AuditTrail;
use super::{Problem, State, audit_entry, blocking, json};
use crate::auth::Role;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Resident number of the child.
    pub subject: String,
}

/// Who accessed a child, when and why — for disclosure requests (開示請求). Auditor role,
/// own municipality.
#[utoipa::path(
    get, path = "/v1/audit", tag = "access",
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries about the child, oldest first", body = AuditTrail),
        (status = 400, description = "Missing subject", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an auditor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit_trail(
    state: State,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    let principal = authenticate_auditor(&state, &req).await?;
    let municipality = principal.municipality.clone();
    let subject = query.into_inner().subject;
    let mut entry = audit_entry(&principal, &municipality, "audit.read");
    entry.subject = Some(subject.clone());
    let worker = state.clone();
    let (m, s) = (municipality.clone(), subject.clone());
    let entries = blocking(move || {
        let mut conn = worker.store.conn()?;
        let entries = crate::audit::for_subject(&mut conn, &m, &s)?;
        crate::audit::append(&mut conn, &entry)?;
        Ok(entries)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &AuditTrail {
            municipality_code: municipality,
            subject,
            entries,
        },
    ))
}

async fn authenticate_auditor(
    state: &State,
    req: &HttpRequest,
) -> Result<crate::auth::Principal, Problem> {
    let principal = super::authenticate(state, req).await?;
    if principal.may(Role::Auditor, &principal.municipality) {
        Ok(principal)
    } else {
        Err(Problem::forbidden("this client lacks the auditor role"))
    }
}

/// Reads of the auditor's town's children by other towns' clients (notification to the data
/// owner, e.g. after a transfer).
#[utoipa::path(
    get, path = "/v1/audit/external-reads", tag = "access",
    responses(
        (status = 200, description = "Entries, oldest first", body = ExternalReads),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an auditor", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn external_reads(state: State, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let principal = authenticate_auditor(&state, &req).await?;
    let municipality = principal.municipality.clone();
    let entry = audit_entry(&principal, &municipality, "audit.external_reads");
    let worker = state.clone();
    let m = municipality.clone();
    let entries = blocking(move || {
        let mut conn = worker.store.conn()?;
        let entries = crate::audit::external_reads(&mut conn, &m)?;
        crate::audit::append(&mut conn, &entry)?;
        Ok(entries)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &ExternalReads {
            municipality_code: municipality,
            entries,
        },
    ))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ExternalReads {
    pub municipality_code: String,
    pub entries: Vec<crate::audit::AuditRecord>,
}
