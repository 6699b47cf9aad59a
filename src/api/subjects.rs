//! A child's profile: the subject, its household, its current records and the basic items
//! that apply, with reasons.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{Problem, State, authorize, blocking, json};
use crate::auth::Role;
use crate::schema::applicability::EvaluatedRecord;
use crate::store::records as store_records;

/// `GET /v1/municipalities/{code}/subjects/{resident_no}`
pub async fn profile(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, resident_no) = path.into_inner();
    // Another town's caller gets the same answer as for a child that does not exist.
    authorize(&state, &req, Role::Caseworker, &municipality)
        .await
        .map_err(|p| {
            if p.status == 403 {
                Problem::not_found()
            } else {
                p
            }
        })?;
    let worker = state.clone();
    let (m, r) = (municipality.clone(), resident_no.clone());
    let body = blocking(move || {
        let mut conn = worker.store.conn()?;
        let profile = store_records::profile(&mut conn, &m, &r)?.ok_or_else(Problem::not_found)?;
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
        let applicable = rules.evaluate(&evaluated);
        Ok(serde_json::json!({
            "municipality_code": m,
            "resident_no": r,
            "subject": profile.subject,
            "household": profile.household,
            "records": profile.records,
            "guardian_records": profile.guardian_records.iter().map(|(g, rec)| {
                serde_json::json!({"about": g, "record": rec})
            }).collect::<Vec<_>>(),
            "applicable_items": applicable,
            "rule_set_version": rules.rule_set_version,
        }))
    })
    .await?;
    Ok(json(StatusCode::OK, &body))
}
