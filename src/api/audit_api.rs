//! The audit trail for auditors: who accessed a child, when and why (開示請求).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::extract::Auditor;
use super::views::AuditTrail;
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access::{self, ChildUse, Hidden, Verdict};
use crate::store::audit::AuditRecord;
use crate::store::records as store_records;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Resident number of the child.
    pub subject: String,
}

/// 子どもの記録へのアクセス履歴（開示請求用） — Audit trail of a child
///
/// 誰が・いつ・どの目的でその子どもの情報を読んだかを、古い順に返します。本人や保護者からの開示請求（開示請求）に答えるためのものです。監査担当（`auditor` ロール）が自分の自治体の子どもについてだけ読めます。
///
/// Who accessed a child's data, when and why, oldest first — for disclosure requests (開示請求). Auditor role, own municipality only.
#[utoipa::path(
    get, path = "/v1/audit", tag = "access",
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries about the child, oldest first", body = AuditTrail),
        (status = 400, description = "Missing subject", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an auditor", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit_trail(
    state: State,
    Auditor(principal): Auditor,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    let municipality = principal.municipality.clone();
    let subject = query.into_inner().subject;
    let mut entry = audit_entry(&principal, &municipality, access::AUDIT_READ);
    entry.subject = Some(subject.clone());
    let (m, s) = (municipality.clone(), subject.clone());
    let entries = with_conn(&state, move |conn, _| {
        // A child hidden from this auditor (DV without the role) shows the trail a child that
        // does not exist would have; results never disclose a measure to it.
        let facts = store_records::child_facts(conn, &m, &s)?;
        let hidden = matches!(
            access::decide(&principal, &m, ChildUse::ReadAuditTrail, facts.as_ref()),
            Verdict::Hide(Hidden::SupportMeasure)
        );
        let entries = crate::store::audit::for_subject(conn, &m, &s)?;
        crate::store::audit::append(conn, &entry)?;
        Ok(shown(&principal, hidden, entries))
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

/// The entries as the auditor may see them (see [`access::shown_result`]).
fn shown(
    auditor: &crate::auth::Principal,
    subject_hidden: bool,
    entries: Vec<AuditRecord>,
) -> Vec<AuditRecord> {
    entries
        .into_iter()
        .filter_map(|mut e| {
            let result = access::shown_result(auditor, subject_hidden, &e.action, &e.result)?;
            e.result = result.to_string();
            Some(e)
        })
        .collect()
}

/// 他自治体による閲覧の一覧 — Reads by other towns
///
/// 自分の自治体の子どもの情報を、他の自治体のクライアントが読んだ記録を古い順に返します（転出後の閲覧などを、データを持つ自治体に知らせるためのものです）。監査担当（`auditor` ロール）のみ。
///
/// Reads of the auditor's town's children by other towns' clients, oldest first (to notify the data owner, e.g. after a transfer). Auditor role only.
#[utoipa::path(
    get, path = "/v1/audit/external-reads", tag = "access",
    responses(
        (status = 200, description = "Entries, oldest first", body = ExternalReads),
        (status = 403, description = "Not an auditor", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn external_reads(
    state: State,
    Auditor(principal): Auditor,
) -> Result<HttpResponse, Problem> {
    let municipality = principal.municipality.clone();
    let entry = audit_entry(&principal, &municipality, "audit.external_reads");
    let m = municipality.clone();
    let entries = with_conn(&state, move |conn, _| {
        let mut entries = crate::store::audit::external_reads(conn, &m)?;
        // Reads of children hidden from this auditor are not listed.
        if !access::lists_support_measure(&principal, &m) {
            let hidden = store_records::support_measure_subjects(conn, &m)?;
            entries.retain(|e| e.subject.as_ref().is_none_or(|s| !hidden.contains(s)));
        }
        crate::store::audit::append(conn, &entry)?;
        Ok(shown(&principal, false, entries))
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
    pub entries: Vec<crate::store::audit::AuditRecord>,
}
