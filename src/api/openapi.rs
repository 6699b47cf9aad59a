//! The OpenAPI 3.1 document: routes, parameters and bodies come from the handlers' utoipa
//! annotations; record schemas are taken from `schema/` (never retyped) and placed under
//! `components/schemas`. Committed at `openapi/openapi.json`; served at `/openapi.json`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{
    audit_api, identity, indicators, meta, packages, records, screening, subjects, transfers, views,
};
use crate::ingest::{IngestReport, RecordResult, RecordStatus, ResultDetail};
use crate::schema::applicability::ApplicableItem;
use crate::schema::purposes::Purpose;
use crate::schema::{FieldError, SchemaVersion, Standard};
use crate::store::audit::AuditRecord;
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
        records::push, records::put_record, records::retract, records::history, records::changes, records::validate,
        subjects::profile, subjects::put_opt_out, subjects::delete_opt_out,
        audit_api::audit_trail, audit_api::external_reads,
        identity::list, identity::confirm, identity::reject,
        transfers::offer, transfers::list, transfers::show, transfers::accept, transfers::decline,
        transfers::cancel, transfers::claim, packages::export, packages::import, packages::receipt,
        indicators::list, indicators::show, indicators::preview,
        meta::list_schemas, meta::get_schema, meta::access_purposes,
        meta::healthz, meta::readyz, meta::metrics,
        screening::default_rules, screening::add_rules, screening::list_rules, screening::show_rules,
        screening::adopt_rules, screening::preview, screening::create_run, screening::list_runs,
        screening::worklist, screening::entry, screening::decide, screening::close,
        screening::fairness, screening::school_shares,
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
        crate::screening::RuleSetDocument, crate::screening::ItemWeight,
        crate::screening::FieldWeight, crate::screening::AgeBand, crate::screening::KnownReason,
        crate::screening::DecisionClass, crate::store::screening::RuleSetVersion,
        crate::store::screening::Adoption, screening::RuleSetList, screening::RunRequest,
        screening::RunList, screening::DecisionRequest, screening::DecisionRecorded,
        screening::CloseRequest, crate::screening::workflow::PreviewView,
        crate::screening::workflow::BandCounts, crate::screening::workflow::ItemCounts,
        crate::screening::workflow::FieldCounts, crate::screening::workflow::RunSummary,
        crate::screening::workflow::WorklistView, crate::screening::workflow::EntryView,
        crate::screening::workflow::DecisionView, crate::screening::workflow::EntryDetail,
        crate::screening::workflow::FairnessView, crate::screening::workflow::GroupCounts,
        crate::screening::workflow::SharedList, crate::screening::workflow::SharedDecision,
        crate::screening::engine::Contribution, crate::screening::engine::RecordRef,
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
        (name = "screening", description = "Screening worklists (判定・抽出) for a case meeting of people, which decides; the list decides nothing"),
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
    bound_path_parameters(&mut doc);
    bound_lists(&mut doc, standard, &super::Limits::default());
    bound_schemas(&mut doc, &super::Limits::default());
    document_common_answers(&mut doc);
    doc
}

/// Path parameters name things whose form the standard fixes.
fn bound_path_parameters(doc: &mut Value) {
    let bounds = |name: &str| match name {
        "code" => Some(json!({"type": "string", "pattern": "^[0-9]{6}$", "maxLength": 6})),
        "resident_no" => Some(json!({"$ref": "#/components/schemas/v1.common.resident_no"})),
        "source_record_id" => Some(json!({"type": "string", "minLength": 1, "maxLength": 128})),
        "version" => {
            Some(json!({"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "maxLength": 10}))
        }
        "record_type" => Some(json!({"type": "string", "pattern": "^[a-z-]+$", "maxLength": 40})),
        _ => None,
    };
    for parameter in operations(doc)
        .filter_map(|op| op.get_mut("parameters").and_then(Value::as_array_mut))
        .flatten()
        .filter(|p| p["in"] == "path")
    {
        if let Some(schema) = parameter["name"].as_str().and_then(bounds) {
            parameter["schema"] = schema;
        }
    }
}

/// Lists whose length the hub bounds, with the bound (utoipa has no attribute for lists of
/// its own types, and several bounds come from the standard or the request limits). Lists
/// that grow with the stored data (a subject's history, the audit trail, queues) have none
/// yet: they are answered whole (see `.ci/spectral/owasp.yaml`).
fn bound_lists(doc: &mut Value, standard: &Standard, limits: &super::Limits) {
    let versions = &standard.versions;
    let most = |count: &dyn Fn(&SchemaVersion) -> usize| versions.iter().map(count).max();
    let per_record = crate::schema::validate::MAX_ERRORS_PER_RECORD;
    // An NDJSON push answers one result per non-blank line (a byte and a newline at least).
    let ndjson_lines = usize::try_from(limits.max_stream_bytes / 2).unwrap_or(usize::MAX);
    let bounds: [(&str, Option<usize>); 17] = [
        (
            "PushBatch/properties/records",
            Some(limits.max_batch_records),
        ),
        (
            "ValidationReport/properties/results",
            Some(limits.max_batch_records),
        ),
        ("IngestReport/properties/results", Some(ndjson_lines)),
        (
            "IngestReport/properties/schema_versions",
            Some(ndjson_lines),
        ),
        (
            "ChangesPage/properties/changes",
            Some(super::records::MAX_CHANGES_PAGE),
        ),
        ("Problem/properties/errors", Some(per_record)),
        ("RecordResult/properties/errors", Some(per_record)),
        ("ValidationResult/properties/errors", Some(per_record)),
        ("SchemaIndex/properties/versions", Some(versions.len())),
        (
            "SchemaVersionInfo/properties/record_types",
            most(&|v| v.records.len()),
        ),
        (
            "PurposeList/properties/purposes",
            most(&|v| v.purposes.len()),
        ),
        (
            "RecordTypeInfo/properties/csv_columns",
            most(&|v| {
                v.csv
                    .values()
                    .map(|l| l.columns.len() + 1)
                    .max()
                    .unwrap_or(0)
            }),
        ),
        ("RecordTypeInfo/properties/basic_items", Some(BASIC_ITEMS)),
        ("ProfileView/properties/applicable_items", Some(BASIC_ITEMS)),
        ("Candidate/properties/differing_fields", Some(MATCH_FIELDS)),
        (
            "TransferView/allOf/1/properties/children",
            Some(crate::transfer::package::MAX_ITEMS),
        ),
        (
            "OfferRequest/properties/children",
            Some(super::transfers::MAX_CHILDREN),
        ),
    ];
    for (pointer, bound) in bounds {
        let pointer = format!("/components/schemas/{pointer}");
        if let (Some(list), Some(bound)) = (doc.pointer_mut(&pointer), bound) {
            list["maxItems"] = json!(bound);
        }
    }
}

/// The basic linkage data items of the guideline (基本連携データ項目 01–19).
const BASIC_ITEMS: usize = 19;
/// Fields identity resolution compares (name, kana, birth date, sex, address).
const MATCH_FIELDS: usize = 5;

/// Every operation object of the document.
fn operations(doc: &mut Value) -> impl Iterator<Item = &mut Value> {
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| op.is_object())
}

fn has_type(schema: &Map<String, Value>, kind: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == kind,
        Some(Value::Array(types)) => types.iter().any(|t| t == kind),
        _ => false,
    }
}

/// Give every integer a format and a range and every string a length, as far as facts allow
/// (the OWASP API rules ask it of every schema; the Rust types and record schemas state most
/// bounds themselves):
/// - an integer takes its range from its code list, its format from its range (int32 when it
///   fits), and otherwise the range of its format — which is exactly what it can hold;
/// - a date is 10 characters, a municipality code 6, an RFC 3339 time at most 35;
/// - any other string is at most `max_body_bytes` long: every string in an answer is one the
///   hub made (short) or one it accepted, and it reads no body (nor NDJSON line) longer than
///   that. NDJSON bodies themselves are bounded by `max_stream_bytes`.
fn bound_schemas(doc: &mut Value, limits: &super::Limits) {
    if let Some(ndjson) = doc.pointer_mut(
        "/paths/~1v1~1municipalities~1{code}~1records/post/requestBody/content/application~1x-ndjson/schema",
    ) {
        ndjson["maxLength"] = json!(limits.max_stream_bytes);
    }
    bound_schema(doc, limits.max_body_bytes);
}

fn bound_schema(value: &mut Value, max_text: usize) {
    match value {
        Value::Object(schema) => {
            if has_type(schema, "integer") {
                bound_integer(schema);
            }
            let unbounded = ["maxLength", "enum", "const"]
                .iter()
                .all(|k| !schema.contains_key(*k));
            if has_type(schema, "string") && unbounded {
                let length = match schema.get("format").and_then(Value::as_str) {
                    Some("past-date" | "date") => 10,
                    Some("municipality-code") => 6,
                    Some("date-time") => 35,
                    _ => max_text,
                };
                schema.insert("maxLength".into(), json!(length));
            }
            schema.values_mut().for_each(|v| bound_schema(v, max_text));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| bound_schema(v, max_text)),
        _ => {}
    }
}

fn bound_integer(schema: &mut Map<String, Value>) {
    if let Some(codes) = schema.get("enum").and_then(Value::as_array) {
        let codes: Vec<i64> = codes.iter().filter_map(Value::as_i64).collect();
        if let (Some(low), Some(high)) = (codes.iter().min(), codes.iter().max()) {
            let (low, high) = (*low, *high);
            schema.entry("minimum").or_insert(json!(low));
            schema.entry("maximum").or_insert(json!(high));
        }
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_i64);
    let fits_i32 = |v: Option<i64>| v.is_some_and(|v| i32::try_from(v).is_ok());
    if !schema.contains_key("format") {
        let format = if fits_i32(bound("minimum")) && fits_i32(bound("maximum")) {
            "int32"
        } else {
            "int64"
        };
        schema.insert("format".into(), json!(format));
    }
    let (low, high) = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    if !schema.contains_key("exclusiveMinimum") {
        schema.entry("minimum").or_insert(json!(low));
    }
    if !schema.contains_key("exclusiveMaximum") {
        schema.entry("maximum").or_insert(json!(high));
    }
}

/// Answers every operation may give: every answer carries the client's quota
/// (`X-RateLimit-Limit`), every operation that needs a token may answer 429 with
/// `Retry-After`, and any may answer 500.
fn document_common_answers(doc: &mut Value) {
    let quota = json!({
        "description": "Requests a second each client may make (bursts of up to twice that); beyond it the hub answers 429",
        "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": i32::MAX},
    });
    let public = doc.get("security").cloned();
    for op in operations(doc) {
        let needs_token = op.get("security").or(public.as_ref()).is_some_and(|s| {
            s.as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            })
        });
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        if needs_token && !responses.contains_key("429") {
            responses.insert(
                "429".into(),
                json!({
                    "description": "Rate limited",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }),
            );
        }
        // Any operation can fail inside the hub (a lost database, a bug); it then answers 500
        // with a problem that quotes nothing of the request.
        responses.entry("500").or_insert_with(|| {
            json!({
                "description": "The hub could not complete the request (`internal`)",
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            })
        });
        if let Some(limited) = responses.get_mut("429") {
            limited["headers"]["Retry-After"] = json!({
                "description": "Seconds until the client may retry",
                "schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 3600},
            });
        }
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') || status.starts_with('4') {
                let headers = response
                    .as_object_mut()
                    .map(|r| r.entry("headers").or_insert_with(|| json!({})));
                if let Some(headers) = headers.and_then(Value::as_object_mut) {
                    headers.insert(super::RATE_LIMIT_HEADER.into(), quota.clone());
                }
            }
        }
    }
}

/// Pretty JSON with a final newline, as committed in `openapi/openapi.json`.
pub fn document_text(standard: &Standard) -> String {
    serde_json::to_string_pretty(&document(standard)).expect("JSON") + "\n"
}
