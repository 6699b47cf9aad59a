//! Screening worklists (判定・抽出): a town's versioned rule set (`schema/v1/screening-rules.json`)
//! scores children by the basic items that apply to them and by scorable numeric fields, and
//! extracts per age band those above a threshold or in a top share. The list supports a case
//! meeting of people (判定会議), which decides; the score only orders the list.
//!
//! Pure: the rule set's validation and the computation ([`engine`]) see no database and no
//! caller. Who may see which entry is decided by `access`.

pub mod engine;
pub mod workflow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::validate::field_errors;
use crate::schema::{FieldError, SchemaVersion, rules};

/// The rule-set schema file under `schema/vN/`.
pub const RULES_SCHEMA: &str = "screening-rules.json";

/// Minimum count of applicable items of the default rule set, unless asked otherwise.
pub const DEFAULT_MIN_ITEMS: u32 = 2;

/// Why a child is already known (the schema's `known_reason` code list).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KnownReason {
    /// A child-protection case (要対協) without `closed_on`.
    OpenCase,
    /// A temporary-protection record (一時保護).
    TemporaryProtection,
    /// The latest support-outcome stage is `support_needed` or `support_started`.
    InSupport,
    /// A support-outcome record carries a meeting's `review_outcome`.
    Reviewed,
}

/// The class a case meeting gives an entry (`review_outcome` of support-outcome: a–d).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionClass {
    /// a. 受理相当
    AcceptedCase,
    /// b. 予防的支援
    PreventiveSupport,
    /// c. 経過観察
    Watch,
    /// d. 対象外
    NotApplicable,
}

impl DecisionClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionClass::AcceptedCase => "accepted_case",
            DecisionClass::PreventiveSupport => "preventive_support",
            DecisionClass::Watch => "watch",
            DecisionClass::NotApplicable => "not_applicable",
        }
    }

    pub fn parse(text: &str) -> Option<DecisionClass> {
        [
            DecisionClass::AcceptedCase,
            DecisionClass::PreventiveSupport,
            DecisionClass::Watch,
            DecisionClass::NotApplicable,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }

    /// The support-outcome stage the decision reaches in the indicators' funnel: a child the
    /// meeting judged to need support (a, b) reached `support_needed`, the others `reviewed`.
    pub fn stage(self) -> &'static str {
        match self {
            DecisionClass::AcceptedCase | DecisionClass::PreventiveSupport => "support_needed",
            DecisionClass::Watch | DecisionClass::NotApplicable => "reviewed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemWeight {
    pub item: u32,
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldWeight {
    pub record_type: String,
    pub field: String,
    pub points_per_unit: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_per: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgeBand {
    pub label: String,
    pub min_age: u32,
    pub max_age: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_share: Option<f64>,
}

/// How a band extracts (the schema makes exactly one of the two present).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    Threshold(f64),
    TopShare(f64),
}

impl AgeBand {
    pub fn selection(&self) -> Selection {
        match (self.threshold, self.top_share) {
            (_, Some(share)) => Selection::TopShare(share),
            (threshold, None) => Selection::Threshold(threshold.unwrap_or(f64::INFINITY)),
        }
    }

    pub fn contains(&self, age: u32) -> bool {
        (self.min_age..=self.max_age).contains(&age)
    }
}

/// A screening rule set as a town stores it (see `schema/v1/screening-rules.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "name": "千代田区 2025年度 判定ルール",
    "items": [{"item": 1, "points": 3}, {"item": 14, "points": 2}, {"item": 17, "points": 3}],
    "fields": [{"record_type": "school-attendance", "field": "absence_days", "points_per_unit": 0.1, "sum_per": "school_year", "cap": 5}],
    "score_cap": 20,
    "age_bands": [
        {"label": "乳幼児", "min_age": 0, "max_age": 5, "threshold": 3},
        {"label": "学齢期", "min_age": 6, "max_age": 17, "top_share": 0.1}
    ],
    "exclude_known": ["open_case"]
}))]
pub struct RuleSetDocument {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(max_items = 64)]
    pub items: Vec<ItemWeight>,
    #[serde(default)]
    #[schema(max_items = 64)]
    pub fields: Vec<FieldWeight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_cap: Option<f64>,
    #[schema(max_items = 18)]
    pub age_bands: Vec<AgeBand>,
    #[serde(default)]
    #[schema(max_items = 4)]
    pub exclude_known: Vec<KnownReason>,
}

/// Every problem of a rule-set document: its schema first, then what the schema cannot say
/// (items the applicability rules do not have, fields not marked scorable, overlapping
/// bands, My Numbers in text). Empty when the document is valid.
pub fn problems(version: &SchemaVersion, document: &Value) -> Vec<FieldError> {
    let schema: Value = version
        .file(RULES_SCHEMA)
        .and_then(|text| serde_json::from_str(text).ok())
        .expect("the standard embeds the screening rule-set schema");
    let validator = jsonschema::options()
        .build(&schema)
        .expect("the screening rule-set schema compiles");
    let mut errors: Vec<FieldError> = validator
        .iter_errors(document)
        .flat_map(|e| field_errors(&e, document))
        .collect();
    let mut pointer = String::new();
    if rules::find_my_number_like(document, &mut pointer) {
        errors.push(FieldError::new(
            pointer,
            "my_number_like",
            "looks like it holds a My Number (個人番号), which the hub never stores",
        ));
    }
    if errors.is_empty() {
        match serde_json::from_value::<RuleSetDocument>(document.clone()) {
            Ok(parsed) => errors.extend(meaning_problems(version, &parsed)),
            Err(e) => errors.push(FieldError::new("", "schema", e.to_string())),
        }
    }
    errors.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.code.cmp(&b.code)));
    errors.dedup();
    errors.truncate(crate::schema::validate::MAX_ERRORS_PER_RECORD);
    errors
}

/// Parse a document [`problems`] found valid.
pub fn parse(
    version: &SchemaVersion,
    document: &Value,
) -> Result<RuleSetDocument, Vec<FieldError>> {
    let errors = problems(version, document);
    if !errors.is_empty() {
        return Err(errors);
    }
    serde_json::from_value(document.clone())
        .map_err(|e| vec![FieldError::new("", "schema", e.to_string())])
}

/// Is `field` of `record_type` a numeric field the standard marks scorable?
pub fn is_scorable(version: &SchemaVersion, record_type: &str, field: &str) -> bool {
    version
        .records
        .get(record_type)
        .and_then(|doc| doc.pointer(&format!("/properties/{field}/x-scorable")))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn meaning_problems(version: &SchemaVersion, doc: &RuleSetDocument) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let known_items: Vec<u32> = version.applicability.rules.iter().map(|r| r.item).collect();
    let mut seen = Vec::new();
    for (i, weight) in doc.items.iter().enumerate() {
        let at = format!("/items/{i}/item");
        if !known_items.contains(&weight.item) {
            errors.push(FieldError::new(
                at,
                "unknown_item",
                format!(
                    "item {} is not a basic item of the applicability rules {}",
                    weight.item, version.applicability.rule_set_version
                ),
            ));
        } else if seen.contains(&weight.item) {
            errors.push(FieldError::new(
                at,
                "duplicate_item",
                format!("item {} is weighted twice", weight.item),
            ));
        }
        seen.push(weight.item);
    }
    for (i, weight) in doc.fields.iter().enumerate() {
        let Some(schema) = version.records.get(&weight.record_type) else {
            errors.push(FieldError::new(
                format!("/fields/{i}/record_type"),
                "record_type_unknown",
                format!("unknown record_type {:?}", weight.record_type),
            ));
            continue;
        };
        if !is_scorable(version, &weight.record_type, &weight.field) {
            errors.push(FieldError::new(
                format!("/fields/{i}/field"),
                "not_scorable",
                format!(
                    "{} of {} is not a numeric field the standard marks scorable (x-scorable)",
                    weight.field, weight.record_type
                ),
            ));
        }
        if let Some(per) = &weight.sum_per
            && schema.pointer(&format!("/properties/{per}")).is_none()
        {
            errors.push(FieldError::new(
                format!("/fields/{i}/sum_per"),
                "unknown_field",
                format!("{per} is not a field of {}", weight.record_type),
            ));
        }
    }
    for (i, band) in doc.age_bands.iter().enumerate() {
        if band.max_age < band.min_age {
            errors.push(FieldError::new(
                format!("/age_bands/{i}/max_age"),
                "field_order",
                "max_age must be at least min_age",
            ));
        } else if let Some(j) = doc.age_bands[..i]
            .iter()
            .position(|other| band.min_age <= other.max_age && other.min_age <= band.max_age)
        {
            errors.push(FieldError::new(
                format!("/age_bands/{i}"),
                "overlapping_band",
                format!("ages {}–{} overlap band {j}", band.min_age, band.max_age),
            ));
        }
    }
    errors
}

/// Age bands of the default rule set: infants, preschool, primary, lower and upper secondary.
const DEFAULT_BANDS: [(&str, u32, u32); 5] = [
    ("0-2歳", 0, 2),
    ("3-5歳", 3, 5),
    ("6-11歳", 6, 11),
    ("12-14歳", 12, 14),
    ("15-17歳", 15, 17),
];

/// The default rule set, derived from the applicability rules: one point per applicable basic
/// item, and every age band extracts children with at least `min_items` items.
pub fn default_rule_set(version: &SchemaVersion, min_items: u32) -> RuleSetDocument {
    let mut items: Vec<u32> = version.applicability.rules.iter().map(|r| r.item).collect();
    items.sort_unstable();
    items.dedup();
    RuleSetDocument {
        name: format!("既定: 該当する基本連携項目が{min_items}以上"),
        description: Some(format!(
            "Derived from the applicability rules {}: one point per basic item that applies; a child with {min_items} or more items is extracted in every age band.",
            version.applicability.rule_set_version
        )),
        items: items
            .into_iter()
            .map(|item| ItemWeight { item, points: 1.0 })
            .collect(),
        fields: Vec::new(),
        score_cap: None,
        age_bands: DEFAULT_BANDS
            .iter()
            .map(|(label, min_age, max_age)| AgeBand {
                label: label.to_string(),
                min_age: *min_age,
                max_age: *max_age,
                threshold: Some(f64::from(min_items.max(1))),
                top_share: None,
            })
            .collect(),
        exclude_known: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Standard;
    use serde_json::json;

    fn codes(errors: &[FieldError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.pointer.clone(), e.code.clone()))
            .collect()
    }

    #[test]
    fn the_default_rule_set_is_valid_and_counts_items() {
        let standard = Standard::load();
        let version = standard.latest();
        let default = default_rule_set(version, 2);
        let doc = serde_json::to_value(&default).unwrap();
        assert_eq!(problems(version, &doc), vec![]);
        assert!(default.items.iter().all(|w| w.points == 1.0));
        assert!(default.items.iter().any(|w| w.item == 19));
        assert!(
            default
                .age_bands
                .iter()
                .all(|b| b.selection() == Selection::Threshold(2.0))
        );
    }

    #[test]
    fn problems_name_the_field() {
        let standard = Standard::load();
        let version = standard.latest();
        let doc = json!({
            "name": "x",
            "items": [{"item": 42, "points": 1}, {"item": 3, "points": 1}, {"item": 3, "points": 2}],
            "fields": [
                {"record_type": "postnatal-checkup", "field": "epds_total", "points_per_unit": 1, "cap": -1},
            ],
            "age_bands": [{"label": "a", "min_age": 0, "max_age": 5, "threshold": 1}],
        });
        assert_eq!(
            codes(&problems(version, &doc)),
            vec![("/fields/0/cap".to_string(), "range".to_string())]
        );
        let doc = json!({
            "name": "x",
            "items": [{"item": 42, "points": 1}, {"item": 3, "points": 1}, {"item": 3, "points": 2}],
            "fields": [
                {"record_type": "postnatal-checkup", "field": "visited_on", "points_per_unit": 1},
                {"record_type": "school-attendance", "field": "absence_days", "points_per_unit": 1, "sum_per": "term"},
                {"record_type": "nothing", "field": "x", "points_per_unit": 1},
            ],
            "age_bands": [
                {"label": "a", "min_age": 0, "max_age": 5, "threshold": 1},
                {"label": "b", "min_age": 5, "max_age": 9, "top_share": 0.1},
                {"label": "c", "min_age": 12, "max_age": 10, "top_share": 0.1},
            ],
        });
        assert_eq!(
            codes(&problems(version, &doc)),
            [
                ("/age_bands/1", "overlapping_band"),
                ("/age_bands/2/max_age", "field_order"),
                ("/fields/0/field", "not_scorable"),
                ("/fields/1/sum_per", "unknown_field"),
                ("/fields/2/record_type", "record_type_unknown"),
                ("/items/0/item", "unknown_item"),
                ("/items/2/item", "duplicate_item"),
            ]
            .map(|(p, c)| (p.to_string(), c.to_string()))
        );
        let both = json!({
            "name": "x",
            "age_bands": [{"label": "a", "min_age": 0, "max_age": 5, "threshold": 1, "top_share": 0.2}],
        });
        assert_eq!(
            codes(&problems(version, &both)),
            vec![("/age_bands/0".to_string(), "alternatives".to_string())]
        );
    }
}
