//! The OpenAPI 3.1 document: routes, parameters and bodies come from the handlers' utoipa
//! annotations; record schemas are taken from `schema/` (never retyped) and placed under
//! `components/schemas`. Committed at `openapi/openapi.json`; served at `/openapi.json`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{
    audit_api, councils, identity, indicators, meta, packages, records, screening, subjects,
    transfers, views,
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
        packages::outcome, packages::import_outcome,
        indicators::list, indicators::show, indicators::preview,
        councils::clients, councils::operations,
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
        packages::PackageForm, packages::OutcomeImported, crate::transfer::exchange::Imported, crate::transfer::package::Receipt,
        crate::transfer::package::Outcome, crate::transfer::package::ChildOutcome,
        crate::transfer::package::ChildDecision,
        crate::store::transfers::Transfer, crate::store::transfers::TransferView,
        crate::store::transfers::TransferChild, crate::transfer::TransferReason,
        crate::transfer::DeclineReason,
        indicators::Format, crate::indicators::publication::ReleaseList,
        crate::indicators::publication::ReleaseSummary, crate::indicators::publication::ReleaseView,
        crate::indicators::publication::PreviewView, crate::indicators::publication::CellView,
        crate::indicators::disclosure::DisclosureConfig, crate::indicators::disclosure::Suppression,
        crate::indicators::disclosure::Unit, crate::indicators::table::Level,
        crate::indicators::audit::AuditSummary,
        councils::CouncilClients, councils::CouncilClient, crate::store::clients::Council,
        councils::CouncilOperations, crate::store::operations::TownOperations,
        crate::store::operations::SourceOperations, crate::store::operations::PushDay,
        crate::store::operations::OpenTransfers, crate::store::operations::FeedConsumer,
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
        (name = "councils", description = "A joint-use council's operator: its clients and operational figures, never personal data"),
        (name = "schemas", description = "The standard itself"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

const SCHEMA_PREFIX: &str = "https://kodomo-hub.jp/schema/";

/// `school-attendance` → `SchoolAttendance`, `basic_info` → `BasicInfo`.
fn pascal(name: &str) -> String {
    name.split(['-', '_', '.'])
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Component name (ASCII, so generated clients get ASCII class names; the schema's `title`
/// stays Japanese for people) for a schema file's definition: `SchoolAttendanceRecord` for a
/// record type, `SubjectRef` for a definition of `common`; a later major version adds `V2`.
fn component_name(major: u32, file: &str, def: Option<&str>) -> String {
    let base = match (file, def) {
        ("common", Some("envelope")) => "RecordEnvelope".to_string(),
        ("common", Some("date")) => "PastDate".to_string(),
        ("common", Some(def)) => pascal(def),
        ("record", Some(record_type)) | (record_type, None) => {
            format!("{}Record", pascal(record_type))
        }
        (file, Some(def)) => format!("{}{}", pascal(file), pascal(def)),
    };
    if major == 1 {
        base
    } else {
        format!("{base}V{major}")
    }
}

/// Point `$ref`s at components and drop `$id`/`$schema`, which would change the base URI.
/// The schema files describe in Japanese (`description`) and English (`x-description-en`):
/// the document gives both, Japanese first.
fn rewrite(value: &mut Value, major: u32) {
    match value {
        Value::Object(map) => {
            map.remove("$id");
            map.remove("$schema");
            if let Some(Value::String(en)) = map.remove("x-description-en")
                && let Some(Value::String(ja)) = map.get_mut("description")
            {
                *ja = format!("{ja}\n\n{en}");
            }
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(rest) = reference.strip_prefix(SCHEMA_PREFIX)
                && let Some((file, fragment)) = rest.split_once('#')
            {
                let file = file
                    .trim_start_matches(&format!("v{major}/"))
                    .trim_end_matches(".json")
                    .trim_start_matches("records/");
                let def = fragment.strip_prefix("/$defs/").filter(|d| !d.is_empty());
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

fn record_components(
    version: &SchemaVersion,
    schemas: &mut Map<String, Value>,
    mapping: &mut Map<String, Value>,
) {
    let major = version.major;
    if let Some(defs) = version.common.get("$defs").and_then(Value::as_object) {
        for (name, def) in defs {
            let mut def = def.clone();
            rewrite(&mut def, major);
            either_required(&mut def);
            schemas.insert(component_name(major, "common", Some(name)), def);
        }
    }
    let envelope = schemas
        .remove(&component_name(major, "common", Some("envelope")))
        .unwrap_or_default();
    for (name, doc) in &version.records {
        let mut doc = doc.clone();
        rewrite(&mut doc, major);
        flatten_envelope(&mut doc, &envelope, major);
        let component = component_name(major, "record", Some(name));
        // The latest version's schema answers for a record type.
        mapping.insert(
            name.clone(),
            json!(format!("#/components/schemas/{component}")),
        );
        schemas.insert(component, doc);
    }
}

/// `anyOf: [{required: [a]}, {required: [b]}]` (one of two fields must be there) as the
/// equivalent `if: {not: {required: [a]}}, then: {required: [b]}`: code generators read an
/// `anyOf` as a union of two types and give up the object's class.
fn either_required(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let pair = object
        .get("anyOf")
        .and_then(Value::as_array)
        .and_then(|members| {
            let required: Vec<&Value> = members
                .iter()
                .filter(|m| m.as_object().is_some_and(|m| m.len() == 1))
                .filter_map(|m| m.get("required"))
                .collect();
            (members.len() == 2 && required.len() == 2 && !object.contains_key("if"))
                .then(|| (required[0].clone(), required[1].clone()))
        });
    if let Some((first, second)) = pair {
        object.remove("anyOf");
        object.insert("if".into(), json!({"not": {"required": first}}));
        object.insert("then".into(), json!({"required": second}));
    }
}

/// A record schema with the envelope's fields written out in its own `properties` (and its
/// `unevaluatedProperties: false` as `additionalProperties: false`, which then means the same):
/// code generators make one class per record type with every field, where an `allOf` of the
/// envelope made them fall back to the envelope's class. The record's other `allOf` members
/// (conditions) stay.
fn flatten_envelope(doc: &mut Value, envelope: &Value, major: u32) {
    let reference = json!(format!(
        "#/components/schemas/{}",
        component_name(major, "common", Some("envelope"))
    ));
    let Some(record) = doc.as_object_mut() else {
        return;
    };
    let Some(Value::Array(all_of)) = record.remove("allOf") else {
        return;
    };
    let (envelopes, rest): (Vec<Value>, Vec<Value>) =
        all_of.into_iter().partition(|m| m["$ref"] == reference);
    if envelopes.is_empty() {
        record.insert("allOf".into(), json!(rest));
        return;
    }
    let mut properties = envelope["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, property) in record
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let merged = match (properties.get(name), property) {
            // The envelope documents a field (title, description); the record fixes it.
            (Some(Value::Object(general)), Value::Object(own)) => {
                let mut merged = general.clone();
                merged.extend(own.clone());
                Value::Object(merged)
            }
            _ => property.clone(),
        };
        properties.insert(name.clone(), merged);
    }
    let mut required: Vec<Value> = envelope["required"].as_array().cloned().unwrap_or_default();
    for field in record
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !required.contains(field) {
            required.push(field.clone());
        }
    }
    record.insert("properties".into(), Value::Object(properties));
    record.insert("required".into(), Value::Array(required));
    if record.remove("unevaluatedProperties") == Some(Value::Bool(false)) {
        record.insert("additionalProperties".into(), json!(false));
    }
    for (key, value) in envelope.as_object().into_iter().flatten() {
        if key.starts_with("x-") {
            record.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    if !rest.is_empty() {
        record.insert("allOf".into(), json!(rest));
    }
}

/// `Record`: one of the record types, told apart by `record_type` (a discriminator with its
/// mapping, so generated clients get one typed class per record type), and `RecordType`, the
/// enumeration of record types with their Japanese names.
fn record_union(
    standard: &Standard,
    schemas: &mut Map<String, Value>,
    mapping: Map<String, Value>,
) {
    let one_of: Vec<Value> = mapping
        .values()
        .map(|target| json!({ "$ref": target }))
        .collect();
    schemas.insert(
        "Record".into(),
        json!({
            "title": "記録",
            "description": "いずれかのレコード種別の記録。`record_type` でスキーマが決まります。`schema/` のスキーマファイルそのもので、独自の形式 `past-date`・`municipality-code` とキーワード `x-field-order`・`x-no-my-number` はハブが検査します。\n\nA record of any type of the standard; `record_type` selects the schema. These are the files under schema/ as the hub enforces them (custom formats `past-date` and `municipality-code`, keywords `x-field-order` and `x-no-my-number` are checked by the hub).",
            "oneOf": one_of,
            "discriminator": {"propertyName": "record_type", "mapping": mapping},
        }),
    );
    let latest = standard.latest();
    let names: Vec<String> = latest
        .records
        .iter()
        .map(|(name, doc)| {
            format!(
                "- `{name}`：{}",
                doc.get("title").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    schemas.insert(
        "RecordType".into(),
        json!({
            "title": "レコード種別",
            "description": format!(
                "レコード種別 — Record type\n\n{}",
                names.join("\n")
            ),
            "type": "string",
            "enum": latest.records.keys().collect::<Vec<_>>(),
        }),
    );
}

/// `Purpose`: the codes a caller may declare in `X-Purpose` (one schema, shared by every
/// operation that reads personal data), from the published list.
fn purpose_schema(standard: &Standard) -> Value {
    let purposes = &standard.latest().purposes;
    let lines: Vec<String> = purposes
        .iter()
        .map(|p| format!("- `{}`：{}", p.code, p.label))
        .collect();
    json!({
        "title": "利用目的",
        "description": format!(
            "個人情報を読む要求で宣言する利用目的（`GET /v1/access-purposes` の一覧）— Declared purpose of a personal read (the list of `GET /v1/access-purposes`)\n\n{}",
            lines.join("\n")
        ),
        "type": "string",
        "enum": purposes.iter().map(|p| p.code.clone()).collect::<Vec<_>>(),
    })
}

/// Rename a component and every reference to it.
fn rename_component(doc: &mut Value, from: &str, to: &str) {
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        && let Some(schema) = schemas.remove(from)
    {
        schemas.insert(to.into(), schema);
    }
    fn walk(value: &mut Value, from: &str, to: &str) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get_mut("$ref")
                    && reference == &format!("#/components/schemas/{from}")
                {
                    *reference = format!("#/components/schemas/{to}");
                }
                map.values_mut().for_each(|v| walk(v, from, to));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, from, to)),
            _ => {}
        }
    }
    walk(doc, from, to);
}

/// The whole document as JSON.
pub fn document(standard: &Standard) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("OpenAPI serialises");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    // ASCII: generators name the client package after it (`kodomo_hub_client`).
    doc["info"]["description"] = json!(super::openapi_text::OVERVIEW);
    doc["info"]["contact"] = json!({
        "name": "kodomo-hub",
        "url": "https://kodomo-hub.jp/",
    });
    doc["info"]["license"] = json!({"name": "Apache License 2.0", "identifier": "Apache-2.0"});
    // Relative: the hub that serves this document (and /docs) is the server.
    // Every environment (production, staging, local) serves its own copy; the API is for the
    // municipalities' and vendors' systems on closed networks, not the public internet.
    doc["servers"] = json!([{
        "url": "/",
        "description": "この文書を配信しているハブ（本番・検証・ローカルの各環境） — The hub serving this document (production, staging or local)",
        "x-internal": true,
    }]);
    // The published purposes as one shared schema; the list's entries become `PurposeInfo`.
    rename_component(&mut doc, "Purpose", "PurposeInfo");
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        let mut mapping = Map::new();
        for version in &standard.versions {
            record_components(version, schemas, &mut mapping);
        }
        record_union(standard, schemas, mapping);
        schemas.insert("Purpose".into(), purpose_schema(standard));
    }
    if let Some(code) = doc.pointer_mut("/components/schemas/PurposeInfo/properties/code") {
        *code = json!({"$ref": "#/components/schemas/Purpose"});
    }
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
                    parameter["schema"] = json!({"$ref": "#/components/schemas/Purpose"});
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
        let cols = columns.join("|");
        csv["schema"] = json!({
            "type": "string",
            "description": "CSV（UTF-8、BOM付き UTF-8、または `charset=shift_jis` で CP932）。見出し行は `record_type` で始まり、データ項目定義書の列名を並べます。1種別だけのファイルは `record_type` 列を省き、`?record_type=` で種別を指定できます。\n\nCSV (UTF-8, UTF-8 with BOM, or `charset=shift_jis` for CP932). The header row starts with `record_type` and names columns of the data dictionary; a file of a single type may instead leave out the `record_type` column and pass `?record_type=`.",
            "pattern": format!("^(record_type|{cols})(,({cols}))*\\r?\\n"),
        });
    }
    // Stored and served records are valid records of the standard.
    if let Some(slot) = doc.pointer_mut("/components/schemas/CurrentRecord/properties/record") {
        *slot = json!({ "$ref": "#/components/schemas/Record" });
    }
    if let Some(slot) = doc.pointer_mut("/components/schemas/Change/allOf/1/properties/record") {
        *slot = json!({
            "description": slot.get("description").cloned().unwrap_or_default(),
            "anyOf": [{"$ref": "#/components/schemas/Record"}, {"type": "null"}],
        });
    }
    if let Some(subject) = doc.pointer_mut("/components/schemas/ProfileView/properties/subject") {
        *subject = json!({
            "description": subject.get("description").cloned().unwrap_or_default(),
            "allOf": [{"$ref": format!("#/components/schemas/{}", component_name(standard.latest().major, "record", Some("subject")))}],
        });
    }
    if let Some(items) = doc.pointer_mut("/components/schemas/PushBatch/properties/records/items") {
        *items = json!({ "$ref": "#/components/schemas/Record" });
    }
    type_push_parameters(&mut doc);
    bound_path_parameters(&mut doc);
    bound_lists(&mut doc, standard, &super::Limits::default());
    bound_schemas(&mut doc, &super::Limits::default());
    document_common_answers(&mut doc);
    examples(&mut doc, standard);
    links(&mut doc);
    bilingual(&mut doc);
    doc
}

/// `?record_type=` of a push is one of the record types; `?results=` says what it selects.
fn type_push_parameters(doc: &mut Value) {
    let Some(parameters) = doc
        .pointer_mut("/paths/~1v1~1municipalities~1{code}~1records/post/parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters.iter_mut() {
        match parameter["name"].as_str() {
            Some("record_type") => {
                parameter["schema"] = json!({"$ref": "#/components/schemas/RecordType"});
            }
            Some("results") => {
                parameter["description"] = json!(
                    "Which per-record results the answer lists (counting is always complete)."
                );
            }
            _ => {}
        }
    }
}

/// Every operation, mutably, with its operationId.
fn operations_by_id(doc: &mut Value) -> impl Iterator<Item = (String, &mut Value)> {
    operations(doc).filter_map(|op| {
        let id = op.get("operationId")?.as_str()?.to_string();
        Some((id, op))
    })
}

/// An example for every request body, derived where it can be: records from the schemas
/// (`conformance/vectors`), packages and receipts from the signed test vectors, the others
/// from the examples their types declare.
fn examples(doc: &mut Value, standard: &Standard) {
    let version = standard.latest();
    let sample = |record_type: &str, id: &str, resident_no: &str| {
        let mut record = crate::conformance::vectors::sample_record(version, record_type)
            .expect("a sample record of every type");
        record["source_record_id"] = json!(id);
        record["subject"] = json!({ "resident_no": resident_no });
        record
    };
    let batch = json!({"records": [
        sample("subject", "juki-0000101", "1190160000101"),
        sample("school-attendance", "att-2025-0001", "1190160000101"),
    ]});
    let ndjson: String = ["pn-0001", "pn-0002"]
        .iter()
        .map(|id| sample("postnatal-checkup", id, "1190160000101").to_string() + "\n")
        .collect();
    let csv = include_str!("../../conformance/vectors/v1/files/csv-utf8.csv");
    let package_xml = include_str!("../../conformance/vectors/v1/files/transfer-valid.xml");
    let package_json = crate::transfer::package::parse(package_xml.as_bytes())
        .map(|p| crate::transfer::package::to_json(&p))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let receipt_fields = crate::transfer::package::parse(package_xml.as_bytes())
        .ok()
        .map(|package| {
            use sha2::Digest;
            crate::transfer::package::Receipt {
                package_id: package.header.package_id.clone(),
                conversation_id: package.header.conversation_id.clone(),
                origin: package.header.origin.clone(),
                destination: package.header.destination.clone(),
                package_sha256: hex::encode(sha2::Sha256::digest(package_xml.as_bytes())),
                received: "2021-04-02T10:00:00+09:00".into(),
                children: 1,
                records: 1,
            }
        });
    let receipt = receipt_fields.as_ref().map(|receipt| {
        String::from_utf8_lossy(&crate::transfer::package::receipt_to_xml(receipt)).into_owned()
    });
    let outcome_fields = receipt_fields
        .as_ref()
        .map(|receipt| crate::transfer::package::Outcome {
            package_id: receipt.package_id.clone(),
            conversation_id: receipt.conversation_id.clone(),
            origin: receipt.origin.clone(),
            destination: receipt.destination.clone(),
            package_sha256: receipt.package_sha256.clone(),
            decided: "2021-04-05T15:30:00+09:00".into(),
            children: vec![crate::transfer::package::ChildOutcome {
                position: 0,
                decision: crate::transfer::package::ChildDecision::Accepted,
                reason: None,
                records_copied: 1,
                records_declined: 0,
            }],
        });
    let outcome = outcome_fields.as_ref().map(|outcome| {
        String::from_utf8_lossy(&crate::transfer::package::outcome_to_xml(outcome)).into_owned()
    });
    let schema_example = |doc: &Value, content: &Value| {
        content
            .pointer("/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| doc.pointer(&format!("/components/schemas/{name}/example")))
            .cloned()
    };
    let snapshot = doc.clone();
    for (id, op) in operations_by_id(doc) {
        let Some(content) = op
            .pointer_mut("/requestBody/content")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (media, body) in content.iter_mut() {
            let example = match (id.as_str(), media.as_str()) {
                ("push" | "validate", "application/json") => Some(batch.clone()),
                ("push", "application/x-ndjson") => Some(json!(ndjson)),
                ("push", "text/csv") => Some(json!(csv)),
                ("import_transfer_package", "application/xml") => Some(json!(package_xml)),
                ("import_transfer_package", "application/json") => package_json.clone(),
                ("import_transfer_receipt", "application/xml") => receipt.clone().map(Value::from),
                ("import_transfer_receipt", "application/json") => {
                    receipt_fields.as_ref().map(|r| json!(r))
                }
                ("import_transfer_outcome", "application/xml") => outcome.clone().map(Value::from),
                ("import_transfer_outcome", "application/json") => {
                    outcome_fields.as_ref().map(|o| json!(o))
                }
                _ => schema_example(&snapshot, body),
            };
            if let Some(example) = example
                && body.get("example").is_none()
                && body.get("examples").is_none()
            {
                body["example"] = example;
            }
        }
    }
    // The push example is the one above, derived from the schemas.
    if let Some(body) = doc.pointer_mut(
        "/paths/~1v1~1municipalities~1{code}~1records/post/requestBody/content/application~1json",
    ) {
        body["example"] = batch;
    }
}

/// From operation, on status, to (operation, description, parameters).
type Link<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str, &'a [(&'a str, &'a str)])],
);

/// OpenAPI links between operations: what an answer lets a client (or schemathesis' stateful
/// phase) do next, with the values it takes from the request and the answer.
fn links(doc: &mut Value) {
    let code = "$request.path.code";
    let table: [Link; 7] = [
        (
            "push",
            "200",
            &[
                (
                    "history",
                    "この記録の履歴 — History of the first record",
                    &[
                        ("code", code),
                        (
                            "source_record_id",
                            "$response.body#/results/0/source_record_id",
                        ),
                    ],
                ),
                (
                    "retract",
                    "この記録の取消し — Retract the first record",
                    &[
                        ("code", code),
                        (
                            "source_record_id",
                            "$response.body#/results/0/source_record_id",
                        ),
                    ],
                ),
                (
                    "changes",
                    "変更フィード — The change feed",
                    &[("code", code)],
                ),
            ],
        ),
        (
            "retract",
            "200",
            &[(
                "history",
                "取消し後の履歴 — History after the retraction",
                &[
                    ("code", code),
                    ("source_record_id", "$request.path.source_record_id"),
                ],
            )],
        ),
        (
            "offer_transfer",
            "201",
            &[
                (
                    "show_transfer",
                    "引継ぎの詳細 — The transfer",
                    &[("id", "$response.body#/id")],
                ),
                (
                    "accept_transfer",
                    "転入先の受入れ — Accept at the destination",
                    &[("id", "$response.body#/id")],
                ),
                (
                    "decline_transfer",
                    "転入先の辞退 — Decline at the destination",
                    &[("id", "$response.body#/id")],
                ),
                (
                    "cancel_transfer",
                    "転出元の取消し — Cancel at the origin",
                    &[("id", "$response.body#/id")],
                ),
                (
                    "claim_transfer",
                    "保留中の引受け — Claim while held",
                    &[("id", "$response.body#/id")],
                ),
                (
                    "export_transfer_package",
                    "他ハブ宛てのパッケージ — Package for a peer hub",
                    &[("id", "$response.body#/id")],
                ),
            ],
        ),
        (
            "list_transfers",
            "200",
            &[(
                "show_transfer",
                "最初の引継ぎの詳細 — The first transfer",
                &[("id", "$response.body#/transfers/0/id")],
            )],
        ),
        (
            "list_identity_reviews",
            "200",
            &[
                (
                    "confirm_identity",
                    "最初の項目の確定 — Confirm the first item",
                    &[("code", code), ("id", "$response.body#/items/0/id")],
                ),
                (
                    "reject_identity",
                    "最初の項目の否認 — Reject the first item",
                    &[("code", code), ("id", "$response.body#/items/0/id")],
                ),
            ],
        ),
        (
            "list_indicator_releases",
            "200",
            &[(
                "show_indicator_release",
                "最初のリリース — The first release",
                &[("id", "$response.body#/releases/0/id")],
            )],
        ),
        (
            "put_opt_out",
            "200",
            &[
                (
                    "delete_opt_out",
                    "不同意の撤回 — Withdraw the objection",
                    &[("code", code), ("resident_no", "$request.path.resident_no")],
                ),
                (
                    "profile",
                    "子どものプロファイル — The child's profile",
                    &[("code", code), ("resident_no", "$request.path.resident_no")],
                ),
            ],
        ),
    ];
    let summaries: std::collections::BTreeMap<String, String> = operations_by_id(doc)
        .map(|(id, op)| (id, op["summary"].as_str().unwrap_or_default().to_string()))
        .collect();
    let ids: std::collections::BTreeSet<String> = summaries.keys().cloned().collect();
    for (id, op) in operations_by_id(doc) {
        for (from, status, targets) in &table {
            if *from != id {
                continue;
            }
            // Readers see the links too: listed after the description, pointing at the
            // operations' anchors in /docs.
            let next: Vec<String> = targets
                .iter()
                .map(|(target, description, _)| {
                    format!(
                        "- [{}](#operation/{target}) — {description}",
                        summaries.get(*target).map_or("", String::as_str)
                    )
                })
                .collect();
            if let Some(text) = op.get_mut("description") {
                *text = json!(format!(
                    "{}\n\n**次の操作 — Next** （応答 {status} の値を使います — with values of answer {status}）\n\n{}",
                    text.as_str().unwrap_or_default(),
                    next.join("\n")
                ));
            }
            let Some(response) = op.pointer_mut(&format!("/responses/{status}")) else {
                continue;
            };
            for (target, description, parameters) in targets.iter() {
                assert!(ids.contains(*target), "link to unknown operation {target}");
                let parameters: Map<String, Value> = parameters
                    .iter()
                    .map(|(name, expression)| ((*name).to_string(), json!(expression)))
                    .collect();
                response["links"][pascal(target)] = json!({
                    "operationId": target,
                    "description": description,
                    "parameters": parameters,
                });
            }
        }
    }
}

/// Japanese first: every description of a parameter, answer, header or tag gets its Japanese
/// (`openapi_text`), and the bearer scheme is explained in both languages.
fn bilingual(doc: &mut Value) {
    use super::openapi_text::{has_japanese, ja, tag};
    let both = |text: &mut Value| {
        if let Some(en) = text.as_str()
            && let Some(ja) = ja(en)
        {
            *text = json!(format!("{ja} — {en}"));
        }
    };
    for op in operations(doc) {
        for parameter in op
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(text) = parameter.get_mut("description") {
                both(text);
            }
        }
        if let Some(text) = op.pointer_mut("/requestBody/description") {
            both(text);
        }
        for response in op
            .get_mut("responses")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|r| r.values_mut())
        {
            if let Some(text) = response.get_mut("description") {
                both(text);
            }
            for header in response
                .get_mut("headers")
                .and_then(Value::as_object_mut)
                .into_iter()
                .flat_map(|h| h.values_mut())
            {
                if let Some(text) = header.get_mut("description") {
                    both(text);
                }
            }
        }
    }
    for entry in doc
        .get_mut("tags")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(text) = entry["name"].as_str().and_then(tag) {
            entry["description"] = json!(text);
        }
        if let Some(name) = entry["name"]
            .as_str()
            .and_then(super::openapi_text::tag_name)
        {
            entry["x-displayName"] = json!(name);
        }
    }
    if let Some(scheme) = doc.pointer_mut("/components/securitySchemes/bearerAuth/description")
        && !scheme.as_str().is_some_and(has_japanese)
    {
        *scheme = json!(
            "`kodomo-hub admin client add` が発行するクライアントのトークン（一度だけ表示）。`Authorization: Bearer <token>` で送ります。 — Client token issued by `kodomo-hub admin client add` (shown once), sent as `Authorization: Bearer <token>`."
        );
    }
}

/// Path parameters name things whose form the standard fixes.
fn bound_path_parameters(doc: &mut Value) {
    let bounds = |name: &str| match name {
        "code" => Some(json!({"$ref": "#/components/schemas/MunicipalityCode"})),
        "resident_no" => Some(json!({"$ref": "#/components/schemas/ResidentNo"})),
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

pub const MY_NUMBER_HEADER: &str = "A free-text header (`X-Actor`, `X-Purpose`, `X-Legal-Basis`, `Idempotency-Key`) looks like a My Number (`my_number_like`)";
pub const CONTENT_CODING: &str =
    "A body in a content coding other than identity (`content_encoding_unsupported`)";

/// An answer whose body is a problem (RFC 9457).
fn problem_answer(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    })
}

/// Answers every operation may give, written once here rather than on every operation: every
/// answer carries the client's quota (`X-RateLimit-Limit`), every operation that needs a token
/// may answer 401 and 429 (with `Retry-After`), and any may answer 500.
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
        // The guard in front of every route refuses these before any handler runs.
        responses
            .entry("400")
            .or_insert_with(|| problem_answer(MY_NUMBER_HEADER));
        responses
            .entry("415")
            .or_insert_with(|| problem_answer(CONTENT_CODING));
        if needs_token {
            responses
                .entry("401")
                .or_insert_with(|| problem_answer("Missing or unknown token"));
            responses
                .entry("429")
                .or_insert_with(|| problem_answer("Rate limited"));
        }
        // Any operation can fail inside the hub (a lost database, a bug); it then answers 500
        // with a problem that quotes nothing of the request.
        responses.entry("500").or_insert_with(|| {
            problem_answer("The hub could not complete the request (`internal`)")
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

/// A configuration for openapi-python-client (`--config openapi/python-client.json`): it names
/// classes after a schema's `title`, which is Japanese here (for people), so every schema that
/// becomes a class — components and the code lists of record fields — gets its ASCII component
/// name (`SchoolAttendanceRecord`, `SchoolAttendanceRecordPeriod`) instead.
pub fn python_client_config(standard: &Standard) -> Value {
    let doc = document(standard);
    let mut overrides = Map::new();
    let mut add = |key: String, class: String| {
        overrides.insert(
            key,
            json!({"class_name": class, "module_name": snake(&class)}),
        );
    };
    let coded = |p: &Value| p.get("enum").is_some() || p["type"] == "object";
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(title) = schema["title"].as_str() {
            add(python_class_name(title), name.clone());
        }
        // Code lists of fields become classes named after the record and the field's title.
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            for (slot, suffix) in [(property, ""), (&property["items"], "Item")] {
                if let Some(title) = slot["title"].as_str()
                    && coded(slot)
                {
                    add(
                        python_class_name(&format!("{name}{}", python_class_name(title))),
                        format!("{name}{}{suffix}", pascal(field)),
                    );
                }
            }
        }
    }
    json!({
        "class_overrides": overrides,
        "project_name_override": "kodomo-hub-client",
        "package_name_override": "kodomo_hub_client",
    })
}

/// The class name openapi-python-client makes of a title: characters other than letters,
/// digits and the delimiters `. _-` and space dropped, words split on the delimiters and
/// capitalised.
fn python_class_name(title: &str) -> String {
    let kept: String = title
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | ' ' | '_' | '-'))
        .collect();
    kept.split(['.', ' ', '_', '-'])
        .filter(|w| !w.is_empty())
        .map(|word| {
            if word.chars().any(|c| c.is_ascii_uppercase()) {
                word.to_string()
            } else {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().collect::<String>() + chars.as_str()
                })
            }
        })
        .collect()
}

/// `SchoolAttendanceRecord` → `school_attendance_record`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Pretty JSON with a final newline, as committed in `openapi/python-client.json`.
pub fn python_client_config_text(standard: &Standard) -> String {
    serde_json::to_string_pretty(&python_client_config(standard)).expect("JSON") + "\n"
}

/// Pretty JSON with a final newline, as committed in `openapi/openapi.json`.
pub fn document_text(standard: &Standard) -> String {
    serde_json::to_string_pretty(&document(standard)).expect("JSON") + "\n"
}
