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
    for entry in std::fs::read_dir(dir).expect("schema dir") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let component = &schemas[format!("v1.record.{name}")];
        assert_eq!(component["title"], file["title"], "{name}");
        assert_eq!(component["required"], file["required"], "{name}");
        assert_eq!(component["x-basic-item"], file["x-basic-item"], "{name}");
        assert_eq!(
            component["properties"].as_object().map(|p| p.len()),
            file["properties"].as_object().map(|p| p.len()),
            "{name}"
        );
        assert!(
            schemas["Record"]["oneOf"]
                .as_array()
                .expect("Record.oneOf")
                .iter()
                .any(|r| r["$ref"] == format!("#/components/schemas/v1.record.{name}")),
            "{name} missing from Record"
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
    assert!(
        x_purpose["schema"]["enum"]
            .as_array()
            .expect("enum")
            .contains(&Value::from("screening_review"))
    );
    assert!(doc["components"]["securitySchemes"]["bearerAuth"].is_object());
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
    let dictionary = hub.get("/docs/data-dictionary", None);
    assert_eq!(dictionary.status, 200);
    let text = dictionary.text();
    for expected in [
        "産婦健診",
        "epds_total",
        "subject.resident_no",
        "全部支給",
        "基本連携データ項目 No.: 17",
    ] {
        assert!(text.contains(expected), "data dictionary lacks {expected}");
    }
}

#[test]
fn unsupported_methods_answer_405_with_allow() {
    let hub = Hub::start(Backend::Sqlite);
    let response = hub.delete("/v1/schemas", None);
    response.problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET"));
}
