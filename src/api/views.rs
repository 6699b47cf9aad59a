//! Response bodies of the API, typed so the OpenAPI document describes exactly what is sent.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::schema::FieldError;
use crate::schema::applicability::ApplicableItem;
use crate::schema::purposes::Purpose;
use crate::store::audit::AuditRecord;
use crate::store::records::{Change, CurrentRecord, HouseholdMember, MovedOut, OptOut};

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecordTypeInfo {
    pub record_type: String,
    /// Japanese title from the schema.
    pub title: Option<String>,
    /// Guideline item numbers (基本連携データ項目) the type covers.
    pub basic_items: Vec<u32>,
    /// Where the schema itself is served.
    pub href: String,
    /// Columns of the CSV form, in order.
    pub csv_columns: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaVersionInfo {
    /// Highest version accepted, e.g. `1.0`.
    pub version: String,
    pub major: u32,
    pub record_types: Vec<RecordTypeInfo>,
    pub applicability_rule_set: String,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaIndex {
    pub versions: Vec<SchemaVersionInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct PurposeList {
    pub purposes: Vec<Purpose>,
}

#[derive(Serialize, ToSchema)]
pub struct Retraction {
    pub municipality_code: String,
    pub source_record_id: String,
    /// Always `retracted`.
    pub status: String,
    /// Version number of the tombstone.
    pub version: i32,
}

#[derive(Serialize, ToSchema)]
pub struct History {
    pub municipality_code: String,
    pub source_record_id: String,
    /// Every version, oldest first (retractions included).
    pub versions: Vec<Change>,
}

#[derive(Serialize, ToSchema)]
pub struct ChangesPage {
    pub municipality_code: String,
    pub after: i64,
    /// Pass as `after` to get the next page; equal to `after` when there is nothing new.
    pub next_cursor: i64,
    pub changes: Vec<Change>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidationResult {
    pub index: usize,
    pub valid: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidationReport {
    pub received: usize,
    pub valid: usize,
    pub invalid: usize,
    /// Always false: a dry run stores nothing.
    pub stored: bool,
    pub results: Vec<ValidationResult>,
}

#[derive(Serialize, ToSchema)]
pub struct GuardianRecord {
    /// Resident number of the guardian the record is about.
    pub about: String,
    pub record: CurrentRecord,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub municipality_code: String,
    pub resident_no: String,
    /// The subject record as pushed by the resident register.
    #[schema(value_type = Object)]
    pub subject: Value,
    pub opt_out: Option<OptOut>,
    /// Set once the child moved out of this town (its transfer was accepted or delivered).
    pub moved_out: Option<MovedOut>,
    pub household: Vec<HouseholdMember>,
    pub records: Vec<CurrentRecord>,
    pub guardian_records: Vec<GuardianRecord>,
    /// Basic linkage items that apply, with the reason for each (never a score).
    pub applicable_items: Vec<ApplicableItem>,
    pub rule_set_version: String,
}

#[derive(Serialize, ToSchema)]
pub struct OptOutView {
    pub municipality_code: String,
    pub resident_no: String,
    pub opt_out: OptOutState,
}

#[derive(Serialize, ToSchema)]
pub struct OptOutState {
    pub objected_on: String,
    pub legal_note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditTrail {
    pub municipality_code: String,
    pub subject: String,
    pub entries: Vec<AuditRecord>,
}
