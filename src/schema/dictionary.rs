//! The data dictionary (データ項目定義書), generated from the schema files: the common items
//! once, then every record type in the order of the guideline's basic item numbers (基本連携
//! データ項目 No.), each column with its Japanese name, whether it is required, its type, 桁数
//! (length or range) and 文字種 (characters) — read from the schema's rules, never a regex — its
//! codes and its description in Japanese (English below). As an HTML page (table of contents,
//! links, usable at phone width, printable) and as CSV for procurement documents (仕様書の別紙).

use std::fmt::Write;

use serde_json::Value;

use super::SchemaVersion;
use super::csv_layout::{CellKind, Column};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One row of the dictionary.
pub struct Entry {
    /// CSV header name (dotted path).
    pub column: String,
    pub name: String,
    pub required: bool,
    pub kind: &'static str,
    /// 桁数: length, digits or range.
    pub length: String,
    /// 文字種 and form.
    pub characters: String,
    pub codes: String,
    pub description: String,
    pub description_en: String,
}

/// A record type with its basic item numbers and the rows that are its own.
pub struct Section<'a> {
    pub record_type: &'a str,
    pub title: &'a str,
    pub items: Vec<u64>,
    pub description: &'a str,
    pub description_en: &'a str,
    pub entries: Vec<Entry>,
}

/// The characters a simple character class allows, in words (`0-9A-Za-z-` → 半角英数字・ハイフン).
fn class_in_words(class: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut rest = class;
    let take = |rest: &mut &str, prefix: &str| {
        if let Some(after) = rest.strip_prefix(prefix) {
            *rest = after;
            true
        } else {
            false
        }
    };
    while !rest.is_empty() {
        if take(&mut rest, "\\x21-\\x7E") || take(&mut rest, "!-~") {
            parts.push("半角英数字・記号（空白を除く）");
        } else if take(&mut rest, "0-9") {
            parts.push("半角数字");
        } else if take(&mut rest, "A-Za-z") {
            parts.push("半角英字");
        } else if take(&mut rest, "A-Z") {
            parts.push("半角英大文字");
        } else if take(&mut rest, "a-z") {
            parts.push("半角英小文字");
        } else if take(&mut rest, "-") || take(&mut rest, "\\-") {
            parts.push("ハイフン");
        } else {
            return None;
        }
    }
    let mut text = parts.join("・");
    if text.contains("半角数字・半角英字") {
        text = text.replace("半角数字・半角英字", "半角英数字");
    }
    Some(text)
}

/// Least and (if bounded) most characters.
type Length = (u64, Option<u64>);

/// `^[class]{m,n}$`, `^[class]{n}$` or `^[class]+$`: the characters and the length.
fn simple_pattern(pattern: &str) -> Option<(String, Option<Length>)> {
    let body = pattern.strip_prefix("^[")?.strip_suffix('$')?;
    let (class, quantifier) = body.split_once(']')?;
    let words = class_in_words(class)?;
    let length = match quantifier {
        "+" => None,
        q => {
            let inner = q.strip_prefix('{')?.strip_suffix('}')?;
            match inner.split_once(',') {
                Some((low, high)) => Some((low.parse().ok()?, Some(high.parse().ok()?))),
                None => {
                    let n = inner.parse().ok()?;
                    Some((n, Some(n)))
                }
            }
        }
    };
    Some((words, length))
}

fn range(low: Option<u64>, high: Option<u64>, unit: &str) -> String {
    match (low, high) {
        (Some(low), Some(high)) if low == high => format!("{high}{unit}"),
        (Some(low), Some(high)) if low > 1 || unit == "桁" => format!("{low}～{high}{unit}"),
        (_, Some(high)) => format!("最大{high}{unit}"),
        (Some(low), None) if low > 0 => format!("{low}{unit}以上"),
        _ => String::new(),
    }
}

fn number(value: Option<&Value>) -> Option<String> {
    value.map(|v| match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        _ => v.to_string(),
    })
}

/// Type, 桁数 and 文字種 of a field, in words.
fn shape(column: &Column) -> (&'static str, String, String) {
    let schema = &column.schema;
    let u = |key: &str| schema.get(key).and_then(Value::as_u64);
    match column.kind {
        CellKind::Integer | CellKind::Number => {
            let kind = if column.kind == CellKind::Integer {
                "整数"
            } else {
                "数値"
            };
            let low = number(schema.get("minimum"));
            let high = number(schema.get("maximum"));
            let above = number(schema.get("exclusiveMinimum"));
            let below = number(schema.get("exclusiveMaximum"));
            let from = low
                .clone()
                .or_else(|| above.as_ref().map(|a| format!("{a}超")));
            let to = high.or_else(|| below.map(|b| format!("{b}未満")));
            let length = match (from, to) {
                (Some(from), Some(to)) => format!("{from}～{to}"),
                (Some(from), None) => format!("{from}以上"),
                (None, Some(to)) => format!("{to}以下"),
                (None, None) => String::new(),
            };
            let negative = [schema.get("minimum"), schema.get("exclusiveMinimum")]
                .iter()
                .flatten()
                .all(|bound| bound.as_f64().is_some_and(|b| b < 0.0));
            let characters = if schema.get("enum").is_some() {
                "コード（半角数字）"
            } else {
                match (column.kind == CellKind::Integer, negative) {
                    (true, false) => "半角数字",
                    (true, true) => "半角数字（負の数は先頭に -）",
                    (false, false) => "半角数字・小数点",
                    (false, true) => "半角数字・小数点（負の数は先頭に -）",
                }
            };
            (kind, length, characters.into())
        }
        CellKind::Boolean => (
            "真偽値",
            String::new(),
            "true / false（CSV では 1 / 0 も可）".into(),
        ),
        CellKind::List => (
            "コードの並び",
            range(
                schema.get("minItems").and_then(Value::as_u64),
                schema.get("maxItems").and_then(Value::as_u64),
                "件",
            ),
            "コード（CSV では ; 区切り）".into(),
        ),
        CellKind::String => {
            if let Some(form) = schema.get("x-format-ja").and_then(Value::as_str) {
                let length = range(u("minLength"), u("maxLength"), "桁");
                return ("文字列", length, form.to_string());
            }
            match schema.get("format").and_then(Value::as_str) {
                Some("past-date" | "date") => {
                    return (
                        "日付",
                        "10桁".into(),
                        "YYYY-MM-DD（半角。未来の日付は不可）".into(),
                    );
                }
                Some("municipality-code") => {
                    return ("文字列", "6桁".into(), "半角数字（末尾は検査数字）".into());
                }
                _ => {}
            }
            if schema.get("enum").is_some() {
                return ("コード", String::new(), "コード表のいずれか".into());
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                if let Some((characters, length)) = simple_pattern(pattern) {
                    let (low, high) = match length {
                        Some((low, high)) => (Some(low), high),
                        None => (u("minLength"), u("maxLength")),
                    };
                    return (
                        "文字列",
                        range(low, high.or(u("maxLength")), "桁"),
                        characters,
                    );
                }
                return (
                    "文字列",
                    range(u("minLength"), u("maxLength"), "桁"),
                    format!("形式 {pattern}"),
                );
            }
            (
                "文字列",
                range(u("minLength"), u("maxLength"), "文字"),
                "制限なし（全角・半角）".into(),
            )
        }
    }
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
                .join("、")
        })
        .unwrap_or_default()
}

fn text<'a>(schema: &'a Value, key: &str) -> &'a str {
    schema.get(key).and_then(Value::as_str).unwrap_or("")
}

fn entry(column: &Column) -> Entry {
    let (kind, length, characters) = shape(column);
    // A list's own text, or else its items'.
    let target = column.schema.get("items").unwrap_or(&column.schema);
    let either = |key: &str| {
        let own = text(&column.schema, key);
        if own.is_empty() {
            text(target, key)
        } else {
            own
        }
        .to_string()
    };
    Entry {
        column: column.name.clone(),
        name: column.title.clone().unwrap_or_default(),
        required: column.required,
        kind,
        length,
        characters,
        codes: codes_of(&column.schema),
        description: either("description"),
        description_en: either("x-description-en"),
    }
}

/// The envelope's columns: the same in every record type, listed once. `record_type` first —
/// a CSV header starts with it (or the file leaves it out and the request names the type).
pub fn common_entries(version: &SchemaVersion) -> Vec<Entry> {
    let envelope = &version.common["$defs"]["envelope"];
    let record_type = &envelope["properties"]["record_type"];
    let mut entries = vec![Entry {
        column: "record_type".into(),
        name: text(record_type, "title").into(),
        required: true,
        kind: "コード",
        length: String::new(),
        characters: "レコード種別名（半角英小文字・ハイフン）".into(),
        codes: version
            .records
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join("、"),
        description: format!(
            "{} CSV の見出し行は record_type で始めます（1種別だけのファイルは列を省き、送信時に ?record_type= で指定できます）。",
            text(record_type, "description")
        ),
        description_en: format!(
            "{} A CSV header starts with record_type (a file of one type may leave it out and name the type with ?record_type=).",
            text(record_type, "x-description-en")
        ),
    }];
    if let Some(layout) = version.csv.values().next() {
        entries.extend(
            layout
                .columns
                .iter()
                .filter(|c| is_common(version, c))
                .map(entry),
        );
    }
    entries
}

/// Is the column one of the envelope's (present in every record type)?
fn is_common(version: &SchemaVersion, column: &Column) -> bool {
    let top = column.name.split('.').next().unwrap_or("");
    version.common["$defs"]["envelope"]["properties"]
        .get(top)
        .is_some()
}

/// Every record type with its own columns, in the order of their first basic item number;
/// record types that are no basic item (the resident register, support outcomes) come last.
pub fn sections(version: &SchemaVersion) -> Vec<Section<'_>> {
    let mut sections: Vec<Section> = version
        .records
        .iter()
        .map(|(name, doc)| Section {
            record_type: name,
            title: doc.get("title").and_then(Value::as_str).unwrap_or(name),
            items: doc
                .get("x-basic-item")
                .and_then(Value::as_array)
                .map(|i| i.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
            description: text(doc, "description"),
            description_en: text(doc, "x-description-en"),
            entries: version
                .csv
                .get(name)
                .map(|layout| {
                    layout
                        .columns
                        .iter()
                        .filter(|c| !is_common(version, c))
                        .map(entry)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    sections.sort_by_key(|s| (s.items.first().copied().unwrap_or(u64::MAX), s.record_type));
    sections
}

const STYLE: &str = "
body { font-family: 'Hiragino Sans', 'Hiragino Kaku Gothic ProN', 'Noto Sans CJK JP', 'Noto Sans JP', 'Yu Gothic', Meiryo, 'IPAexGothic', sans-serif; margin: 0 auto; padding: 1rem; max-width: 84rem; color: #1d2433; line-height: 1.6; }
a { color: #1b5fa8; }
nav.top { font-size: .9rem; margin-bottom: .5rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; border-bottom: 2px solid #20486e; padding-bottom: .2rem; margin-top: 2.5rem; }
.en { color: #555; font-size: .88em; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; background: #f3f5f8; padding: 0 .2em; overflow-wrap: anywhere; }
ol.toc { padding-left: 1.5rem; } ol.toc li { margin: .15rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccd3de; padding: .3rem .45rem; vertical-align: top; text-align: left; }
th { background: #eef2f7; }
td.required, th.required, td.kind, th.kind, td.length, th.length { white-space: nowrap; }
td.characters { min-width: 9rem; } td.codes { min-width: 8rem; } td.description { min-width: 16rem; }
td.column code { overflow-wrap: anywhere; }
.req { font-weight: bold; color: #b3261e; }
.back { font-size: .85rem; }
@media (max-width: 760px) {
  body { padding: .6rem; }
  table.items, table.items thead, table.items tbody, table.items tr, table.items td { display: block; width: auto; }
  table.items thead { display: none; }
  table.items tr { border: 1px solid #ccd3de; margin-bottom: .6rem; }
  table.items td { border: none; border-top: 1px solid #eef2f7; }
  table.items td::before { content: attr(data-label); display: block; font-size: .75rem; color: #555; }
  table.items td { white-space: normal; min-width: 0; }
  table.items td:empty { display: none; }
  td.name { font-weight: bold; background: #eef2f7; }
}
@media print { body { max-width: none; font-size: 9pt; } nav.top, .back { display: none; } tr { page-break-inside: avoid; } h2 { page-break-after: avoid; } }
";

const HEADINGS: [(&str, &str); 8] = [
    ("項目名", "name"),
    ("CSV列名 Column", "column"),
    ("必須", "required"),
    ("型", "kind"),
    ("桁数", "length"),
    ("文字種・形式", "characters"),
    ("コード値", "codes"),
    ("説明 Description", "description"),
];

fn table(page: &mut String, entries: &[Entry]) {
    page.push_str("<table class=\"items\"><thead><tr>");
    for (heading, class) in HEADINGS {
        write!(page, "<th class=\"{class}\">{heading}</th>").ok();
    }
    page.push_str("</tr></thead><tbody>");
    for e in entries {
        let cells = [
            escape(&e.name),
            // Break long dotted names after their dots only.
            format!("<code>{}</code>", escape(&e.column).replace('.', ".<wbr>")),
            if e.required {
                "<span class=\"req\">必須</span>".into()
            } else {
                "任意".into()
            },
            e.kind.into(),
            escape(&e.length),
            escape(&e.characters),
            escape(&e.codes),
            format!(
                "{}<br><span class=\"en\">{}</span>",
                escape(&e.description),
                escape(&e.description_en)
            ),
        ];
        page.push_str("<tr>");
        for ((heading, class), cell) in HEADINGS.iter().zip(cells) {
            let label = heading.split(' ').next().unwrap_or(heading);
            write!(
                page,
                "<td class=\"{class}\" data-label=\"{label}\">{cell}</td>"
            )
            .ok();
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>");
}

/// `No.3～9`, `No.12・13`; `（基本項目外）` for a record type that is no basic item.
fn items_text(items: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &item in items {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == item => *end = item,
            _ => runs.push((item, item)),
        }
    }
    if runs.is_empty() {
        return "（基本項目外）".into();
    }
    let text: Vec<String> = runs
        .iter()
        .map(|&(start, end)| match end - start {
            0 => start.to_string(),
            1 => format!("{start}・{end}"),
            _ => format!("{start}～{end}"),
        })
        .collect();
    format!("No.{}", text.join("・"))
}

/// The whole dictionary of one schema version as a self-contained HTML page.
pub fn html(version: &SchemaVersion) -> String {
    let major = version.major;
    let sections = sections(version);
    let mut page = String::new();
    write!(
        page,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>データ項目定義書（スキーマ v{major}）— kodomo-hub</title><style>{STYLE}</style></head><body>\
         <nav class=\"top\"><a href=\"/docs\">← API 仕様書 API reference</a> ・ \
         <a href=\"/docs/data-dictionary.csv\">CSV 版（仕様書の別紙用）</a> ・ <a href=\"/openapi.json\">openapi.json</a></nav>\
         <h1 id=\"top\">基本連携データ項目 データ項目定義書（スキーマ v{major}）<br><span class=\"en\">Data dictionary of the basic linkage data items (schema v{major})</span></h1>\
         <p>スキーマファイル（<code>schema/v{major}/</code>）から生成しています。ここに書かれた規則はハブが検証に使う規則そのものです。\
         列名は CSV の見出しで、JSON では同じ名前の項目（<code>subject.resident_no</code> は <code>subject</code> の中の <code>resident_no</code>）になります。\
         日付は JSON・NDJSON では西暦の <code>YYYY-MM-DD</code> だけを受け付けます。CSV の日付列は和暦（<code>令和7年4月1日</code>、<code>R07.04.01</code> など）も受け付け、西暦に変換して保存します。<br>\
         <span class=\"en\">Generated from the schema files (<code>schema/v{major}/</code>): these are the rules the hub validates with. Column names are CSV headers; in JSON the same dotted path names nested fields. \
         Dates are ISO <code>YYYY-MM-DD</code> in JSON and NDJSON; CSV date columns also accept Japanese era dates (和暦) and store them converted to ISO.</span></p>\
         <h2 id=\"toc\">目次 <span class=\"en\">Contents</span></h2><ol class=\"toc\">\
         <li><a href=\"#items\">基本連携データ項目と記録の対応</a></li>\
         <li><a href=\"#common\">共通項目（すべての記録）</a></li>"
    )
    .ok();
    for s in &sections {
        write!(
            page,
            "<li><a href=\"#{id}\">{items} {title}</a> <code>{id}</code></li>",
            id = escape(s.record_type),
            items = items_text(&s.items),
            title = escape(s.title),
        )
        .ok();
    }
    page.push_str("</ol>");
    // Basic item number → what it is and the record type that carries it.
    page.push_str(
        "<h2 id=\"items\">基本連携データ項目と記録の対応 <span class=\"en\">Basic items and their record types</span></h2>\
         <table><thead><tr><th>No.</th><th>基本連携データ項目</th><th>記録 Record type</th></tr></thead><tbody>",
    );
    for rule in &version.applicability.rules {
        let title = version
            .records
            .get(&rule.record_type)
            .and_then(|d| d.get("title"))
            .and_then(Value::as_str)
            .unwrap_or(&rule.record_type);
        write!(
            page,
            "<tr><td>{}</td><td>{}</td><td><a href=\"#{}\">{}</a></td></tr>",
            rule.item,
            escape(&rule.title),
            escape(&rule.record_type),
            escape(title)
        )
        .ok();
    }
    page.push_str("</tbody></table>");
    let envelope = &version.common["$defs"]["envelope"];
    write!(
        page,
        "<h2 id=\"common\">共通項目（すべての記録） <span class=\"en\">Common items (every record)</span></h2>\
         <p>{}<br><span class=\"en\">{}</span></p>\
         <p>対象者（<code>subject.*</code>）は宛名番号、または宛名番号がないときは基本4情報（氏名・生年月日・性別）のどちらかが必須です。\
         <span class=\"en\">The subject needs a resident number or, without one, the basic four attributes.</span></p>",
        escape(text(envelope, "description")),
        escape(text(envelope, "x-description-en")),
    )
    .ok();
    table(&mut page, &common_entries(version));
    for s in &sections {
        write!(
            page,
            "<h2 id=\"{id}\">{title} <code>{id}</code></h2>\
             <p>基本連携データ項目 {items}</p><p>{description}<br><span class=\"en\">{en}</span></p>\
             <p class=\"en\">共通項目（<a href=\"#common\">上記</a>）に加えて、次の項目があります。 Besides the common items:</p>",
            id = escape(s.record_type),
            title = escape(s.title),
            items = items_text(&s.items),
            description = escape(s.description),
            en = escape(s.description_en),
        )
        .ok();
        table(&mut page, &s.entries);
        page.push_str("<p class=\"back\"><a href=\"#toc\">↑ 目次へ</a></p>");
    }
    page.push_str("</body></html>");
    page
}

/// The dictionary as CSV (UTF-8 with BOM, so spreadsheets read the Japanese): one row per
/// column, the common items first (レコード種別 `（共通）`), then the record types in the order
/// of the HTML page.
pub fn csv(version: &SchemaVersion) -> String {
    use super::csv_layout::guard_formula;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "基本連携データ項目No",
        "レコード種別",
        "レコード種別名",
        "CSV列名",
        "項目名",
        "必須",
        "型",
        "桁数",
        "文字種・形式",
        "コード値",
        "説明",
        "説明（英語）",
    ];
    writer.write_record(header).ok();
    let mut write = |items: &str, record_type: &str, title: &str, e: &Entry| {
        let row = [
            items,
            record_type,
            title,
            &e.column,
            &e.name,
            if e.required { "必須" } else { "任意" },
            e.kind,
            &e.length,
            &e.characters,
            &e.codes,
            &e.description,
            &e.description_en,
        ];
        writer
            .write_record(row.iter().map(|cell| guard_formula(cell).into_owned()))
            .ok();
    };
    for e in common_entries(version) {
        write("", "（共通）", "共通項目", &e);
    }
    for s in sections(version) {
        let items = s
            .items
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(";");
        for e in &s.entries {
            write(&items, s.record_type, s.title, e);
        }
    }
    let bytes = writer.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&bytes))
}
