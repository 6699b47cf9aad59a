//! The server suite against a live hub (both backends) — it must pass — and against
//! deliberately broken servers (a proxy in front of the hub that injects one defect each) — it
//! must catch every defect.

use crate::common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::{BIN, Backend, Hub, TOWN, describe};
use serde_json::Value;

const TOKEN_ENV: &str = "KH_CONFORMANCE_TOKEN";

fn capabilities() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance/capabilities.example.json")
        .display()
        .to_string()
}

/// Run `conformance server` against `base`; returns the process output and result.json.
fn run_suite(base: &str, token: &str, out: &Path) -> (Output, Value) {
    let run = Command::new(BIN)
        .args([
            "conformance",
            "server",
            "--base-url",
            base,
            "--token-env",
            TOKEN_ENV,
            "--municipality",
            TOWN,
        ])
        .args([
            "--capabilities",
            &capabilities(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env(TOKEN_ENV, token)
        .output()
        .expect("run the server suite");
    let result = std::fs::read_to_string(out.join("result.json"))
        .map(|text| serde_json::from_str(&text).expect("result.json"))
        .unwrap_or(Value::Null);
    (run, result)
}

fn statuses(result: &Value) -> Vec<(String, String)> {
    result["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn passes_against_the_hub(backend: Backend) {
    let hub = Hub::start(backend);
    let town = hub.town(TOWN);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (run, result) = run_suite(&hub.base, &town.token, &dir.path().join("first"));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{:?}",
        describe(&run),
        statuses(&result)
    );
    assert_eq!(result["verdict"], "conformant");
    assert!(
        statuses(&result).iter().all(|(_, s)| s == "pass"),
        "{:?}",
        statuses(&result)
    );
    println!(
        "server suite against the hub ({backend:?}): {:?}",
        started.elapsed()
    );
    // Fresh ids per run: the suite can run again against the same server.
    let (again, result) = run_suite(&hub.base, &town.token, &dir.path().join("second"));
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}\n{:?}",
        describe(&again),
        statuses(&result)
    );
    for file in ["result.json", "junit.xml", "report.html"] {
        assert!(dir.path().join("second").join(file).is_file(), "{file}");
    }
}

both_backends!(passes_against_the_hub);

/// One defect a broken server fixture injects in front of a correct hub.
#[derive(Clone, Copy, Debug)]
enum Defect {
    /// Answers every record as created: invalid records "accepted".
    AcceptsInvalidRecords,
    /// Drops fields it does not know before storing, instead of rejecting the record.
    DropsUnknownFields,
    /// Ignores Idempotency-Key.
    IgnoresIdempotencyKey,
    /// Answers errors as plain JSON without the problem-detail members.
    PlainJsonErrors,
    /// Ignores If-Match and If-None-Match: last writer wins.
    IgnoresConditions,
    /// Enforces no size limit: it compacts every large JSON body and NDJSON line (dropping the
    /// padding that made it large) before the hub sees it.
    NoSizeLimits,
    /// Not a defect: answers every fifth request 429 with Retry-After: 0 before forwarding the
    /// retry (a server under load).
    Throttles,
}

struct Proxy {
    upstream: String,
    defect: Defect,
    agent: ureq::Agent,
    requests: std::sync::atomic::AtomicUsize,
}

/// Re-serialise JSON compactly (what a server without size limits would then store).
fn compact(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let lines: Vec<String> = text
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(value) => value.to_string(),
            Err(_) => line.to_string(),
        })
        .collect();
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => serde_json::to_vec(&value).unwrap(),
        Err(_) => format!("{}\n", lines.join("\n")).into_bytes(),
    }
}

/// The fixture's answer: status, Content-Type and body.
type Answer = (u16, String, Vec<u8>);

fn forward(
    proxy: &Proxy,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Answer {
    let mut body = body;
    if let Defect::Throttles = proxy.defect
        && proxy
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            % 5
            == 4
    {
        return (
            429,
            "application/problem+json".into(),
            br#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"slow down","code":"rate_limited"}"#.to_vec(),
        );
    }
    if let Defect::NoSizeLimits = proxy.defect
        && body.len() > 512 * 1024
    {
        body = compact(&body);
    }
    if let Defect::DropsUnknownFields = proxy.defect
        && let Ok(mut batch) = serde_json::from_slice::<Value>(&body)
    {
        // `get_mut`: indexing would add a `records` member to a single record's body.
        let mut dropped = false;
        let records = batch.get_mut("records").and_then(Value::as_array_mut);
        for record in records.into_iter().flatten() {
            if let Some(object) = record.as_object_mut() {
                let before = object.len();
                object.retain(|key, _| !key.starts_with("x_"));
                dropped |= object.len() != before;
            }
        }
        if dropped {
            body = serde_json::to_vec(&batch).unwrap();
        }
    }
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", proxy.upstream));
    for (name, value) in headers {
        let dropped = match proxy.defect {
            Defect::IgnoresIdempotencyKey => name.eq_ignore_ascii_case("idempotency-key"),
            Defect::IgnoresConditions => {
                name.eq_ignore_ascii_case("if-match") || name.eq_ignore_ascii_case("if-none-match")
            }
            _ => false,
        };
        if !dropped
            && !name.eq_ignore_ascii_case("host")
            && !name.eq_ignore_ascii_case("content-length")
        {
            request = request.header(name, value);
        }
    }
    let mut response = proxy
        .agent
        .run(request.body(body).unwrap())
        .expect("upstream hub answers");
    let status = response.status().as_u16();
    let mut content_type = response
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut answer = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    if let Ok(mut json) = serde_json::from_slice::<Value>(&answer) {
        match proxy.defect {
            Defect::AcceptsInvalidRecords => {
                for result in json["results"].as_array_mut().into_iter().flatten() {
                    if result["status"] == "rejected" {
                        result["status"] = "created".into();
                        result["version"] = 1.into();
                        result.as_object_mut().unwrap().remove("errors");
                    }
                }
            }
            Defect::PlainJsonErrors if content_type.starts_with("application/problem+json") => {
                content_type = "application/json".into();
                let object = json.as_object_mut().unwrap();
                object.remove("type");
                object.remove("title");
            }
            _ => {}
        }
        answer = serde_json::to_vec(&json).unwrap();
    }
    (status, content_type, answer)
}

async fn proxy_handler(
    req: HttpRequest,
    body: web::Bytes,
    proxy: web::Data<Arc<Proxy>>,
) -> HttpResponse {
    let proxy = proxy.get_ref().clone();
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    match web::block(move || forward(&proxy, &method, &path, headers, body.to_vec())).await {
        Ok((status, content_type, body)) => {
            let mut answer =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
            if status == 429 {
                answer.insert_header(("Retry-After", "0"));
            }
            answer.content_type(content_type).body(body)
        }
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// Start the broken fixture in front of `upstream`; returns its base URL.
fn broken_server(upstream: &str, defect: Defect) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let proxy = Arc::new(Proxy {
        upstream: upstream.to_string(),
        defect,
        agent: common::agent(),
        requests: Default::default(),
    });
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(proxy.clone()))
                    .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                    .default_service(web::to(proxy_handler))
            })
            .workers(1)
            .listen(listener)
            .expect("listen")
            .run()
            .await
        })
    });
    base
}

#[test]
fn catches_each_defect_of_a_broken_server() {
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(TOWN);
    let dir = tempfile::tempdir().unwrap();
    // Each defect, the tests it fails and whether one of them is a SHALL (not conformant) or
    // only SHOULDs (still conformant, the deviation reported).
    let cases: [(Defect, &[&str], &str); 6] = [
        (
            Defect::AcceptsInvalidRecords,
            &[
                "KDL-API-002",
                "KDL-API-011",
                "KDL-API-016",
                "KDL-API-017",
                "KDL-API-018",
                "KDL-API-021",
            ],
            "not_conformant",
        ),
        (
            Defect::DropsUnknownFields,
            &["KDL-API-011"],
            "not_conformant",
        ),
        (
            Defect::IgnoresIdempotencyKey,
            &["KDL-API-004", "KDL-API-005"],
            "not_conformant",
        ),
        (
            Defect::PlainJsonErrors,
            &[
                "KDL-API-005",
                "KDL-API-009",
                "KDL-API-010",
                "KDL-API-012",
                "KDL-API-013",
                "KDL-API-014",
                "KDL-API-015",
                "KDL-API-020",
            ],
            "not_conformant",
        ),
        (Defect::IgnoresConditions, &["KDL-API-022"], "conformant"),
        (
            Defect::NoSizeLimits,
            &["KDL-API-020", "KDL-API-021"],
            "not_conformant",
        ),
    ];
    for (defect, expected_failures, verdict) in cases {
        let base = broken_server(&hub.base, defect);
        let (run, result) = run_suite(&base, &town.token, &dir.path().join(format!("{defect:?}")));
        let exit = if verdict == "conformant" { 0 } else { 1 };
        assert_eq!(
            run.status.code(),
            Some(exit),
            "{defect:?}: {}",
            describe(&run)
        );
        assert_eq!(result["verdict"], verdict, "{defect:?}");
        let failed: Vec<String> = statuses(&result)
            .into_iter()
            .filter(|(_, s)| s == "fail")
            .map(|(id, _)| id)
            // An over-long NDJSON line is refused either as that line's result or as a 413
            // problem, depending on how the body arrives in chunks; only the latter meets this
            // defect.
            .filter(|id| !matches!(defect, Defect::PlainJsonErrors) || id != "KDL-API-021")
            .collect();
        assert_eq!(failed, expected_failures, "{defect:?}");
        let issues = result["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "fail")
            .all(|t| !t["issues"].as_array().unwrap().is_empty());
        assert!(issues, "{defect:?}: every failed test explains itself");
    }
}

#[test]
fn a_token_that_cannot_read_the_change_feed_leaves_the_run_incomplete() {
    let hub = Hub::start(Backend::Sqlite);
    hub.add_town(TOWN, "町");
    let source_only = hub.add_client(TOWN, "vendor", "source", None);
    let dir = tempfile::tempdir().unwrap();
    let (run, result) = run_suite(&hub.base, &source_only, dir.path());
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
    assert_eq!(result["verdict"], "incomplete");
    let incomplete: Vec<String> = statuses(&result)
        .into_iter()
        .filter(|(_, s)| s == "incomplete")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(incomplete, ["KDL-API-007", "KDL-API-008"]);
    assert!(
        statuses(&result)
            .iter()
            .all(|(_, s)| s == "pass" || s == "incomplete")
    );
    let reason = result["tests"][7]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("--reader-token-env"), "{reason}");
}

/// The kit judges the server, never the token it was given: a token the server does not know,
/// or one without the `source` role, leaves every scenario that needs it unverified (exit 2)
/// with the reason, instead of a 不適合 report for a conformant server.
#[test]
fn a_wrong_role_or_unknown_token_leaves_the_run_incomplete_not_failed() {
    let hub = Hub::start(Backend::Sqlite);
    hub.add_town(TOWN, "町");
    let caseworker = hub.add_client(TOWN, "desk", "caseworker", None);
    let dir = tempfile::tempdir().unwrap();
    for (name, token, because) in [
        ("caseworker", caseworker.as_str(), "403 Forbidden"),
        (
            "unknown",
            "khub_not-a-token-of-this-server",
            "401 Unauthorized",
        ),
    ] {
        let (run, result) = run_suite(&hub.base, token, &dir.path().join(name));
        assert_eq!(run.status.code(), Some(2), "{name}: {}", describe(&run));
        assert_eq!(result["verdict"], "incomplete", "{name}");
        for (id, status) in statuses(&result) {
            // Only the authentication scenario needs no accepted token; it still runs.
            let expected = if id == "KDL-API-010" {
                "pass"
            } else {
                "incomplete"
            };
            assert_eq!(status, expected, "{name}: {id}");
        }
        let reason = result["tests"][0]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(because) && reason.contains("source token"),
            "{name}: {reason}"
        );
        // The reason is printed once, with the tests it concerns, not only in result.json.
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert_eq!(stdout.matches(because).count(), 1, "{name}: {stdout}");
        assert!(stdout.contains("verdict: incomplete"), "{stdout}");
    }
}

#[test]
fn a_token_that_may_not_push_the_record_type_leaves_the_run_incomplete() {
    let hub = Hub::start(Backend::Sqlite);
    hub.add_town(TOWN, "町");
    let token = hub.add_client(TOWN, "clinic", "source,caseworker", Some("infant-checkup"));
    let dir = tempfile::tempdir().unwrap();
    let (run, result) = run_suite(&hub.base, &token, dir.path());
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
    let failed: Vec<(String, String)> = statuses(&result)
        .into_iter()
        .filter(|(_, s)| s == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let reason = result["tests"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("--record-type"), "{reason}");
}

#[test]
fn a_server_under_load_is_waited_for_as_retry_after_asks() {
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(TOWN);
    let base = broken_server(&hub.base, Defect::Throttles);
    let dir = tempfile::tempdir().unwrap();
    let (run, result) = run_suite(&base, &town.token, dir.path());
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{:?}",
        describe(&run),
        statuses(&result)
    );
}

/// report.html is the document handed to the municipality: it names what was tested, for whom,
/// when, and with which tool and suite.
#[test]
fn the_printed_report_names_server_municipality_date_and_versions() {
    let hub = Hub::start(Backend::Sqlite);
    let town = hub.town(TOWN);
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(BIN)
        .args(["conformance", "server", "--base-url", &hub.base])
        .args(["--token-env", TOKEN_ENV, "--municipality", TOWN])
        .args([
            "--municipality-name",
            "試験町",
            "--capabilities",
            &capabilities(),
        ])
        .args(["--out", dir.path().to_str().unwrap()])
        .env(TOKEN_ENV, &town.token)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", describe(&run));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("result.json")).unwrap())
            .unwrap();
    let cell = |id: &str| {
        let start = html
            .find(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("{id}"));
        let rest = &html[start..];
        rest[..rest.find("</td>").unwrap()].to_string()
    };
    assert!(cell("target-server").contains(&hub.base), "{html}");
    assert!(cell("target-municipality").contains(TOWN));
    assert!(cell("target-municipality").contains("試験町"));
    let date = cell("run-date");
    assert!(date.contains('年') && date.contains("日本時間"), "{date}");
    assert!(
        date.contains(result["started_at"].as_str().unwrap()),
        "{date}"
    );
    assert!(cell("suite-version").contains(result["suite_version"].as_str().unwrap()));
    assert!(cell("tool-version").contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(result["server"]["base_url"], hub.base);
    assert_eq!(result["server"]["municipality"], TOWN);
}
