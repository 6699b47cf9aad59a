//! What a receiver checks beyond syntax: the one id form, sizes, the manifest against the
//! parts, and the contents against the standard.

use serde_json::Value;

use super::read::too_many_items;
use super::*;

/// Whether `text` is an id in the one form hubs write and accept: a UUID in its lowercase
/// textual form (RFC 9562, 8-4-4-4-12 hex digits), as [`random_id`] makes. Ids name files
/// (`<package-id>.xml`, `<package-id>.receipt.xml`) and key the database, so a path, an empty
/// or an oversized id must never get that far; lowercase only, so that one id has one spelling.
pub fn is_valid_id(text: &str) -> bool {
    text.len() == ID_LENGTH
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Refuse an id (at `pointer`) that is not in the documented form.
pub(super) fn require_id(id: &str, pointer: &str) -> Result<()> {
    if is_valid_id(id) {
        return Ok(());
    }
    let shown: String = id.chars().take(40).collect();
    Err(PackageError::new(
        "id_invalid",
        pointer,
        format!(
            "{shown:?}{} is not a lowercase UUID (8-4-4-4-12 hex digits)",
            if shown.len() < id.len() { "…" } else { "" }
        ),
    ))
}

/// Checks every package passes whatever its form, before anything reads its contents: ids in
/// the documented form, and no more items than the XML reader would take.
pub(super) fn check_header_and_size(package: &Package) -> Result<()> {
    require_id(&package.header.package_id, "/package_id")?;
    require_id(&package.header.conversation_id, "/conversation_id")?;
    let sizes = [
        ("manifest", Some(package.manifest.len())),
        ("children", package.children.as_ref().map(Vec::len)),
        ("records", package.records.as_ref().map(Vec::len)),
    ];
    match sizes
        .into_iter()
        .find(|(_, n)| n.is_some_and(|n| n > MAX_ITEMS))
    {
        Some((container, _)) => Err(too_many_items(container, None)),
        None => Ok(()),
    }
}

/// What every outcome message must hold whatever its form: ids in the documented form, one
/// entry per position 0‥n in order, a coded reason exactly with each decline, and counts a
/// package can have.
pub fn check_outcome(outcome: &Outcome) -> Result<()> {
    require_id(&outcome.package_id, "/package_id")?;
    require_id(&outcome.conversation_id, "/conversation_id")?;
    if outcome.children.len() > MAX_ITEMS {
        return Err(too_many_items("children", None));
    }
    if outcome.children.is_empty() {
        return Err(PackageError::new(
            "part_missing",
            "/children",
            "an outcome names at least one child",
        ));
    }
    for (at, child) in outcome.children.iter().enumerate() {
        let pointer = |field: &str| format!("/children/{at}/{field}");
        if child.position != at as u64 {
            return Err(PackageError::new(
                "position_invalid",
                pointer("position"),
                format!("entry {at} must be the child at position {at} of the package"),
            ));
        }
        match (child.decision, child.reason) {
            (ChildDecision::Declined, None) => {
                return Err(PackageError::new(
                    "attribute_missing",
                    pointer("reason"),
                    "a declined child needs a coded reason",
                ));
            }
            (ChildDecision::Accepted, Some(_)) => {
                return Err(PackageError::new(
                    "attribute_invalid",
                    pointer("reason"),
                    "an accepted child has no decline reason",
                ));
            }
            _ => {}
        }
        if child.decision == ChildDecision::Declined && child.records_copied > 0 {
            return Err(PackageError::new(
                "count_mismatch",
                pointer("records_copied"),
                "nothing is copied for a declined child",
            ));
        }
        if child.records_copied.saturating_add(child.records_declined) > MAX_ITEMS as u64 {
            return Err(PackageError::new(
                "count_mismatch",
                pointer("records_copied"),
                format!("a package holds at most {MAX_ITEMS} records"),
            ));
        }
    }
    Ok(())
}

/// The file name of a package, receipt or signature with id `id`: `<id><suffix>`. Only a
/// valid id becomes a file name, so the file stays inside the directory it is joined to.
pub fn file_name(id: &str, suffix: &str) -> Result<String> {
    require_id(id, "/package_id")?;
    Ok(format!("{id}{suffix}"))
}

/// Compare the manifest with the parts: every listed part present, nothing unlisted, and
/// digest, length and count as stated.
pub fn check_manifest(package: &Package) -> Result<()> {
    let actual = manifest_of(package);
    for (i, listed) in package.manifest.iter().enumerate() {
        let pointer = format!("/manifest/{i}");
        let Some(found) = actual.iter().find(|p| p.name == listed.name) else {
            return Err(PackageError::new(
                "part_missing",
                format!("/{}", listed.name),
                format!(
                    "the manifest lists the part {} but the package lacks it",
                    listed.name
                ),
            ));
        };
        if found.count != listed.count {
            return Err(PackageError::new(
                "count_mismatch",
                format!("{pointer}/count"),
                format!(
                    "the part {} holds {} items, the manifest says {}",
                    listed.name, found.count, listed.count
                ),
            ));
        }
        if found.length != listed.length {
            return Err(PackageError::new(
                "length_mismatch",
                format!("{pointer}/length"),
                format!(
                    "the part {} is {} bytes, the manifest says {}",
                    listed.name, found.length, listed.length
                ),
            ));
        }
        if found.sha256 != listed.sha256 {
            return Err(PackageError::new(
                "digest_mismatch",
                format!("{pointer}/sha256"),
                format!(
                    "the SHA-256 digest of the part {} does not match the manifest",
                    listed.name
                ),
            ));
        }
    }
    for name in PARTS {
        let present = actual.iter().any(|p| p.name == name);
        let listed = package.manifest.iter().any(|p| p.name == name);
        if present && !listed {
            return Err(PackageError::new(
                "part_unlisted",
                format!("/{name}"),
                format!("the part {name} is not in the manifest"),
            ));
        }
        if !present && !listed {
            return Err(PackageError::new(
                "part_missing",
                format!("/{name}"),
                format!("the package has no {name} part and the manifest does not list it"),
            ));
        }
    }
    Ok(())
}

/// An objection is held to the rules of one recorded at the destination's own opt-out route.
fn check_objection(objection: &Objection, pointer: &str) -> Result<()> {
    use crate::schema::rules;
    if !rules::is_past_date(&objection.objected_on) {
        return Err(PackageError::new(
            "attribute_invalid",
            format!("{pointer}/objected_on"),
            "objected-on must be a date (YYYY-MM-DD) not in the future",
        ));
    }
    if let Some(error) = objection.legal_note.as_deref().and_then(|note| {
        rules::free_text_problem(
            &format!("{pointer}/legal_note"),
            note,
            rules::LEGAL_NOTE_MAX_CHARS,
        )
    }) {
        let code = if error.code == "my_number_like" {
            "my_number_like"
        } else {
            "attribute_invalid"
        };
        return Err(PackageError::new(
            code,
            error.pointer,
            format!("objection-note {}", error.message),
        ));
    }
    Ok(())
}

/// Everything a receiver checks beyond syntax and signature: the manifest, the schema version,
/// every record against the standard, and that records, children and DV flags agree.
pub fn check_contents(package: &Package, standard: &crate::schema::Standard) -> Result<()> {
    check_manifest(package)?;
    let header = &package.header;
    let version = header
        .schema_version
        .parse::<u32>()
        .ok()
        .and_then(|major| standard.major(major))
        .ok_or_else(|| {
            PackageError::new(
                "schema_version_unsupported",
                "/schema_version",
                format!(
                    "this hub does not implement schema version {}",
                    header.schema_version
                ),
            )
        })?;
    if serde_json::from_value::<crate::transfer::TransferReason>(Value::String(
        header.reason.clone(),
    ))
    .is_err()
    {
        return Err(PackageError::new(
            "reason_unknown",
            "/reason",
            format!("{} is not a transfer reason code", header.reason),
        ));
    }
    if crate::schema::rules::contains_my_number(&header.legal_basis) {
        return Err(PackageError::new(
            "my_number_like",
            "/legal_basis",
            "the legal basis looks like it holds a My Number (個人番号), which the hub never stores",
        ));
    }
    if chrono::DateTime::parse_from_rfc3339(&header.created).is_err() {
        return Err(PackageError::new(
            "created_invalid",
            "/created",
            "created is not an RFC 3339 time with offset",
        ));
    }
    let children = package.children.as_deref().unwrap_or_default();
    for (i, child) in children.iter().enumerate() {
        if children[..i]
            .iter()
            .any(|c| c.origin_resident_no == child.origin_resident_no)
        {
            return Err(PackageError::new(
                "child_duplicate",
                format!("/children/{i}"),
                "the same child is listed twice",
            ));
        }
        if let Some(objection) = &child.objection {
            check_objection(objection, &format!("/children/{i}/objection"))?;
        }
    }
    let records = package.records.as_deref().unwrap_or_default();
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let pointer = format!("/records/{i}");
        if record.data.get("record_type").and_then(Value::as_str) != Some(&record.record_type) {
            return Err(PackageError::new(
                "record_type_mismatch",
                format!("{pointer}/record_type"),
                "the record's record_type differs from the package's record-type attribute",
            ));
        }
        if let Some(error) = version
            .validator
            .validate(&record.record_type, &record.data)
            .first()
        {
            return Err(PackageError::new(
                "record_invalid",
                format!("{pointer}/data{}", error.pointer),
                format!("{}: {}", error.code, error.message),
            ));
        }
        let Some(child) = children
            .iter()
            .find(|c| c.origin_resident_no == record.origin_resident_no)
        else {
            return Err(PackageError::new(
                "record_child_unknown",
                format!("{pointer}/origin_resident_no"),
                "the record is about a child the package does not list",
            ));
        };
        if !seen.insert((&record.source, &record.source_record_id)) {
            return Err(PackageError::new(
                "record_duplicate",
                format!("{pointer}/source_record_id"),
                "the same source record appears twice",
            ));
        }
        let flagged = record.data.get("support_measure").and_then(Value::as_bool) == Some(true);
        if record.record_type == crate::schema::SUBJECT_TYPE && flagged != child.support_measure {
            return Err(PackageError::new(
                "support_measure_mismatch",
                format!("{pointer}/data/support_measure"),
                "the child's DV support measure flag differs from its subject record",
            ));
        }
    }
    Ok(())
}
