//! Test vectors derived mechanically from the schemas (the single source of truth), in the
//! spirit of the JSON Schema Test Suite: for every record type, valid minimal and maximal
//! records, every constraint violated once, and boundary values; plus file-level cases (CSV in
//! UTF-8, UTF-8 with BOM and CP932, bad encodings and headers, NDJSON line errors, JSON shapes).
//!
//! The expected errors are predicted from what each schema keyword means, not by running the
//! hub's validator, so the self-test that runs the vectors against the validator checks it. A
//! schema keyword the generator does not know is an error: no rule can be added unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::Level;
use crate::schema::SchemaVersion;

/// The index of the file cases, beside the record vectors (their data lives in `files/`).
pub const FILES_INDEX: &str = "files.json";

pub const GENERATED_BY: &str = "kodomo-hub conformance generate-vectors";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExpectedError {
    /// CSV row or NDJSON line (file cases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// Position of the record in a JSON file (file cases only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<usize>,
    pub pointer: String,
    pub code: String,
}

impl ExpectedError {
    fn at(pointer: &str, code: &str) -> ExpectedError {
        ExpectedError {
            row: None,
            column: None,
            record: None,
            pointer: pointer.to_string(),
            code: code.to_string(),
        }
    }
}

/// One record case.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub level: Level,
    pub requirement: String,
    pub description: String,
    pub data: Value,
    pub valid: bool,
    pub expected_errors: Vec<ExpectedError>,
}

/// The cases of one record type (`conformance/vectors/v<N>/<record-type>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordVectors {
    pub schema_version: String,
    pub record_type: String,
    pub schema: String,
    pub generated_by: String,
    pub cases: Vec<Case>,
}

/// One file case (`conformance/vectors/v<N>/files.json`); `file` is under `files/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileCase {
    pub id: String,
    pub level: Level,
    pub requirement: String,
    pub description: String,
    pub file: String,
    pub valid: bool,
    pub expected_errors: Vec<ExpectedError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileVectors {
    pub schema_version: String,
    pub generated_by: String,
    pub cases: Vec<FileCase>,
}

/// A file of the vectors directory: its path relative to `v<N>/` and its bytes.
pub type VectorFile = (String, Vec<u8>);

/// Keywords that only annotate (titles, labels, ids) and need no vector.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "x-description-en",
    "x-format-ja",
    "x-basic-item",
    "x-enum-labels",
    "x-current",
    // Screening: which numeric fields a rule set may weight, and the case meeting's a–d.
    "x-scorable",
    "x-enum-letters",
];
/// Keywords the generator derives cases for.
const RULES: &[&str] = &[
    "type",
    "allOf",
    "$ref",
    "if",
    "then",
    "properties",
    "required",
    "unevaluatedProperties",
    "additionalProperties",
    "x-field-order",
    "x-no-my-number",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "anyOf",
];

/// Dates of generated records: all equal, so every ordered pair of fields holds at equality.
const BASE_DATE: &str = "2021-04-01";
const EARLY_DATE: &str = "2000-01-01";
/// A synthetic value that passes the My Number check digit (never a real person's number).
const MY_NUMBER_LIKE: &str = "123456789018";
/// The same My Number disguised as people and systems write it (issue 14, finding 5): name,
/// text, and how it is written.
const MY_NUMBER_DISGUISES: [(&str, &str, &str); 7] = [
    (
        "full-width",
        "１２３４５６７８９０１８",
        "in full-width digits",
    ),
    ("dots", "1234.5678.9018", "with dots between the groups"),
    (
        "zwj",
        "1234\u{200D}5678\u{200D}9018",
        "with zero-width joiners between the groups",
    ),
    (
        "nbsp",
        "1234\u{00A0}5678\u{00A0}9018",
        "with no-break spaces between the groups",
    ),
    ("prefix", "MN:123456789018", "after a label (MN:)"),
    (
        "choon-dash",
        "1234ー5678ー9018",
        "with the prolonged sound mark ー as a dash",
    ),
    (
        "in-sentence",
        "個人番号は１２３４－５６７８－９０１８です",
        "inside a Japanese sentence",
    ),
];

/// A value matching each pattern used by the schemas. A new pattern needs a sample here.
fn pattern_sample(pattern: &str) -> Result<&'static str, String> {
    match pattern {
        "^[0-9A-Za-z-]{1,20}$" => Ok("T-0000001"),
        "^[0-9]{10}$" => Ok("0000000001"),
        "^F[0-9]{2}(\\.[0-9])?$" => Ok("F32.1"),
        "^1\\.[0-9]+$" => Ok("1.0"),
        "^[\\x21-\\x7E]+$" => Ok("vector-0001"),
        "^[0-9]{6}$" => Ok("131016"),
        "^[!-~]([ -~]{0,98}[!-~])?$" => Ok("staff-001"),
        other => Err(format!(
            "no sample value for pattern {other:?}; add one to pattern_sample"
        )),
    }
}

type Pair = (String, String);

/// `if {X: const C, required [X]} then {required [...]} | {properties {Y: false}}`.
#[derive(Debug, Clone)]
struct Condition {
    field: String,
    equals: Value,
    then_required: Vec<String>,
    then_forbidden: Vec<String>,
}

struct RecordRules<'a> {
    common: &'a Value,
    record_type: String,
    /// Top-level fields (envelope and own) with their effective schemas.
    properties: BTreeMap<String, Value>,
    required: Vec<String>,
    conditions: Vec<Condition>,
    order: Vec<Pair>,
    closed: bool,
    no_my_number: bool,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn check_keywords(schema: &Value, at: &str) -> Result<(), String> {
    if let Some(object) = schema.as_object() {
        for key in object.keys() {
            if !(ANNOTATIONS.contains(&key.as_str()) || RULES.contains(&key.as_str())) {
                return Err(format!(
                    "{at}: keyword {key:?} has no vector generator; extend conformance::vectors"
                ));
            }
        }
    }
    Ok(())
}

fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

impl<'a> RecordRules<'a> {
    fn new(record_type: &str, schema: &'a Value, common: &'a Value) -> Result<Self, String> {
        check_keywords(schema, record_type)?;
        let mut rules = RecordRules {
            common,
            record_type: record_type.to_string(),
            properties: BTreeMap::new(),
            required: Vec::new(),
            conditions: Vec::new(),
            order: Vec::new(),
            closed: schema.get("unevaluatedProperties") == Some(&Value::Bool(false))
                || schema.get("additionalProperties") == Some(&Value::Bool(false)),
            no_my_number: false,
        };
        let mut overlays = Vec::new();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            check_keywords(part, record_type)?;
            if let Some(reference) = part.get("$ref").and_then(Value::as_str) {
                let target = rules.resolve(reference)?;
                check_keywords(target, reference)?;
                rules.absorb(target)?;
            } else if let Some(condition) = part.get("if") {
                rules
                    .conditions
                    .push(parse_condition(condition, &part["then"])?);
            } else {
                overlays.push(part);
            }
        }
        rules.absorb(schema)?;
        // `allOf: [{properties: {subject: {required: [...]}}}]` adds rules to a field.
        for overlay in overlays {
            for (name, extra) in overlay["properties"].as_object().into_iter().flatten() {
                let target = rules
                    .properties
                    .get_mut(name)
                    .ok_or(format!("{record_type}: overlay on unknown field {name}"))?;
                let mut required = strings(target.get("required"));
                required.extend(strings(extra.get("required")));
                target["required"] = json!(required);
            }
        }
        Ok(rules)
    }

    fn resolve(&self, reference: &str) -> Result<&'a Value, String> {
        crate::schema::resolve_ref(reference, self.common)
            .ok_or(format!("cannot resolve {reference}"))
    }

    fn absorb(&mut self, schema: &Value) -> Result<(), String> {
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            let effective = self.effective(property)?;
            // A record's own definition of a field (e.g. record_type's const) refines the
            // envelope's.
            match self.properties.get_mut(name) {
                Some(existing) => {
                    for (k, v) in effective.as_object().into_iter().flatten() {
                        existing[k] = v.clone();
                    }
                }
                None => {
                    self.properties.insert(name.clone(), effective);
                }
            }
        }
        self.required.extend(strings(schema.get("required")));
        for pair in schema["x-field-order"].as_array().into_iter().flatten() {
            let pair = strings(Some(pair));
            if let [lesser, greater] = pair.as_slice() {
                self.order.push((lesser.clone(), greater.clone()));
            }
        }
        if schema.get("x-no-my-number") == Some(&Value::Bool(true)) {
            self.no_my_number = true;
        }
        Ok(())
    }

    /// A property schema with its `$ref` resolved (and nested references too).
    fn effective(&self, schema: &Value) -> Result<Value, String> {
        check_keywords(schema, "property")?;
        let mut merged = match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.effective(self.resolve(reference)?)?,
            None => json!({}),
        };
        for (k, v) in schema.as_object().into_iter().flatten() {
            if k == "$ref" || ANNOTATIONS.contains(&k.as_str()) {
                continue;
            }
            merged[k] = match k.as_str() {
                "properties" => {
                    let mut nested = Map::new();
                    for (name, property) in v.as_object().into_iter().flatten() {
                        nested.insert(name.clone(), self.effective(property)?);
                    }
                    Value::Object(nested)
                }
                "items" => self.effective(v)?,
                _ => v.clone(),
            };
        }
        Ok(merged)
    }

    fn is_trigger(&self, field: &str) -> bool {
        self.conditions.iter().any(|c| c.field == field)
    }

    /// The value of a condition's trigger field that forbids nothing, so every field fits.
    fn trigger_value(&self, field: &str, schema: &Value) -> Value {
        let candidates: Vec<Value> = match schema.get("enum").and_then(Value::as_array) {
            Some(values) => values.clone(),
            None => vec![json!(true), json!(false)],
        };
        candidates
            .iter()
            .find(|candidate| {
                !self.conditions.iter().any(|c| {
                    c.field == field && &c.equals == *candidate && !c.then_forbidden.is_empty()
                })
            })
            .or(candidates.first())
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// A valid value of `schema`; objects carry their required fields only (`full`: all).
    fn sample(&self, name: &str, schema: &Value, full: bool) -> Result<Value, String> {
        if let Some(value) = schema.get("const") {
            return Ok(value.clone());
        }
        if self.is_trigger(name) {
            return Ok(self.trigger_value(name, schema));
        }
        if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
            return Ok(first.clone());
        }
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        Ok(match schema.get("type").and_then(Value::as_str) {
            Some("string") => {
                if schema.get("format").and_then(Value::as_str) == Some("past-date") {
                    json!(BASE_DATE)
                } else if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                    json!(pattern_sample(pattern)?)
                } else {
                    let length = number("minLength").unwrap_or(1.0).max(1.0) as usize;
                    json!("あ".repeat(length))
                }
            }
            Some("integer") => json!(
                number("minimum")
                    .or(number("exclusiveMinimum").map(|m| m + 1.0))
                    .unwrap_or(0.0) as i64
            ),
            Some("number") => match number("minimum") {
                Some(minimum) => json!(minimum as i64),
                None => json!(number("exclusiveMinimum").map_or(0, |m| m as i64 + 1)),
            },
            Some("boolean") => json!(false),
            Some("array") => {
                let count = number("minItems")
                    .unwrap_or(0.0)
                    .max(if full { 1.0 } else { 0.0 });
                let items = &schema["items"];
                let distinct: Vec<Value> = match items.get("enum").and_then(Value::as_array) {
                    Some(values) => values.clone(),
                    None => vec![self.sample(name, items, full)?],
                };
                json!(
                    distinct
                        .into_iter()
                        .take(count as usize)
                        .collect::<Vec<_>>()
                )
            }
            Some("object") => {
                let mut object = Map::new();
                let mut wanted = strings(schema.get("required"));
                if let Some(first) = schema["anyOf"].get(0) {
                    wanted.extend(strings(first.get("required")));
                }
                for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                    if full || wanted.contains(field) {
                        object.insert(field.clone(), self.sample(field, property, full)?);
                    }
                }
                Value::Object(object)
            }
            other => return Err(format!("{name}: no sample for type {other:?}")),
        })
    }

    /// A valid record: required fields (`full`: every field) as conditions allow.
    fn record(&self, full: bool) -> Result<Value, String> {
        let mut record = Map::new();
        for (name, schema) in &self.properties {
            if full || self.required.contains(name) {
                record.insert(name.clone(), self.sample(name, schema, full)?);
            }
        }
        self.settle_conditions(&mut record)?;
        Ok(Value::Object(record))
    }

    /// Add fields a matching condition requires and drop those it forbids.
    fn settle_conditions(&self, record: &mut Map<String, Value>) -> Result<(), String> {
        for condition in &self.conditions {
            if record.get(&condition.field) == Some(&condition.equals) {
                for field in &condition.then_required {
                    if !record.contains_key(field) {
                        let schema = &self.properties[field];
                        record.insert(field.clone(), self.sample(field, schema, false)?);
                    }
                }
                for field in &condition.then_forbidden {
                    record.remove(field);
                }
            }
        }
        Ok(())
    }

    /// The structural errors of `record`: missing required fields, unknown fields, subject
    /// alternatives, conditions and field order. Values themselves are the case's concern.
    fn predict(&self, record: &Value) -> BTreeSet<ExpectedError> {
        let mut errors = BTreeSet::new();
        let Some(object) = record.as_object() else {
            return errors;
        };
        for field in &self.required {
            if !object.contains_key(field) {
                errors.insert(ExpectedError::at(&format!("/{field}"), "required"));
            }
        }
        if self.closed {
            for key in object.keys() {
                if !self.properties.contains_key(key) {
                    errors.insert(ExpectedError::at(&format!("/{key}"), "unknown_field"));
                }
            }
        }
        for (name, value) in object {
            if let Some(schema) = self.properties.get(name) {
                predict_nested(schema, value, std::slice::from_ref(name), &mut errors);
            }
        }
        for condition in &self.conditions {
            if object.get(&condition.field) == Some(&condition.equals) {
                for field in &condition.then_required {
                    if !object.contains_key(field) {
                        errors.insert(ExpectedError::at(&format!("/{field}"), "required"));
                    }
                }
                for field in &condition.then_forbidden {
                    if object.contains_key(field) {
                        errors.insert(ExpectedError::at(&format!("/{field}"), "not_allowed"));
                    }
                }
            }
        }
        for (lesser, greater) in &self.order {
            if let (Some(a), Some(b)) = (object.get(lesser), object.get(greater))
                && out_of_order(a, b)
            {
                errors.insert(ExpectedError::at(&format!("/{greater}"), "field_order"));
            }
        }
        errors
    }
}

fn parse_condition(condition: &Value, then: &Value) -> Result<Condition, String> {
    check_keywords(condition, "if")?;
    check_keywords(then, "then")?;
    let (field, test) = condition["properties"]
        .as_object()
        .and_then(|p| p.iter().next())
        .ok_or("an if without a property test")?;
    let equals = test
        .get("const")
        .cloned()
        .ok_or("an if whose test is not const")?;
    let then_forbidden = then["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, schema)| **schema == Value::Bool(false))
        .map(|(name, _)| name.clone())
        .collect();
    Ok(Condition {
        field: field.clone(),
        equals,
        then_required: strings(then.get("required")),
        then_forbidden,
    })
}

/// Required fields, unknown fields and alternatives inside nested objects and arrays.
fn predict_nested(
    schema: &Value,
    value: &Value,
    at: &[String],
    errors: &mut BTreeSet<ExpectedError>,
) {
    let here = pointer(at);
    match value {
        Value::Object(object) if schema.get("type").and_then(Value::as_str) == Some("object") => {
            for field in strings(schema.get("required")) {
                if !object.contains_key(&field) {
                    errors.insert(ExpectedError::at(&format!("{here}/{field}"), "required"));
                }
            }
            if let Some(alternatives) = schema["anyOf"].as_array()
                && !alternatives.iter().any(|alternative| {
                    strings(alternative.get("required"))
                        .iter()
                        .all(|f| object.contains_key(f))
                })
            {
                errors.insert(ExpectedError::at(&here, "alternatives"));
            }
            let properties = schema["properties"].as_object();
            for (key, nested) in object {
                let mut path = at.to_vec();
                path.push(key.clone());
                match properties.and_then(|p| p.get(key)) {
                    Some(property) => predict_nested(property, nested, &path, errors),
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errors.insert(ExpectedError::at(&pointer(&path), "unknown_field"));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) if schema.get("items").is_some() => {
            for (i, item) in items.iter().enumerate() {
                let mut path = at.to_vec();
                path.push(i.to_string());
                predict_nested(&schema["items"], item, &path, errors);
            }
        }
        _ => {}
    }
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
}

/// Is `greater` before `lesser`? Only comparable values (numbers, real dates) can be.
fn out_of_order(lesser: &Value, greater: &Value) -> bool {
    match (lesser, greater) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() > b.as_f64(),
        (Value::String(a), Value::String(b)) => match (parse_date(a), parse_date(b)) {
            (Some(a), Some(b)) => a > b,
            _ => false,
        },
        _ => false,
    }
}

/// Builds the cases of one record type.
struct Generator<'a> {
    rules: RecordRules<'a>,
    minimal: Value,
    cases: Vec<Case>,
}

fn set_at(record: &mut Value, path: &[String], value: Option<Value>) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut target = record;
    for key in parents {
        target = if let Ok(index) = key.parse::<usize>() {
            &mut target[index]
        } else {
            &mut target[key.as_str()]
        };
    }
    match (value, target) {
        (Some(value), Value::Array(items)) => {
            let index: usize = last.parse().expect("array index");
            items.resize(index + 1, Value::Null);
            items[index] = value;
        }
        (Some(value), target) => target[last.as_str()] = value,
        (None, Value::Object(object)) => {
            object.remove(last);
        }
        (None, _) => {}
    }
}

impl<'a> Generator<'a> {
    /// Add a case whose record is `record`; `own` are the errors of the value under test.
    fn push(
        &mut self,
        id: &str,
        requirement: &str,
        description: &str,
        record: Value,
        own: &[ExpectedError],
    ) {
        let mut expected = self.rules.predict(&record);
        expected.extend(own.iter().cloned());
        self.cases.push(Case {
            id: format!("{}/{id}", self.rules.record_type),
            level: Level::Shall,
            requirement: requirement.to_string(),
            description: description.to_string(),
            data: record,
            valid: expected.is_empty(),
            expected_errors: expected.into_iter().collect(),
        });
    }

    /// The minimal record with `path` (inside nested objects, created as needed) set to
    /// `value`, or removed when `None`; order partners are moved out of the way.
    fn with(&self, path: &[String], value: Option<Value>) -> Result<Value, String> {
        let mut record = self.minimal.clone();
        let mut schema: Option<&Value> = None;
        for depth in 0..path.len().saturating_sub(1) {
            let key = &path[depth];
            schema = Some(match schema {
                None => &self.rules.properties[key],
                Some(s) if s.get("items").is_some() => &s["items"],
                Some(s) => &s["properties"][key.as_str()],
            });
            if record.pointer(&pointer(&path[..=depth])).is_none() {
                let sample = self.rules.sample(key, schema.expect("set above"), false)?;
                let sample = match sample {
                    Value::Array(items) if items.is_empty() => {
                        let item = &schema.expect("set above")["items"];
                        json!([self.rules.sample(key, item, false)?])
                    }
                    other => other,
                };
                set_at(&mut record, &path[..=depth], Some(sample));
            }
        }
        if path.len() == 1 {
            self.clear_partners(&mut record, &path[0])?;
        }
        set_at(&mut record, path, value);
        Ok(record)
    }

    /// Move fields ordered against `field` to the far end of their range, so a value under
    /// test violates nothing but its own rule.
    fn clear_partners(&self, record: &mut Value, field: &str) -> Result<(), String> {
        for (lesser, greater) in &self.rules.order {
            let (partner, low) = if lesser == field {
                (greater, false)
            } else if greater == field {
                (lesser, true)
            } else {
                continue;
            };
            if record.get(partner).is_none() {
                continue;
            }
            let schema = &self.rules.properties[partner];
            let extreme = if schema.get("format").and_then(Value::as_str) == Some("past-date") {
                if !low {
                    return Err(format!(
                        "{}: no date is safely after every other; cannot isolate {field}",
                        self.rules.record_type
                    ));
                }
                json!(EARLY_DATE)
            } else if low {
                schema["minimum"].clone()
            } else {
                schema["maximum"].clone()
            };
            record[partner.as_str()] = extreme;
        }
        Ok(())
    }

    fn generate(&mut self) -> Result<(), String> {
        let maximal = self.rules.record(true)?;
        self.push(
            "valid/minimal",
            "KDL-REC-001",
            "only the required fields",
            self.minimal.clone(),
            &[],
        );
        self.push(
            "valid/maximal",
            "KDL-REC-002",
            "every field the schema defines",
            maximal,
            &[],
        );
        self.dispatch_cases()?;
        self.my_number_cases()?;
        let fields: Vec<(String, Value)> = self
            .rules
            .properties
            .iter()
            .filter(|(name, _)| !DISPATCH_FIELDS.contains(&name.as_str()))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        for (name, schema) in &fields {
            if self.rules.required.contains(name) {
                let record = self.with(std::slice::from_ref(name), None)?;
                self.push(
                    &format!("required/{name}"),
                    "KDL-REC-001",
                    &format!("{name} missing"),
                    record,
                    &[],
                );
            }
            self.value_cases(std::slice::from_ref(name), schema)?;
        }
        if self.rules.closed {
            let mut record = self.minimal.clone();
            record["x_unknown_field"] = json!(1);
            self.push(
                "unknown-field",
                "KDL-REC-009",
                "a field the schema does not define",
                record,
                &[],
            );
        }
        self.order_cases()?;
        self.condition_cases()?;
        let ids: BTreeSet<&String> = self.cases.iter().map(|c| &c.id).collect();
        if ids.len() != self.cases.len() {
            return Err(format!("{}: duplicate case ids", self.rules.record_type));
        }
        Ok(())
    }

    /// record_type and schema_version choose the schema, so the hub checks them first with
    /// codes of their own.
    fn dispatch_cases(&mut self) -> Result<(), String> {
        let missing_type = self.with(&["record_type".into()], None)?;
        self.push(
            "required/record_type",
            "KDL-REC-001",
            "record_type missing",
            missing_type,
            &[ExpectedError::at("/record_type", "required")],
        );
        let mut unknown = self.minimal.clone();
        unknown["record_type"] = json!("no-such-record-type");
        self.cases.push(Case {
            id: format!("{}/record_type/unknown", self.rules.record_type),
            level: Level::Shall,
            requirement: "KDL-REC-013".into(),
            description: "a record type the standard does not define".into(),
            data: unknown,
            valid: false,
            expected_errors: vec![ExpectedError::at("/record_type", "record_type_unknown")],
        });
        for (variant, value) in [
            ("missing", None),
            ("unsupported", Some(json!("2.0"))),
            ("unsupported-minor", Some(json!("1.99"))),
        ] {
            let record = self.with(&["schema_version".into()], value)?;
            self.cases.push(Case {
                id: format!("{}/schema_version/{variant}", self.rules.record_type),
                level: Level::Shall,
                requirement: "KDL-REC-013".into(),
                description: format!("schema_version {variant}"),
                data: record,
                valid: false,
                expected_errors: vec![ExpectedError::at(
                    "/schema_version",
                    "schema_version_unsupported",
                )],
            });
        }
        Ok(())
    }

    fn my_number_cases(&mut self) -> Result<(), String> {
        if !self.rules.no_my_number {
            return Ok(());
        }
        let id_path = vec!["source_record_id".to_string()];
        let record = self.with(&id_path, Some(json!(MY_NUMBER_LIKE)))?;
        self.push(
            "my-number/source_record_id",
            "KDL-REC-011",
            "an id that passes the My Number check digit",
            record,
            &[ExpectedError::at("/source_record_id", "my_number_like")],
        );
        let record = self.with(&id_path, Some(json!("123456789012")))?;
        self.push(
            "my-number/near-miss",
            "KDL-REC-011",
            "twelve digits with a wrong My Number check digit are allowed",
            record,
            &[],
        );
        let has_student_no = self
            .rules
            .properties
            .get("subject")
            .and_then(|s| s.pointer("/properties/local_ids/properties/student_no"))
            .is_some();
        if has_student_no {
            let path: Vec<String> = ["subject", "local_ids", "student_no"]
                .map(String::from)
                .to_vec();
            let record = self.with(&path, Some(json!("1234 5678 9018")))?;
            self.push(
                "my-number/nested-spaced",
                "KDL-REC-011",
                "a My Number written with spaces in a nested field",
                record,
                &[ExpectedError::at(
                    "/subject/local_ids/student_no",
                    "my_number_like",
                )],
            );
            for (name, written, how) in MY_NUMBER_DISGUISES {
                let record = self.with(&path, Some(json!(written)))?;
                self.push(
                    &format!("my-number/disguised/{name}"),
                    "KDL-REC-011",
                    &format!("a My Number written {how}"),
                    record,
                    &[ExpectedError::at(
                        "/subject/local_ids/student_no",
                        "my_number_like",
                    )],
                );
            }
            let record = self.with(&path, Some(json!("1234567890180")))?;
            self.push(
                "my-number/thirteen-digits",
                "KDL-REC-011",
                "thirteen digits in one group (e.g. a corporate number) are allowed",
                record,
                &[],
            );
        }
        Ok(())
    }

    /// Cases for one value: type, code list, range, length, pattern, date, lists, objects.
    fn value_cases(&mut self, path: &[String], schema: &Value) -> Result<(), String> {
        let at = pointer(path);
        let key = path
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(".");
        let own = |code: &str| vec![ExpectedError::at(&at, code)];
        let kind = schema.get("type").and_then(Value::as_str).unwrap_or("");
        let enumeration = schema.get("enum").and_then(Value::as_array).cloned();
        if !kind.is_empty() {
            let wrong = match kind {
                "string" => json!(1),
                "integer" | "number" => json!("1"),
                "boolean" => json!("true"),
                _ => json!(true),
            };
            let mut errors = own("type");
            if enumeration
                .as_ref()
                .is_some_and(|values| !values.contains(&wrong))
            {
                errors.extend(own("enum"));
            }
            let record = self.with(path, Some(wrong))?;
            self.push(
                &format!("type/{key}"),
                "KDL-REC-002",
                &format!("{key} of the wrong type"),
                record,
                &errors,
            );
        }
        if let Some(values) = &enumeration {
            for value in values {
                let record = self.with(path, Some(value.clone()))?;
                self.push(
                    &format!("enum/{key}/{}", value_name(value)),
                    "KDL-REC-003",
                    &format!("{key} = each code of the list"),
                    record,
                    &[],
                );
            }
            let outside = match kind {
                "integer" => json!((0..).find(|n| !values.contains(&json!(n))).unwrap_or(0)),
                _ => json!("not-a-code"),
            };
            let record = self.with(path, Some(outside))?;
            self.push(
                &format!("enum/{key}/outside"),
                "KDL-REC-003",
                &format!("{key} outside the code list"),
                record,
                &own("enum"),
            );
        }
        let number = |k: &str| schema.get(k).and_then(Value::as_f64);
        let step = if kind == "integer" { 1.0 } else { 0.5 };
        let num = |v: f64| -> Value {
            if v.fract() == 0.0 {
                json!(v as i64)
            } else {
                json!(v)
            }
        };
        for (name, inside, outside) in [
            (
                "minimum",
                number("minimum"),
                number("minimum").map(|m| m - step),
            ),
            (
                "maximum",
                number("maximum"),
                number("maximum").map(|m| m + step),
            ),
            (
                "exclusiveMinimum",
                number("exclusiveMinimum").map(|m| m + step / 5.0),
                number("exclusiveMinimum"),
            ),
            (
                "exclusiveMaximum",
                number("exclusiveMaximum").map(|m| m - step / 5.0),
                number("exclusiveMaximum"),
            ),
        ] {
            let (Some(inside), Some(outside)) = (inside, outside) else {
                continue;
            };
            let record = self.with(path, Some(num(inside)))?;
            self.push(
                &format!("{name}/{key}/at-bound"),
                "KDL-REC-004",
                &format!("{key} at its {name}"),
                record,
                &[],
            );
            let record = self.with(path, Some(num(outside)))?;
            self.push(
                &format!("{name}/{key}/beyond"),
                "KDL-REC-004",
                &format!("{key} beyond its {name}"),
                record,
                &own("range"),
            );
        }
        // Filler of lengths: a character the field's pattern allows.
        let filler = match schema.get("pattern").and_then(Value::as_str) {
            Some(pattern) => pattern_sample(pattern)?
                .chars()
                .next()
                .unwrap_or('a')
                .to_string(),
            None => "あ".to_string(),
        };
        let length_cases = [
            ("minLength", number("minLength"), 0.0, -1.0),
            ("maxLength", number("maxLength"), 0.0, 1.0),
        ];
        for (name, bound, inside, outside) in length_cases {
            let Some(n) = bound else {
                continue;
            };
            for (variant, length) in [("at-bound", n + inside), ("beyond", n + outside)] {
                if length < 0.0 {
                    continue;
                }
                let text = filler.repeat(length as usize);
                let mut errors = if variant == "beyond" {
                    own("length")
                } else {
                    Vec::new()
                };
                errors.extend(pattern_errors(schema, &text, &at)?);
                let record = self.with(path, Some(json!(text)))?;
                self.push(
                    &format!("{name}/{key}/{variant}"),
                    "KDL-REC-005",
                    &format!("{key} {variant} of its {name}"),
                    record,
                    &errors,
                );
            }
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let record = self.with(path, Some(json!(pattern_sample(pattern)?)))?;
            self.push(
                &format!("pattern/{key}/match"),
                "KDL-REC-005",
                &format!("{key} in its pattern"),
                record,
                &[],
            );
            let record = self.with(path, Some(json!(" ")))?;
            self.push(
                &format!("pattern/{key}/mismatch"),
                "KDL-REC-005",
                &format!("{key} outside its pattern"),
                record,
                &own("pattern"),
            );
        }
        match schema.get("format").and_then(Value::as_str) {
            Some("past-date") => {
                for (variant, value, code) in [
                    ("leap-day", "2020-02-29", None),
                    ("not-a-day", "2021-02-29", Some("date_format")),
                    ("unpadded", "2021-4-01", Some("date_format")),
                    ("japanese-era", "令和3年4月1日", Some("date_format")),
                    ("future", "2999-01-01", Some("future_date")),
                ] {
                    let record = self.with(path, Some(json!(value)))?;
                    let errors = code.map(&own).unwrap_or_default();
                    self.push(
                        &format!("date/{key}/{variant}"),
                        "KDL-REC-006",
                        &format!("{key}: {variant}"),
                        record,
                        &errors,
                    );
                }
            }
            Some("municipality-code") => {
                for (variant, value, code) in [
                    ("check-digit-ok", "131016", None),
                    ("check-digit-wrong", "131017", Some("municipality_code")),
                ] {
                    let record = self.with(path, Some(json!(value)))?;
                    let errors = code.map(&own).unwrap_or_default();
                    self.push(
                        &format!("municipality-code/{key}/{variant}"),
                        "KDL-REC-014",
                        &format!("{key}: {variant}"),
                        record,
                        &errors,
                    );
                }
            }
            Some(other) => return Err(format!("{key}: no vectors for format {other}")),
            None => {}
        }
        if kind == "array" {
            self.array_cases(path, schema)?;
        }
        if kind == "object" {
            self.object_cases(path, schema)?;
        }
        Ok(())
    }

    fn array_cases(&mut self, path: &[String], schema: &Value) -> Result<(), String> {
        let at = pointer(path);
        let key = path.join(".");
        let item = self.rules.sample(&key, &schema["items"], false)?;
        if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
            let record = self.with(path, Some(json!([item.clone(), item.clone()])))?;
            self.push(
                &format!("uniqueItems/{key}"),
                "KDL-REC-012",
                &format!("{key} with a duplicate"),
                record,
                &[ExpectedError::at(&at, "duplicate_item")],
            );
        }
        if let Some(n) = schema.get("minItems").and_then(Value::as_u64)
            && n > 0
        {
            let record = self.with(path, Some(json!([])))?;
            self.push(
                &format!("minItems/{key}"),
                "KDL-REC-012",
                &format!("{key} with too few items"),
                record,
                &[ExpectedError::at(&at, "items_count")],
            );
        }
        if let Some(n) = schema.get("maxItems").and_then(Value::as_u64) {
            let record = self.with(path, Some(json!(vec![item.clone(); n as usize + 1])))?;
            // Copies of one item: where items must be unique, that is a second error.
            let mut errors = vec![ExpectedError::at(&at, "items_count")];
            if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
                errors.push(ExpectedError::at(&at, "duplicate_item"));
            }
            self.push(
                &format!("maxItems/{key}"),
                "KDL-REC-012",
                &format!("{key} with too many items"),
                record,
                &errors,
            );
        }
        let mut item_path = path.to_vec();
        item_path.push("0".into());
        let record = self.with(path, Some(json!([item])))?;
        self.push(
            &format!("items/{key}/valid"),
            "KDL-REC-012",
            &format!("{key} with one valid item"),
            record,
            &[],
        );
        self.value_cases(&item_path, &schema["items"])
    }

    fn object_cases(&mut self, path: &[String], schema: &Value) -> Result<(), String> {
        let key = path.join(".");
        let required = strings(schema.get("required"));
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let mut nested = path.to_vec();
            nested.push(field.clone());
            if required.contains(field) {
                let record = self.with(&nested, None)?;
                self.push(
                    &format!("required/{key}.{field}"),
                    "KDL-REC-001",
                    &format!("{key}.{field} missing"),
                    record,
                    &[],
                );
            }
            self.value_cases(&nested, property)?;
        }
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            let mut nested = path.to_vec();
            nested.push("x_unknown_field".into());
            let record = self.with(&nested, Some(json!(1)))?;
            self.push(
                &format!("unknown-field/{key}"),
                "KDL-REC-009",
                &format!("{key} with a field the schema does not define"),
                record,
                &[],
            );
        }
        if let Some(alternatives) = schema["anyOf"].as_array() {
            for (i, alternative) in alternatives.iter().enumerate() {
                let mut object = Map::new();
                for field in strings(alternative.get("required")) {
                    let property = &schema["properties"][field.as_str()];
                    object.insert(field.clone(), self.rules.sample(&field, property, false)?);
                }
                let record = self.with(path, Some(Value::Object(object)))?;
                self.push(
                    &format!("anyOf/{key}/alternative-{i}"),
                    "KDL-REC-010",
                    &format!("{key} in its allowed form {i}"),
                    record,
                    &[],
                );
            }
            let record = self.with(path, Some(json!({})))?;
            self.push(
                &format!("anyOf/{key}/none"),
                "KDL-REC-010",
                &format!("{key} in none of its allowed forms"),
                record,
                &[],
            );
        }
        Ok(())
    }

    fn order_cases(&mut self) -> Result<(), String> {
        for (lesser, greater) in self.rules.order.clone() {
            let (a, b) = (
                &self.rules.properties[&lesser],
                &self.rules.properties[&greater],
            );
            let (low, high) = if a.get("format").and_then(Value::as_str) == Some("past-date") {
                (json!(BASE_DATE), json!("2021-04-02"))
            } else {
                let low = a["minimum"]
                    .as_i64()
                    .unwrap_or(0)
                    .max(b["minimum"].as_i64().unwrap_or(0));
                (json!(low), json!(low + 1))
            };
            let mut record = self.minimal.clone();
            record[lesser.as_str()] = low.clone();
            record[greater.as_str()] = low.clone();
            self.push(
                &format!("order/{lesser}-{greater}/equal"),
                "KDL-REC-007",
                &format!("{greater} equal to {lesser}"),
                record.clone(),
                &[],
            );
            record[lesser.as_str()] = high;
            self.push(
                &format!("order/{lesser}-{greater}/reversed"),
                "KDL-REC-007",
                &format!("{greater} before {lesser}"),
                record,
                &[],
            );
        }
        Ok(())
    }

    fn condition_cases(&mut self) -> Result<(), String> {
        for (i, condition) in self.rules.conditions.clone().iter().enumerate() {
            let mut record = self.rules.record(true)?;
            record[condition.field.as_str()] = condition.equals.clone();
            let object = record.as_object_mut().expect("object");
            for other in &self.rules.conditions {
                if object.get(&other.field) == Some(&other.equals) {
                    for field in &other.then_forbidden {
                        object.remove(field);
                    }
                }
            }
            let when = format!("{} = {}", condition.field, condition.equals);
            self.push(
                &format!("condition/{i}/satisfied"),
                "KDL-REC-008",
                &format!("every field allowed when {when}"),
                record.clone(),
                &[],
            );
            for field in &condition.then_required {
                let mut without = record.clone();
                without.as_object_mut().expect("object").remove(field);
                self.push(
                    &format!("condition/{i}/missing/{field}"),
                    "KDL-REC-008",
                    &format!("{field} missing although {when}"),
                    without,
                    &[],
                );
            }
            for field in &condition.then_forbidden {
                let mut with = record.clone();
                with[field.as_str()] =
                    self.rules
                        .sample(field, &self.rules.properties[field], false)?;
                self.push(
                    &format!("condition/{i}/forbidden/{field}"),
                    "KDL-REC-008",
                    &format!("{field} present although {when}"),
                    with,
                    &[],
                );
            }
        }
        Ok(())
    }
}

/// The pattern error a string would get, if any.
fn pattern_errors(schema: &Value, text: &str, at: &str) -> Result<Vec<ExpectedError>, String> {
    let Some(pattern) = schema.get("pattern").and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    let regex = regex::Regex::new(pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
    Ok(if regex.is_match(text) {
        Vec::new()
    } else {
        vec![ExpectedError::at(at, "pattern")]
    })
}

const DISPATCH_FIELDS: &[&str] = &["record_type", "schema_version"];

fn value_name(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The vectors of every record type of `version`, derived from its schemas.
pub fn generate_records(version: &SchemaVersion) -> Result<Vec<RecordVectors>, String> {
    version
        .records
        .iter()
        .map(|(record_type, schema)| {
            let rules = RecordRules::new(record_type, schema, &version.common)?;
            let minimal = rules.record(false)?;
            let mut generator = Generator {
                rules,
                minimal,
                cases: Vec::new(),
            };
            generator.generate()?;
            Ok(RecordVectors {
                schema_version: version.major.to_string(),
                record_type: record_type.clone(),
                schema: format!("schema/v{}/records/{record_type}.json", version.major),
                generated_by: GENERATED_BY.into(),
                cases: generator.cases,
            })
        })
        .collect()
}

fn file_error(
    row: Option<u64>,
    column: Option<&str>,
    record: Option<usize>,
    pointer: &str,
    code: &str,
) -> ExpectedError {
    ExpectedError {
        row,
        column: column.map(str::to_string),
        record,
        pointer: pointer.to_string(),
        code: code.to_string(),
    }
}

fn cp932(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable, "file vectors use only CP932 characters");
    bytes.into_owned()
}

/// File-level cases (hand-written: they are about encodings and layouts, not schema rules).
pub fn generate_files(version: &SchemaVersion) -> Result<(FileVectors, Vec<VectorFile>), String> {
    const HEADER: &str = "record_type,schema_version,source_record_id,subject.resident_no,effective_date,school_year,period,absence_days\n";
    let row = |id: &str, absence: &str| {
        format!("school-attendance,1.0,{id},T-0000001,2021-04-01,2021,term1,{absence}\n")
    };
    let valid_csv = format!("{HEADER}{}{}", row("csv-0001", "3"), row("csv-0002", "0"));
    let wellbeing = "record_type,schema_version,source_record_id,subject.resident_no,effective_date,checked_on,instrument,result\n\
        school-wellbeing-check,1.0,sjis-0001,T-0000001,2021-04-01,2021-04-01,こころの健康観察（髙﨑式）,watch\n";
    let ndjson_line = |id: &str| {
        format!(
            "{{\"record_type\":\"school-attendance\",\"schema_version\":\"1.0\",\"source_record_id\":\"{id}\",\"subject\":{{\"resident_no\":\"T-0000001\"}},\"effective_date\":\"2021-04-01\",\"school_year\":2021,\"period\":\"term1\",\"absence_days\":3}}\n"
        )
    };
    let mut files: Vec<VectorFile> = Vec::new();
    let mut signatures: Vec<VectorFile> = Vec::new();
    let mut cases = Vec::new();
    let mut add = |file: &str,
                   bytes: Vec<u8>,
                   requirement: &str,
                   description: &str,
                   errors: Vec<ExpectedError>| {
        files.push((file.to_string(), bytes));
        cases.push(FileCase {
            id: format!(
                "files/{}",
                file.rsplit_once('.').map_or(file, |(stem, _)| stem)
            ),
            level: Level::Shall,
            requirement: requirement.to_string(),
            description: description.to_string(),
            file: file.to_string(),
            valid: errors.is_empty(),
            expected_errors: errors,
        });
    };
    add(
        "csv-utf8.csv",
        valid_csv.clone().into_bytes(),
        "KDL-FILE-003",
        "CSV in UTF-8",
        vec![],
    );
    add(
        "csv-utf8-bom.csv",
        [b"\xEF\xBB\xBF".as_slice(), valid_csv.as_bytes()].concat(),
        "KDL-FILE-003",
        "CSV in UTF-8 with a byte order mark",
        vec![],
    );
    add(
        "csv-cp932.csv",
        cp932(wellbeing),
        "KDL-FILE-003",
        "CSV in CP932 (Shift_JIS) with kanji variants",
        vec![],
    );
    add(
        "csv-cp932-errors.csv",
        cp932(&format!(
            "{HEADER}{}{}{}",
            row("sjis-0001", "3"),
            row("sjis-0002", "三日"),
            row("sjis-0003", "400")
        )),
        "KDL-FILE-005",
        "CP932 CSV: a cell that is not a number (row 3) and a number out of range (row 4)",
        vec![
            file_error(
                Some(3),
                Some("absence_days"),
                None,
                "/absence_days",
                "csv_value",
            ),
            file_error(
                Some(4),
                Some("absence_days"),
                None,
                "/absence_days",
                "range",
            ),
        ],
    );
    add(
        "csv-bad-encoding.csv",
        [
            HEADER.as_bytes(),
            b"school-attendance,1.0,\xFF\xFE,T-0000001\n",
        ]
        .concat(),
        "KDL-FILE-003",
        "bytes that are neither UTF-8 nor CP932",
        vec![file_error(None, None, None, "", "encoding")],
    );
    add(
        "csv-unknown-column.csv",
        format!(
            "record_type,schema_version,nickname\n{}",
            "school-attendance,1.0,x\n"
        )
        .into_bytes(),
        "KDL-FILE-004",
        "a header that is not a published column",
        vec![file_error(
            Some(1),
            Some("nickname"),
            None,
            "",
            "csv_header_unknown",
        )],
    );
    add(
        "csv-duplicate-column.csv",
        "record_type,schema_version,schema_version\nschool-attendance,1.0,1.0\n"
            .as_bytes()
            .to_vec(),
        "KDL-FILE-004",
        "a column named twice",
        vec![file_error(
            Some(1),
            Some("schema_version"),
            None,
            "",
            "csv_header_duplicate",
        )],
    );
    add(
        "csv-no-record-type.csv",
        "schema_version,source_record_id\n1.0,x\n"
            .as_bytes()
            .to_vec(),
        "KDL-FILE-004",
        "a CSV without a record_type column",
        vec![file_error(None, None, None, "", "record_type_required")],
    );
    add(
        "ndjson-valid.ndjson",
        format!("{}\n{}", ndjson_line("nd-0001"), ndjson_line("nd-0002")).into_bytes(),
        "KDL-FILE-002",
        "NDJSON with a blank line",
        vec![],
    );
    let mut lines = ndjson_line("nd-0001").into_bytes();
    lines.extend_from_slice(b"{\"record_type\": \n");
    lines.extend_from_slice(b"{\"record_type\":\"\xFF\"}\n");
    lines.extend_from_slice(
        ndjson_line("nd-0004")
            .replace(",\"absence_days\":3", "")
            .as_bytes(),
    );
    add(
        "ndjson-line-errors.ndjson",
        lines,
        "KDL-FILE-002",
        "NDJSON: bad JSON on line 2, bad UTF-8 on line 3, a record missing a field on line 4",
        vec![
            file_error(Some(2), None, None, "", "json_syntax"),
            file_error(Some(3), None, None, "", "utf8"),
            file_error(Some(4), None, None, "/absence_days", "required"),
        ],
    );
    let record = ndjson_line("js-0001");
    add(
        "json-batch.json",
        format!("{{\"records\":[{}]}}", record.trim()).into_bytes(),
        "KDL-FILE-001",
        "a JSON batch",
        vec![],
    );
    add(
        "json-array.json",
        format!("[{}]", record.trim()).into_bytes(),
        "KDL-FILE-001",
        "a JSON array of records",
        vec![],
    );
    add(
        "json-syntax.json",
        b"{\"records\": [".to_vec(),
        "KDL-FILE-001",
        "truncated JSON",
        vec![file_error(None, None, None, "", "json_syntax")],
    );
    add(
        "json-shape.json",
        b"{\"items\": []}".to_vec(),
        "KDL-FILE-001",
        "JSON that is neither a batch nor an array",
        vec![file_error(None, None, None, "", "batch_shape")],
    );
    add(
        "json-record-error.json",
        format!(
            "[{}, {}]",
            record.trim(),
            record.trim().replace("\"term1\"", "\"term4\"")
        )
        .into_bytes(),
        "KDL-REC-003",
        "the second record of a JSON array has a code outside its list",
        vec![file_error(None, None, Some(1), "/period", "enum")],
    );
    for (name, bytes, signature, requirement, description, errors) in transfer_packages(version)? {
        if let Some(signature) = signature {
            signatures.push((format!("{name}.sig"), signature));
        }
        add(&name, bytes, requirement, description, errors);
    }
    files.extend(signatures);
    Ok((
        FileVectors {
            schema_version: "1".into(),
            generated_by: GENERATED_BY.into(),
            cases,
        },
        files,
    ))
}

/// A package file case: name, bytes, detached signature, requirement, description, errors.
type PackageCase = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    &'static str,
    &'static str,
    Vec<ExpectedError>,
);

/// Transfer packages, good and tampered, signed with a fixed synthetic key (published here, so
/// the vectors are reproducible; it signs nothing else).
fn transfer_packages(version: &SchemaVersion) -> Result<Vec<PackageCase>, String> {
    use crate::transfer::package::{
        Child, Header, Objection, Package, PackageRecord, manifest_of, sign_package, to_xml,
    };
    let mut data = sample_record(version, crate::schema::SUBJECT_TYPE)?;
    data["source_record_id"] = json!("xfer-0001");
    let resident_no = data["subject"]["resident_no"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut package = Package {
        header: Header {
            schema_version: version.major.to_string(),
            package_id: "00000000-0000-4000-8000-000000000001".into(),
            conversation_id: "00000000-0000-4000-8000-000000000002".into(),
            origin: "131016".into(),
            destination: "011002".into(),
            created: "2021-04-01T09:00:00+09:00".into(),
            legal_basis: "児童福祉法第25条の3".into(),
            reason: "moved".into(),
        },
        manifest: Vec::new(),
        // The guardian objected (不同意): the objection travels with the child.
        children: Some(vec![Child {
            origin_resident_no: resident_no.clone(),
            support_measure: false,
            objection: Some(Objection {
                objected_on: "2021-03-15".into(),
                legal_note: Some("不同意書 第3号様式".into()),
            }),
        }]),
        records: Some(vec![PackageRecord {
            origin_resident_no: resident_no,
            source: "juki".into(),
            source_record_id: "xfer-0001".into(),
            record_type: crate::schema::SUBJECT_TYPE.into(),
            data,
        }]),
    };
    package.manifest = manifest_of(&package);
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x4b; 32]);
    let signature = sign_package(&key, &package).to_string().into_bytes();
    let xml = to_xml(&package);
    let text = String::from_utf8(xml.clone()).map_err(|e| e.to_string())?;
    // A record's birth date changed after signing: still canonical XML, but the records part
    // no longer has the digest the signed manifest states.
    let at = text
        .rfind("2021-04-01")
        .ok_or("the sample record has no date")?;
    let tampered = format!("{}2021-04-02{}", &text[..at], &text[at + 10..]);
    let undated_objection = text.replacen(" objected-on=\"2021-03-15\"", "", 1);
    let mut other = package.clone();
    other.header.package_id = "00000000-0000-4000-8000-000000000003".into();
    let foreign_signature = sign_package(&key, &other).to_string().into_bytes();
    let error = |pointer: &str, code: &str| vec![file_error(None, None, None, pointer, code)];
    Ok(vec![
        (
            "transfer-valid.xml".into(),
            xml.clone(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a signed transfer package",
            vec![],
        ),
        (
            "transfer-tampered.xml".into(),
            tampered.into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a record changed after signing",
            error("/manifest/1/sha256", "digest_mismatch"),
        ),
        (
            "transfer-objection-undated.xml".into(),
            undated_objection.into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a child's objection note without the date the guardian objected",
            error("/children/0/objection/objected_on", "attribute_missing"),
        ),
        (
            "transfer-not-canonical.xml".into(),
            text.replacen("\"/>", "\" />", 1).into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a space added before the end of an empty element (same XML, not canonical)",
            error("", "not_canonical"),
        ),
        (
            "transfer-unsigned.xml".into(),
            xml.clone(),
            None,
            "KDL-XFER-002",
            "a package without its .sig",
            error("/signature", "signature_missing"),
        ),
        (
            "transfer-foreign-signature.xml".into(),
            xml,
            Some(foreign_signature),
            "KDL-XFER-002",
            "a signature over another package",
            error("/signature", "signature_invalid"),
        ),
    ])
}

fn pretty(value: &impl Serialize) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).expect("vectors serialise");
    text.push('\n');
    text.into_bytes()
}

/// Every file of `conformance/vectors/v<N>/` as (relative path, bytes).
pub fn generate_all(version: &SchemaVersion) -> Result<Vec<VectorFile>, String> {
    let mut out = Vec::new();
    for vectors in generate_records(version)? {
        out.push((format!("{}.json", vectors.record_type), pretty(&vectors)));
    }
    let (index, files) = generate_files(version)?;
    out.push((FILES_INDEX.into(), pretty(&index)));
    out.extend(
        files
            .into_iter()
            .map(|(name, bytes)| (format!("files/{name}"), bytes)),
    );
    Ok(out)
}

/// Write the vectors of `version` under `dir` (`conformance/vectors/v<N>`), replacing it.
pub fn write_all(version: &SchemaVersion, dir: &Path) -> Result<usize, String> {
    let files = generate_all(version)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
    }
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("inside dir")).map_err(|e| e.to_string())?;
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(files.len())
}

/// The committed record vectors under `dir`.
pub fn load_records(dir: &Path) -> Result<Vec<RecordVectors>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.ends_with(FILES_INDEX))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

pub fn load_files(dir: &Path) -> Result<FileVectors, String> {
    let path = dir.join(FILES_INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A valid record of `record_type` with only its required fields (the minimal vector).
pub fn sample_record(version: &SchemaVersion, record_type: &str) -> Result<Value, String> {
    let schema = version
        .records
        .get(record_type)
        .ok_or(format!("unknown record type {record_type}"))?;
    RecordRules::new(record_type, schema, &version.common)?.record(false)
}

/// The fields `record_type` itself requires (beyond the envelope), in schema order.
pub fn own_required_fields(version: &SchemaVersion, record_type: &str) -> Vec<String> {
    version
        .records
        .get(record_type)
        .map(|schema| strings(schema.get("required")))
        .unwrap_or_default()
}
