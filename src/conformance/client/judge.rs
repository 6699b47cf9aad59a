//! Judging a client from what the sandbox recorded: one check per requirement of the
//! `client` suite (KDL-CLI-001…005).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::{Attempt, Fate, Injection, PLAN};
use crate::conformance::Issue;

/// A retry may arrive this much before `Retry-After` has passed without counting as early:
/// the client measures from when it read the answer, the sandbox from when it wrote it.
const RETRY_AFTER_TOLERANCE: Duration = Duration::from_millis(100);

/// Statuses a client should retry (the same request, later).
fn transient(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 502 | 503 | 504)
}

/// What a client owed after an answer.
fn owes_retry(attempt: &Attempt) -> bool {
    transient(attempt.status)
}

/// An answer held back for long may have timed the client out: it may retry (same key) or not.
fn may_retry(attempt: &Attempt) -> bool {
    owes_retry(attempt) || attempt.injection == Injection::Slow
}

/// The first later push with the same content: the client's retry of `attempt`.
fn retry_of<'a>(attempts: &'a [Attempt], attempt: &Attempt) -> Option<&'a Attempt> {
    attempts
        .iter()
        .find(|later| later.number > attempt.number && later.content == attempt.content)
}

fn seconds(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn issue(code: &str, ja: String, en: String, attempt: &Attempt) -> Issue {
    Issue {
        push: Some(attempt.number),
        ..Issue::explained(code, ja, en)
    }
}

/// Why a check could not reach a verdict.
pub type Unverified = String;

/// KDL-CLI-001: transient answers retried, final answers not resent.
pub fn retries_only_transient(attempts: &[Attempt]) -> Result<Vec<Issue>, Unverified> {
    if !attempts.iter().any(owes_retry) {
        return Err("the client got no transient answer (429/503) to retry".into());
    }
    let mut issues = Vec::new();
    for attempt in attempts {
        let retry = retry_of(attempts, attempt);
        if owes_retry(attempt) && retry.is_none() {
            issues.push(issue(
                "not_retried",
                format!(
                    "送信{}は {} を受けましたが、再送されませんでした。",
                    attempt.number, attempt.status
                ),
                format!(
                    "push {} was answered {} and never retried",
                    attempt.number, attempt.status
                ),
                attempt,
            ));
        }
        if !may_retry(attempt)
            && !attempt.records.is_empty()
            && let Some(retry) = retry
        {
            issues.push(issue(
                "final_answer_resent",
                format!(
                    "送信{}は確定した応答 {} を受けましたが、送信{}で同じ内容が再送されました。",
                    attempt.number, attempt.status, retry.number
                ),
                format!(
                    "push {} got the final answer {} and was sent again unchanged as push {}",
                    attempt.number, attempt.status, retry.number
                ),
                retry,
            ));
        }
    }
    Ok(issues)
}

/// KDL-CLI-002: no retry before `Retry-After` has passed.
pub fn honours_retry_after(attempts: &[Attempt]) -> Result<Vec<Issue>, Unverified> {
    let mut retried = false;
    let mut issues = Vec::new();
    for attempt in attempts {
        let (Some(wait), Some(retry)) = (attempt.retry_after, retry_of(attempts, attempt)) else {
            continue;
        };
        retried = true;
        let asked = Duration::from_secs(wait);
        let waited = retry.arrived.saturating_duration_since(attempt.answered);
        if waited + RETRY_AFTER_TOLERANCE < asked {
            issues.push(issue(
                "retry_too_early",
                format!(
                    "送信{}は Retry-After: {wait} を受けましたが、{} 秒後に送信{}で再送されました。",
                    attempt.number,
                    seconds(waited),
                    retry.number
                ),
                format!(
                    "push {} was answered with Retry-After: {wait} and retried after {} s as push {}",
                    attempt.number,
                    seconds(waited),
                    retry.number
                ),
                retry,
            ));
        }
    }
    if !retried {
        return Err("the client never retried an answer that carried Retry-After".into());
    }
    Ok(issues)
}

/// KDL-CLI-003: every push carries an Idempotency-Key, and a retry carries its first key.
pub fn reuses_idempotency_key(attempts: &[Attempt]) -> Result<Vec<Issue>, Unverified> {
    let mut retried = false;
    let mut issues = Vec::new();
    for attempt in attempts {
        if attempt.idempotency_key.is_none() && !attempt.records.is_empty() {
            issues.push(issue(
                "missing_idempotency_key",
                format!("送信{}に Idempotency-Key がありません。", attempt.number),
                format!("push {} carries no Idempotency-Key", attempt.number),
                attempt,
            ));
        }
        if !may_retry(attempt) {
            continue;
        }
        let Some(retry) = retry_of(attempts, attempt) else {
            continue;
        };
        retried = true;
        if retry.idempotency_key != attempt.idempotency_key {
            issues.push(issue(
                "idempotency_key_changed",
                format!(
                    "送信{}は送信{}の再送ですが、Idempotency-Key が異なります。",
                    retry.number, attempt.number
                ),
                format!(
                    "push {} retries push {} with another Idempotency-Key",
                    retry.number, attempt.number
                ),
                retry,
            ));
        }
    }
    if !retried && issues.is_empty() {
        return Err("the client retried no request".into());
    }
    Ok(issues)
}

/// KDL-CLI-004: a record rejected in an answer the client got is not sent again unchanged
/// (a retry of the very same request is judged by KDL-CLI-001).
pub fn rejected_records_not_resent(attempts: &[Attempt]) -> Result<Vec<Issue>, Unverified> {
    let rejected: Vec<(&Attempt, &str)> = attempts
        .iter()
        .filter(|a| a.answer_reached_client())
        .flat_map(|a| {
            a.records
                .iter()
                .zip(&a.fates)
                .filter(|(_, fate)| matches!(fate, Fate::Rejected | Fate::Refused))
                .map(move |(sent, _)| (a, sent.canonical.as_str()))
        })
        .collect();
    if !attempts
        .iter()
        .any(|a| a.answer_reached_client() && a.fates.contains(&Fate::Refused))
    {
        return Err("the plan's partial rejection was never answered to the client".into());
    }
    let mut issues = Vec::new();
    let mut reported = HashSet::new();
    for (rejecting, canonical) in rejected {
        for later in attempts
            .iter()
            .filter(|l| l.number > rejecting.number && l.content != rejecting.content)
        {
            if later.records.iter().any(|r| r.canonical == canonical)
                && reported.insert((later.number, canonical))
            {
                issues.push(issue(
                    "rejected_record_resent",
                    format!(
                        "送信{}で拒否されたレコードが、送信{}で変更されずに再送されました。",
                        rejecting.number, later.number
                    ),
                    format!(
                        "a record rejected in push {} was sent again unchanged in push {}",
                        rejecting.number, later.number
                    ),
                    later,
                ));
            }
        }
    }
    Ok(issues)
}

/// KDL-CLI-005: every record whose last version was not rejected is stored in that version.
pub fn every_valid_record_delivered(attempts: &[Attempt]) -> Result<Vec<Issue>, Unverified> {
    // The last version the client sent of each record (by its id, or by itself without one).
    let mut last: BTreeMap<&str, (&str, &Attempt)> = BTreeMap::new();
    let mut turned_down = HashSet::new();
    let mut stored = HashSet::new();
    for attempt in attempts {
        for (sent, fate) in attempt.records.iter().zip(&attempt.fates) {
            let id = sent.source_record_id.as_deref().unwrap_or(&sent.canonical);
            last.insert(id, (&sent.canonical, attempt));
            match fate {
                Fate::Rejected | Fate::Refused => {
                    turned_down.insert(sent.canonical.as_str());
                }
                Fate::Stored => {
                    stored.insert(sent.canonical.as_str());
                }
                Fate::NotProcessed => {}
            }
        }
    }
    if last.is_empty() {
        return Err("the client sent no record the sandbox could read (JSON or NDJSON)".into());
    }
    let mut issues = Vec::new();
    for (canonical, attempt) in last.values() {
        if !turned_down.contains(canonical) && !stored.contains(canonical) {
            issues.push(issue(
                "record_not_delivered",
                format!(
                    "送信{}で最後に送られたレコードが保存されないまま終わりました。",
                    attempt.number
                ),
                format!(
                    "a record last sent in push {} was never stored",
                    attempt.number
                ),
                attempt,
            ));
        }
    }
    Ok(issues)
}

/// Each requirement id of the client suite with its check.
pub type Check = fn(&[Attempt]) -> Result<Vec<Issue>, Unverified>;

pub fn checks() -> [(&'static str, Check); 5] {
    [
        ("KDL-CLI-001", retries_only_transient),
        ("KDL-CLI-002", honours_retry_after),
        ("KDL-CLI-003", reuses_idempotency_key),
        ("KDL-CLI-004", rejected_records_not_resent),
        ("KDL-CLI-005", every_valid_record_delivered),
    ]
}

/// Why a check that found nothing wrong still cannot pass: the plan was not applied in full.
pub fn plan_unfinished(steps_applied: usize, pushes: usize) -> Option<String> {
    (steps_applied < PLAN.len()).then(|| {
        format!(
            "the client made {pushes} push(es); the sandbox applied {steps_applied} of the plan's {} steps (push more batches, at least {} with records)",
            PLAN.len(),
            PLAN.len()
        )
    })
}
