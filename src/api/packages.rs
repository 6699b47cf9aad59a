//! Transfers between hubs over HTTP, for transfer officers: download an offered transfer as a
//! signed package, import a package from a peer hub into the inbox (answering the signed
//! receipt), and import the receipt that closes a sent transfer. The detached signature travels
//! in the `Kodomo-Signature` header, exactly as in a `.sig` file.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::extract::{Actor, Officer};
use super::{Problem, State, audit_entry, blocking, json, with_conn};
use crate::access::TransferUse;
use crate::store::transfers::Transfer;
use crate::transfer::exchange::Imported;
use crate::transfer::exchange::{self as packages, Importer};
use crate::transfer::package::{self, Outcome, Receipt};
use crate::transfer::workflow;

const PROBLEM: &str = "application/problem+json";
pub const SIGNATURE_HEADER: &str = "Kodomo-Signature";

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PackageForm {
    Xml,
    Json,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PackageQuery {
    /// `xml` (default) or `json`: the same package in either form.
    pub format: Option<PackageForm>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The officer an unanswered transfer is escalated to (default: the importing officer).
    #[param(min_length = 1, max_length = 100, pattern = "\\S")]
    pub escalate_to: Option<String>,
    /// Days the town has to answer before escalation (default 14).
    #[param(minimum = 1, maximum = 365)]
    pub deadline_days: Option<i64>,
}

fn signature(req: &HttpRequest) -> Result<String, Problem> {
    super::header(req, SIGNATURE_HEADER)
        .map(str::to_string)
        .ok_or_else(|| {
            Problem::bad_request(
                "signature_missing",
                "send the detached signature in the Kodomo-Signature header (ed25519;key=…;sig=…)",
            )
        })
}

/// 引継ぎパッケージの出力（他ハブ宛て） — Export a transfer package
///
/// 他のハブに属する自治体への引継ぎを、署名付きパッケージとして返します（XML または JSON）。パッケージは一度だけ作られ、以後は同じバイト列を返します。分離署名は `Kodomo-Signature` ヘッダーにあります。引継ぎ担当（`transfer_officer`）のみ。
///
/// An offered transfer to a town of a peer hub, as a signed package (XML or JSON). Made once: the same bytes every time. The detached signature is in the `Kodomo-Signature` header. Transfer officers only.
#[utoipa::path(
    operation_id = "export_transfer_package", get, path = "/v1/transfers/{id}/package", tag = "transfers",
    params(
        ("id" = i64, Path, description = "Transfer id"),
        PackageQuery,
        ("X-Actor" = String, Header, description = "Officer sending", example = "officer-1"),
    ),
    responses(
        (status = 200, description = "The package; its detached signature is in the Kodomo-Signature header",
            headers(("Kodomo-Signature" = String, description = "ed25519;key=<hex>;sig=<hex>")),
            content((String = "application/xml"), (Object = "application/json"))),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer from this town", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The transfer is no longer offered", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Held, or addressed to a town of this hub (no package needed)", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn export(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    path: web::Path<i64>,
    query: web::Query<PackageQuery>,
) -> Result<HttpResponse, Problem> {
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        "transfer.package.export",
    );
    entry.actor = Some(by);
    let id = path.into_inner();
    let signed = with_conn(&state, move |conn, _| {
        workflow::visible(conn, &principal, TransferUse::Export, id)?;
        Ok(packages::export(conn, id, &principal.municipality, &entry)?)
    })
    .await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((SIGNATURE_HEADER, signed.signature.clone()));
    Ok(match query.format.unwrap_or(PackageForm::Xml) {
        PackageForm::Xml => response
            .content_type("application/xml; charset=utf-8")
            .body(signed.xml),
        PackageForm::Json => {
            let parsed = package::parse(signed.xml.as_bytes())
                .map_err(crate::transfer::exchange::ExchangeError::Package)?;
            response
                .content_type("application/json")
                .body(package::to_json(&parsed))
        }
    })
}

/// 引継ぎパッケージの取込み（他ハブから） — Import a transfer package
///
/// 他のハブから届いたパッケージ（XML またはその JSON 形式）を、この自治体の受信箱に取り込みます。信頼ストアによる署名、マニフェストのダイジェスト・長さ・件数、すべての記録のスキーマ適合を確かめ、すべて満たすときだけ取り込みます。同じパッケージIDは一度しか取り込みません。成功すると署名付きの受領書を返します（送り元のハブへ戻してください）。
///
/// Import a package from a peer hub (XML or its JSON form) into this town's inbox. Verifies the signature against the trust store, the manifest's digests, lengths and counts and every record against the schema; imports nothing unless all hold, and each package id only once. Answers the signed receipt to send back to the origin hub.
#[utoipa::path(
    operation_id = "import_transfer_package", post, path = "/v1/transfer-packages", tag = "transfers",
    params(
        ImportQuery,
        ("X-Actor" = String, Header, description = "Officer importing", example = "officer-2"),
        ("Kodomo-Signature" = String, Header, description = "Detached signature: ed25519;key=<hex>;sig=<hex>"),
    ),
    request_body(content((String = "application/xml"), (Object = "application/json"))),
    responses(
        (status = 201, description = "Imported; the signed receipt (signature in Kodomo-Signature) goes back to the origin hub",
            headers(("Kodomo-Signature" = String, description = "ed25519;key=<hex>;sig=<hex>"),
                    ("Location" = String, description = "The transfer in this town's inbox")),
            content((String = "application/xml"), (Imported = "application/json"))),
        (status = 400, description = "Missing signature or actor", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Imported before: nothing imported again; the original receipt is in the problem", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Too large", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused: malformed, not canonical, signature, digest, length, count, schema, unknown signer, wrong destination", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn import(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    req: HttpRequest,
    query: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let signature = signature(&req)?;
    let body = super::records::read_body(&mut payload, &state.limits).await?;
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        "transfer.package.import",
    );
    entry.actor = Some(by.clone());
    let query = query.into_inner();
    let escalate_to = query.escalate_to.unwrap_or_else(|| by.clone());
    Problem::refuse_fields(super::transfers::escalation_problems(
        &escalate_to,
        query.deadline_days,
    ))?;
    let worker = state.clone();
    let imported = blocking(move || {
        let mut conn = worker.store.conn()?;
        let importer = Importer {
            municipality: &principal.municipality,
            escalate_to: &escalate_to,
            deadline_days: query
                .deadline_days
                .unwrap_or(super::transfers::DEFAULT_DEADLINE_DAYS),
        };
        Ok(packages::import(
            &mut conn,
            &worker.standard,
            &body,
            &signature,
            &importer,
            &entry,
        )?)
    })
    .await?;
    let mut response = HttpResponse::Created();
    response
        .insert_header((SIGNATURE_HEADER, imported.receipt_signature.clone()))
        .insert_header((
            "Location",
            format!("/v1/transfers/{}", imported.transfer_id),
        ));
    // A client that asks for JSON gets the receipt and its signature in the body as well.
    Ok(if super::accepts(&req, "application/json") {
        response.json(&imported)
    } else {
        response
            .content_type("application/xml; charset=utf-8")
            .body(imported.receipt)
    })
}

/// 受領書の取込み（引継ぎの完了） — Import a transfer receipt
///
/// 送り先のハブが発行した、この自治体が送ったパッケージの署名付き受領書を取り込みます。引継ぎは完了となり、子どもは転出済みになります。繰り返しても問題ありません。
///
/// Import the destination hub's signed receipt for a package this town sent: the transfer is delivered and its children are marked moved out. Repeating it is harmless.
#[utoipa::path(
    operation_id = "import_transfer_receipt", post, path = "/v1/transfer-receipts", tag = "transfers",
    params(
        ("X-Actor" = String, Header, description = "Officer importing", example = "officer-1"),
        ("Kodomo-Signature" = String, Header, description = "Detached signature: ed25519;key=<hex>;sig=<hex>"),
    ),
    request_body(content((String = "application/xml"), (Receipt = "application/json"))),
    responses(
        (status = 200, description = "Delivered", body = Transfer),
        (status = 400, description = "Missing signature or actor", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The transfer was cancelled or otherwise closed", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Too large", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused: malformed, signature, unknown package, other bytes acknowledged, counts", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn receipt(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        "transfer.receipt.import",
    );
    entry.actor = Some(by);
    let signature = signature(&req)?;
    let body = super::records::read_body(&mut payload, &state.limits).await?;
    let worker = state.clone();
    let transfer = blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(packages::import_receipt(
            &mut conn,
            &body,
            &signature,
            &principal.municipality,
            &entry,
        )?)
    })
    .await?;
    Ok(json(StatusCode::OK, &transfer))
}

/// 判定結果の出力（他ハブ宛て） — Export a transfer outcome
///
/// 他のハブから届いた引継ぎについて、この自治体が受入れまたは辞退を決めたときにハブが書いた署名付きの判定結果を返します（XML または JSON）。児童はパッケージ内の順番だけで示され、個人情報は含みません。送り元のハブへ `POST /v1/transfer-outcomes` で届けてください。分離署名は `Kodomo-Signature` ヘッダーにあります。送り元のハブが取り込んだ判定結果も同じように読めます。
///
/// The signed outcome this hub wrote when the town accepted or declined a transfer that came from another hub (XML or JSON): per child, by position in the package (no personal data), accepted or declined with a coded reason and record counts. Send it to the origin hub (`POST /v1/transfer-outcomes`). The detached signature is in the `Kodomo-Signature` header. On the origin hub, the outcome it imported reads the same way.
#[utoipa::path(
    operation_id = "export_transfer_outcome", get, path = "/v1/transfers/{id}/outcome", tag = "transfers",
    params(
        ("id" = i64, Path, description = "Transfer id"),
        PackageQuery,
    ),
    responses(
        (status = 200, description = "The outcome; its detached signature is in the Kodomo-Signature header",
            headers(("Kodomo-Signature" = String, description = "ed25519;key=<hex>;sig=<hex>")),
            content((String = "application/xml"), (Outcome = "application/json"))),
        (status = 400, description = "Bad request", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such transfer, or no outcome yet (not decided, or not exchanged between hubs)", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn outcome(
    state: State,
    Officer(principal): Officer,
    path: web::Path<i64>,
    query: web::Query<PackageQuery>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let signed = with_conn(&state, move |conn, _| {
        workflow::visible(conn, &principal, TransferUse::View, id)?;
        packages::outcome(conn, id)?.ok_or_else(Problem::not_found)
    })
    .await?;
    let mut response = HttpResponse::Ok();
    response.insert_header((SIGNATURE_HEADER, signed.signature.clone()));
    Ok(match query.format.unwrap_or(PackageForm::Xml) {
        PackageForm::Xml => response
            .content_type("application/xml; charset=utf-8")
            .body(signed.xml),
        PackageForm::Json => response.json(&signed.fields),
    })
}

/// 判定結果の取込み（送り先の受入れ・辞退） — Import a transfer outcome
///
/// この自治体が送ったパッケージについて、送り先のハブが署名した判定結果（XML またはその JSON 形式）を取り込みます。引継ぎには送り先の判定が表示され、辞退された児童は転出済みの印が外れます（送り元が引き続き見守ります）。受領書より先に届いた場合は引継ぎの完了も兼ねます。同じ判定結果を繰り返しても何も変わらず、同じパッケージについて異なる判定結果は拒否します（`outcome_conflict`）。
///
/// Import the destination hub's signed outcome for a package this town sent (XML or its JSON form): the transfer shows the destination's decision, and children it declined are no longer marked moved out (the origin keeps following them). An outcome arriving before the receipt also delivers the transfer. The same outcome again changes nothing; a different outcome for the same package is refused (`outcome_conflict`).
#[utoipa::path(
    operation_id = "import_transfer_outcome", post, path = "/v1/transfer-outcomes", tag = "transfers",
    params(
        ("X-Actor" = String, Header, description = "Officer importing", example = "officer-1"),
        ("Kodomo-Signature" = String, Header, description = "Detached signature: ed25519;key=<hex>;sig=<hex>"),
    ),
    request_body(content((String = "application/xml"), (Outcome = "application/json"))),
    responses(
        (status = 200, description = "The transfer with the destination's decision", body = OutcomeImported),
        (status = 400, description = "Missing signature or actor", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a transfer officer", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The transfer was cancelled or otherwise closed", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Too large", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Refused: malformed, signature, unknown package, other bytes, counts, another outcome imported before", body = Problem, content_type = PROBLEM),
    )
)]
pub async fn import_outcome(
    state: State,
    Officer(principal): Officer,
    Actor(by): Actor,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let mut entry = audit_entry(
        &principal,
        &principal.municipality,
        "transfer.outcome.import",
    );
    entry.actor = Some(by);
    let signature = signature(&req)?;
    let body = super::records::read_body(&mut payload, &state.limits).await?;
    let imported = with_conn(&state, move |conn, _| {
        let transfer =
            packages::import_outcome(conn, &body, &signature, &principal.municipality, &entry)?;
        let outcome = packages::outcome(conn, transfer.id)?.ok_or_else(Problem::not_found)?;
        Ok(OutcomeImported {
            transfer,
            destination_outcome: outcome.fields,
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &imported))
}

/// The transfer (no child's data: the officer importing may not be one who sees every child
/// of it) with the destination's decision.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct OutcomeImported {
    #[serde(flatten)]
    pub transfer: Transfer,
    pub destination_outcome: Outcome,
}
