//! Anonymised outcome indicators. Published releases are aggregates that passed the
//! disclosure audit: any authenticated client may read them (the national-analyst role exists
//! for this), as JSON or as CSV. An unpublished preview is for council administrators only,
//! and shows only their own council's towns and council totals.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::extract::Caller;
use super::{Problem, State, audit_entry, blocking, json};
use crate::access;
use crate::indicators::Catalogue;
use crate::indicators::progress::Progress;
use crate::indicators::publication::CsvHeading;
use crate::indicators::publication::{self, CellView, PreviewView, ReleaseList, ReleaseView};
use crate::indicators::table::Level;
use crate::indicators::{FiscalYear, audit::AuditSummary, pipeline};
use crate::store::indicators as ledger;

const PROBLEM: &str = "application/problem+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    /// UTF-8 with a byte-order mark.
    Csv,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    pub format: Option<Format>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// Fiscal year (年度): 2025 is 1 April 2025 – 31 March 2026.
    #[param(minimum = 2000, maximum = 2100, example = 2025)]
    pub fiscal_year: i32,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    pub format: Option<Format>,
}

/// CSV when asked for by `?format=csv` or by an `Accept` header naming `text/csv` (unless
/// `?format=json` says otherwise).
fn wants_csv(req: &HttpRequest, format: Option<Format>) -> bool {
    format.map_or_else(|| super::accepts(req, "text/csv"), |f| f == Format::Csv)
}

fn respond(
    req: &HttpRequest,
    format: Option<Format>,
    heading: &CsvHeading,
    cells: &[CellView],
    file: &str,
    body: &impl serde::Serialize,
) -> HttpResponse {
    if !wants_csv(req, format) {
        return json(StatusCode::OK, body);
    }
    let mut response = HttpResponse::Ok();
    response.content_type("text/csv; charset=utf-8");
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.csv\""))
    {
        response.insert_header((header::CONTENT_DISPOSITION, disposition));
    }
    response.body(publication::csv(heading, cells))
}

/// 公表済みの成果指標の一覧 — Published indicator releases
///
/// 公表済みの成果指標（リリース）を古い順に返します（各セルは含みません。セルは個別の取得で）。
///
/// Published indicator releases, oldest first, without their cells (read one release for them).
#[utoipa::path(
    operation_id = "list_indicator_releases", get, path = "/v1/indicators/releases", tag = "indicators",
    responses(
        (status = 200, description = "Releases", body = ReleaseList),
    )
)]
pub async fn list(state: State, _caller: Caller) -> Result<HttpResponse, Problem> {
    let worker = state.clone();
    let releases = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(ledger::list(&mut conn)?
            .iter()
            .map(|(release, cells)| publication::summary(release, *cells))
            .collect())
    })
    .await?;
    Ok(json(StatusCode::OK, &ReleaseList { releases }))
}

/// 公表済みの成果指標（1リリース） — One indicator release
///
/// 1つのリリースのすべてのセルを返します。開示ルールが許すセルは数値、許さないセルは記号 `X`（理由付き）です。JSON のほか、`?format=csv` または `Accept: text/csv` で CSV（BOM付き UTF-8）でも取得できます。
///
/// One published release with every cell: numbers where the disclosure rules allow them, the symbol `X` (with the reason) where not. As JSON, or as CSV (UTF-8 with BOM) with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    operation_id = "show_indicator_release", get, path = "/v1/indicators/releases/{id}", tag = "indicators",
    params(("id" = i64, Path, description = "Release id", example = 1), FormatQuery),
    responses(
        (status = 200, description = "The release", content(
            (ReleaseView = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad id or format", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such release", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn show(
    state: State,
    _caller: Caller,
    req: HttpRequest,
    path: web::Path<i64>,
    query: web::Query<FormatQuery>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let worker = state.clone();
    let view: ReleaseView = blocking(move || {
        let mut conn = worker.store.conn()?;
        let release = ledger::release(&mut conn, id)?.ok_or_else(Problem::not_found)?;
        let catalogue = Catalogue::from_standard(worker.standard.latest());
        Ok(publication::view(&release, &catalogue))
    })
    .await?;
    let file = format!(
        "indicators-fy{}-release-{}",
        view.release.fiscal_year, view.release.id
    );
    let heading = CsvHeading {
        release_id: Some(view.release.id),
        fiscal_year: view.release.fiscal_year,
        published_at: Some(&view.release.published_at),
        rule_set_version: &view.release.rule_set_version,
    };
    Ok(respond(
        &req,
        query.format,
        &heading,
        &view.cells,
        &file,
        &view,
    ))
}

/// 公表前の成果指標のプレビュー — Preview the next release
///
/// 指定した年度について、いま公表するとしたらどうなるかを、秘匿処理と監査を済ませた形で返します。範囲は呼び出し元のスコープです（協議会に紐づくクライアントは構成自治体と協議会の合計、自治体に紐づく協議会管理者はその自治体のみ）。協議会管理者（`council_admin`）のみ：公表前の数値は他の誰にも見せません。
///
/// Preview the release the hub would publish now for a fiscal year, protected and audited, limited to the caller's scope (a council-scope client sees the council's member towns and its totals; a town's own council administrator that town alone). Council administrators only: before publication no one else sees any figure.
#[utoipa::path(
    operation_id = "preview_indicators", get, path = "/v1/indicators/preview", tag = "indicators",
    params(PreviewQuery),
    responses(
        (status = 200, description = "The candidate release for the caller's council", content(
            (PreviewView = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "Bad fiscal year or format", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a council administrator", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn preview(
    state: State,
    Caller(principal): Caller,
    req: HttpRequest,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, Problem> {
    let Some(scope) = access::previews_indicators(&principal) else {
        return Err(Problem::forbidden(
            "unpublished indicators are previewed by council administrators only",
        ));
    };
    let fiscal_year = query.fiscal_year;
    if !(2000..=2100).contains(&fiscal_year) {
        return Err(Problem::bad_request(
            "invalid_request",
            "fiscal_year must be between 2000 and 2100",
        ));
    }
    let mut entry = audit_entry(&principal, &principal.municipality, "indicators.preview");
    entry.detail = Some(serde_json::json!({"fiscal_year": fiscal_year}).to_string());
    let worker = state.clone();
    let preview = blocking(move || {
        let version = worker.standard.latest();
        let candidate = pipeline::candidate(
            &worker.store,
            version,
            FiscalYear(fiscal_year),
            &worker.disclosure,
            &Progress::quiet(),
        )?;
        let visible = candidate.cells.iter().filter(|c| match c.key.level {
            Level::Municipality => scope.towns.contains(&c.key.geography),
            Level::Council => scope.council.as_deref() == Some(c.key.geography.as_str()),
            Level::Prefecture | Level::Nation => false,
        });
        let catalogue = Catalogue::from_standard(version);
        let cells = publication::cell_views(visible, &candidate.towns, &catalogue);
        crate::store::audit::append(&mut worker.store.conn()?, &entry)?;
        Ok(PreviewView {
            fiscal_year,
            disclosure: candidate.disclosure.clone(),
            would_publish: candidate.report.passed(),
            rule_set_version: candidate.rule_set_version.clone(),
            audit: AuditSummary::from(&candidate.report),
            cells,
        })
    })
    .await?;
    let file = format!("indicators-fy{fiscal_year}-preview");
    let heading = CsvHeading {
        release_id: None,
        fiscal_year,
        published_at: None,
        rule_set_version: &preview.rule_set_version,
    };
    Ok(respond(
        &req,
        query.format,
        &heading,
        &preview.cells,
        &file,
        &preview,
    ))
}
