//! What a release looks like to its readers, as JSON or CSV. Hidden cells carry the symbol
//! `X` (and the reason), never a number; a cell with nothing to show (a rate over zero, a
//! median of no transfer) carries `-`. True counts never leave the ledger.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Catalogue;
use super::audit::AuditSummary;
use super::disclosure::{Cell, DisclosureConfig, Suppression, Unit};
use super::table::{Level, Town};

/// A stored release: what it published (and, for the audit, the true counts behind it).
#[derive(Debug, Clone)]
pub struct StoredRelease {
    pub id: i64,
    pub fiscal_year: i32,
    pub published_at: String,
    pub published_by: String,
    pub rule_set_version: String,
    pub disclosure: DisclosureConfig,
    pub towns: Vec<Town>,
    pub audit: AuditSummary,
    pub cells: Vec<Cell>,
}

/// Statistical symbols used instead of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Symbol {
    /// Hidden by disclosure control (秘匿).
    #[serde(rename = "X")]
    Suppressed,
    /// Nothing to show (e.g. a rate whose denominator is zero).
    #[serde(rename = "-")]
    NotApplicable,
}

impl Symbol {
    pub fn as_str(self) -> &'static str {
        match self {
            Symbol::Suppressed => "X",
            Symbol::NotApplicable => "-",
        }
    }
}

/// A published value: an integer count, a rate or a median, or a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Count(i64),
    Number(f64),
    Symbol(Symbol),
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Count(n) => write!(f, "{n}"),
            Shown::Number(x) => write!(f, "{x}"),
            Shown::Symbol(s) => f.write_str(s.as_str()),
        }
    }
}

/// A number (counts are integers), or `X` (hidden by disclosure control) or `-` (nothing to
/// show). Any number also matches an integer, hence `anyOf`.
fn shown_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
    let any = AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["X", "-"])),
        )
        .description(Some(
            "The published number (a count, a rate or days), or `X` where disclosure control hides it, or `-` where there is nothing to show",
        ))
        .build();
    Schema::AnyOf(any)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CellView {
    pub level: Level,
    /// Municipality code, prefecture code (2 digits), council name, or `JP`.
    pub geography: String,
    pub geography_name: String,
    pub indicator: String,
    /// Japanese label of the indicator (from the standard's `indicators.json`).
    pub indicator_label: String,
    /// `all`: everything the indicator counts, once; `any`: children with at least one basic
    /// item; `01`–`19`: a basic item; otherwise a difficulty type. A child counts under each
    /// of its items and types, so those categories can add up to more than `all`/`any`.
    pub category: String,
    /// Japanese label of the category.
    pub category_label: String,
    pub unit: Unit,
    #[schema(schema_with = shown_schema)]
    pub value: Shown,
    /// The value is rounded (prefectural and national totals).
    pub rounded: bool,
    /// Why the value is hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleaseSummary {
    pub id: i64,
    /// Fiscal year (年度): 2025 is 1 April 2025 – 31 March 2026.
    pub fiscal_year: i32,
    pub published_at: String,
    pub rule_set_version: String,
    pub disclosure: DisclosureConfig,
    pub audit: AuditSummary,
    pub cell_count: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleaseList {
    pub releases: Vec<ReleaseSummary>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReleaseView {
    #[serde(flatten)]
    pub release: ReleaseSummary,
    pub cells: Vec<CellView>,
}

/// An unpublished candidate release as a council administrator previews it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PreviewView {
    pub fiscal_year: i32,
    pub disclosure: DisclosureConfig,
    /// Whether the audit would let this release be published now.
    pub would_publish: bool,
    pub rule_set_version: String,
    pub audit: AuditSummary,
    pub cells: Vec<CellView>,
}

pub fn summary(release: &StoredRelease, cell_count: usize) -> ReleaseSummary {
    ReleaseSummary {
        id: release.id,
        fiscal_year: release.fiscal_year,
        published_at: release.published_at.clone(),
        rule_set_version: release.rule_set_version.clone(),
        disclosure: release.disclosure.clone(),
        audit: release.audit.clone(),
        cell_count,
    }
}

/// Readers' view of cells (true counts dropped).
pub fn cell_views<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    towns: &[Town],
    catalogue: &Catalogue,
) -> Vec<CellView> {
    let names: BTreeMap<&str, &str> = towns
        .iter()
        .map(|t| (t.code.as_str(), t.name.as_str()))
        .collect();
    cells
        .into_iter()
        .map(|cell| {
            let value = match (cell.value, cell.suppressed, cell.unit) {
                (_, Some(_), _) => Shown::Symbol(Symbol::Suppressed),
                (None, None, _) => Shown::Symbol(Symbol::NotApplicable),
                (Some(v), None, Unit::Count) => Shown::Count(v.round() as i64),
                (Some(v), None, _) => Shown::Number(v),
            };
            let geography = &cell.key.geography;
            let geography_name = match cell.key.level {
                Level::Municipality => names.get(geography.as_str()).copied().unwrap_or(geography),
                Level::Nation => "全国",
                Level::Prefecture | Level::Council => geography,
            };
            CellView {
                level: cell.key.level,
                geography: geography.clone(),
                geography_name: geography_name.to_string(),
                indicator: cell.key.measure.indicator.clone(),
                indicator_label: catalogue.indicator_label(&cell.key.measure.indicator),
                category: cell.key.measure.category.clone(),
                category_label: catalogue.category_label(&cell.key.measure.category),
                unit: cell.unit,
                value,
                rounded: cell.rounded,
                suppressed: cell.suppressed,
            }
        })
        .collect()
}

pub fn view(release: &StoredRelease, catalogue: &Catalogue) -> ReleaseView {
    ReleaseView {
        release: summary(release, release.cells.len()),
        cells: cell_views(&release.cells, &release.towns, catalogue),
    }
}

/// What every CSV row repeats about its table, so a row copied out of the file still says
/// where it came from.
pub struct CsvHeading<'a> {
    /// Absent for a preview.
    pub release_id: Option<i64>,
    pub fiscal_year: i32,
    pub published_at: Option<&'a str>,
    pub rule_set_version: &'a str,
}

/// CSV in UTF-8 with a byte-order mark, so spreadsheet software set to Japanese reads it as
/// UTF-8 rather than Shift_JIS; Japanese headers, with the codes beside the labels for
/// programs.
pub fn csv(heading: &CsvHeading, cells: &[CellView]) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        let header = [
            "公表番号",
            "年度",
            "公表日時",
            "判定ルール版",
            "地域区分",
            "地域コード",
            "地域名",
            "指標コード",
            "指標名",
            "区分コード",
            "区分名",
            "単位",
            "値",
            "丸め",
            "秘匿理由",
        ];
        let release_id = heading
            .release_id
            .map(|id| id.to_string())
            .unwrap_or_default();
        let fiscal_year = heading.fiscal_year.to_string();
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(header);
        for c in cells {
            let _ = writer.write_record([
                release_id.as_str(),
                fiscal_year.as_str(),
                heading.published_at.unwrap_or(""),
                heading.rule_set_version,
                c.level.as_str(),
                &c.geography,
                // A town's name is typed by an operator; never let it run as a formula.
                &crate::schema::csv_layout::guard_formula(&c.geography_name),
                &c.indicator,
                &c.indicator_label,
                &c.category,
                &c.category_label,
                c.unit.as_str(),
                &c.value.to_string(),
                if c.rounded { "true" } else { "false" },
                c.suppressed.map_or("", Suppression::as_str),
            ]);
        }
        let _ = writer.flush();
    }
    out
}
