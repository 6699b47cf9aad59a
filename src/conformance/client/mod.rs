//! The client suite (KDL-CLI-001…005): the plan a sandbox hub follows when a vendor's client
//! pushes to it — 429 and 503 with `Retry-After`, a slow answer, an answer lost after the
//! batch was stored (a retry with the same key is answered from the stored reply), a partial
//! rejection — what it records of each push, and the verdict on the client. The sandbox itself
//! (an interposer in front of the hub's routes) is `api::sandbox`; `conformance client` in
//! the CLI starts it.

pub mod judge;

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

use super::{Run, Status, TestResult, catalog};

/// What the sandbox does to one push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// 429 with `Retry-After`, before the hub sees the request.
    TooManyRequests,
    /// 503 with `Retry-After`, before the hub sees the request.
    Unavailable,
    /// The hub stores the batch; its answer is held back for the slow delay.
    Slow,
    /// The hub stores the batch; the client gets 503 with `Retry-After` instead of its answer,
    /// as if the answer were lost on the way. A retry with the same key gets the stored answer.
    AnswerLost,
    /// The batch's first record is refused by the sandbox (`sandbox_refused`); the hub stores
    /// the others and the answer reports all of them.
    PartialRejection,
    /// Passed to the hub as it is.
    Pass,
}

/// The scripted plan: the Nth push that is not a replay of a key the hub answered gets the
/// Nth injection; later pushes pass.
pub const PLAN: [Injection; 5] = [
    Injection::TooManyRequests,
    Injection::Unavailable,
    Injection::Slow,
    Injection::AnswerLost,
    Injection::PartialRejection,
];

/// `Retry-After` of the injected 429.
pub const THROTTLED_RETRY_AFTER: u64 = 2;
/// `Retry-After` of the injected 503s.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;
/// Problem code of a record the sandbox refuses in the partial rejection.
pub const REFUSED_CODE: &str = "sandbox_refused";

/// What became of one record of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The hub never processed it (an injected 429/503 before it, or a refused request).
    NotProcessed,
    /// The hub stored it (created, updated or unchanged).
    Stored,
    /// The hub rejected it with per-record problems.
    Rejected,
    /// The sandbox refused it (the plan's partial rejection).
    Refused,
}

/// One record as the client sent it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub source_record_id: Option<String>,
    /// Canonical JSON (keys sorted): equal text means an unchanged record.
    pub canonical: String,
}

/// One push as it arrived and was answered.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// 1-based, in arrival order.
    pub number: usize,
    pub arrived: Instant,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical records (or of the raw body when it holds none the sandbox
    /// can read): equal content means the same request sent again.
    pub content: String,
    pub records: Vec<Sent>,
    pub injection: Injection,
    /// The key was one the hub had answered before: the hub's stored answer was passed on.
    pub replay: bool,
    /// The status the client got.
    pub status: u16,
    pub retry_after: Option<u64>,
    pub answered: Instant,
    /// Per record, in the order sent.
    pub fates: Vec<Fate>,
}

impl Attempt {
    /// Did the client get the hub's own answer (not an injected 429/503)?
    pub fn answer_reached_client(&self) -> bool {
        !matches!(
            self.injection,
            Injection::TooManyRequests | Injection::Unavailable | Injection::AnswerLost
        )
    }
}

/// SHA-256 in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// JSON with object keys sorted, so that equal records compare equal as text.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The plan, as printed to the vendor (and in the README).
pub fn plan_text(slow: Duration) -> String {
    format!(
        "push 1 → 429 Retry-After: {throttled}; push 2 → 503 Retry-After: {unavailable}; \
         push 3 → stored, answer held back {slow} s; push 4 → stored, but answered 503 Retry-After: {unavailable} \
         (a retry with the same Idempotency-Key gets the stored answer); push 5 (a non-atomic JSON batch) → its first \
         record refused with code {refused}, the others stored; later pushes → as the hub answers. \
         A push repeating an Idempotency-Key the hub has answered gets that answer and is not counted.",
        throttled = THROTTLED_RETRY_AFTER,
        unavailable = UNAVAILABLE_RETRY_AFTER,
        slow = slow.as_secs(),
        refused = REFUSED_CODE,
    )
}

/// The run's result: every check of the client suite on what the sandbox recorded.
/// `steps_applied` is how far the plan got; `time_limit` how long the sandbox waited.
pub fn verdict(
    attempts: &[Attempt],
    steps_applied: usize,
    time_limit: Duration,
    schema_version: &str,
    target: String,
) -> Run {
    let mut run = Run::new("client", schema_version, Vec::new());
    run.target = Some(target);
    let unverified = if attempts.is_empty() {
        Some(format!(
            "the client never pushed to the sandbox within the time limit ({} s)",
            time_limit.as_secs()
        ))
    } else {
        judge::plan_unfinished(steps_applied, attempts.len())
    };
    let requirements = catalog::of_suite("client");
    for (id, check) in judge::checks() {
        let requirement = requirements
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("{id} is missing from conformance/requirements.csv"));
        let (status, reason, issues) = match check(attempts) {
            Ok(issues) if !issues.is_empty() => (Status::Fail, None, issues),
            _ if unverified.is_some() => (Status::Incomplete, unverified.clone(), Vec::new()),
            Ok(issues) => (Status::Pass, None, issues),
            Err(why) => (Status::Incomplete, Some(why), Vec::new()),
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
