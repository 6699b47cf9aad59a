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
    #[serde(skip)]
    path: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CsvLayout {
    pub columns: Vec<Column>,
}

/// Fields the CSV form takes from the request instead of the file.
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
            flatten(nested, common, &path, out);
            continue;
        }
        let title = schema
            .get("title")
            .or_else(|| target.get("title"))
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(Column {
            name: path.join("."),
            kind: kind_of(target),
            title,
            path,
        });
    }
}

impl CsvLayout {
    pub fn derive(record_schema: &Value, common: &Value) -> CsvLayout {
        let mut columns = Vec::new();
        if let Some(envelope) = common
            .pointer("/$defs/envelope/properties")
            .and_then(Value::as_object)
        {
            flatten(envelope, common, &[], &mut columns);
        }
        if let Some(own) = record_schema.get("properties").and_then(Value::as_object) {
            let mut extra = Vec::new();
            flatten(own, common, &[], &mut extra);
            extra.retain(|c| !columns.iter().any(|existing| existing.name == c.name));
            columns.extend(extra);
        }
        CsvLayout { columns }
    }

    /// Map a header row to column positions; unknown or repeated headers are errors.
    pub fn bind_headers(&self, headers: &[String]) -> Result<Vec<usize>, Vec<FieldError>> {
        let mut bound = Vec::with_capacity(headers.len());
        let mut errors = Vec::new();
        for (i, header) in headers.iter().enumerate() {
            let header = header.trim();
            match self.columns.iter().position(|c| c.name == header) {
                Some(pos) if bound.contains(&pos) => errors.push(csv_header_error(
                    i,
                    header,
                    "csv_header_duplicate",
                    format!("column {header:?} appears more than once"),
                )),
                Some(pos) => bound.push(pos),
                None => errors.push(csv_header_error(
                    i,
                    header,
                    "csv_header_unknown",
                    format!(
                        "unknown column {header:?}; the columns of this record type are: {}",
                        self.columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        if errors.is_empty() {
            Ok(bound)
        } else {
            Err(errors)
        }
    }

    /// Build a record from one data row. Empty cells are absent fields. Cells that cannot be
    /// converted to the column's type are reported with their row and column.
    pub fn record_from_row(
        &self,
        record_type: &str,
        bound: &[usize],
        cells: &[&str],
        row: u64,
    ) -> Result<Value, Vec<FieldError>> {
        let mut record = Map::new();
        record.insert("record_type".into(), Value::String(record_type.into()));
        let mut errors = Vec::new();
        for (cell, &pos) in cells.iter().zip(bound) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let column = &self.columns[pos];
            let value = match column.kind {
                CellKind::String => Some(Value::String(cell.to_string())),
                CellKind::Integer => cell.parse::<i64>().ok().map(Value::from),
                CellKind::Number => cell
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number),
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
                None => {
                    let mut error = FieldError::new(
                        format!("/{}", column.path.join("/")),
                        "csv_value",
                        format!("{cell:?} is not a valid {:?} value", column.kind),
                    );
                    error.row = Some(row);
                    error.column = Some(column.name.clone());
                    errors.push(error);
                }
            }
        }
        if errors.is_empty() {
            Ok(Value::Object(record))
        } else {
            Err(errors)
        }
    }

    /// The CSV column that holds the field at `pointer`, if any.
    pub fn column_for_pointer(&self, pointer: &str) -> Option<&str> {
        let path: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        self.columns
            .iter()
            .find(|c| c.path.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|c| c.name.as_str())
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
