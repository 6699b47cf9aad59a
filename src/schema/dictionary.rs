//! The human data dictionary (データ辞書), generated from the schema files: record types, their
//! guideline item numbers, every CSV column with its Japanese label, type, code list and
//! description.

use std::fmt::Write;

use serde_json::Value;

use super::SchemaVersion;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn type_of(schema: &Value) -> String {
    let mut text = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
        None => "string".into(),
    };
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        write!(text, " ({format})").ok();
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        write!(text, " /{pattern}/").ok();
    }
    for (keyword, symbol) in [("minimum", "≥"), ("maximum", "≤")] {
        if let Some(limit) = schema.get(keyword) {
            write!(text, " {symbol}{limit}").ok();
        }
    }
    text
}

/// `code（label）` for every code of an enumerated field (or of its items).
fn codes_of(schema: &Value) -> String {
    let target = schema.get("items").unwrap_or(schema);
    let labels = target.get("x-enum-labels");
    target
        .get("enum")
        .and_then(Value::as_array)
        .map(|codes| {
            codes
                .iter()
                .map(|code| {
                    let key = code
                        .as_str()
                        .map_or_else(|| code.to_string(), str::to_string);
                    match labels.and_then(|l| l.get(&key)).and_then(Value::as_str) {
                        Some(label) => format!("{key}（{label}）"),
                        None => key,
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The whole dictionary of one schema version as a self-contained HTML page.
pub fn html(version: &SchemaVersion) -> String {
    let mut page = String::new();
    write!(
        page,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>データ辞書 v{major}</title>\
         <style>body{{font-family:system-ui,\"Hiragino Sans\",\"Noto Sans JP\",sans-serif;margin:2rem;max-width:80rem}}\
         table{{border-collapse:collapse;width:100%;margin-bottom:2rem}}th,td{{border:1px solid #ccd;padding:.2rem .4rem;vertical-align:top}}\
         th{{background:#eef2f7}}code{{background:#f3f5f8}}</style></head><body>\
         <h1>基本連携データ項目 データ辞書 (schema v{major})</h1>\
         <p>Generated from <code>schema/v{major}/</code>, the single source of truth. Columns are the CSV header names; \
         JSON uses the same dotted paths as nested objects.</p>",
        major = version.major
    )
    .ok();
    for (name, doc) in &version.records {
        let title = doc.get("title").and_then(Value::as_str).unwrap_or(name);
        let items = doc
            .get("x-basic-item")
            .and_then(Value::as_array)
            .map(|i| {
                i.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        write!(
            page,
            "<h2 id=\"{id}\">{title} <code>{id}</code></h2><p>{description}</p><p>基本連携データ項目 No.: {items}</p>\
             <table><tr><th>CSV column</th><th>項目名</th><th>type</th><th>required</th><th>codes</th><th>description</th></tr>",
            id = escape(name),
            title = escape(title),
            description = escape(doc.get("description").and_then(Value::as_str).unwrap_or("")),
            items = if items.is_empty() { "—".into() } else { items },
        )
        .ok();
        if let Some(layout) = version.csv.get(name) {
            for column in &layout.columns {
                write!(
                    page,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&column.name),
                    escape(column.title.as_deref().unwrap_or("")),
                    escape(&type_of(&column.schema)),
                    if column.required { "yes" } else { "" },
                    escape(&codes_of(&column.schema)),
                    escape(column.schema.get("description").and_then(Value::as_str).unwrap_or("")),
                )
                .ok();
            }
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>");
    page
}
