//! The worklist computation: every screened child's score with what contributed to it, the
//! reasons it is already known, and who each age band extracts. Deterministic: the same
//! children, records and rule set give the same list in the same order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FieldWeight, KnownReason, RuleSetDocument, Selection};
use crate::schema::applicability::EvaluatedRecord;
use crate::schema::{RuleSet, SchemaVersion};

/// A child the town may screen (the caller has already left out those who may not be).
#[derive(Debug, Clone)]
pub struct Child {
    pub resident_no: String,
    pub birth_date: NaiveDate,
    pub sex: Option<i32>,
    pub support_measure: bool,
    /// Guardians whose records count for the child (register and household), sorted.
    pub guardians: Vec<String>,
}

/// A current record effective by the run's date, with the fields a run reads (`FactNeeds`).
#[derive(Debug, Clone)]
pub struct Fact {
    pub record_type: String,
    pub source_record_id: String,
    pub effective_date: String,
    pub data: Value,
}

/// What a run reads of the records: their types and top-level fields. Nothing else is ever
/// looked at, so the store loads only these.
#[derive(Debug, Clone, Default)]
pub struct FactNeeds {
    pub record_types: BTreeSet<String>,
    pub fields: BTreeSet<String>,
}

impl FactNeeds {
    /// What scoring with `rules` under the standard `version` reads: the applicability rules
    /// of the weighted items, the scorable fields, the records that make a child known and
    /// the records naming a school.
    pub fn of(rules: &RuleSetDocument, version: &SchemaVersion) -> FactNeeds {
        let mut needs = FactNeeds::default();
        for rule in version
            .applicability
            .rules
            .iter()
            .filter(|rule| rules.items.iter().any(|w| w.item == rule.item))
        {
            let summed = rule
                .sum
                .iter()
                .flat_map(|s| [s.field.as_str(), s.per.as_str()]);
            needs.read(
                &rule.record_type,
                rule.when.iter().map(|c| c.field.as_str()).chain(summed),
            );
        }
        for weight in &rules.fields {
            needs.read(
                &weight.record_type,
                std::iter::once(weight.field.as_str()).chain(weight.sum_per.as_deref()),
            );
        }
        for (record_type, fields) in KNOWN_FROM {
            needs.read(record_type, fields.iter().copied());
        }
        for (record_type, schema) in &version.records {
            if schema
                .pointer(&format!("/properties/{SCHOOL_CODE}"))
                .is_some()
            {
                needs.read(record_type, [SCHOOL_CODE]);
            }
        }
        needs
    }

    fn read<'a>(&mut self, record_type: &str, fields: impl IntoIterator<Item = &'a str>) {
        self.record_types.insert(record_type.to_string());
        self.fields.extend(fields.into_iter().map(str::to_string));
    }
}

/// The records that make a child already known, with the fields `known_reasons` reads.
const KNOWN_FROM: [(&str, &[&str]); 3] = [
    (OPEN_CASE_TYPE, &["closed_on"]),
    (PROTECTION_TYPE, &[]),
    (OUTCOME_TYPE, &["decided_on", "stage", "review_outcome"]),
];
const OPEN_CASE_TYPE: &str = "child-protection-case";
const PROTECTION_TYPE: &str = "temporary-protection";
const OUTCOME_TYPE: &str = "support-outcome";
/// The field naming a pupil's school (education records).
const SCHOOL_CODE: &str = "school_code";

/// A record that made something count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordRef {
    /// Resident number of the person the record is about (the child or a guardian).
    pub about: String,
    pub record_type: String,
    pub source_record_id: String,
}

/// What added points to a child's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Contribution {
    /// A basic item that applies (once, whatever the number of records).
    Item {
        item: u32,
        title: String,
        /// Why it applies, one reason per record or sum (from the applicability rules).
        #[schema(max_items = 100)]
        reasons: Vec<String>,
        #[schema(max_items = 10000)]
        records: Vec<RecordRef>,
        points: f64,
    },
    /// A scorable numeric field.
    Field {
        record_type: String,
        field: String,
        /// The largest value (or sum, with `sum_per`) over the records.
        value: f64,
        #[schema(max_items = 10000)]
        records: Vec<RecordRef>,
        points: f64,
    },
}

impl Contribution {
    pub fn points(&self) -> f64 {
        match self {
            Contribution::Item { points, .. } | Contribution::Field { points, .. } => *points,
        }
    }
}

/// One screened child.
#[derive(Debug, Clone)]
pub struct Scored {
    pub resident_no: String,
    /// Index of its age band in the rule set.
    pub band: usize,
    pub age: u32,
    pub sex: Option<i32>,
    pub support_measure: bool,
    pub score: f64,
    pub contributions: Vec<Contribution>,
    pub known: Vec<KnownReason>,
    /// The school of its latest education record.
    pub school_code: Option<String>,
    /// Left out before extraction for a reason of `exclude_known`.
    pub excluded: bool,
    pub extracted: bool,
}

/// Age in full years on `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> Option<u32> {
    if birth > on {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// Six decimals: scores compare and print without floating-point noise.
fn rounded(points: f64) -> f64 {
    (points * 1e6).round() / 1e6
}

/// One child's score with what contributed to it, or `None` when its age is in no band.
/// `facts` holds the current records of the child and of its guardians.
pub fn score(
    rules: &RuleSetDocument,
    applicability: &RuleSet,
    child: &Child,
    facts: &HashMap<String, Vec<Fact>>,
    support_measure: &HashSet<String>,
    as_of: NaiveDate,
) -> Option<Scored> {
    let no_facts = Vec::new();
    let age = age_on(child.birth_date, as_of)?;
    let band = rules.age_bands.iter().position(|b| b.contains(age))?;
    // A guardian under a DV measure adds nothing to a child that is not itself under it: the
    // entry must not lead anyone without the role to that guardian.
    let people: Vec<&str> = std::iter::once(child.resident_no.as_str())
        .chain(
            child
                .guardians
                .iter()
                .map(String::as_str)
                .filter(|g| child.support_measure || !support_measure.contains(*g)),
        )
        .collect();
    let all_facts: Vec<(&str, &Fact)> = people
        .iter()
        .flat_map(|p| {
            facts
                .get(*p)
                .unwrap_or(&no_facts)
                .iter()
                .map(move |f| (*p, f))
        })
        .collect();
    let own = facts.get(&child.resident_no).unwrap_or(&no_facts);
    let mut contributions = item_contributions(rules, applicability, &all_facts);
    contributions.extend(
        rules
            .fields
            .iter()
            .filter_map(|weight| field_contribution(weight, &all_facts)),
    );
    let total: f64 = contributions.iter().map(Contribution::points).sum();
    let score = rounded(rules.score_cap.map_or(total, |cap| total.min(cap)));
    let known = known_reasons(own);
    Some(Scored {
        resident_no: child.resident_no.clone(),
        band,
        age,
        sex: child.sex,
        support_measure: child.support_measure,
        score,
        excluded: known.iter().any(|k| rules.exclude_known.contains(k)),
        known,
        contributions,
        school_code: school_code(own),
        extracted: false,
    })
}

/// Extract per age band from every scored child of the town; the extracted come first,
/// highest score first, ties by resident number.
pub fn extract(rules: &RuleSetDocument, mut scored: Vec<Scored>) -> Vec<Scored> {
    let mut by_band: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, child) in scored.iter().enumerate() {
        by_band.entry(child.band).or_default().push(i);
    }
    for (band, members) in by_band {
        let population = members.len();
        let mut candidates: Vec<usize> = members
            .into_iter()
            .filter(|&i| !scored[i].excluded && scored[i].score > 0.0)
            .collect();
        candidates.sort_by(|&a, &b| order(&scored[a], &scored[b]));
        let chosen = match rules.age_bands[band].selection() {
            Selection::Threshold(threshold) => candidates
                .iter()
                .take_while(|&&i| scored[i].score >= threshold)
                .count(),
            Selection::TopShare(share) => {
                let wanted = (share * population as f64).ceil() as usize;
                match wanted.min(candidates.len()).checked_sub(1) {
                    None => 0,
                    Some(last) => {
                        let cut = scored[candidates[last]].score;
                        candidates
                            .iter()
                            .take_while(|&&i| scored[i].score >= cut)
                            .count()
                    }
                }
            }
        };
        for &i in &candidates[..chosen] {
            scored[i].extracted = true;
        }
    }
    scored.sort_by(|a, b| b.extracted.cmp(&a.extracted).then_with(|| order(a, b)));
    scored
}

/// Highest score first, then by resident number.
fn order(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| a.resident_no.cmp(&b.resident_no))
}

fn record_ref(about: &str, fact: &Fact) -> RecordRef {
    RecordRef {
        about: about.to_string(),
        record_type: fact.record_type.clone(),
        source_record_id: fact.source_record_id.clone(),
    }
}

fn item_contributions(
    rules: &RuleSetDocument,
    applicability: &RuleSet,
    facts: &[(&str, &Fact)],
) -> Vec<Contribution> {
    if rules.items.is_empty() || facts.is_empty() {
        return Vec::new();
    }
    let evaluated: Vec<EvaluatedRecord> = facts
        .iter()
        .map(|(about, fact)| EvaluatedRecord {
            record_type: &fact.record_type,
            source_record_id: &fact.source_record_id,
            data: &fact.data,
            about,
        })
        .collect();
    let mut by_item: BTreeMap<u32, Contribution> = BTreeMap::new();
    for applicable in applicability.evaluate(&evaluated) {
        let Some(weight) = rules.items.iter().find(|w| w.item == applicable.item) else {
            continue;
        };
        let entry = by_item
            .entry(applicable.item)
            .or_insert_with(|| Contribution::Item {
                item: applicable.item,
                title: applicable.title.clone(),
                reasons: Vec::new(),
                records: Vec::new(),
                points: weight.points,
            });
        if let Contribution::Item {
            reasons, records, ..
        } = entry
        {
            reasons.push(applicable.reason.clone());
            records.extend(applicable.source_record_ids.iter().map(|id| RecordRef {
                about: applicable.about.clone(),
                record_type: applicable.record_type.clone(),
                source_record_id: id.clone(),
            }));
        }
    }
    by_item.into_values().collect()
}

fn field_contribution(weight: &FieldWeight, facts: &[(&str, &Fact)]) -> Option<Contribution> {
    let relevant = facts
        .iter()
        .filter(|(_, f)| f.record_type == weight.record_type);
    // (value, records) of the person and group with the largest value; the first wins ties.
    let mut best: Option<(f64, Vec<RecordRef>)> = None;
    let mut consider = |value: f64, records: Vec<RecordRef>| {
        if best.as_ref().is_none_or(|(top, _)| value > *top) {
            best = Some((value, records));
        }
    };
    match &weight.sum_per {
        None => {
            for (about, fact) in relevant {
                if let Some(value) = fact.data.get(&weight.field).and_then(Value::as_f64) {
                    consider(value, vec![record_ref(about, fact)]);
                }
            }
        }
        Some(per) => {
            let mut groups: BTreeMap<(&str, String), (f64, Vec<RecordRef>)> = BTreeMap::new();
            for (about, fact) in relevant {
                let Some(value) = fact.data.get(&weight.field).and_then(Value::as_f64) else {
                    continue;
                };
                let key = fact.data.get(per).map(Value::to_string).unwrap_or_default();
                let group = groups.entry((about, key)).or_default();
                group.0 += value;
                group.1.push(record_ref(about, fact));
            }
            for (value, records) in groups.into_values() {
                consider(value, records);
            }
        }
    }
    let (value, records) = best?;
    let above = value - weight.from.unwrap_or(0.0);
    if above <= 0.0 {
        return None;
    }
    let points = weight.points_per_unit * above;
    let points = rounded(weight.cap.map_or(points, |cap| points.min(cap)));
    (points > 0.0).then(|| Contribution::Field {
        record_type: weight.record_type.clone(),
        field: weight.field.clone(),
        value: rounded(value),
        records,
        points,
    })
}

/// Why the child is already known, from its own records.
fn known_reasons(own: &[Fact]) -> Vec<KnownReason> {
    let mut known = Vec::new();
    let of = |t: &'static str| own.iter().filter(move |f| f.record_type == t);
    if of(OPEN_CASE_TYPE).any(|f| f.data.get("closed_on").is_none_or(Value::is_null)) {
        known.push(KnownReason::OpenCase);
    }
    if of(PROTECTION_TYPE).next().is_some() {
        known.push(KnownReason::TemporaryProtection);
    }
    let text = |f: &Fact, field: &str| {
        f.data
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let latest =
        of(OUTCOME_TYPE).max_by_key(|f| (text(f, "decided_on"), f.source_record_id.clone()));
    if latest
        .and_then(|f| text(f, "stage"))
        .is_some_and(|s| s == "support_needed" || s == "support_started")
    {
        known.push(KnownReason::InSupport);
    }
    if of(OUTCOME_TYPE).any(|f| f.data.get("review_outcome").is_some()) {
        known.push(KnownReason::Reviewed);
    }
    known
}

/// The school named by the child's latest education record carrying one.
fn school_code(own: &[Fact]) -> Option<String> {
    own.iter()
        .filter_map(|f| {
            let code = f.data.get(SCHOOL_CODE)?.as_str()?;
            Some(((&f.effective_date, &f.source_record_id), code))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, code)| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Standard;
    use crate::screening::{AgeBand, ItemWeight, default_rule_set};
    use serde_json::json;

    /// A town as the tests give it.
    #[derive(Debug, Clone, Default)]
    struct Inputs {
        children: Vec<Child>,
        /// Current records by the person they are about, in a fixed order.
        facts: HashMap<String, Vec<Fact>>,
        /// Everyone of the town under a DV support measure (children and guardians).
        support_measure: HashSet<String>,
    }

    /// Score every child in an age band, then extract per band; the extracted come first, highest
    /// score first, ties by resident number.
    fn screen(
        rules: &RuleSetDocument,
        applicability: &RuleSet,
        inputs: &Inputs,
        as_of: NaiveDate,
    ) -> Vec<Scored> {
        let scored = inputs
            .children
            .iter()
            .filter_map(|child| {
                score(
                    rules,
                    applicability,
                    child,
                    &inputs.facts,
                    &inputs.support_measure,
                    as_of,
                )
            })
            .collect();
        extract(rules, scored)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn fact(record_type: &str, id: &str, data: Value) -> Fact {
        Fact {
            record_type: record_type.into(),
            source_record_id: id.into(),
            effective_date: "2025-04-01".into(),
            data,
        }
    }

    fn child(no: &str, birth: &str, guardians: &[&str]) -> Child {
        Child {
            resident_no: no.into(),
            birth_date: date(birth),
            sex: Some(1),
            support_measure: false,
            guardians: guardians.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn town() -> Inputs {
        let mut inputs = Inputs {
            children: vec![
                child("A", "2020-05-01", &["M"]),
                child("B", "2020-06-01", &[]),
                child("C", "2015-01-01", &[]),
                child("D", "2015-02-01", &[]),
                child("E", "2000-01-01", &[]),
            ],
            ..Inputs::default()
        };
        let wellbeing = |id: &str| {
            fact(
                "school-wellbeing-check",
                id,
                json!({"result": "concern", "school_code": "S1"}),
            )
        };
        inputs.facts.insert(
            "M".into(),
            vec![fact("postnatal-checkup", "p1", json!({"epds_total": 15}))],
        );
        inputs.facts.insert(
            "A".into(),
            vec![
                fact("infant-checkup", "i1", json!({"attended": false})),
                wellbeing("w1"),
            ],
        );
        inputs.facts.insert(
            "B".into(),
            vec![fact("infant-checkup", "i2", json!({"attended": false}))],
        );
        inputs.facts.insert(
            "C".into(),
            vec![
                fact(
                    "school-attendance",
                    "a1",
                    json!({"school_year": 2024, "absence_days": 20}),
                ),
                fact(
                    "school-attendance",
                    "a2",
                    json!({"school_year": 2024, "absence_days": 25}),
                ),
                fact(
                    "school-attendance",
                    "a3",
                    json!({"school_year": 2023, "absence_days": 40}),
                ),
                wellbeing("w2"),
                fact(
                    "child-protection-case",
                    "c1",
                    json!({"registered_on": "2024-01-01"}),
                ),
            ],
        );
        inputs.facts.insert("D".into(), vec![wellbeing("w3")]);
        inputs
    }

    #[test]
    fn items_of_child_and_guardian_count_once_and_bands_extract() {
        let standard = Standard::load();
        let applicability = &standard.latest().applicability;
        let rules = default_rule_set(standard.latest(), 2);
        let screened = screen(&rules, applicability, &town(), date("2025-06-01"));
        let extracted: Vec<(&str, f64)> = screened
            .iter()
            .filter(|s| s.extracted)
            .map(|s| (s.resident_no.as_str(), s.score))
            .collect();
        // A: items 3, 14 and the mother's 17; C: 12 (40 days in 2023 … and 45 in 2024), 14, 1.
        assert_eq!(extracted, vec![("A", 3.0), ("C", 3.0)]);
        // E is 25: in no band, not screened.
        assert_eq!(screened.len(), 4);
        let c = screened.iter().find(|s| s.resident_no == "C").unwrap();
        assert_eq!(c.known, vec![KnownReason::OpenCase]);
        assert_eq!(c.school_code.as_deref(), Some("S1"));
    }

    #[test]
    fn fields_caps_exclusions_and_top_share() {
        let standard = Standard::load();
        let applicability = &standard.latest().applicability;
        let rules = RuleSetDocument {
            name: "t".into(),
            description: None,
            items: vec![ItemWeight {
                item: 14,
                points: 1.0,
            }],
            fields: vec![FieldWeight {
                record_type: "school-attendance".into(),
                field: "absence_days".into(),
                points_per_unit: 0.1,
                from: Some(10.0),
                cap: Some(3.0),
                sum_per: Some("school_year".into()),
            }],
            score_cap: Some(3.5),
            age_bands: vec![AgeBand {
                label: "all".into(),
                min_age: 0,
                max_age: 17,
                threshold: None,
                top_share: Some(0.25),
            }],
            exclude_known: vec![],
        };
        let inputs = town();
        let screened = screen(&rules, applicability, &inputs, date("2025-06-01"));
        let c = screened.iter().find(|s| s.resident_no == "C").unwrap();
        // 45 days in 2024 → (45 − 10) × 0.1 = 3.5, capped at 3; plus item 14 → 4, capped at 3.5.
        assert_eq!(c.score, 3.5);
        let field = c
            .contributions
            .iter()
            .find(|c| matches!(c, Contribution::Field { .. }))
            .unwrap();
        assert_eq!(field.points(), 3.0);
        // 4 children, top 25 % → one, C.
        let extracted: Vec<&str> = screened
            .iter()
            .filter(|s| s.extracted)
            .map(|s| s.resident_no.as_str())
            .collect();
        assert_eq!(extracted, vec!["C"]);
        // Excluding open cases, the share goes to A and D, tied at 1 point.
        let rules = RuleSetDocument {
            exclude_known: vec![KnownReason::OpenCase],
            ..rules
        };
        let screened = screen(&rules, applicability, &inputs, date("2025-06-01"));
        let extracted: Vec<&str> = screened
            .iter()
            .filter(|s| s.extracted)
            .map(|s| s.resident_no.as_str())
            .collect();
        assert_eq!(extracted, vec!["A", "D"]);
        assert!(
            screened
                .iter()
                .find(|s| s.resident_no == "C")
                .unwrap()
                .excluded
        );
    }

    #[test]
    fn a_dv_guardian_adds_nothing_to_a_child_without_the_measure() {
        let standard = Standard::load();
        let applicability = &standard.latest().applicability;
        let rules = default_rule_set(standard.latest(), 1);
        let mut inputs = town();
        inputs.support_measure.insert("M".into());
        let screened = screen(&rules, applicability, &inputs, date("2025-06-01"));
        let a = screened.iter().find(|s| s.resident_no == "A").unwrap();
        assert_eq!(a.score, 2.0);
        assert!(a.contributions.iter().all(|c| match c {
            Contribution::Item { records, .. } => records.iter().all(|r| r.about == "A"),
            Contribution::Field { .. } => false,
        }));
    }

    #[test]
    fn ages_in_full_years() {
        assert_eq!(age_on(date("2020-06-02"), date("2025-06-01")), Some(4));
        assert_eq!(age_on(date("2020-06-01"), date("2025-06-01")), Some(5));
        assert_eq!(age_on(date("2026-01-01"), date("2025-06-01")), None);
    }
}
