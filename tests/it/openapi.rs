//! The OpenAPI contract: the committed document is exactly what the code generates, the server
//! serves it, record schemas come from schema/, and the docs pages work from the binary alone.

use crate::common;

use common::{Backend, Hub};
use serde_json::Value;

const REGENERATE: &str = "cargo run -- openapi > openapi/openapi.json";

fn generated() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kodomo-hub"))
        .arg("openapi")
        .output()
        .expect("run kodomo-hub openapi");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn committed_document_matches_the_code() {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"),
    )
    .expect("openapi/openapi.json is committed");
    assert!(
        committed == generated(),
        "openapi/openapi.json differs from what the code generates; regenerate it with `{REGENERATE}` and commit it"
    );
}

#[test]
fn served_document_and_record_schemas_come_from_schema_files() {
    let hub = Hub::start(Backend::Sqlite);
    let served = hub.get("/openapi.json", None);
    assert_eq!(served.status, 200);
    assert_eq!(served.text(), generated());
    let doc: Value = served.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    // Every record type of schema/v1/records is a component, with the file's own rules.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/v1/records");
    let common: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/v1/common.json"),
        )
        .expect("common.json"),
    )
    .expect("json");
    for entry in std::fs::read_dir(dir).expect("schema dir") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let component_name = format!("{}Record", pascal(name));
        let component = &schemas[&component_name];
        assert_eq!(component["title"], file["title"], "{name}");
        assert_eq!(component["x-basic-item"], file["x-basic-item"], "{name}");
        // The envelope's fields are written out in each record (one class per record type in
        // generated clients), with the record's own fields and rules after them.
        let envelope = &common["$defs"]["envelope"];
        let own = file["properties"].as_object().expect("properties");
        let fields = component["properties"].as_object().expect("properties");
        for field in own
            .keys()
            .chain(envelope["properties"].as_object().unwrap().keys())
        {
            assert!(fields.contains_key(field), "{name}: {field}");
        }
        assert_eq!(
            fields.len(),
            own.keys()
                .chain(envelope["properties"].as_object().unwrap().keys())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            "{name}"
        );
        for field in file["required"]
            .as_array()
            .unwrap()
            .iter()
            .chain(envelope["required"].as_array().unwrap())
        {
            assert!(
                component["required"].as_array().unwrap().contains(field),
                "{name}: {field}"
            );
        }
        assert_eq!(component["additionalProperties"], false, "{name}");
        assert_eq!(
            component["properties"]["record_type"]["const"], *name,
            "{name}: record_type is fixed"
        );
        let reference = format!("#/components/schemas/{component_name}");
        assert!(
            schemas["Record"]["oneOf"]
                .as_array()
                .expect("Record.oneOf")
                .iter()
                .any(|r| r["$ref"] == reference),
            "{name} missing from Record"
        );
        assert_eq!(
            schemas["Record"]["discriminator"]["mapping"][name],
            reference
        );
        assert!(
            schemas["RecordType"]["enum"]
                .as_array()
                .unwrap()
                .contains(&Value::from(name))
        );
    }
    // Purposes in the document are the published list.
    let purposes =
        &doc["paths"]["/v1/municipalities/{code}/subjects/{resident_no}"]["get"]["parameters"];
    let x_purpose = purposes
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "X-Purpose")
        .expect("X-Purpose parameter");
    // One shared schema for every X-Purpose.
    assert_eq!(x_purpose["schema"]["$ref"], "#/components/schemas/Purpose");
    assert!(
        schemas["Purpose"]["enum"]
            .as_array()
            .expect("enum")
            .contains(&Value::from("screening_review"))
    );
    assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());
}

fn pascal(name: &str) -> String {
    name.split('-')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn document() -> Value {
    serde_json::from_str(&generated()).expect("JSON")
}

/// Every operation object with its method and path.
fn each_operation(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            ops.push((method.clone(), path.clone(), op.clone()));
        }
    }
    ops
}

fn has_japanese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c as u32, 0x3040..=0x30FF | 0x4E00..=0x9FFF))
}

/// A vendor reads /docs in Japanese: every operation has a one-line summary and a description,
/// and every parameter, answer and answer header is described in Japanese (then English).
#[test]
fn every_operation_is_described_japanese_first() {
    let doc = document();
    let mut missing = Vec::new();
    for (method, path, op) in each_operation(&doc) {
        let at = format!("{} {path}", method.to_uppercase());
        let summary = op["summary"].as_str().unwrap_or_default();
        if summary.contains('\n') || !has_japanese(summary) || summary.len() > 120 {
            missing.push(format!("{at}: summary {summary:?}"));
        }
        let description = op["description"].as_str().unwrap_or_default();
        if !has_japanese(description) || !description.chars().any(|c| c.is_ascii_alphabetic()) {
            missing.push(format!("{at}: description"));
        }
        for parameter in op["parameters"].as_array().into_iter().flatten() {
            if !has_japanese(parameter["description"].as_str().unwrap_or_default()) {
                missing.push(format!("{at}: parameter {}", parameter["name"]));
            }
        }
        let responses = op["responses"].as_object().expect("responses");
        if !responses.keys().any(|status| status.starts_with('4')) {
            missing.push(format!("{at}: no 4xx answer"));
        }
        for (status, response) in responses {
            if !has_japanese(response["description"].as_str().unwrap_or_default()) {
                missing.push(format!("{at}: answer {status}"));
            }
            for (name, header) in response["headers"].as_object().into_iter().flatten() {
                if !has_japanese(header["description"].as_str().unwrap_or_default()) {
                    missing.push(format!("{at}: answer {status} header {name}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add the Japanese to src/api/openapi_text.rs (or the handler's doc comment):\n{}",
        missing.join("\n")
    );
    assert!(has_japanese(doc["info"]["description"].as_str().unwrap()));
    assert_eq!(doc["info"]["license"]["identifier"], "Apache-2.0");
    assert!(doc["info"]["contact"]["url"].is_string());
    assert!(!doc["servers"].as_array().expect("servers").is_empty());
}

/// Resolve a `#/components/...` reference.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference}")),
        None => schema,
    }
}

/// Every request body has an example, and every JSON example is valid against its schema (so
/// a vendor can send it as it is; schemathesis and Redocly start from them too).
#[test]
fn every_request_body_has_a_valid_example() {
    let doc = document();
    for (method, path, op) in each_operation(&doc) {
        for (media, body) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let at = format!("{} {path} {media}", method.to_uppercase());
            let example = body
                .get("example")
                .unwrap_or_else(|| panic!("{at}: no example"));
            if media == "application/json" {
                // The components travel along, so the schema's references resolve.
                let schema = serde_json::json!({
                    "$ref": body["schema"]["$ref"].as_str().map_or_else(
                        || "#/components/schemas/__inline".to_string(),
                        str::to_string,
                    ),
                    "components": {"schemas": {
                        "__inline": body["schema"].clone(),
                    }},
                });
                let mut schema = schema;
                for (name, component) in doc["components"]["schemas"].as_object().unwrap() {
                    schema["components"]["schemas"][name] = component.clone();
                }
                let validator = jsonschema::validator_for(&schema).expect("schema compiles");
                let errors: Vec<String> = validator
                    .iter_errors(example)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{at}: {errors:?}");
            } else if let Some(pattern) = resolve(&doc, &body["schema"])["pattern"].as_str() {
                let text = example.as_str().expect("a text example");
                assert!(
                    regex::Regex::new(pattern).unwrap().is_match(text),
                    "{at}: the example does not match the pattern"
                );
            }
        }
    }
}

/// Links name operations that exist and parameters those operations have.
#[test]
fn links_lead_to_operations_and_their_parameters() {
    let doc = document();
    let ops = each_operation(&doc);
    let mut count = 0;
    for (_, _, op) in &ops {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, l)| l)
            {
                let target = ops
                    .iter()
                    .find(|(_, _, o)| o["operationId"] == link["operationId"])
                    .unwrap_or_else(|| panic!("no operation {}", link["operationId"]));
                for name in link["parameters"].as_object().unwrap().keys() {
                    assert!(
                        target.2["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == name.as_str()),
                        "{}: no parameter {name}",
                        link["operationId"]
                    );
                }
                count += 1;
            }
        }
    }
    assert!(count >= 10, "{count} links");
}

#[test]
fn committed_python_client_config_matches_the_code() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kodomo-hub"))
        .args(["openapi", "--python-client-config"])
        .output()
        .expect("run kodomo-hub openapi");
    assert!(out.status.success());
    assert!(
        committed("openapi/python-client.json") == String::from_utf8(out.stdout).unwrap(),
        "regenerate it: cargo run -q -- openapi --python-client-config > openapi/python-client.json"
    );
}

#[test]
fn docs_pages_are_served_from_the_binary() {
    let hub = Hub::start(Backend::Sqlite);
    let docs = hub.get("/docs", None);
    assert_eq!(docs.status, 200);
    assert!(docs.content_type().starts_with("text/html"));
    let page = docs.text();
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the docs page must not load anything from the internet"
    );
    // The renderer (Redoc) comes from the binary too, and the page's policy lets the browser
    // load nothing from anywhere else.
    let policy = docs
        .header("content-security-policy")
        .expect("a CSP on /docs");
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    assert!(!policy.contains("http"), "{policy}");
    for script in ["/docs/redoc.standalone.js", "/docs/redoc-init.js"] {
        assert!(page.contains(script), "{script}");
        let served = hub.get(script, None);
        assert_eq!(served.status, 200, "{script}");
        assert!(
            served.content_type().starts_with("text/javascript"),
            "{script}"
        );
    }
    assert!(
        hub.get("/docs/redoc-init.js", None)
            .text()
            .contains("Redoc.init(\"/openapi.json\"")
    );
    let licences = hub.get("/docs/licenses.txt", None);
    assert_eq!(licences.status, 200);
    assert!(licences.text().contains("MIT"));
    let dictionary = hub.get("/docs/data-dictionary", None);
    assert_eq!(dictionary.status, 200);
    let text = dictionary.text();
    for expected in [
        "産婦健診",
        "epds_total",
        "subject.<wbr>resident_no",
        "全部支給",
        "基本連携データ項目 No.17",
        "name=\"viewport\"",
        "href=\"/docs\"",
        "href=\"#postnatal-checkup\"",
        // Japanese descriptions from the schema files, English after them.
        "EPDS の合計点（0～30）。",
        "EPDS total score (0-30).",
        // 桁数 and 文字種 instead of patterns.
        "1～128桁",
        "半角英数字・記号（空白を除く）",
    ] {
        assert!(text.contains(expected), "data dictionary lacks {expected}");
    }
    assert!(
        !text.contains("^[") && !text.contains("x21"),
        "a regex is shown"
    );
    // Common columns once (in the common table), not in each record type's table.
    assert_eq!(text.matches("<code>source_record_id</code>").count(), 1);
    assert_eq!(text.matches("<code>record_type</code>").count(), 1);
    // Record types in the order of their basic item numbers (No.1 first, No.19 last of them).
    let at = |id: &str| text.find(&format!("<h2 id=\"{id}\">")).expect(id);
    assert!(at("child-protection-case") < at("temporary-protection"));
    assert!(at("temporary-protection") < at("infant-checkup"));
    assert!(at("postnatal-checkup") < at("child-rearing-allowance"));
    assert!(at("child-rearing-allowance") < at("subject"));
    // The CSV form: UTF-8 with BOM, one row per column, common items first.
    let csv = hub.get("/docs/data-dictionary.csv", None);
    assert_eq!(csv.status, 200);
    assert!(csv.content_type().starts_with("text/csv"));
    let body = csv.text();
    assert!(
        body.starts_with("\u{feff}基本連携データ項目No,レコード種別"),
        "{}",
        &body[..80]
    );
    let mut reader = ::csv::Reader::from_reader(body.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(&rows[0][3], "record_type");
    assert_eq!(&rows[0][1], "（共通）");
    assert!(
        rows.iter()
            .any(|r| &r[1] == "postnatal-checkup" && &r[3] == "epds_total" && &r[0] == "17")
    );
    assert_eq!(
        rows.iter().filter(|r| &r[3] == "source_record_id").count(),
        1
    );
}

#[test]
fn unsupported_methods_answer_405_with_allow() {
    let hub = Hub::start(Backend::Sqlite);
    let response = hub.delete("/v1/schemas", None);
    response.problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET"));
}
