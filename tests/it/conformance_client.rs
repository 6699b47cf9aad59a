//! `conformance client`: the sandbox hub a vendor's client pushes to, run as a vendor would
//! (the real binary, real HTTP), with a well-behaved and a badly-behaved sample client.

use crate::common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::BIN;
use serde_json::{Value, json};

/// A sandbox started with `conformance client`, its address and token read from its output.
struct Sandbox {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Everything printed before the address and token.
    banner: String,
    base_url: String,
    municipality: String,
    token: String,
}

impl Sandbox {
    fn start(out: &Path, extra: &[&str]) -> Sandbox {
        let mut child = Command::new(BIN)
            .args(["conformance", "client", "--listen", "127.0.0.1:0"])
            .args(["--out", out.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        let field = |banner: &str, name: &str| {
            banner
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        while !banner.contains("\nwaiting up to") {
            let mut line = String::new();
            if stdout
                .read_line(&mut line)
                .expect("read the sandbox's output")
                == 0
            {
                panic!("the sandbox ended before it was ready: {banner}");
            }
            banner.push_str(&line);
        }
        Sandbox {
            base_url: field(&banner, "base_url:").expect("base_url printed"),
            municipality: field(&banner, "municipality:")
                .and_then(|m| m.split_whitespace().next().map(str::to_string))
                .expect("municipality printed"),
            token: field(&banner, "token:").expect("token printed"),
            banner,
            child,
            stdout,
        }
    }

    /// Wait for the run to end; its exit code and the rest of its output.
    fn finish(mut self) -> (i32, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                panic!("the sandbox did not end");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).expect("read output");
        (status.code().expect("exit code"), rest)
    }
}

fn result(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).expect("result.json"))
        .expect("result.json is JSON")
}

fn ids_with_status(result: &Value, status: &str) -> BTreeSet<String> {
    result["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .filter(|t| t["status"] == status)
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// How a sample client behaves.
struct Behaviour {
    /// Wait as Retry-After asks (else retry after 50 ms).
    honours_retry_after: bool,
    /// Reuse the Idempotency-Key on a retry (else a new key per attempt).
    reuses_key: bool,
    /// Drop records the hub rejected (else send them again, unchanged, in a batch of their own).
    drops_rejected: bool,
    /// How long it waits for an answer before it retries.
    timeout: Duration,
}

/// A sample client pushing batches of synthetic prenatal check-ups to the sandbox.
struct SampleClient<'a> {
    sandbox: &'a Sandbox,
    behaviour: Behaviour,
    agent: ureq::Agent,
    keys: u32,
    /// Answers the hub replayed from a stored reply (`Idempotent-Replayed: true`).
    replays: u32,
}

/// The answer a push finally got.
struct Final {
    status: u16,
    body: Value,
}

impl<'a> SampleClient<'a> {
    fn new(sandbox: &'a Sandbox, behaviour: Behaviour) -> SampleClient<'a> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(behaviour.timeout))
            .build()
            .into();
        SampleClient {
            sandbox,
            behaviour,
            agent,
            keys: 0,
            replays: 0,
        }
    }

    fn new_key(&mut self) -> String {
        self.keys += 1;
        format!("sample-{}", self.keys)
    }

    /// Push one batch until it gets a final answer.
    fn push(&mut self, records: &[Value]) -> Final {
        let body = json!({ "records": records }).to_string();
        let mut key = self.new_key();
        loop {
            let answer = self
                .agent
                .post(format!(
                    "{}/v1/municipalities/{}/records",
                    self.sandbox.base_url, self.sandbox.municipality
                ))
                .header("Authorization", format!("Bearer {}", self.sandbox.token))
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", &key)
                .send(body.as_str());
            let wait = match answer {
                // No answer in time: the request may have been stored; retry it.
                Err(_) => Duration::ZERO,
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if response.headers().contains_key("Idempotent-Replayed") {
                        self.replays += 1;
                    }
                    if !matches!(status, 408 | 409 | 429 | 502 | 503 | 504) {
                        let text = response.body_mut().read_to_string().unwrap_or_default();
                        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                        return Final { status, body };
                    }
                    let asked = response
                        .headers()
                        .get("Retry-After")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    Duration::from_secs(asked)
                }
            };
            std::thread::sleep(if self.behaviour.honours_retry_after {
                wait
            } else {
                Duration::from_millis(50)
            });
            if !self.behaviour.reuses_key {
                key = self.new_key();
            }
        }
    }

    /// Push `batches` batches of two records; returns the ids the hub rejected.
    fn run(&mut self, batches: usize) -> Vec<String> {
        let mut rejected_ids = Vec::new();
        for batch in 0..batches {
            let records: Vec<Value> = (0..2)
                .map(|i| {
                    common::record(
                        "prenatal-checkup",
                        &format!("pc-{batch}-{i}"),
                        &format!("SB{batch}{i}"),
                    )
                })
                .collect();
            let answer = self.push(&records);
            assert_eq!(answer.status, 200, "{}", answer.body);
            let rejected: Vec<Value> = common::results(&answer.body)
                .into_iter()
                .filter(|r| r["status"] == "rejected")
                .map(|r| records[r["index"].as_u64().unwrap() as usize].clone())
                .collect();
            rejected_ids.extend(
                rejected
                    .iter()
                    .map(|r| r["source_record_id"].as_str().unwrap().to_string()),
            );
            if !rejected.is_empty() && !self.behaviour.drops_rejected {
                self.push(&rejected);
            }
        }
        rejected_ids
    }
}

const QUICK: [&str; 6] = [
    "--quiet-secs",
    "3",
    "--slow-secs",
    "2",
    "--time-limit-secs",
    "90",
];

#[test]
fn a_well_behaved_client_is_judged_conformant() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let sandbox = Sandbox::start(
        &out,
        &[&QUICK[..], &["--client-name", "見本クライアント"]].concat(),
    );
    assert!(sandbox.banner.contains("429"), "{}", sandbox.banner);
    let mut client = SampleClient::new(
        &sandbox,
        Behaviour {
            honours_retry_after: true,
            reuses_key: true,
            drops_rejected: true,
            // Shorter than the slow answer: the client times out and retries with its key.
            timeout: Duration::from_secs(1),
        },
    );
    let rejected = client.run(6);
    assert_eq!(rejected, ["pc-2-0"], "the plan's partial rejection");
    // The retries after the slow answer and after the lost one got the stored replies.
    assert_eq!(client.replays, 2);
    let (code, output) = sandbox.finish();
    let result = result(&out);
    assert_eq!(code, 0, "{output}\n{result:#}");
    assert_eq!(result["suite"], "client");
    assert_eq!(
        ids_with_status(&result, "pass"),
        [
            "KDL-CLI-001",
            "KDL-CLI-002",
            "KDL-CLI-003",
            "KDL-CLI-004",
            "KDL-CLI-005"
        ]
        .map(String::from)
        .into()
    );
    assert!(output.contains("verdict: conformant"), "{output}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("適合") && html.contains("見本クライアント"),
        "{html}"
    );
    assert!(out.join("junit.xml").exists());
}

#[test]
fn a_client_that_ignores_retry_after_changes_keys_and_resends_rejected_records_is_not_conformant() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let sandbox = Sandbox::start(&out, &QUICK);
    let mut client = SampleClient::new(
        &sandbox,
        Behaviour {
            honours_retry_after: false,
            reuses_key: false,
            drops_rejected: false,
            timeout: Duration::from_secs(30),
        },
    );
    client.run(5);
    let (code, output) = sandbox.finish();
    let result = result(&out);
    assert_eq!(code, 1, "{output}\n{result:#}");
    assert_eq!(
        ids_with_status(&result, "fail"),
        ["KDL-CLI-002", "KDL-CLI-003", "KDL-CLI-004"]
            .map(String::from)
            .into(),
        "{result:#}"
    );
    assert_eq!(
        ids_with_status(&result, "pass"),
        ["KDL-CLI-001", "KDL-CLI-005"].map(String::from).into()
    );
    let codes: BTreeSet<&str> = result["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["issues"].as_array().unwrap())
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "idempotency_key_changed",
            "rejected_record_resent",
            "retry_too_early"
        ]
        .into()
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("不適合"), "{html}");
}

#[test]
fn a_client_that_never_connects_leaves_the_run_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let sandbox = Sandbox::start(&out, &["--time-limit-secs", "2"]);
    let (code, output) = sandbox.finish();
    assert_eq!(code, 2, "{output}");
    let result = result(&out);
    assert_eq!(
        ids_with_status(&result, "incomplete").len(),
        5,
        "{result:#}"
    );
    assert!(output.contains("never pushed"), "{output}");
}

#[test]
fn a_client_that_stops_before_the_plan_ends_leaves_the_run_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let sandbox = Sandbox::start(&out, &["--time-limit-secs", "8"]);
    let mut client = SampleClient::new(
        &sandbox,
        Behaviour {
            honours_retry_after: true,
            reuses_key: true,
            drops_rejected: true,
            timeout: Duration::from_secs(30),
        },
    );
    client.run(1);
    let (code, output) = sandbox.finish();
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("of the plan's 5 steps"), "{output}");
}

#[test]
fn the_sandbox_listens_beyond_loopback_only_when_told() {
    let out = Command::new(BIN)
        .args(["conformance", "client", "--listen", "0.0.0.0:0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
