//! `conformance server`: deterministic scenarios against any server that claims to implement
//! the hub API, through the public API only. Every run uses fresh synthetic ids, so it can be
//! repeated against the same server.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Capabilities, Input, Issue, Run, Status, TestResult, catalog, vectors};
use crate::schema::SchemaVersion;

/// Where and as whom to run.
pub struct Target {
    pub base_url: String,
    /// A `source` token of the municipality.
    pub token: String,
    /// A token that may read the change feed (`caseworker`); the source token if absent.
    pub reader_token: Option<String>,
    pub municipality: String,
    /// The municipality's name, for the printed report (optional).
    pub municipality_name: Option<String>,
    pub record_type: String,
    /// Trusted roots and client certificate for `https://` base URLs.
    pub tls: ureq::tls::TlsConfig,
}

/// Every certificate of a PEM file.
fn certificates(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| format!("{}: {e}", path.display()))? {
            ureq::tls::PemItem::Certificate(certificate) => certificates.push(certificate),
            _ => continue,
        }
    }
    if certificates.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certificates)
}

/// TLS for the runner: the server's certificate is checked against `ca_file` (a private CA)
/// or else the public web roots; with `client` (certificate chain and key, PEM) the runner
/// presents a client certificate for mutual TLS.
pub fn tls_config(
    ca_file: Option<&std::path::Path>,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<ureq::tls::TlsConfig, String> {
    let mut config = ureq::tls::TlsConfig::builder();
    if let Some(path) = ca_file {
        config = config.root_certs(ureq::tls::RootCerts::new_with_certs(&certificates(path)?));
    }
    if let Some((cert, key)) = client {
        let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let key = ureq::tls::PrivateKey::from_pem(&pem)
            .map_err(|e| format!("{}: no usable PEM private key: {e}", key.display()))?;
        config = config.client_cert(Some(ureq::tls::ClientCert::new_with_certs(
            &certificates(cert)?,
            key,
        )));
    }
    Ok(config.build())
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Why a scenario stopped before reaching a verdict.
enum Halt {
    /// The server's behaviour could not be observed (unreachable, a token without the needed
    /// role…): the test is `incomplete`.
    Unverified(String),
    /// The kit itself failed (e.g. it cannot build its sample record): the test is `error`.
    Tool(String),
}

type Outcome = Result<Vec<Issue>, Halt>;

const READ_HEADERS: [(&str, &str); 2] = [
    ("X-Purpose", "case_handling"),
    ("X-Actor", "conformance-kit"),
];

struct Session<'a> {
    agent: ureq::Agent,
    target: &'a Target,
    capabilities: &'a Capabilities,
    version: &'a SchemaVersion,
    /// Unique per run, so reruns against one server never collide.
    run_id: String,
    /// The synthetic child every record of this run is about.
    resident_no: String,
    counter: std::cell::Cell<u32>,
    /// Time spent honouring Retry-After, over the whole run.
    waited: std::cell::Cell<Duration>,
}

/// Retries of one request answered 429 or 503.
const RETRIES: u32 = 5;
/// Longest the kit waits for Retry-After over a run.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// The wait a 429 or 503 asks for (Retry-After in seconds; 1 s if absent or a date).
fn retry_after(response: &ureq::http::Response<ureq::Body>) -> Duration {
    let seconds = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(seconds.min(60))
}

fn issue(code: &str, en: String) -> Issue {
    Issue::explained(code, ja_for(code), en)
}

/// Japanese text of the scenario check codes.
fn ja_for(code: &str) -> &'static str {
    match code {
        "http_status" => "応答のHTTPステータスが要件と異なります。",
        "result_status" => "レコードごとの結果が要件と異なります。",
        "error_location" => "エラーのJSONポインタまたはコードが要件と異なります。",
        "stored" => {
            "保存されるべきでないレコードが保存されました、または保存されるべきレコードがありません。"
        }
        "replay" => "Idempotency-Key による再送で最初の応答が返りませんでした。",
        "history" => "履歴が要件どおりではありません。",
        "change_feed" => "変更フィードが要件どおりではありません。",
        "problem_shape" => "エラー応答が RFC 9457 の problem details の形ではありません。",
        "precondition" => "If-Match / If-None-Match の条件が守られませんでした。",
        _ => "要件を満たしていません。",
    }
}

impl<'a> Session<'a> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.base_url.trim_end_matches('/'))
    }

    fn records_path(&self, query: &str) -> String {
        format!(
            "/v1/municipalities/{}/records{query}",
            self.target.municipality
        )
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, Halt> {
        let url = self.url(path);
        let (content_type, bytes) = body.unwrap_or(("", Vec::new()));
        let request = || {
            let mut builder = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(token) = token {
                builder = builder.header("Authorization", format!("Bearer {token}"));
            }
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            if !content_type.is_empty() {
                builder = builder.header("Content-Type", content_type);
            }
            builder
                .body(bytes.as_slice())
                .map_err(|e| Halt::Tool(format!("cannot build a request to {url}: {e}")))
        };
        // A server that is busy (429) or briefly unavailable (503) is waited for as its
        // Retry-After asks, a few times; if it stays so, the test is unverified — never failed.
        let mut waited = 0;
        let mut response = loop {
            let response = self
                .agent
                .run(request()?)
                .map_err(|e| Halt::Unverified(format!("{method} {path}: {e}")))?;
            let status = response.status().as_u16();
            if status != 429 && status != 503 {
                break response;
            }
            let wait = retry_after(&response);
            if waited >= RETRIES || self.waited.get() + wait > MAX_WAIT {
                return Err(Halt::Unverified(format!(
                    "{method} {path}: the server answered {status} ({}) after {waited} retries; run the kit again when it is less busy",
                    if status == 429 {
                        "too many requests"
                    } else {
                        "unavailable"
                    }
                )));
            }
            self.waited.set(self.waited.get() + wait);
            std::thread::sleep(wait);
            waited += 1;
        };
        let content_type = response
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| Halt::Unverified(format!("{method} {path}: reading the answer: {e}")))?;
        let answer = Answer {
            status: response.status().as_u16(),
            content_type,
            body,
        };
        // Every record the kit sends is of the target type: a refusal of the type is the
        // token's, not the server's.
        if method == "POST" || method == "PUT" {
            not_allowed_type(&answer, &self.target.record_type)?;
        }
        Ok(answer)
    }

    fn token(&self) -> Option<&str> {
        Some(&self.target.token)
    }

    fn reader(&self) -> Option<&str> {
        Some(
            self.target
                .reader_token
                .as_deref()
                .unwrap_or(&self.target.token),
        )
    }

    /// A fresh synthetic id for this run.
    fn id(&self, what: &str) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("{}-{what}-{n}", self.run_id)
    }

    /// A valid synthetic record with id `id`.
    fn record(&self, id: &str) -> Result<Value, Halt> {
        let mut record =
            vectors::sample_record(self.version, &self.target.record_type).map_err(Halt::Tool)?;
        record["source_record_id"] = json!(id);
        record["subject"] = json!({ "resident_no": self.resident_no });
        Ok(record)
    }

    /// A record missing a field its type requires; returns it and the field's pointer.
    fn invalid_record(&self, id: &str) -> Result<(Value, String), Halt> {
        let mut record = self.record(id)?;
        let field = vectors::own_required_fields(self.version, &self.target.record_type)
            .into_iter()
            .next()
            .unwrap_or_else(|| "effective_date".into());
        record.as_object_mut().expect("object").remove(&field);
        Ok((record, format!("/{field}")))
    }

    fn push(
        &self,
        query: &str,
        records: &[Value],
        headers: &[(&str, &str)],
    ) -> Result<Answer, Halt> {
        let body = serde_json::to_vec(&json!({ "records": records })).expect("serialises");
        let answer = self.send(
            "POST",
            &self.records_path(query),
            self.token(),
            headers,
            Some(("application/json", body)),
        )?;
        refused_token(&answer, "the source token")?;
        Ok(answer)
    }

    fn history(&self, id: &str) -> Result<Answer, Halt> {
        let path = format!(
            "/v1/municipalities/{}/records/{id}/history",
            self.target.municipality
        );
        let answer = self.send("GET", &path, self.token(), &READ_HEADERS, None)?;
        refused_token(&answer, "the source token (reading a record's history)")?;
        Ok(answer)
    }

    /// Every change after `after`, following cursors (bounded).
    fn changes_after(&self, after: i64) -> Result<(Vec<Value>, i64, Vec<Issue>), Halt> {
        let (mut cursor, mut all, mut issues) = (after, Vec::new(), Vec::new());
        for _ in 0..10_000 {
            let path = format!(
                "/v1/municipalities/{}/changes?after={cursor}&limit=500",
                self.target.municipality
            );
            let answer = self.send("GET", &path, self.reader(), &READ_HEADERS, None)?;
            if answer.status == 401 {
                return Err(Halt::Unverified(
                    "the change feed answered 401: the server does not accept the reader token \
                     (unknown, revoked or expired); check --reader-token-env"
                        .into(),
                ));
            }
            if answer.status == 403 || answer.status == 404 {
                return Err(Halt::Unverified(format!(
                    "the change feed answered {}; give a token with the caseworker role (--reader-token-env)",
                    answer.status
                )));
            }
            if answer.status != 200 {
                issues.push(issue(
                    "http_status",
                    format!("GET changes answered {}, expected 200", answer.status),
                ));
                return Ok((all, cursor, issues));
            }
            let page = answer.json();
            let changes = page["changes"].as_array().cloned().unwrap_or_default();
            let next = page["next_cursor"].as_i64().unwrap_or(cursor);
            if changes.is_empty() {
                if next != cursor {
                    issues.push(issue(
                        "change_feed",
                        "an empty page moved the cursor".into(),
                    ));
                }
                return Ok((all, cursor, issues));
            }
            let mut previous = cursor;
            for change in &changes {
                let seq = change["seq"].as_i64().unwrap_or(i64::MIN);
                if seq <= previous {
                    issues.push(issue(
                        "change_feed",
                        format!("sequence {seq} after {previous} is not increasing"),
                    ));
                }
                previous = seq;
            }
            if next != previous {
                issues.push(issue(
                    "change_feed",
                    format!("next_cursor {next} is not the last sequence {previous}"),
                ));
            }
            if next <= cursor {
                issues.push(issue("change_feed", "the cursor did not advance".into()));
                return Ok((all, cursor, issues));
            }
            all.extend(changes);
            cursor = next;
        }
        Err(Halt::Unverified(
            "the change feed did not end after 10,000 pages".into(),
        ))
    }
}

/// A 401 or 403 to a request made with one of the kit's tokens: the token is unknown or lacks
/// a role, which says nothing about the server's conformance — the test is unverified.
fn refused_token(answer: &Answer, which: &str) -> Result<(), Halt> {
    match answer.status {
        401 => Err(Halt::Unverified(format!(
            "the server does not accept {which} (401 Unauthorized): it is unknown, revoked or \
             expired; check the environment variable named by --token-env"
        ))),
        403 => Err(Halt::Unverified(format!(
            "the server refuses {which} (403 Forbidden): it lacks the role the scenario needs \
             (a `source` token of the municipality for pushes, `caseworker` for the change \
             feed), or belongs to another municipality"
        ))),
        _ => Ok(()),
    }
}

/// A valid record rejected only because the token may not push its record type: in a push's
/// per-record results (200), or in the problem refusing a single-record put (422).
fn not_allowed_type(answer: &Answer, record_type: &str) -> Result<(), Halt> {
    if answer.status != 200 && answer.status != 422 {
        return Ok(());
    }
    let body = answer.json();
    let per_record = body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["errors"].as_array().into_iter().flatten());
    let refused = per_record
        .chain(body["errors"].as_array().into_iter().flatten())
        .any(|e| e["code"] == "record_type_not_allowed");
    if refused {
        return Err(Halt::Unverified(format!(
            "the source token may not push {record_type} records (record_type_not_allowed); \
             pass --record-type with a type it may push, or a token allowed to push {record_type}"
        )));
    }
    Ok(())
}

/// Check `answer` is an RFC 9457 problem with `status`.
fn problem_issues(answer: &Answer, status: u16, context: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    if answer.status != status {
        issues.push(issue(
            "http_status",
            format!("{context}: answered {}, expected {status}", answer.status),
        ));
    }
    if !answer.content_type.starts_with("application/problem+json") {
        issues.push(issue(
            "problem_shape",
            format!(
                "{context}: Content-Type {:?}, expected application/problem+json",
                answer.content_type
            ),
        ));
    }
    let body = answer.json();
    for field in ["type", "title", "detail", "code"] {
        if !body[field].is_string() {
            issues.push(issue(
                "problem_shape",
                format!("{context}: member {field:?} missing or not a string"),
            ));
        }
    }
    if body["status"].as_u64() != Some(u64::from(answer.status)) {
        issues.push(issue(
            "problem_shape",
            format!("{context}: member \"status\" does not repeat the HTTP status"),
        ));
    }
    for error in body["errors"].as_array().into_iter().flatten() {
        if !(error["pointer"].is_string() && error["code"].is_string()) {
            issues.push(issue(
                "problem_shape",
                format!("{context}: an entry of \"errors\" lacks pointer or code"),
            ));
        }
    }
    issues
}

fn result_status(report: &Value, index: usize) -> String {
    report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["index"].as_u64() == Some(index as u64)))
        .and_then(|r| r["status"].as_str())
        .unwrap_or("(none)")
        .to_string()
}

fn expect_status(issues: &mut Vec<Issue>, answer: &Answer, status: u16, context: &str) -> bool {
    if answer.status != status {
        issues.push(issue(
            "http_status",
            format!("{context}: answered {}, expected {status}", answer.status),
        ));
        return false;
    }
    true
}

fn expect_result(
    issues: &mut Vec<Issue>,
    report: &Value,
    index: usize,
    wanted: &str,
    context: &str,
) {
    let got = result_status(report, index);
    if got != wanted {
        issues.push(issue(
            "result_status",
            format!("{context}: record {index} is {got}, expected {wanted}"),
        ));
    }
}

fn expect_error(
    issues: &mut Vec<Issue>,
    report: &Value,
    index: usize,
    pointer: &str,
    code: &str,
    context: &str,
) {
    let found = report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["index"].as_u64() == Some(index as u64)))
        .and_then(|r| r["errors"].as_array())
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e["pointer"].as_str() == Some(pointer) && e["code"].as_str() == Some(code))
        });
    if !found {
        issues.push(issue(
            "error_location",
            format!("{context}: record {index} has no error {{pointer: {pointer}, code: {code}}}"),
        ));
    }
}

/// Is `id` stored (its history readable)?
fn expect_stored(
    session: &Session,
    issues: &mut Vec<Issue>,
    id: &str,
    stored: bool,
    context: &str,
) -> Result<(), Halt> {
    let answer = session.history(id)?;
    let is_stored = answer.status == 200;
    if answer.status != 200 && answer.status != 404 {
        return Err(Halt::Unverified(format!(
            "{context}: history answered {}",
            answer.status
        )));
    }
    if is_stored != stored {
        issues.push(issue(
            "stored",
            format!(
                "{context}: the record is {}stored, expected {}stored",
                if is_stored { "" } else { "not " },
                if stored { "" } else { "not " }
            ),
        ));
    }
    Ok(())
}

type Scenario = fn(&Session) -> Outcome;

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![
        ("KDL-API-001", push_valid),
        ("KDL-API-002", push_invalid),
        ("KDL-API-003", upsert),
        ("KDL-API-004", idempotency_replay),
        ("KDL-API-005", idempotency_reuse),
        ("KDL-API-006", history_kept),
        ("KDL-API-007", retraction),
        ("KDL-API-008", change_feed),
        ("KDL-API-009", problem_details),
        ("KDL-API-010", authentication),
        ("KDL-API-011", unknown_field),
        ("KDL-API-012", other_municipality),
        ("KDL-API-013", atomic),
        ("KDL-API-014", batch_limit),
        ("KDL-API-015", media_type),
        ("KDL-API-016", ndjson),
        ("KDL-API-017", csv_utf8),
        ("KDL-API-018", csv_cp932),
        ("KDL-API-019", dry_run),
        ("KDL-API-020", body_limit),
        ("KDL-API-021", line_limit),
        ("KDL-API-022", conditional_update),
    ]
}

/// Scenarios that need no accepted token (they send none, or an unknown one on purpose).
const WITHOUT_TOKEN: [&str; 1] = ["KDL-API-010"];

/// Before any scenario: does the server accept the source token as a `source` of the
/// municipality? An empty batch stores nothing; its 401 or 403 means every scenario that
/// pushes would only measure the token, so they are left unverified with this reason.
fn preflight(s: &Session) -> Result<(), String> {
    let answer = match s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/json", b"{\"records\": []}".to_vec())),
    ) {
        Ok(answer) => answer,
        Err(Halt::Unverified(why) | Halt::Tool(why)) => {
            return Err(format!("the server could not be reached: {why}"));
        }
    };
    match refused_token(&answer, "the source token") {
        Err(Halt::Unverified(why) | Halt::Tool(why)) => Err(format!(
            "preflight (an empty push to municipality {}): {why}",
            s.target.municipality
        )),
        Ok(()) => Ok(()),
    }
}

fn push_valid(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let records = [s.record(&s.id("valid"))?, s.record(&s.id("valid"))?];
    let answer = s.push("", &records, &[])?;
    if expect_status(&mut issues, &answer, 200, "push of two valid records") {
        let report = answer.json();
        for index in 0..2 {
            expect_result(
                &mut issues,
                &report,
                index,
                "created",
                "push of two valid records",
            );
        }
    }
    Ok(issues)
}

fn push_invalid(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let valid_id = s.id("mixed");
    let (invalid, pointer) = s.invalid_record(&s.id("mixed"))?;
    let answer = s.push("", &[s.record(&valid_id)?, invalid], &[])?;
    if expect_status(&mut issues, &answer, 200, "batch with one invalid record") {
        let report = answer.json();
        expect_result(
            &mut issues,
            &report,
            0,
            "created",
            "valid record of a mixed batch",
        );
        expect_result(
            &mut issues,
            &report,
            1,
            "rejected",
            "invalid record of a mixed batch",
        );
        expect_error(
            &mut issues,
            &report,
            1,
            &pointer,
            "required",
            "invalid record of a mixed batch",
        );
        expect_stored(
            s,
            &mut issues,
            &valid_id,
            true,
            "valid record of a mixed batch",
        )?;
    }
    Ok(issues)
}

fn upsert(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let mut record = s.record(&s.id("upsert"))?;
    let first = s.push("", std::slice::from_ref(&record), &[])?;
    if !expect_status(&mut issues, &first, 200, "first push") {
        return Ok(issues);
    }
    let again = s.push("", std::slice::from_ref(&record), &[])?;
    if expect_status(&mut issues, &again, 200, "identical re-push") {
        expect_result(
            &mut issues,
            &again.json(),
            0,
            "unchanged",
            "identical re-push",
        );
    }
    record["effective_date"] = json!("2021-04-02");
    let changed = s.push("", &[record], &[])?;
    if expect_status(&mut issues, &changed, 200, "changed re-push") {
        let report = changed.json();
        expect_result(&mut issues, &report, 0, "updated", "changed re-push");
        if report["results"][0]["version"].as_i64() != Some(2) {
            issues.push(issue(
                "result_status",
                "changed re-push: version is not 2".into(),
            ));
        }
    }
    Ok(issues)
}

fn idempotency_replay(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("idem");
    let key = s.id("key");
    let records = [s.record(&id)?];
    let first = s.push("", &records, &[("Idempotency-Key", &key)])?;
    let second = s.push("", &records, &[("Idempotency-Key", &key)])?;
    if expect_status(&mut issues, &first, 200, "first request with a key") {
        expect_result(
            &mut issues,
            &first.json(),
            0,
            "created",
            "first request with a key",
        );
        if second.status != first.status || second.json() != first.json() {
            issues.push(issue("replay", format!("the retried request answered {} with another body; expected the first answer again", second.status)));
        }
        let history = s.history(&id)?;
        let versions = history.json()["versions"].as_array().map_or(0, Vec::len);
        if versions != 1 {
            issues.push(issue(
                "stored",
                format!("the retried request left {versions} versions, expected 1"),
            ));
        }
    }
    Ok(issues)
}

fn idempotency_reuse(s: &Session) -> Outcome {
    let key = s.id("key");
    let first = s.push(
        "",
        &[s.record(&s.id("reuse"))?],
        &[("Idempotency-Key", &key)],
    )?;
    if first.status != 200 {
        return Err(Halt::Unverified(format!(
            "the first request with the key answered {}",
            first.status
        )));
    }
    let other = s.push(
        "",
        &[s.record(&s.id("reuse"))?],
        &[("Idempotency-Key", &key)],
    )?;
    Ok(problem_issues(
        &other,
        422,
        "the key reused with another body",
    ))
}

fn history_kept(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("history");
    let mut record = s.record(&id)?;
    let original = record["effective_date"].clone();
    s.push("", std::slice::from_ref(&record), &[])?;
    record["effective_date"] = json!("2021-04-02");
    s.push("", &[record], &[])?;
    let answer = s.history(&id)?;
    if !expect_status(&mut issues, &answer, 200, "history") {
        return Ok(issues);
    }
    let versions = answer.json()["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let numbers: Vec<i64> = versions
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    if numbers != [1, 2] {
        issues.push(issue(
            "history",
            format!("versions {numbers:?}, expected [1, 2] oldest first"),
        ));
    } else if versions[0]["record"]["effective_date"] != original
        || versions[1]["record"]["effective_date"] != json!("2021-04-02")
    {
        issues.push(issue(
            "history",
            "the versions do not hold the record as it was then".into(),
        ));
    }
    Ok(issues)
}

fn retraction(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("retract");
    let (_, start, _) = s.changes_after(0)?;
    if s.push("", &[s.record(&id)?], &[])?.status != 200 {
        return Err(Halt::Unverified(
            "the record to retract could not be pushed".into(),
        ));
    }
    let path = format!("/v1/municipalities/{}/records/{id}", s.target.municipality);
    let answer = s.send("DELETE", &path, s.token(), &[], None)?;
    if !expect_status(&mut issues, &answer, 200, "retraction") {
        return Ok(issues);
    }
    let history = s.history(&id)?.json();
    let last_retracted = history["versions"]
        .as_array()
        .and_then(|v| v.last())
        .is_some_and(|v| v["retracted"] == json!(true));
    if !last_retracted {
        issues.push(issue(
            "history",
            "the history does not end with the retraction".into(),
        ));
    }
    let (changes, _, feed_issues) = s.changes_after(start)?;
    issues.extend(feed_issues);
    if !changes
        .iter()
        .any(|c| c["source_record_id"] == json!(id) && c["retracted"] == json!(true))
    {
        issues.push(issue(
            "change_feed",
            "the retraction is not in the change feed".into(),
        ));
    }
    Ok(issues)
}

/// The entity tag the history names for the record's current version.
fn current_etag(s: &Session, id: &str) -> Result<String, Halt> {
    s.history(id)?.json()["versions"]
        .as_array()
        .and_then(|v| v.last())
        .and_then(|v| v["etag"].as_str())
        .map(str::to_string)
        .ok_or_else(|| Halt::Unverified(format!("the history of {id} names no etag")))
}

fn conditional_update(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("conditional");
    let path = format!("/v1/municipalities/{}/records/{id}", s.target.municipality);
    let put = |record: &Value, condition: (&str, &str)| {
        let body = serde_json::to_vec(record).expect("serialises");
        s.send(
            "PUT",
            &path,
            s.token(),
            &[condition],
            Some(("application/json", body)),
        )
    };
    let mut record = s.record(&id)?;
    let created = put(&record, ("If-None-Match", "*"))?;
    if !expect_status(
        &mut issues,
        &created,
        201,
        "create-only put of a new record",
    ) {
        return Ok(issues);
    }
    let again = put(&record, ("If-None-Match", "*"))?;
    expect_status(
        &mut issues,
        &again,
        412,
        "create-only put of an existing record",
    );
    let first = current_etag(s, &id)?;
    record["effective_date"] = json!("2021-04-02");
    let updated = put(&record, ("If-Match", &first))?;
    expect_status(&mut issues, &updated, 200, "put with the current If-Match");
    record["effective_date"] = json!("2021-04-03");
    let stale = put(&record, ("If-Match", &first))?;
    expect_status(&mut issues, &stale, 412, "put with a stale If-Match");
    let retract = s.send("DELETE", &path, s.token(), &[("If-Match", &first)], None)?;
    expect_status(
        &mut issues,
        &retract,
        412,
        "retraction with a stale If-Match",
    );
    let versions = s.history(&id)?.json()["versions"]
        .as_array()
        .map(|v| v.len())
        .unwrap_or_default();
    if versions != 2 {
        issues.push(issue(
            "precondition",
            format!("{versions} versions after two accepted and three refused writes, expected 2"),
        ));
    }
    Ok(issues)
}

fn change_feed(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let (_, start, first_issues) = s.changes_after(0)?;
    issues.extend(first_issues);
    let ids = [s.id("feed"), s.id("feed"), s.id("feed")];
    let records: Vec<Value> = ids
        .iter()
        .map(|id| s.record(id))
        .collect::<Result<_, _>>()?;
    if s.push("", &records, &[])?.status != 200 {
        return Err(Halt::Unverified(
            "the records for the change feed could not be pushed".into(),
        ));
    }
    // Small pages, so the cursor is followed across several of them.
    let mut cursor = start;
    let mut seen = Vec::new();
    for _ in 0..100 {
        let path = format!(
            "/v1/municipalities/{}/changes?after={cursor}&limit=1",
            s.target.municipality
        );
        let answer = s.send("GET", &path, s.reader(), &READ_HEADERS, None)?;
        if !expect_status(&mut issues, &answer, 200, "change feed page") {
            return Ok(issues);
        }
        let page = answer.json();
        let Some(change) = page["changes"].as_array().and_then(|c| c.first()).cloned() else {
            break;
        };
        let seq = change["seq"].as_i64().unwrap_or(i64::MIN);
        if seq <= cursor || page["next_cursor"].as_i64() != Some(seq) {
            issues.push(issue("change_feed", format!("page after {cursor}: sequence {seq} and next_cursor {} do not advance together", page["next_cursor"])));
            break;
        }
        seen.push(
            change["source_record_id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        cursor = seq;
    }
    let ours: Vec<&String> = seen.iter().filter(|id| ids.contains(id)).collect();
    if ours != ids.iter().collect::<Vec<_>>() {
        issues.push(issue(
            "change_feed",
            "the feed did not list the three new records once each, in commit order".into(),
        ));
    }
    Ok(issues)
}

fn problem_details(s: &Session) -> Outcome {
    let malformed = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/json", b"{\"records\": [".to_vec())),
    )?;
    let mut issues = problem_issues(&malformed, 400, "malformed JSON");
    let missing = s.history(&s.id("absent"))?;
    issues.extend(problem_issues(
        &missing,
        404,
        "history of an unknown record",
    ));
    Ok(issues)
}

fn authentication(s: &Session) -> Outcome {
    let body = || Some(("application/json", b"{\"records\": []}".to_vec()));
    let none = s.send("POST", &s.records_path(""), None, &[], body())?;
    let mut issues = problem_issues(&none, 401, "no token");
    let wrong = s.send(
        "POST",
        &s.records_path(""),
        Some("not-a-token-conformance-kit"),
        &[],
        body(),
    )?;
    issues.extend(problem_issues(&wrong, 401, "unknown token"));
    Ok(issues)
}

fn unknown_field(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("unknown");
    let mut record = s.record(&id)?;
    record["x_conformance_probe"] = json!(1);
    let answer = s.push("", &[record], &[])?;
    if expect_status(&mut issues, &answer, 200, "record with an unknown field") {
        let report = answer.json();
        expect_result(
            &mut issues,
            &report,
            0,
            "rejected",
            "record with an unknown field",
        );
        expect_error(
            &mut issues,
            &report,
            0,
            "/x_conformance_probe",
            "unknown_field",
            "record with an unknown field",
        );
        expect_stored(s, &mut issues, &id, false, "record with an unknown field")?;
    }
    Ok(issues)
}

fn other_municipality(s: &Session) -> Outcome {
    let other = if s.target.municipality == "011002" {
        "131016"
    } else {
        "011002"
    };
    let body = serde_json::to_vec(&json!({"records": [s.record(&s.id("elsewhere"))?]}))
        .expect("serialises");
    let answer = s.send(
        "POST",
        &format!("/v1/municipalities/{other}/records"),
        s.token(),
        &[],
        Some(("application/json", body)),
    )?;
    let expected = if answer.status == 404 { 404 } else { 403 };
    Ok(problem_issues(
        &answer,
        expected,
        "push into another municipality",
    ))
}

fn atomic(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let valid_id = s.id("atomic");
    let (invalid, _) = s.invalid_record(&s.id("atomic"))?;
    let answer = s.push("?atomic=true", &[s.record(&valid_id)?, invalid], &[])?;
    issues.extend(problem_issues(
        &answer,
        422,
        "atomic batch with an invalid record",
    ));
    expect_stored(
        s,
        &mut issues,
        &valid_id,
        false,
        "valid record of a rejected atomic batch",
    )?;
    Ok(issues)
}

fn batch_limit(s: &Session) -> Outcome {
    let limit = s.capabilities.max_batch_records.unwrap_or(10_000);
    let mut body = String::from("{\"records\":[");
    body.push_str(&vec!["{}"; limit + 1].join(","));
    body.push_str("]}");
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/json", body.into_bytes())),
    )?;
    // Over maxItems of the batch schema: 422 pointing at the array (413 is for bytes).
    let context = format!("batch of {} records", limit + 1);
    let mut issues = problem_issues(&answer, 422, &context);
    if answer.status == 422 && answer.json()["errors"][0]["pointer"] != "/records" {
        issues.push(issue(
            "problem_shape",
            format!("{context}: errors[0].pointer is not \"/records\""),
        ));
    }
    Ok(issues)
}

fn media_type(s: &Session) -> Outcome {
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("text/plain", b"hello".to_vec())),
    )?;
    Ok(problem_issues(&answer, 415, "Content-Type text/plain"))
}

fn ndjson(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let (invalid, pointer) = s.invalid_record(&s.id("ndjson"))?;
    let body = format!("{}\n{}\n", s.record(&s.id("ndjson"))?, invalid);
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/x-ndjson", body.into_bytes())),
    )?;
    if expect_status(&mut issues, &answer, 200, "NDJSON push") {
        let report = answer.json();
        expect_result(&mut issues, &report, 0, "created", "NDJSON line 1");
        expect_result(&mut issues, &report, 1, "rejected", "NDJSON line 2");
        expect_error(
            &mut issues,
            &report,
            1,
            &pointer,
            "required",
            "NDJSON line 2",
        );
        if report["results"][1]["row"].as_u64() != Some(2) {
            issues.push(issue(
                "error_location",
                "NDJSON line 2: the result does not name row 2".into(),
            ));
        }
    }
    Ok(issues)
}

/// `record` serialised with `extra` spaces inside its outer braces (still one valid record).
fn padded(record: &Value, extra: usize) -> String {
    let text = record.to_string();
    format!("{{{}{}", " ".repeat(extra), &text[1..])
}

fn body_limit(s: &Session) -> Outcome {
    let limit = s
        .capabilities
        .max_body_bytes
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let id = s.id("oversize");
    let record = padded(&s.record(&id)?, 0);
    // One valid record padded with whitespace to one byte over the limit: only its size is wrong.
    let frame = "{\"records\":[]}".len() + record.len();
    let body = format!(
        "{{\"records\":[{}{record}]}}",
        " ".repeat((limit + 1).saturating_sub(frame))
    );
    let context = format!("a JSON body of {} bytes", body.len());
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/json", body.into_bytes())),
    )?;
    refused_token(&answer, "the source token")?;
    let mut issues = problem_issues(&answer, 413, &context);
    if answer.status == 413 && answer.json()["code"] != "body_too_large" {
        issues.push(issue(
            "problem_shape",
            format!("{context}: code is not \"body_too_large\""),
        ));
    }
    expect_stored(s, &mut issues, &id, false, &context)?;
    Ok(issues)
}

fn line_limit(s: &Session) -> Outcome {
    let limit = s
        .capabilities
        .max_line_bytes
        .unwrap_or(DEFAULT_MAX_LINE_BYTES);
    let (before, long) = (s.id("line"), s.id("line"));
    let first = padded(&s.record(&before)?, 0);
    let record = s.record(&long)?;
    let line = padded(
        &record,
        (limit + 1).saturating_sub(record.to_string().len()),
    );
    let body = format!("{first}\n{line}\n");
    let context = format!("an NDJSON line of {} bytes", line.len());
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("application/x-ndjson", body.into_bytes())),
    )?;
    refused_token(&answer, "the source token")?;
    let mut issues = Vec::new();
    // Either the line is a rejected result (the stream goes on) or the stream ends with 413;
    // both name line_too_long, and the line before is kept either way.
    match answer.status {
        200 => {
            let report = answer.json();
            expect_result(&mut issues, &report, 1, "rejected", &context);
            expect_error(&mut issues, &report, 1, "", "line_too_long", &context);
        }
        _ => {
            issues.extend(problem_issues(&answer, 413, &context));
            if answer.status == 413 && answer.json()["code"] != "line_too_long" {
                issues.push(issue(
                    "problem_shape",
                    format!("{context}: code is not \"line_too_long\""),
                ));
            }
        }
    }
    expect_stored(
        s,
        &mut issues,
        &before,
        true,
        "the line before the long one",
    )?;
    expect_stored(s, &mut issues, &long, false, &context)?;
    Ok(issues)
}

/// Limits assumed when the capabilities file declares none (the hub's own).
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;

/// Flatten a record into the standard's CSV columns (dotted paths).
fn csv_cells(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            for (key, nested) in object {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                csv_cells(nested, &name, out);
            }
        }
        Value::String(text) => out.push((prefix.to_string(), text.clone())),
        Value::Array(items) => out.push((
            prefix.to_string(),
            items
                .iter()
                .map(|i| i.as_str().map_or(i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(";"),
        )),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// A CSV of a valid record (row 2) and one with its first required field empty (row 3).
fn csv_body(s: &Session) -> Result<(String, String), Halt> {
    let (_, pointer) = s.invalid_record("unused")?;
    let column = pointer.trim_start_matches('/').to_string();
    let mut rows = Vec::new();
    for (n, empty) in [(0, false), (1, true)] {
        let mut cells = Vec::new();
        csv_cells(&s.record(&s.id(&format!("csv{n}")))?, "", &mut cells);
        if empty {
            for cell in cells.iter_mut().filter(|(name, _)| *name == column) {
                cell.1.clear();
            }
        }
        rows.push(cells);
    }
    let quote = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut text = rows[0]
        .iter()
        .map(|(name, _)| quote(name))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for row in &rows {
        text.push_str(
            &row.iter()
                .map(|(_, value)| quote(value))
                .collect::<Vec<_>>()
                .join(","),
        );
        text.push('\n');
    }
    Ok((text, column))
}

fn check_csv_answer(answer: &Answer, column: &str, context: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    if expect_status(&mut issues, answer, 200, context) {
        let report = answer.json();
        expect_result(&mut issues, &report, 0, "created", context);
        expect_result(&mut issues, &report, 1, "rejected", context);
        let located = report["results"][1]["errors"]
            .as_array()
            .is_some_and(|errors| {
                errors
                    .iter()
                    .any(|e| e["row"].as_u64() == Some(3) && e["column"].as_str() == Some(column))
            });
        if !located {
            issues.push(issue(
                "error_location",
                format!("{context}: the rejected row has no error at row 3, column {column}"),
            ));
        }
    }
    issues
}

fn csv_utf8(s: &Session) -> Outcome {
    let (text, column) = csv_body(s)?;
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("text/csv; charset=utf-8", text.into_bytes())),
    )?;
    Ok(check_csv_answer(&answer, &column, "CSV push"))
}

fn csv_cp932(s: &Session) -> Outcome {
    let (text, column) = csv_body(s)?;
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let answer = s.send(
        "POST",
        &s.records_path(""),
        s.token(),
        &[],
        Some(("text/csv; charset=shift_jis", bytes.into_owned())),
    )?;
    Ok(check_csv_answer(&answer, &column, "CP932 CSV push"))
}

fn dry_run(s: &Session) -> Outcome {
    let mut issues = Vec::new();
    let id = s.id("dryrun");
    let body = serde_json::to_vec(&json!({"records": [s.record(&id)?]})).expect("serialises");
    let answer = s.send(
        "POST",
        "/v1/validate",
        s.token(),
        &[],
        Some(("application/json", body)),
    )?;
    if expect_status(&mut issues, &answer, 200, "dry run") {
        expect_stored(s, &mut issues, &id, false, "dry run")?;
    }
    Ok(issues)
}

/// Run every scenario against `target`.
pub fn run(
    target: &Target,
    capabilities: &Capabilities,
    inputs: Vec<Input>,
    version: &SchemaVersion,
) -> Run {
    let mut run = Run::new(
        "server",
        &version.major.to_string(),
        capabilities.features.clone(),
    );
    run.inputs = inputs;
    run.target = Some(format!(
        "{} (municipality {}, record type {})",
        target.base_url, target.municipality, target.record_type
    ));
    run.server = Some(super::ServerTarget {
        base_url: target.base_url.clone(),
        municipality: target.municipality.clone(),
        municipality_name: target.municipality_name.clone(),
        record_type: target.record_type.clone(),
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .tls_config(target.tls.clone())
        .build()
        .into();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let session = Session {
        agent,
        target,
        capabilities,
        version,
        run_id: format!("kc-{now}-{}", std::process::id()),
        // Letters keep it from ever looking like a My Number; 20 characters at most.
        resident_no: format!("KC{}", now % 1_000_000_000_000_000),
        counter: std::cell::Cell::new(0),
        waited: std::cell::Cell::new(Duration::ZERO),
    };
    let unverified = preflight(&session).err();
    let requirements = catalog::of_suite("server");
    for (id, scenario) in scenarios() {
        let requirement = requirements
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} is missing from conformance/requirements.csv"));
        let (status, reason, issues) = match &requirement.feature {
            Some(feature) if !capabilities.features.contains(feature) => (
                Status::NotApplicable,
                Some(format!(
                    "feature {feature:?} not declared in the capabilities file"
                )),
                Vec::new(),
            ),
            _ if !WITHOUT_TOKEN.contains(&id) && unverified.is_some() => {
                (Status::Incomplete, unverified.clone(), Vec::new())
            }
            _ => match scenario(&session) {
                Ok(issues) if issues.is_empty() => (Status::Pass, None, issues),
                Ok(issues) => (Status::Fail, None, issues),
                Err(Halt::Unverified(why)) => (Status::Incomplete, Some(why), Vec::new()),
                Err(Halt::Tool(why)) => (Status::Error, Some(why), Vec::new()),
            },
        };
        run.tests.push(TestResult {
            id: id.to_string(),
            level: requirement.level,
            requirement_ja: requirement.text_ja.clone(),
            requirement_en: requirement.text_en.clone(),
            status,
            reason,
            issues,
        });
    }
    run.decide();
    run
}

/// Ids of the scenarios, for the coverage check.
pub fn scenario_ids() -> Vec<&'static str> {
    scenarios().into_iter().map(|(id, _)| id).collect()
}
