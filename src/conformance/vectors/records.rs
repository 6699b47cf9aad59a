//! Record vectors: for every record type, minimal and maximal valid records, every rule
//! broken once, and boundary values.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::Level;
use crate::schema::SchemaVersion;

use super::rules::{RecordRules, pattern_sample, pointer, strings};
use super::*;

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
