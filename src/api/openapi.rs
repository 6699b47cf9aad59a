//! The OpenAPI 3.1 document: routes, parameters and bodies come from the handlers' utoipa
//! annotations; record schemas are taken from `schema/` (never retyped) and placed under
//! `components/schemas`. Committed at `openapi/openapi.json`; served at `/openapi.json`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{audit_api, identity, indicators, meta, packages, records, subjects, transfers, views};
use crate::audit::AuditRecord;
use crate::ingest::{IngestReport, RecordResult, RecordStatus, ResultDetail};
use crate::schema::applicability::ApplicableItem;
use crate::schema::purposes::Purpose;
use crate::schema::{FieldError, SchemaVersion, Standard};
use crate::store::records::{Change, CurrentRecord, HouseholdMember, OptOut, StoredVersion};

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Client token issued by `kodomo-hub admin client add` (shown once).",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kodomo-hub",
        description = "Children's data linkage hub (こどもデータ連携): the national basic linkage data items as a versioned schema, validated pushes, profiles with applicable basic items, history and a change feed. Errors are RFC 9457 problem details. Every personal read declares X-Purpose and X-Actor and is audited.",
        license(name = "Apache-2.0")
    ),
    paths(
        records::push, records::retract, records::history, records::changes, records::validate,
        subjects::profile, subjects::put_opt_out, subjects::delete_opt_out,
        audit_api::audit_trail, audit_api::external_reads,
        identity::list, identity::confirm, identity::reject,
        transfers::offer, transfers::list, transfers::show, transfers::accept, transfers::decline,
        transfers::cancel, transfers::claim, packages::export, packages::import, packages::receipt,
        indicators::list, indicators::show, indicators::preview,
        meta::list_schemas, meta::get_schema, meta::access_purposes,
        meta::healthz, meta::readyz, meta::metrics,
    ),
    components(schemas(
        super::Problem, FieldError, IngestReport, RecordResult, RecordStatus, ResultDetail,
        records::PushBatch, subjects::OptOutRequest,
        views::Status, views::SchemaIndex, views::SchemaVersionInfo, views::RecordTypeInfo,
        views::PurposeList, views::Retraction, views::History, views::ChangesPage,
        views::ValidationReport, views::ValidationResult, views::ProfileView, views::GuardianRecord,
        views::OptOutView, views::OptOutState, views::AuditTrail,
        Change, StoredVersion, CurrentRecord, HouseholdMember, OptOut, ApplicableItem, Purpose,
        AuditRecord, audit_api::ExternalReads, identity::ReviewQueue, identity::ReviewItem, crate::identity::QueueStatus,
        identity::ConfirmRequest, crate::store::identity::QueueItem,
        crate::identity::resolve::Candidate,
        transfers::OfferRequest, transfers::AcceptRequest, transfers::PlacementRequest,
        transfers::DeclineRequest, crate::transfer::TransferBox, transfers::TransferList,
        packages::PackageForm, crate::store::packages::Imported,
        crate::store::transfers::Transfer, crate::store::transfers::TransferView,
        crate::store::transfers::TransferChild, crate::transfer::TransferReason,
        crate::transfer::DeclineReason,
        indicators::Format, crate::indicators::publication::ReleaseList,
        crate::indicators::publication::ReleaseSummary, crate::indicators::publication::ReleaseView,
        crate::indicators::publication::PreviewView, crate::indicators::publication::CellView,
        crate::indicators::disclosure::DisclosureConfig, crate::indicators::disclosure::Suppression,
        crate::indicators::disclosure::Unit, crate::indicators::table::Level,
        crate::indicators::audit::AuditSummary,
    )),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
    tags(
        (name = "records", description = "Pushing records, history and the change feed"),
        (name = "subjects", description = "A child's profile and guardians' objections"),
        (name = "access", description = "Declared purposes and the audit trail"),
        (name = "identity", description = "Identity resolution (名寄せ): the review queue"),
        (name = "transfers", description = "Handovers when a family moves between towns of this hub (転出入時の引継ぎ)"),
        (name = "indicators", description = "Anonymised outcome indicators (成果指標) behind provable disclosure control"),
        (name = "schemas", description = "The standard itself"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

const SCHEMA_PREFIX: &str = "https://kodomo-hub.jp/schema/";

/// Component name for a schema file's definition, e.g. `v1.common.date`.
fn component_name(major: u32, file: &str, def: Option<&str>) -> String {
    match def {
        Some(def) => format!("v{major}.{file}.{def}"),
        None => format!("v{major}.{file}"),
    }
}

/// Point `$ref`s at components and drop `$id`/`$schema`, which would change the base URI.
fn rewrite(value: &mut Value, major: u32) {
    match value {
        Value::Object(map) => {
            map.remove("$id");
            map.remove("$schema");
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(rest) = reference.strip_prefix(SCHEMA_PREFIX)
                && let Some((file, fragment)) = rest.split_once('#')
            {
                let file = file
                    .trim_start_matches(&format!("v{major}/"))
                    .trim_end_matches(".json")
                    .trim_start_matches("records/");
                let def = fragment.strip_prefix("/$defs/");
                *reference = format!("#/components/schemas/{}", component_name(major, file, def));
            }
            for item in map.values_mut() {
                rewrite(item, major);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, major)),
        _ => {}
    }
}

fn record_components(version: &SchemaVersion, schemas: &mut Map<String, Value>) {
    let major = version.major;
    if let Some(defs) = version.common.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            let mut def = def.clone();
            rewrite(&mut def, major);
            schemas.insert(component_name(major, "common", Some(name)), def);
        }
    }
    let mut one_of = Vec::new();
    for (name, doc) in &version.records {
        let mut doc = doc.clone();
        rewrite(&mut doc, major);
        let component = component_name(major, "record", Some(name));
        one_of.push(json!({ "$ref": format!("#/components/schemas/{component}") }));
        schemas.insert(component, doc);
    }
    schemas.insert(
        "Record".into(),
        json!({
            "description": "A record of any type of the standard; `record_type` selects the schema. These are the files under schema/ as the hub enforces them (custom formats `past-date` and `municipality-code`, keywords `x-field-order` and `x-no-my-number` are checked by the hub).",
            "oneOf": one_of,
        }),
    );
}

/// The whole document as JSON.
pub fn document(standard: &Standard) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("OpenAPI serialises");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for version in &standard.versions {
            record_components(version, schemas);
        }
    }
    // Header rules that live in the published lists and in `auth`, not in Rust types.
    let purposes: Vec<Value> = standard
        .latest()
        .purposes
        .iter()
        .map(|p| json!(p.code))
        .collect();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for parameter in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
            .filter_map(|op| op.get_mut("parameters").and_then(Value::as_array_mut))
            .flatten()
        {
            match parameter["name"].as_str() {
                Some("X-Purpose") => {
                    parameter["schema"] = json!({"type": "string", "enum": purposes.clone()});
                }
                Some("X-Actor") => {
                    parameter["schema"] = json!({
                        "type": "string",
                        "pattern": crate::auth::ACTOR_PATTERN,
                        "maxLength": 100
                    });
                }
                _ => {}
            }
        }
    }
    // The CSV form: a header row of known columns (derived from the record schemas).
    let mut columns: Vec<String> = standard
        .latest()
        .csv
        .values()
        .flat_map(|l| l.columns.iter().map(|c| c.name.replace('.', "\\.")))
        .collect();
    columns.sort();
    columns.dedup();
    if let Some(csv) = doc.pointer_mut(
        "/paths/~1v1~1municipalities~1{code}~1records/post/requestBody/content/text~1csv",
    ) {
        csv["schema"] = json!({
            "type": "string",
            "description": "CSV (UTF-8, UTF-8 with BOM, or `charset=shift_jis` for CP932). The header row starts with `record_type` and names columns of the data dictionary. (A file of a single type may instead leave out the `record_type` column and pass `?record_type=`.)",
            "pattern": format!("^record_type(,({cols}))*\\r?\\n", cols = columns.join("|")),
        });
    }
    // Stored and served records are valid records of the standard.
    for pointer in [
        "/components/schemas/CurrentRecord/properties/record",
        "/components/schemas/Change/properties/record",
    ] {
        if let Some(slot) = doc.pointer_mut(pointer) {
            let description = slot.get("description").cloned();
            *slot = json!({ "$ref": "#/components/schemas/Record" });
            if let Some(description) = description {
                slot["description"] = description;
            }
        }
    }
    doc
}

/// Pretty JSON with a final newline, as committed in `openapi/openapi.json`.
pub fn document_text(standard: &Standard) -> String {
    serde_json::to_string_pretty(&document(standard)).expect("JSON") + "\n"
}
