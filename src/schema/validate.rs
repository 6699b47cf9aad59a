//! Compiles the record schemas into validators and turns schema violations into stable,
//! machine-readable field errors (JSON pointer, code, message).

use std::collections::BTreeMap;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Keyword, Registry, ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::rules;

/// Most errors reported for one record (or one problem).
pub const MAX_ERRORS_PER_RECORD: usize = 100;

/// One problem with one field of one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer into the record (RFC 6901); empty for the whole record.
    pub pointer: String,
    /// Stable error code (see the data dictionary for the list).
    pub code: String,
    pub message: String,
    /// CSV row (1-based, header is row 1) when the record came from CSV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// CSV column name when the record came from CSV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, code: &str, message: impl Into<String>) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            code: code.to_string(),
            message: message.into(),
            row: None,
            column: None,
        }
    }
}

/// Validators for every record type of one schema version.
pub struct RecordValidator {
    by_type: BTreeMap<String, Validator>,
    /// Top-level fields each type defines (envelope and its own), to drop follow-on
    /// "unknown field" reports that 2020-12 emits for defined fields when the envelope fails.
    defined_fields: BTreeMap<String, Vec<String>>,
}

/// Custom keyword messages carry their error code and the offending field's pointer (relative
/// to the object the keyword sits on), separated by this character, so errors point at the
/// field, not the record.
const SEPARATOR: char = '\u{1f}';

fn custom_error(code: &str, relative_pointer: &str, text: &str) -> ValidationError<'static> {
    ValidationError::custom(format!(
        "{code}{SEPARATOR}{relative_pointer}{SEPARATOR}{text}"
    ))
}

struct FieldOrder {
    pairs: Vec<(String, String)>,
}

impl FieldOrder {
    fn first_violation<'v>(&self, instance: &'v Value) -> Option<(&str, &str, &'v Value)> {
        let object = instance.as_object()?;
        self.pairs.iter().find_map(|(lesser, greater)| {
            let (a, b) = (object.get(lesser)?, object.get(greater)?);
            (!rules::in_order(a, b)).then_some((lesser.as_str(), greater.as_str(), b))
        })
    }
}

impl<'i> Keyword<'i> for FieldOrder {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.first_violation(instance) {
            None => Ok(()),
            Some((lesser, greater, value)) => Err(custom_error(
                "field_order",
                &format!("/{greater}"),
                &if value.is_number() {
                    format!("{greater} must be at least {lesser}")
                } else {
                    format!("{greater} must not be before {lesser}")
                },
            )),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        self.first_violation(instance).is_none()
    }
}

struct NoMyNumber;

impl<'i> Keyword<'i> for NoMyNumber {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        let mut pointer = String::new();
        if rules::find_my_number_like(instance, &mut pointer) {
            Err(custom_error(
                "my_number_like",
                &pointer,
                "value looks like a My Number (個人番号), which the hub never accepts",
            ))
        } else {
            Ok(())
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        !rules::find_my_number_like(instance, &mut String::new())
    }
}

fn field_order_pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| {
            let pair = pair.as_array()?;
            Some((
                pair.first()?.as_str()?.to_string(),
                pair.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect()
}

impl RecordValidator {
    pub fn compile(common: &Value, records: &BTreeMap<String, Value>) -> RecordValidator {
        let common_id = common["$id"].as_str().expect("common.json has $id");
        let registry = Registry::new()
            .add(common_id, common.clone())
            .expect("common.json registers")
            .prepare()
            .expect("schema registry");
        let options = jsonschema::options()
            .with_registry(&registry)
            .should_validate_formats(true)
            .with_format("past-date", rules::is_past_date)
            .with_format("municipality-code", rules::is_valid_municipality_code)
            .with_keyword(
                "x-field-order",
                |_: &Map<String, Value>, value: &Value, _| {
                    Ok(Box::new(FieldOrder {
                        pairs: field_order_pairs(value),
                    }))
                },
            )
            .with_keyword("x-no-my-number", |_: &Map<String, Value>, _: &Value, _| {
                Ok(Box::new(NoMyNumber))
            });
        let by_type = records
            .iter()
            .map(|(name, doc)| {
                let validator = options
                    .build(doc)
                    .unwrap_or_else(|e| panic!("schema for {name} does not compile: {e}"));
                (name.clone(), validator)
            })
            .collect();
        let envelope_fields: Vec<String> = common
            .pointer("/$defs/envelope/properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let defined_fields = records
            .iter()
            .map(|(name, doc)| {
                let mut fields = envelope_fields.clone();
                if let Some(own) = doc.get("properties").and_then(Value::as_object) {
                    fields.extend(own.keys().cloned());
                }
                (name.clone(), fields)
            })
            .collect();
        RecordValidator {
            by_type,
            defined_fields,
        }
    }

    pub fn knows(&self, record_type: &str) -> bool {
        self.by_type.contains_key(record_type)
    }

    /// Every violation of `record_type`'s schema in `record` (the first
    /// [`MAX_ERRORS_PER_RECORD`] by pointer), as field errors.
    pub fn validate(&self, record_type: &str, record: &Value) -> Vec<FieldError> {
        let Some(validator) = self.by_type.get(record_type) else {
            return vec![FieldError::new(
                "/record_type",
                "record_type_unknown",
                format!("unknown record_type {record_type:?}"),
            )];
        };
        if validator.is_valid(record) {
            return Vec::new();
        }
        let mut errors: Vec<FieldError> = validator
            .iter_errors(record)
            .flat_map(|error| field_errors(&error, record))
            .collect();
        let defined = &self.defined_fields[record_type];
        errors.retain(|e| {
            e.code != "unknown_field"
                || !defined
                    .iter()
                    .any(|f| e.pointer.strip_prefix('/') == Some(f.as_str()))
        });
        errors.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.code.cmp(&b.code)));
        errors.dedup();
        // A record with thousands of bad fields must not make an answer thousands of times
        // larger than itself; the first errors are enough to fix it.
        errors.truncate(MAX_ERRORS_PER_RECORD);
        errors
    }
}

fn join_pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(crate) fn field_errors(error: &ValidationError<'_>, record: &Value) -> Vec<FieldError> {
    let at = error.instance_path().as_str().to_string();
    let one = |code: &str, message: String| vec![FieldError::new(at.clone(), code, message)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![FieldError::new(
                join_pointer(&at, name),
                "required",
                format!("{name} is required"),
            )]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                FieldError::new(
                    join_pointer(&at, name),
                    "unknown_field",
                    format!("{name} is not a field of this record type"),
                )
            })
            .collect(),
        ValidationErrorKind::Type { .. } => one("type", error.to_string()),
        ValidationErrorKind::Enum { .. } => one("enum", error.to_string()),
        ValidationErrorKind::Constant { .. } => one("const", error.to_string()),
        ValidationErrorKind::Format { format } => {
            let value = record.pointer(&at).and_then(Value::as_str).unwrap_or("");
            match format.as_str() {
                "past-date" if rules::parse_date(value).is_some() => {
                    one("future_date", format!("{value} is in the future"))
                }
                "past-date" => one(
                    "date_format",
                    format!("{value:?} is not a calendar date in the form YYYY-MM-DD"),
                ),
                "municipality-code" => one(
                    "municipality_code",
                    format!("{value:?} is not a municipality code with a valid check digit"),
                ),
                _ => one("format", error.to_string()),
            }
        }
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. }
        | ValidationErrorKind::MultipleOf { .. } => one("range", error.to_string()),
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MaxLength { .. } => {
            one("length", error.to_string())
        }
        ValidationErrorKind::Pattern { .. } => one("pattern", error.to_string()),
        ValidationErrorKind::MinItems { .. } | ValidationErrorKind::MaxItems { .. } => {
            one("items_count", error.to_string())
        }
        ValidationErrorKind::UniqueItems => one("duplicate_item", error.to_string()),
        ValidationErrorKind::FalseSchema => one(
            "not_allowed",
            format!("{at} is not allowed for this record (see the record type's rules)"),
        ),
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => one(
            "alternatives",
            "none of the allowed forms matches (e.g. a subject needs resident_no or basic_info)"
                .to_string(),
        ),
        ValidationErrorKind::Custom { message, .. } => {
            let mut parts = message.splitn(3, SEPARATOR);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(code), Some(relative), Some(text)) => {
                    vec![FieldError::new(format!("{at}{relative}"), code, text)]
                }
                _ => one("schema", message.clone()),
            }
        }
        _ => one("schema", error.to_string()),
    }
}
