//! What each schema keyword means for a record: the rules a record type's schema states,
//! read once, and the errors a value breaking them must get.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::*;

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

/// A value matching each pattern used by the schemas. A new pattern needs a sample here.
pub(super) fn pattern_sample(pattern: &str) -> Result<&'static str, String> {
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
pub(super) struct Condition {
    pub(super) field: String,
    pub(super) equals: Value,
    pub(super) then_required: Vec<String>,
    pub(super) then_forbidden: Vec<String>,
}

pub(super) struct RecordRules<'a> {
    pub(super) common: &'a Value,
    pub(super) record_type: String,
    /// Top-level fields (envelope and own) with their effective schemas.
    pub(super) properties: BTreeMap<String, Value>,
    pub(super) required: Vec<String>,
    pub(super) conditions: Vec<Condition>,
    pub(super) order: Vec<Pair>,
    pub(super) closed: bool,
    pub(super) no_my_number: bool,
}

pub(super) fn strings(value: Option<&Value>) -> Vec<String> {
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

pub(super) fn pointer(segments: &[String]) -> String {
    segments
        .iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

impl<'a> RecordRules<'a> {
    pub(super) fn new(
        record_type: &str,
        schema: &'a Value,
        common: &'a Value,
    ) -> Result<Self, String> {
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
    pub(super) fn sample(&self, name: &str, schema: &Value, full: bool) -> Result<Value, String> {
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
    pub(super) fn record(&self, full: bool) -> Result<Value, String> {
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
    pub(super) fn predict(&self, record: &Value) -> BTreeSet<ExpectedError> {
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
