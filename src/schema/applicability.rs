//! Which basic linkage data items (基本連携データ項目) apply to a child, and why. The rules are
//! data (`schema/vN/applicability.json`, versioned); this evaluator only interprets them. It
//! reports reasons, never a score.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Condition {
    pub field: String,
    pub op: String,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Sum {
    pub field: String,
    pub per: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Rule {
    pub item: u32,
    pub title: String,
    pub record_type: String,
    #[serde(default)]
    pub sum: Option<Sum>,
    pub when: Vec<Condition>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RuleSet {
    #[serde(default)]
    pub rule_set_version: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A record as the evaluator sees it: its type, its content and whose record it is.
pub struct EvaluatedRecord<'a> {
    pub record_type: &'a str,
    pub source_record_id: &'a str,
    pub data: &'a Value,
    /// Resident number of the person the record is about (the child or a guardian).
    pub about: &'a str,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicableItem {
    /// Guideline item number (1–19).
    pub item: u32,
    pub title: String,
    /// Why the item applies, in terms of the record and the rule.
    pub reason: String,
    pub record_type: String,
    /// Records that made the item apply.
    pub source_record_ids: Vec<String>,
    /// Resident number of the person whose record it is (the child or a guardian).
    pub about: String,
    pub rule_set_version: String,
}

fn compare(actual: &Value, op: &str, expected: &Value) -> bool {
    match op {
        "present" => !actual.is_null(),
        "absent" => actual.is_null(),
        "==" => actual == expected,
        "in" => expected.as_array().is_some_and(|set| set.contains(actual)),
        _ => match (actual.as_f64(), expected.as_f64()) {
            (Some(a), Some(b)) => match op {
                ">=" => a >= b,
                ">" => a > b,
                "<=" => a <= b,
                "<" => a < b,
                _ => false,
            },
            _ => false,
        },
    }
}

fn describe(condition: &Condition, actual: &Value) -> String {
    match condition.op.as_str() {
        "present" => format!("{} is recorded ({actual})", condition.field),
        "absent" => format!("{} is not recorded", condition.field),
        op => format!("{} = {actual} ({op} {})", condition.field, condition.value),
    }
}

impl RuleSet {
    pub fn from_json(doc: &Value) -> RuleSet {
        serde_json::from_value(doc.clone()).expect("applicability.json matches the rule format")
    }

    /// Every item that applies over `records`, one entry per (item, person, reason).
    pub fn evaluate(&self, records: &[EvaluatedRecord<'_>]) -> Vec<ApplicableItem> {
        let mut found = Vec::new();
        for rule in &self.rules {
            let relevant = records.iter().filter(|r| r.record_type == rule.record_type);
            match &rule.sum {
                None => {
                    for record in relevant {
                        if let Some(reason) = self.first_match(rule, |field| {
                            record.data.get(field).cloned().unwrap_or(Value::Null)
                        }) {
                            found.push(self.item(rule, reason, record.about, vec![record]));
                        }
                    }
                }
                Some(sum) => {
                    let mut groups: BTreeMap<(&str, String), Vec<&EvaluatedRecord>> =
                        BTreeMap::new();
                    for record in relevant {
                        let key = record.data.get(&sum.per).map(Value::to_string);
                        groups
                            .entry((record.about, key.unwrap_or_default()))
                            .or_default()
                            .push(record);
                    }
                    for ((about, group), members) in groups {
                        let total: f64 = members
                            .iter()
                            .filter_map(|r| r.data.get(&sum.field).and_then(Value::as_f64))
                            .sum();
                        let total = serde_json::Number::from_f64(total)
                            .map(Value::Number)
                            .unwrap_or(Value::Null);
                        if let Some(reason) = self.first_match(rule, |field| {
                            if field == sum.field {
                                total.clone()
                            } else {
                                Value::Null
                            }
                        }) {
                            let reason = format!("{reason}, summed over {} {group}", sum.per);
                            found.push(self.item(rule, reason, about, members));
                        }
                    }
                }
            }
        }
        found.sort_by(|a, b| a.item.cmp(&b.item).then(a.about.cmp(&b.about)));
        found
    }

    fn first_match(&self, rule: &Rule, get: impl Fn(&str) -> Value) -> Option<String> {
        rule.when.iter().find_map(|condition| {
            let actual = get(&condition.field);
            compare(&actual, &condition.op, &condition.value).then(|| describe(condition, &actual))
        })
    }

    fn item(
        &self,
        rule: &Rule,
        reason: String,
        about: &str,
        records: Vec<&EvaluatedRecord>,
    ) -> ApplicableItem {
        ApplicableItem {
            item: rule.item,
            title: rule.title.clone(),
            reason,
            record_type: rule.record_type.clone(),
            source_record_ids: records
                .iter()
                .map(|r| r.source_record_id.to_string())
                .collect(),
            about: about.to_string(),
            rule_set_version: self.rule_set_version.clone(),
        }
    }
}
