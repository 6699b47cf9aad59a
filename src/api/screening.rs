//! Screening worklists (判定・抽出) over HTTP: a town's rule-set versions, their adoption and
//! preview (counts only), runs (snapshots), the worklist and its entries (personal reads,
//! audited per child), case-meeting decisions (support-outcome records), closing a run,
//! fairness counts, and what was shared with a school. Thin: the workflows are in
//! `screening::workflow`, every child is decided by `access`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{Actor, Caller, PersonalRead, ReadAction};
use super::{Problem, State, audit_entry, json, with_conn};
use crate::access;
use crate::auth::Principal;
use crate::schema::{FieldError, rules};
use crate::screening::workflow::{
    self, EntryDetail, FairnessView, PreviewView, RunSummary, ScreeningError, SharedList,
    WorklistView,
};
use crate::screening::{self, DEFAULT_MIN_ITEMS, RuleSetDocument};
use crate::store::screening::{self as store, Acting, Adoption, RuleSetVersion};

const PROBLEM: &str = "application/problem+json";

/// The worklist of a run (audited per child shown).
pub struct WorklistRead;
impl ReadAction for WorklistRead {
    const NAME: &'static str = "screening.worklist.read";
}

/// One entry of a worklist.
pub struct EntryRead;
impl ReadAction for EntryRead {
    const NAME: &'static str = "screening.entry.read";
}

/// Running a worklist (each extracted child audited).
pub struct RunCreate;
impl ReadAction for RunCreate {
    const NAME: &'static str = "screening.run";
}

/// A school reading what case meetings shared with it.
pub struct SharesRead;
impl ReadAction for SharesRead {
    const NAME: &'static str = "screening.share.read";
}

impl From<ScreeningError> for Problem {
    fn from(e: ScreeningError) -> Problem {
        match e {
            ScreeningError::NotFound => Problem::not_found(),
            ScreeningError::NoAdoptedRuleSet => Problem::new(
                StatusCode::CONFLICT,
                "no_adopted_rule_set",
                "the town has not adopted a screening rule set (POST …/screening-rules, then …/{version}/adopt)",
            ),
            ScreeningError::RunClosed => {
                Problem::new(StatusCode::CONFLICT, "run_closed", "the run is closed")
            }
            ScreeningError::Undecided(n) => Problem::new(
                StatusCode::CONFLICT,
                "undecided_entries",
                format!(
                    "{n} entries have no decision; decide them or give a reason to close the run anyway"
                ),
            ),
            ScreeningError::Invalid(errors) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_document",
                format!(
                    "invalid fields: {}",
                    errors
                        .iter()
                        .map(|e| e.pointer.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_errors(errors),
            ScreeningError::NotASchool(client) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_school",
                format!("client {client} does not hold the school role"),
            ),
            ScreeningError::Store(e) => e.into(),
        }
    }
}

/// The caller, if it may run screening in `municipality`; every other caller learns nothing
/// (404, as for a town it cannot see).
fn screening_staff(principal: Principal, municipality: &str) -> Result<Principal, Problem> {
    if access::runs_screening(&principal, municipality) {
        Ok(principal)
    } else {
        Err(Problem::not_found())
    }
}

/// A positive integer path segment a JSON number can hold exactly (ids and versions are
/// sequential, so none is larger); anything else names nothing.
fn number<T: std::str::FromStr + PartialOrd + Default + Into<i64> + Copy>(
    text: &str,
) -> Result<T, Problem> {
    const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
    text.parse::<T>()
        .ok()
        .filter(|n| *n > T::default() && (*n).into() <= MAX_SAFE_INTEGER)
        .ok_or_else(Problem::not_found)
}

fn date_param(pointer: &str, text: Option<&str>) -> Result<chrono::NaiveDate, Problem> {
    match text {
        None => Ok(rules::today_in_japan()),
        Some(text) => rules::parse_date(text).ok_or_else(|| {
            Problem::bad_request(
                "date_format",
                format!("{} must be a date YYYY-MM-DD", &pointer[1..]),
            )
            .with_errors(vec![FieldError::new(
                pointer,
                "date_format",
                "a date YYYY-MM-DD",
            )])
        }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DefaultQuery {
    /// Minimum count of applicable basic items (default 2).
    #[param(minimum = 1, maximum = 19)]
    pub min_items: Option<u32>,
}

/// 既定のルールセット — Default rule set
///
/// 該当ルールから導いた既定のルールセット：該当する基本項目1つにつき1点で、`min_items` 個以上の子どもを抽出します。個人データは含みません。
///
/// The default rule set, derived from the applicability rules: one point per applicable basic
/// item, extracting children with at least `min_items` of them. No personal data.
#[utoipa::path(
    get, path = "/v1/screening-rules/default", tag = "screening",
    params(DefaultQuery),
    responses(
        (status = 200, description = "The default rule-set document", body = RuleSetDocument),
        (status = 400, description = "min_items outside 1–19", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn default_rules(
    state: State,
    _caller: Caller,
    query: web::Query<DefaultQuery>,
) -> Result<HttpResponse, Problem> {
    let min_items = query.min_items.unwrap_or(DEFAULT_MIN_ITEMS);
    if !(1..=19).contains(&min_items) {
        return Err(Problem::bad_request(
            "invalid_request",
            "min_items must be 1–19",
        ));
    }
    Ok(json(
        StatusCode::OK,
        &screening::default_rule_set(state.standard.latest(), min_items),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleSetList {
    pub municipality_code: String,
    /// The version runs use now.
    pub adopted: Option<i32>,
    /// Every version, oldest first (none is ever changed or removed).
    #[schema(max_items = 100000)]
    pub versions: Vec<RuleSetVersion>,
    /// Every adoption, oldest first.
    #[schema(max_items = 100000)]
    pub adoptions: Vec<Adoption>,
}

/// ルールセットの新しい版の保存 — Store a rule-set version
///
/// 自治体のルールセットの新しい版を保存します（schema/v1/screening-rules.json と該当ルールで検証）。採用は別の手順です。
///
/// Store a new version of the town's rule set (validated against
/// schema/v1/screening-rules.json and the applicability rules). Adopting is a separate step.
#[utoipa::path(
    post, path = "/v1/municipalities/{code}/screening-rules", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("X-Actor" = String, Header, description = "Staff member defining the rule set"),
    ),
    request_body(content = RuleSetDocument, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored as the next version", body = RuleSetVersion),
        (status = 400, description = "Not JSON, or no X-Actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Not a caseworker of the town", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid rule set: every problem with its pointer (unknown item, negative cap …)", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn add_rules(
    state: State,
    Caller(principal): Caller,
    Actor(actor): Actor,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let document: Value = super::parse_json(&body)?;
    let errors = screening::problems(state.standard.latest(), &document);
    if !errors.is_empty() {
        return Err(ScreeningError::Invalid(errors).into());
    }
    let mut entry = audit_entry(&principal, &municipality, "screening.rules.add");
    entry.actor = Some(actor.clone());
    let by = Acting {
        actor,
        client_name: principal.name.clone(),
    };
    let stored = with_conn(&state, move |conn, _| {
        let version = store::add_rule_set(conn, &municipality, &document, &by, &entry)?;
        store::rule_set(conn, &municipality, version)?.ok_or_else(Problem::internal)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &stored))
}

/// ルールセットの版の一覧 — List rule-set versions
///
/// 自治体のルールセットのすべての版と採用の履歴。
///
/// Every version of the town's rule set and the adoption history.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-rules", tag = "screening",
    params(("code" = String, Path, description = "Municipality code", example = "119016")),
    responses(
        (status = 200, description = "Versions and adoptions", body = RuleSetList),
        (status = 404, description = "Not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn list_rules(
    state: State,
    Caller(principal): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    screening_staff(principal, &municipality)?;
    let m = municipality.clone();
    let (versions, adoptions) =
        with_conn(&state, move |conn, _| Ok(store::rule_sets(conn, &m)?)).await?;
    Ok(json(
        StatusCode::OK,
        &RuleSetList {
            municipality_code: municipality,
            adopted: versions.iter().find(|v| v.adopted).map(|v| v.version),
            versions,
            adoptions,
        },
    ))
}

/// ルールセットの版 — Get a rule-set version
///
/// 自治体のルールセットの一つの版。
///
/// One version of the town's rule set.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-rules/{version}", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("version" = String, Path, description = "Version number", example = "1"),
    ),
    responses(
        (status = 200, description = "The version", body = RuleSetVersion),
        (status = 404, description = "No such version, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn show_rules(
    state: State,
    Caller(principal): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, version) = path.into_inner();
    screening_staff(principal, &municipality)?;
    let version: i32 = number(&version)?;
    let stored = with_conn(&state, move |conn, _| {
        store::rule_set(conn, &municipality, version)?.ok_or_else(Problem::not_found)
    })
    .await?;
    Ok(json(StatusCode::OK, &stored))
}

/// 版の採用 — Adopt a rule-set version
///
/// 版を採用します。以後の実行はこの版を使います。監査され、以前の採用は履歴に残ります。
///
/// Adopt a version: runs use it from now on. Audited; earlier adoptions stay in the history.
#[utoipa::path(
    post, path = "/v1/municipalities/{code}/screening-rules/{version}/adopt", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("version" = String, Path, description = "Version number", example = "1"),
        ("X-Actor" = String, Header, description = "Staff member adopting the version"),
    ),
    responses(
        (status = 200, description = "Adopted", body = RuleSetVersion),
        (status = 400, description = "No X-Actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such version, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn adopt_rules(
    state: State,
    Caller(principal): Caller,
    Actor(actor): Actor,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, version) = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let version: i32 = number(&version)?;
    let mut entry = audit_entry(&principal, &municipality, "screening.rules.adopt");
    entry.actor = Some(actor.clone());
    entry.detail = Some(serde_json::json!({"version": version}).to_string());
    let by = Acting {
        actor,
        client_name: principal.name.clone(),
    };
    let adopted = with_conn(&state, move |conn, _| {
        if !store::adopt(conn, &municipality, version, &by, &entry)? {
            return Err(Problem::not_found());
        }
        store::rule_set(conn, &municipality, version)?.ok_or_else(Problem::internal)
    })
    .await?;
    Ok(json(StatusCode::OK, &adopted))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// The date the worklist is computed as of (YYYY-MM-DD; default today in Japan).
    #[param(format = "date", max_length = 10)]
    pub as_of: Option<String>,
}

/// 抽出の試算 — Preview a rule-set version
///
/// その版で抽出される件数を、年齢区分・基本項目・数値項目ごとに、既に把握済みの件数とともに示します。個人データは含みません。採用前の調整用です。
///
/// What a version would extract, as counts per age band, basic item and field, with how many
/// are already known — no personal data. For tuning before adopting.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-rules/{version}/preview", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("version" = String, Path, description = "Version number", example = "1"),
        AsOfQuery,
    ),
    responses(
        (status = 200, description = "Counts", body = PreviewView),
        (status = 400, description = "Bad date", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such version, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn preview(
    state: State,
    Caller(principal): Caller,
    path: web::Path<(String, String)>,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, Problem> {
    let (municipality, version) = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let version: i32 = number(&version)?;
    let as_of = date_param("/as_of", query.as_of.as_deref())?;
    let entry = audit_entry(&principal, &municipality, "screening.rules.preview");
    let view = with_conn(&state, move |conn, hub| {
        Ok(workflow::preview(
            conn,
            hub.standard.latest(),
            &principal,
            &municipality,
            version,
            as_of,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"as_of": "2025-06-01"}))]
pub struct RunRequest {
    /// The date the worklist is computed as of (default today in Japan).
    #[schema(format = "past-date")]
    pub as_of: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub municipality_code: String,
    #[schema(max_items = 100000)]
    pub runs: Vec<RunSummary>,
}

/// 判定一覧の作成 — Run a screening worklist
///
/// 採用中のルールセットで基準日時点の一覧を計算し、スナップショット（実行者・日時・ルールの版・読み取った変更フィードの位置）として保存します。個人データの読取りです。抽出した子どもごとに監査し、不同意の子どもは判定しません。
///
/// Compute the worklist as of a date with the adopted rule set and store it as a snapshot
/// (who, when, rule version, the change-feed position read). A personal read: every child
/// extracted is audited; opted-out children are never screened.
#[utoipa::path(
    post, path = "/v1/municipalities/{code}/screening-runs", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "screening_review"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    request_body(content = Option<RunRequest>, content_type = "application/json", example = json!({"as_of": "2025-06-01"})),
    responses(
        (status = 201, description = "The run (counts over what the caller may see)", body = RunSummary),
        (status = 400, description = "Missing purpose or actor, bad date", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Not a caseworker of the town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "No rule set adopted", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn create_run(
    state: State,
    read: PersonalRead<RunCreate>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let PersonalRead {
        principal,
        context,
        entry,
        ..
    } = read;
    if !access::runs_screening(&principal, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    // The body is optional: none, or JSON null, runs as of today.
    let request: Option<RunRequest> = if body.is_empty() {
        None
    } else {
        super::parse_json(&body)?
    };
    let request = request.unwrap_or(RunRequest { as_of: None });
    let as_of = date_param("/as_of", request.as_of.as_deref())?;
    if as_of > rules::today_in_japan() {
        return Err(
            Problem::bad_request("date_format", "as_of must not be in the future").with_errors(
                vec![FieldError::new("/as_of", "future_date", "not after today")],
            ),
        );
    }
    let by = Acting {
        actor: context.actor.clone(),
        client_name: principal.name.clone(),
    };
    let summary = with_conn(&state, move |conn, hub| {
        let id = workflow::run(
            conn,
            hub.standard.latest(),
            &municipality,
            as_of,
            &by,
            &entry,
        )?;
        Ok(workflow::run_summary(conn, &principal, &municipality, id)?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &summary))
}

/// 判定の実行一覧 — List screening runs
///
/// 自治体の判定の実行（要約。個人データなし）。
///
/// The town's runs (summaries; no personal data).
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-runs", tag = "screening",
    params(("code" = String, Path, description = "Municipality code", example = "119016")),
    responses(
        (status = 200, description = "Runs, newest first", body = RunList),
        (status = 404, description = "Not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn list_runs(
    state: State,
    Caller(principal): Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let m = municipality.clone();
    let runs = with_conn(&state, move |conn, _| {
        Ok(workflow::runs(conn, &principal, &m)?)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &RunList {
            municipality_code: municipality,
            runs,
        },
    ))
}

/// 判定会議用の一覧 — Read a worklist
///
/// 実行のうち呼び出し元に今見える子どもを点数の高い順に、点数を加えた項目と数値（記録・値・点）と既に把握済みかどうかとともに返します。表示した子どもごとに監査し、不同意の子どもは表示せず、DV等支援措置の子どもは `support-measure-reader` にだけ表示します。
///
/// A worklist: the children of a run the caller may see now, highest score first, each with
/// the items and fields that added points (records, values, points) and whether it is already
/// known. Every child shown is audited; opted-out children never appear, DV children only for
/// `support-measure-reader`.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-runs/{run}", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("run" = i64, Path, description = "Run id", example = 1, minimum = 1, maximum = 9007199254740991.0),
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "screening_review"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "The worklist", body = WorklistView),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such run, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn worklist(
    state: State,
    read: PersonalRead<WorklistRead>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, run) = path.into_inner();
    let PersonalRead {
        principal, entry, ..
    } = read;
    if !access::runs_screening(&principal, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    let run: i64 = number(&run)?;
    let view: WorklistView = with_conn(&state, move |conn, _| {
        Ok(workflow::worklist(
            conn,
            &principal,
            &municipality,
            run,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// 一覧の子ども1人 — Read a worklist entry
///
/// 一覧の子ども1人と、あれば判定の記録。呼び出し元に見えない子どもは、一覧にない子どもと同じ答えになります。
///
/// One child of a worklist with the decision record, if any. A child the caller may not see
/// answers like one that is not on the list.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-runs/{run}/entries/{resident_no}", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("run" = i64, Path, description = "Run id", example = 1, minimum = 1, maximum = 9007199254740991.0),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "screening_review"),
        ("X-Actor" = String, Header, description = "Staff member in the calling system", example = "staff-001"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "The entry", body = EntryDetail),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such entry, or not visible to the caller", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn entry(
    state: State,
    read: PersonalRead<EntryRead>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, run, resident_no) = path.into_inner();
    let PersonalRead {
        principal, entry, ..
    } = read;
    if !access::runs_screening(&principal, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    // A malformed run id names no run: the child is audited as not found, like any other.
    let run: i64 = run.parse().unwrap_or(0);
    let detail: EntryDetail = with_conn(&state, move |conn, _| {
        Ok(workflow::entry_detail(
            conn,
            &principal,
            &municipality,
            run,
            &resident_no,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &detail))
}

/// A case meeting's decision on one entry (the four classes of support-outcome's
/// `review_outcome`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "review_outcome": "preventive_support", "decided_on": "2025-06-10",
    "meeting_participants": ["staff-001", "school-nurse-2"], "difficulty_types": ["poverty"],
    "support_plan": "家庭訪問を月1回。学校と登校状況を共有する。", "plan_shared_with_school": true
}))]
pub struct DecisionRequest {
    /// a 受理相当 `accepted_case`, b 予防的支援 `preventive_support`, c 経過観察 `watch`,
    /// d 対象外 `not_applicable`.
    pub review_outcome: screening::DecisionClass,
    #[schema(format = "past-date")]
    pub decided_on: String,
    /// Staff ids as in `X-Actor` (the support-outcome schema's rule, repeated for clients).
    #[schema(
        min_items = 1,
        max_items = 30,
        max_length = 100,
        pattern = "^[!-~]([ -~]{0,98}[!-~])?$"
    )]
    pub meeting_participants: std::collections::BTreeSet<String>,
    /// Types of difficulty (support-outcome's code list; at least one — `other` when none fits).
    #[schema(
        min_items = 1,
        max_items = 8,
        max_length = 40,
        pattern = "^(abuse|poverty|school_refusal|bullying|young_carer|postpartum_depression|developmental_disability|other)$"
    )]
    pub difficulty_types: std::collections::BTreeSet<String>,
    /// Omit it when there is no plan (null is not a plan).
    #[schema(min_length = 1, max_length = 2000, nullable = false)]
    pub support_plan: Option<String>,
    /// Share the class and the plan with the child's school (default false when omitted).
    #[schema(nullable = false)]
    pub plan_shared_with_school: Option<bool>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionRecorded {
    pub run: i64,
    pub resident_no: String,
    /// The support-outcome record the decision is (history and change feed follow it).
    pub source: String,
    pub source_record_id: String,
    pub version: i32,
    pub stage: String,
    pub review_outcome: screening::DecisionClass,
}

/// 判定会議の判定の記録 — Record a case meeting's decision
///
/// 一覧の項目について判定会議の判定を記録（または訂正）します。判定は取込みの経路を通る支援結果（support-outcome）の記録（連携元 `screening:case-meeting`）になり、履歴・変更フィード・監査証跡・成果指標のファネルに反映されます。
///
/// Record (or correct) the case meeting's decision on an entry: it becomes a support-outcome
/// record (source `screening:case-meeting`) through the ingest path, so history, the change
/// feed, the audit trail and the indicators' funnel follow.
#[utoipa::path(
    put, path = "/v1/municipalities/{code}/screening-runs/{run}/entries/{resident_no}/decision", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("run" = i64, Path, description = "Run id", example = 1, minimum = 1, maximum = 9007199254740991.0),
        ("resident_no" = String, Path, description = "宛名番号", example = "1190160000110"),
        ("X-Actor" = String, Header, description = "Staff member recording the decision"),
    ),
    request_body(content = DecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = DecisionRecorded),
        (status = 400, description = "Not JSON, or no X-Actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such entry, or not visible to the caller", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The run is closed", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid decision, with pointers", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn decide(
    state: State,
    Caller(principal): Caller,
    Actor(actor): Actor,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let (municipality, run, resident_no) = path.into_inner();
    let mut entry = audit_entry(&principal, &municipality, "screening.decision");
    entry.subject = Some(resident_no.clone());
    entry.actor = Some(actor);
    if !access::runs_screening(&principal, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    let run: i64 = run.parse().unwrap_or(0);
    // The body is checked before the child is looked at: its problems never depend on who
    // the child is.
    let body: Value = super::parse_json(&body)?;
    let (record, class) =
        workflow::decision_record(&state.ingestor, &municipality, run, &resident_no, &body)?;
    let source_record_id = record.source_record_id.clone();
    let stage = class.stage().to_string();
    let (m, r) = (municipality.clone(), resident_no.clone());
    let version = with_conn(&state, move |conn, _| {
        Ok(workflow::decide(
            conn, &principal, &m, run, &r, &record, class, &entry,
        )?)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &DecisionRecorded {
            run,
            resident_no,
            source: workflow::DECISION_SOURCE.into(),
            source_record_id,
            version,
            stage,
            review_outcome: class,
        },
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "2名は転出のため次回会議で扱う"}))]
pub struct CloseRequest {
    /// Why entries are left undecided (required when some are).
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: Option<String>,
}

/// 実行の締切り — Close a run
///
/// 会議が終わった実行を締め切ります。未判定の項目が残るときは理由の記録が必要です。
///
/// Close a run once its meeting is over. Entries still undecided need a recorded reason.
#[utoipa::path(
    post, path = "/v1/municipalities/{code}/screening-runs/{run}/close", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("run" = i64, Path, description = "Run id", example = 1, minimum = 1, maximum = 9007199254740991.0),
        ("X-Actor" = String, Header, description = "Staff member closing the run"),
    ),
    request_body(content = CloseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Closed", body = RunSummary),
        (status = 400, description = "Bad body, or no X-Actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such run, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already closed, or undecided entries and no reason", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn close(
    state: State,
    Caller(principal): Caller,
    Actor(actor): Actor,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let (municipality, run) = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let run: i64 = number(&run)?;
    let request: CloseRequest = if body.is_empty() {
        CloseRequest::default()
    } else {
        super::parse_json(&body)?
    };
    if let Some(reason) = &request.reason {
        Problem::refuse_fields(
            rules::free_text_problem("/reason", reason, 500)
                .into_iter()
                .collect(),
        )?;
    }
    let mut entry = audit_entry(&principal, &municipality, "screening.run.close");
    entry.actor = Some(actor.clone());
    let by = Acting {
        actor,
        client_name: principal.name.clone(),
    };
    let summary = with_conn(&state, move |conn, _| {
        Ok(workflow::close(
            conn,
            &principal,
            &municipality,
            run,
            &by,
            request.reason.as_deref(),
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &summary))
}

/// 抽出の偏りの確認 — Fairness counts of a run
///
/// 実行について、年齢区分と性別ごとの抽出数と判定対象数（件数のみ、呼び出し元に見える子どもの範囲）。ルールが特定の集団に偏っていないかを自治体や協議会が確認できます。
///
/// Extracted against screened children per age band and sex for a run — counts only, over
/// the children the caller may see — so a town or council can see whether a rule singles
/// out a group.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/screening-runs/{run}/fairness", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("run" = i64, Path, description = "Run id", example = 1, minimum = 1, maximum = 9007199254740991.0),
    ),
    responses(
        (status = 200, description = "Counts", body = FairnessView),
        (status = 404, description = "No such run, or not a caseworker of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn fairness(
    state: State,
    Caller(principal): Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (municipality, run) = path.into_inner();
    let principal = screening_staff(principal, &municipality)?;
    let run: i64 = number(&run)?;
    let entry = audit_entry(&principal, &municipality, "screening.fairness.read");
    let view: FairnessView = with_conn(&state, move |conn, _| {
        Ok(workflow::fairness(
            conn,
            &principal,
            &municipality,
            run,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// 学校への共有 — Decisions shared with a school
///
/// 学校のクライアント向け：判定会議がその学校と共有した判定を、その学校の児童生徒についてだけ返します。区分と共有された支援方針のみで、点数・項目・他校の児童生徒は含みません。表示した児童生徒ごとに監査します。
///
/// For a school's client: the decisions case meetings shared with its school, for its own
/// pupils only — the class and the shared plan, never a score, an item or another school's
/// pupil. Every pupil shown is audited.
#[utoipa::path(
    get, path = "/v1/municipalities/{code}/school-shares", tag = "screening",
    params(
        ("code" = String, Path, description = "Municipality code", example = "119016"),
        ("X-Purpose" = String, Header, description = "Declared purpose", example = "case_handling"),
        ("X-Actor" = String, Header, description = "Staff member at the school", example = "teacher-01"),
        ("X-Legal-Basis" = Option<String>, Header, description = "Overrides the purpose's default legal basis"),
    ),
    responses(
        (status = 200, description = "Shared decisions", body = SharedList),
        (status = 400, description = "Missing purpose or actor", body = Problem, content_type = PROBLEM),
        (status = 404, description = "Not a school of the town", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn school_shares(
    state: State,
    read: PersonalRead<SharesRead>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let municipality = path.into_inner();
    let PersonalRead {
        principal, entry, ..
    } = read;
    if !access::reads_school_shares(&principal, &municipality) {
        return super::refuse_quietly(&state, entry).await;
    }
    let list: SharedList = with_conn(&state, move |conn, _| {
        Ok(workflow::school_shares(
            conn,
            &principal,
            &municipality,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &list))
}
