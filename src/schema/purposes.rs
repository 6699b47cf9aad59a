//! Declared purposes of access (X-Purpose), published in `schema/vN/access-purposes.json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Purpose {
    pub code: String,
    pub label: String,
    pub description: String,
    /// Legal basis recorded in the audit trail unless the caller states another.
    pub legal_basis: String,
    /// Screening views exclude opted-out children.
    pub screening: bool,
}

pub fn from_json(doc: &Value) -> Vec<Purpose> {
    serde_json::from_value(doc.get("purposes").cloned().unwrap_or_default())
        .expect("access-purposes.json matches the purpose format")
}
