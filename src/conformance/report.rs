//! The three report files of a run: `result.json` (canonical), `junit.xml` (one testcase per
//! test id, for CI systems) and `report.html` (one self-contained page, Japanese first,
//! printable on A4, to hand to a municipality).

use std::fmt::Write as _;
use std::path::Path;

use super::{Issue, Run, Status, Verdict};

/// Write all three files into `dir` (created if needed).
pub fn write_all(run: &Run, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut json = serde_json::to_string_pretty(run).map_err(std::io::Error::other)?;
    json.push('\n');
    std::fs::write(dir.join("result.json"), json)?;
    std::fs::write(dir.join("junit.xml"), junit(run))?;
    std::fs::write(dir.join("report.html"), html(run))?;
    Ok(())
}

/// Escape text for XML and HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn location(issue: &Issue) -> String {
    let mut parts = Vec::new();
    if let Some(file) = &issue.file {
        parts.push(file.clone());
    }
    if let Some(record) = issue.record {
        parts.push(format!("record {record}"));
    }
    if let Some(row) = issue.row {
        parts.push(format!("row {row}"));
    }
    if let Some(column) = &issue.column {
        parts.push(format!("column {column}"));
    }
    if let Some(offset) = issue.offset {
        parts.push(format!("byte {offset}"));
    }
    if let Some(push) = issue.push {
        parts.push(format!("push {push}"));
    }
    if !issue.pointer.is_empty() {
        parts.push(issue.pointer.clone());
    }
    parts.join(" ")
}

pub fn junit(run: &Run) -> String {
    let count = |s: Status| run.tests.iter().filter(|t| t.status == s).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"kodomo-hub conformance {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        escape(&run.suite),
        run.tests.len(),
        count(Status::Fail),
        count(Status::Error) + count(Status::Incomplete),
        count(Status::NotApplicable),
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
        escape(&run.suite),
        run.tests.len(),
        count(Status::Fail),
        count(Status::Error) + count(Status::Incomplete),
        count(Status::NotApplicable),
        escape(&run.started_at),
    );
    for test in &run.tests {
        let _ = writeln!(
            xml,
            "    <testcase classname=\"{}.{}\" name=\"{}\">",
            escape(&run.suite),
            test.level.as_str(),
            escape(&test.id)
        );
        let details: String = test
            .issues
            .iter()
            .map(|i| format!("{} {}: {}\n", location(i), i.code, i.message_en))
            .collect();
        let reason = test.reason.clone().unwrap_or_default();
        match test.status {
            Status::Pass => {}
            Status::Fail => {
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{} issue(s): {}\">{}</failure>",
                    test.issues.len(),
                    escape(&test.requirement_en),
                    escape(&details)
                );
            }
            Status::NotApplicable => {
                let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(&reason));
            }
            Status::Incomplete | Status::Error => {
                let _ = writeln!(
                    xml,
                    "      <error type=\"{}\" message=\"{}\">{}</error>",
                    test.status.as_str(),
                    escape(&reason),
                    escape(&details)
                );
            }
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn status_label(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Pass => ("合格", "pass"),
        Status::Fail => ("不合格", "fail"),
        Status::NotApplicable => ("対象外", "not applicable"),
        Status::Incomplete => ("未検証", "incomplete"),
        Status::Error => ("ツールエラー", "error"),
    }
}

/// Issues per test listed in report.html (every issue stays in result.json and junit.xml).
const HTML_ISSUES_PER_TEST: usize = 200;

const STYLE: &str = "
@page { size: A4; margin: 15mm; }
body { font-family: 'Noto Sans CJK JP', 'Hiragino Sans', 'Yu Gothic', 'Meiryo', 'IPAexGothic', 'IPAGothic', sans-serif; margin: 2em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
.banner { padding: 0.8em 1em; font-size: 1.5em; font-weight: bold; border: 3px solid; }
.conformant { background: #e6f4ea; border-color: #1e7d32; color: #1e7d32; }
.not_conformant, .tool_error { background: #fdecea; border-color: #b71c1c; color: #b71c1c; }
.incomplete { background: #fff8e1; border-color: #a86b00; color: #a86b00; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; margin-top: 0.5em; }
th, td { border: 1px solid #999; padding: 0.25em 0.4em; text-align: left; vertical-align: top; }
th { background: #eee; }
.status-pass { color: #1e7d32; } .status-fail { color: #b71c1c; font-weight: bold; }
.status-incomplete, .status-error { color: #a86b00; font-weight: bold; } .status-not_applicable { color: #666; }
.en { color: #555; font-size: 0.9em; }
code { font-size: 0.95em; word-break: break-all; }
td.id code { white-space: nowrap; word-break: normal; }
@media print { body { margin: 0; } .banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  tr { page-break-inside: avoid; } h2 { page-break-after: avoid; } }
";

/// The run's start as a Japanese date in Japan time, with the UTC instant it was recorded as.
fn run_date(started_at: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(started_at) {
        Ok(at) => {
            let jst = at.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST"));
            format!(
                "{}（日本時間） <span class=\"en\">{}</span>",
                jst.format("%Y年%-m月%-d日 %H:%M"),
                escape(started_at)
            )
        }
        Err(_) => escape(started_at),
    }
}

pub fn html(run: &Run) -> String {
    let (banner_ja, banner_en) = match run.verdict {
        Verdict::Conformant => ("適合", "Conformant"),
        Verdict::NotConformant => ("不適合", "Not conformant"),
        Verdict::Incomplete => (
            "判定不能（未検証の試験があります）",
            "Incomplete (some tests could not be verified)",
        ),
        Verdict::ToolError => ("判定不能（ツールエラー）", "Tool error"),
    };
    let verdict_class = serde_json::to_value(run.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n<title>適合性試験報告書 — kodomo-hub conformance report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>こどもデータ連携 適合性試験報告書<br><span class=\"en\">Children's data linkage — conformance report</span></h1>\n\
         <div class=\"banner {verdict_class}\" id=\"verdict\">{} <span class=\"en\">/ {}</span></div>\n",
        banner_ja, banner_en
    );
    let count = |s: Status| run.tests.iter().filter(|t| t.status == s).count();
    page.push_str("<h2>概要 <span class=\"en\">Summary</span></h2>\n<table id=\"summary\">\n");
    if let Some(server) = &run.server {
        let name = server
            .municipality_name
            .as_deref()
            .map(|n| format!("{} ", escape(n)))
            .unwrap_or_default();
        let _ = write!(
            page,
            "<tr><th>試験対象サーバー Server under test</th><td id=\"target-server\"><code>{}</code></td></tr>\n\
             <tr><th>自治体 Municipality</th><td id=\"target-municipality\">{name}（全国地方公共団体コード <code>{}</code>）</td></tr>\n\
             <tr><th>送信したレコード種別 Record type pushed</th><td><code>{}</code></td></tr>\n",
            escape(&server.base_url),
            escape(&server.municipality),
            escape(&server.record_type),
        );
    } else if let Some(target) = &run.target {
        let _ = writeln!(
            page,
            "<tr><th>試験対象 Target</th><td id=\"target-server\">{}</td></tr>",
            escape(target)
        );
    }
    let _ = write!(
        page,
        "<tr><th>実施日 Date</th><td id=\"run-date\">{}</td></tr>\n\
         <tr><th>試験群 Suite</th><td>{}</td></tr>\n\
         <tr><th>試験スイートのバージョン Suite version</th><td id=\"suite-version\">{}</td></tr>\n\
         <tr><th>ツール Tool</th><td id=\"tool-version\">{} {}</td></tr>\n\
         <tr><th>スキーマバージョン Schema version</th><td>{}</td></tr>\n\
         <tr><th>申告機能 Declared features</th><td>{}</td></tr>\n\
         <tr><th>結果 Results</th><td>合格 pass {} ・ 不合格 fail {} ・ 未検証 incomplete {} ・ 対象外 not applicable {} ・ エラー error {}</td></tr>\n</table>\n",
        run_date(&run.started_at),
        escape(&run.suite),
        escape(&run.suite_version),
        escape(&run.tool),
        escape(&run.tool_version),
        escape(&run.schema_version),
        escape(&run.declared_features.join(", ")),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Incomplete),
        count(Status::NotApplicable),
        count(Status::Error),
    );
    page.push_str("<h2>入力 <span class=\"en\">Inputs (SHA-256)</span></h2>\n<table>\n<tr><th>名前 Name</th><th>バイト Bytes</th><th>SHA-256</th></tr>\n");
    for input in &run.inputs {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&input.name),
            input.bytes,
            escape(&input.sha256)
        );
    }
    page.push_str("</table>\n<h2>試験結果 <span class=\"en\">Tests</span></h2>\n<table>\n<tr><th>ID</th><th>水準 Level</th><th>要件 Requirement</th><th>結果 Status</th><th>指摘 Issues</th></tr>\n");
    for test in &run.tests {
        let (ja, en) = status_label(test.status);
        let reason = test
            .reason
            .as_ref()
            .map(|r| format!("<br><span class=\"en\">{}</span>", escape(r)))
            .unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr id=\"{0}\"><td class=\"id\"><code>{0}</code></td><td>{1}</td><td>{2}<br><span class=\"en\">{3}</span></td><td class=\"status-{4}\">{5} <span class=\"en\">{6}</span>{7}</td><td>{8}</td></tr>",
            escape(&test.id),
            test.level.as_str(),
            escape(&test.requirement_ja),
            escape(&test.requirement_en),
            test.status.as_str(),
            ja,
            en,
            reason,
            test.issues.len()
        );
    }
    page.push_str("</table>\n");
    // A printable page lists the first issues of each test; result.json keeps every one.
    let issues: Vec<(&str, &Issue)> = run
        .tests
        .iter()
        .flat_map(|t| {
            t.issues
                .iter()
                .take(HTML_ISSUES_PER_TEST)
                .map(move |i| (t.id.as_str(), i))
        })
        .collect();
    let omitted: Vec<String> = run
        .tests
        .iter()
        .filter(|t| t.issues.len() > HTML_ISSUES_PER_TEST)
        .map(|t| format!("{} +{}", t.id, t.issues.len() - HTML_ISSUES_PER_TEST))
        .collect();
    if !issues.is_empty() {
        page.push_str("<h2>指摘事項 <span class=\"en\">Issues</span></h2>\n<table>\n<tr><th>ID</th><th>ファイル File</th><th>行 Row</th><th>列 Column</th><th>ポインタ Pointer</th><th>コード Code</th><th>内容 Message</th></tr>\n");
        for (id, issue) in issues {
            let _ = writeln!(
                page,
                "<tr><td class=\"id\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}<br><span class=\"en\">{}</span></td></tr>",
                escape(id),
                escape(issue.file.as_deref().unwrap_or("")),
                issue
                    .row
                    .map(|r| r.to_string())
                    .or(issue.record.map(|r| format!("record {r}")))
                    .or(issue.offset.map(|o| format!("byte {o}")))
                    .or(issue.push.map(|p| format!("送信 push {p}")))
                    .unwrap_or_default(),
                escape(issue.column.as_deref().unwrap_or("")),
                escape(&issue.pointer),
                escape(&issue.code),
                escape(&issue.message_ja),
                escape(&issue.message_en),
            );
        }
        page.push_str("</table>\n");
        if !omitted.is_empty() {
            let _ = writeln!(
                page,
                "<p>ほかの指摘は result.json を参照してください（{0}）。<span class=\"en\">More issues are in result.json ({0}).</span></p>",
                escape(&omitted.join(", "))
            );
        }
    }
    page.push_str("<p class=\"en\">判定基準：範囲内のSHALL試験がすべて合格し、未検証の試験がない場合に適合。 Conformant only if every in-scope SHALL test passed and nothing is left unverified. この報告書は入力値を含みません（位置とコードのみ）。 This report holds no input values, only locations and codes.</p>\n</body>\n</html>\n");
    page
}
