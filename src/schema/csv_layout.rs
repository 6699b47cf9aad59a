//! CSV column layouts, derived from the record schemas: one column per scalar field, nested
//! envelope objects flattened with dots (`subject.resident_no`), arrays of codes joined by `;`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{FieldError, resolve_ref};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    String,
    Integer,
    Number,
    Boolean,
    /// Codes separated by `;`.
    List,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// Header name, the dotted path of the field.
    pub name: String,
    pub kind: CellKind,
    /// Japanese label from the schema's `title`, for the data dictionary.
    pub title: Option<String>,
    /// Whether the field is required where it appears (its object may itself be optional).
    pub required: bool,
    /// The field's schema (references resolved one level), for the data dictionary.
    #[serde(skip)]
    pub schema: Value,
    #[serde(skip)]
    path: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CsvLayout {
    pub columns: Vec<Column>,
}

/// Characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn is_guarded(cell: &str) -> bool {
    let mut chars = cell.chars();
    chars.next() == Some('\'')
        && chars
            .next()
            .is_some_and(|c| c == '\'' || FORMULA_TRIGGERS.contains(&c))
}

/// A text cell as written to a CSV file staff may open in a spreadsheet: a value starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which spreadsheets take
/// as "text" instead of running it as a formula. A value that would read as already guarded
/// (`'` followed by one of those or by `'`) gets one too, so [`unguard_formula`] gives back
/// every value exactly.
pub fn guard_formula(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(FORMULA_TRIGGERS) || is_guarded(value) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// The value of a text cell [`guard_formula`] wrote: one leading `'` dropped when a formula
/// character or another `'` follows it. Other cells, `'0123` among them, are kept as they are.
pub fn unguard_formula(cell: &str) -> &str {
    if is_guarded(cell) { &cell[1..] } else { cell }
}

/// Fields handled apart from the columns: the record type comes from a `record_type` column
/// or from the request.
const IMPLIED_FIELDS: [&str; 1] = ["record_type"];

fn resolved<'a>(schema: &'a Value, common: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve_ref(reference, common).unwrap_or(schema),
        None => schema,
    }
}

fn kind_of(schema: &Value) -> CellKind {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => CellKind::Integer,
        Some("number") => CellKind::Number,
        Some("boolean") => CellKind::Boolean,
        Some("array") => CellKind::List,
        _ => CellKind::String,
    }
}

fn flatten(
    properties: &Map<String, Value>,
    required: &[Value],
    common: &Value,
    prefix: &[String],
    out: &mut Vec<Column>,
) {
    for (name, schema) in properties {
        if prefix.is_empty() && IMPLIED_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let target = resolved(schema, common);
        let mut path = prefix.to_vec();
        path.push(name.clone());
        if let Some(nested) = target.get("properties").and_then(Value::as_object) {
            flatten(nested, required_of(target), common, &path, out);
            continue;
        }
        let title = schema
            .get("title")
            .or_else(|| target.get("title"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut merged = target.clone();
        if let (Some(merged), Some(own)) = (merged.as_object_mut(), schema.as_object()) {
            for (k, v) in own {
                if k != "$ref" {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        out.push(Column {
            name: path.join("."),
            kind: kind_of(target),
            title,
            required: required.iter().any(|r| r.as_str() == Some(name.as_str())),
            schema: merged,
            path,
        });
    }
}

fn required_of(schema: &Value) -> &[Value] {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl CsvLayout {
    pub fn derive(record_schema: &Value, common: &Value) -> CsvLayout {
        let mut columns = Vec::new();
        if let Some(envelope) = common.pointer("/$defs/envelope")
            && let Some(properties) = envelope.get("properties").and_then(Value::as_object)
        {
            flatten(properties, required_of(envelope), common, &[], &mut columns);
        }
        if let Some(own) = record_schema.get("properties").and_then(Value::as_object) {
            let mut extra = Vec::new();
            flatten(own, required_of(record_schema), common, &[], &mut extra);
            extra.retain(|c| !columns.iter().any(|existing| existing.name == c.name));
            columns.extend(extra);
        }
        CsvLayout { columns }
    }

    /// The cells of one record under `headers` (the inverse of [`Self::record_from_cells`]).
    pub fn cells_of(&self, record: &Value, headers: &[&str]) -> Vec<String> {
        headers
            .iter()
            .map(|header| {
                if IMPLIED_FIELDS.contains(header) {
                    return record
                        .get(*header)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                }
                let Some(column) = self.column(header) else {
                    return String::new();
                };
                let mut value = record;
                for key in &column.path {
                    match value.get(key) {
                        Some(v) => value = v,
                        None => return String::new(),
                    }
                }
                match value {
                    Value::String(s) => guard_formula(s).into_owned(),
                    Value::Array(items) => guard_formula(
                        &items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(";"),
                    )
                    .into_owned(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                }
            })
            .collect()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Build a record from one data row, each cell under its header. Empty cells are absent
    /// fields; a value under a column this record type does not have, or one that cannot be
    /// converted to its column's type, is reported with its row and column.
    pub fn record_from_cells(
        &self,
        record_type: &str,
        headers: &[String],
        cells: &[&str],
        row: u64,
    ) -> Result<Value, Vec<FieldError>> {
        let mut record = Map::new();
        record.insert("record_type".into(), Value::String(record_type.into()));
        let mut errors = Vec::new();
        for (cell, header) in cells.iter().zip(headers) {
            let cell = cell.trim();
            if cell.is_empty() || IMPLIED_FIELDS.contains(&header.as_str()) {
                continue;
            }
            let located = |code: &str, message: String| {
                let mut error =
                    FieldError::new(format!("/{}", header.replace('.', "/")), code, message);
                error.row = Some(row);
                error.column = Some(header.clone());
                error
            };
            let Some(column) = self.column(header) else {
                errors.push(located(
                    "unknown_field",
                    format!(
                        "{header} is not a field of {record_type} records; leave the cell empty"
                    ),
                ));
                continue;
            };
            let cell = match column.kind {
                CellKind::String | CellKind::List => unguard_formula(cell),
                _ => cell,
            };
            let value = match column.kind {
                // Dates may arrive as 和暦 (令和7年4月1日, R07.04.01…); the standard stores ISO.
                CellKind::String
                    if column.schema.get("format").and_then(Value::as_str) == Some("past-date") =>
                {
                    Some(Value::String(
                        crate::identity::normalize::parse_japanese_date(cell)
                            .map_or_else(|| cell.to_string(), |d| d.format("%Y-%m-%d").to_string()),
                    ))
                }
                CellKind::String => Some(Value::String(cell.to_string())),
                CellKind::Integer => cell.parse::<i64>().ok().map(Value::from),
                // Whole numbers stay integers so an exported record imports back unchanged.
                CellKind::Number => cell.parse::<i64>().ok().map(Value::from).or_else(|| {
                    cell.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                }),
                CellKind::Boolean => match cell {
                    "true" | "TRUE" | "1" => Some(Value::Bool(true)),
                    "false" | "FALSE" | "0" => Some(Value::Bool(false)),
                    _ => None,
                },
                CellKind::List => Some(Value::Array(
                    cell.split(';')
                        .map(|item| Value::String(item.trim().to_string()))
                        .collect(),
                )),
            };
            match value {
                Some(value) => insert_path(&mut record, &column.path, value),
                None => errors.push(located(
                    "csv_value",
                    format!("{cell:?} is not a valid {:?} value", column.kind),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(record))
        } else {
            Err(errors)
        }
    }
}

/// Check a header row against the columns the file may use: every header must be a column
/// (or `record_type`), and none may repeat.
pub fn check_headers<'a>(
    headers: &[String],
    known: impl Fn(&str) -> bool,
    all_columns: impl Fn() -> Vec<&'a str>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        if headers[..i].contains(header) {
            errors.push(csv_header_error(
                i,
                header,
                "csv_header_duplicate",
                format!("column {header:?} appears more than once"),
            ));
        } else if !(IMPLIED_FIELDS.contains(&header.as_str()) || known(header)) {
            errors.push(csv_header_error(
                i,
                header,
                "csv_header_unknown",
                format!(
                    "unknown column {header:?}; the columns are: record_type, {}",
                    all_columns().join(", ")
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn csv_header_error(index: usize, header: &str, code: &str, message: String) -> FieldError {
    let mut error = FieldError::new("", code, message);
    error.row = Some(1);
    error.column = Some(if header.is_empty() {
        format!("#{}", index + 1)
    } else {
        header.to_string()
    });
    error
}

fn insert_path(record: &mut Map<String, Value>, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut target = record;
    for key in parents {
        target = target
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("CSV paths only nest objects");
    }
    target.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_guard_round_trips_every_value() {
        for value in [
            "=cmd|' /C calc'!A0",
            "+SUM(1)",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=x",
            "''",
            "'",
            "'0123",
            "plain",
            "",
            "a=b",
        ] {
            let cell = guard_formula(value);
            assert!(!cell.starts_with(FORMULA_TRIGGERS), "{cell:?}");
            assert_eq!(unguard_formula(&cell), value);
        }
        assert_eq!(guard_formula("'0123"), "'0123", "left alone");
        assert_eq!(guard_formula("=1"), "'=1");
    }
}
