//! Signed transfer packages between hubs (another council, or a town outside the cloud): the
//! same transfer as an XML document with a manifest of its parts (SHA-256 digest, byte length,
//! item count) and a detached Ed25519 signature over the header and manifest; the receiving hub
//! answers with a signed receipt. Pure code: no storage, no HTTP.
//!
//! The XML is canonical: one rendering per package, written and read with quick-xml. A reader
//! re-renders what it parsed and refuses any byte that differs, so a flipped byte anywhere is
//! caught — by the parser, the canonical check, a part digest or the signature. The JSON form
//! carries the same fields; XML → JSON → XML gives back the same bytes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod check;
mod read;
mod sign;
mod write;

pub use check::{check_contents, check_manifest, check_outcome, file_name, is_valid_id};
pub use read::{
    parse, parse_canonical, parse_outcome, parse_outcome_canonical, parse_receipt,
    parse_receipt_canonical, signature_path,
};
pub use sign::{
    DetachedSignature, new_signing_key, random_id, sign_package, verify_package_signature,
};
pub use write::{manifest_of, outcome_to_xml, receipt_to_xml, signed_info, to_json, to_xml};

pub const NAMESPACE: &str = "urn:kodomo-hub:transfer-package:1";
const PACKAGE_ROOT: &str = "transfer-package";
const RECEIPT_ROOT: &str = "transfer-receipt";
const OUTCOME_ROOT: &str = "transfer-outcome";
/// The parts a package has, in document order.
pub const PARTS: [&str; 2] = ["children", "records"];
/// Attributes one element may carry. The richest element, the package root, has nine
/// (`xmlns` and the header); anything beyond this bound is hostile, and refusing it before
/// reading on keeps the parser's per-attribute duplicate check from going quadratic.
pub const MAX_ATTRIBUTES: usize = 16;
/// Items one container (`<manifest>`, `<children>`, `<records>`) may hold: a household's
/// children and every current record of theirs stay far below it.
pub const MAX_ITEMS: usize = 10_000;
/// Length of the one documented id form (see [`is_valid_id`]).
const ID_LENGTH: usize = 36;

/// Who sent what to whom, and why (the root element's attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub schema_version: String,
    pub package_id: String,
    /// Shared by a package and its receipt (and any later message of the same exchange).
    pub conversation_id: String,
    pub origin: String,
    pub destination: String,
    /// RFC 3339 with offset.
    pub created: String,
    pub legal_basis: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    pub name: String,
    pub sha256: String,
    pub length: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    pub origin_resident_no: String,
    /// DV support measure: travels with the child and is never dropped.
    pub support_measure: bool,
    /// A guardian's objection (不同意) standing at export: the destination keeps the child out
    /// of screening views from acceptance on, as the origin did. Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objection: Option<Objection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objection {
    /// The date the guardian objected (YYYY-MM-DD).
    pub objected_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageRecord {
    pub origin_resident_no: String,
    pub source: String,
    pub source_record_id: String,
    pub record_type: String,
    pub data: Value,
}

/// A package; a part is `None` when the document lacks it (reported as `part_missing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    #[serde(flatten)]
    pub header: Header,
    pub manifest: Vec<PartEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<Child>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<PackageRecord>>,
}

/// The destination hub's signed answer: it verified and imported the package. Its JSON form
/// has these fields; the signature covers its canonical XML either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    #[schema(
        max_length = 36,
        pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub package_id: String,
    #[schema(
        max_length = 36,
        pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub conversation_id: String,
    #[schema(max_length = 6, pattern = "^[0-9]{6}$")]
    pub origin: String,
    #[schema(max_length = 6, pattern = "^[0-9]{6}$")]
    pub destination: String,
    /// SHA-256 of the package's canonical XML as received.
    #[schema(max_length = 64, pattern = "^[0-9a-f]{64}$")]
    pub package_sha256: String,
    /// When the destination hub imported the package (RFC 3339).
    #[schema(max_length = 40, format = DateTime)]
    pub received: String,
    #[schema(maximum = 10000)]
    pub children: u64,
    #[schema(maximum = 10000)]
    pub records: u64,
}

/// The destination hub's signed answer once its town decided on an imported package: per
/// child (by position in the package's `<children>`, so no personal data travels back) accepted
/// or declined with a coded reason, and how many of the child's records were copied or declined.
/// Its JSON form has these fields; the signature covers its canonical XML either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    #[schema(
        max_length = 36,
        pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub package_id: String,
    #[schema(
        max_length = 36,
        pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub conversation_id: String,
    #[schema(max_length = 6, pattern = "^[0-9]{6}$")]
    pub origin: String,
    #[schema(max_length = 6, pattern = "^[0-9]{6}$")]
    pub destination: String,
    /// SHA-256 of the package's canonical XML the decision is about.
    #[schema(max_length = 64, pattern = "^[0-9a-f]{64}$")]
    pub package_sha256: String,
    /// When the destination town decided (RFC 3339).
    #[schema(max_length = 40, format = DateTime)]
    pub decided: String,
    /// One entry per child of the package, in package order.
    #[schema(max_items = 10000)]
    pub children: Vec<ChildOutcome>,
}

/// What the destination decided for one child of the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildOutcome {
    /// The child's position in the package's `<children>` (0-based).
    #[schema(maximum = 9999)]
    pub position: u64,
    pub decision: ChildDecision,
    /// Why the child was declined (only with `declined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::transfer::DeclineReason>,
    /// Records copied into the destination's files.
    #[schema(maximum = 10000)]
    pub records_copied: u64,
    /// Records the destination declined (they stay only with the origin).
    #[schema(maximum = 10000)]
    pub records_declined: u64,
}

/// The destination's decision for one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChildDecision {
    /// The destination took the child over.
    Accepted,
    /// The destination refused; the origin keeps following the child.
    Declined,
}

impl ChildDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildDecision::Accepted => "accepted",
            ChildDecision::Declined => "declined",
        }
    }
}

/// Why a package, receipt or signature is refused: a stable code, a JSON pointer into the
/// JSON form (the XML form has the same structure), and for XML syntax the byte offset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageError {
    pub code: &'static str,
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl PackageError {
    pub fn new(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        PackageError {
            code,
            pointer: pointer.into(),
            message: message.into(),
            offset: None,
        }
    }
    fn at(code: &'static str, offset: u64, message: impl Into<String>) -> Self {
        PackageError {
            offset: Some(offset),
            ..PackageError::new(code, "", message)
        }
    }
}

impl std::fmt::Display for PackageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if !self.pointer.is_empty() {
            write!(f, " (at {})", self.pointer)?;
        }
        if let Some(offset) = self.offset {
            write!(f, " (byte {offset})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PackageError {}

type Result<T> = std::result::Result<T, PackageError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Package {
        let mut package = Package {
            header: Header {
                schema_version: "1".into(),
                package_id: random_id(),
                conversation_id: random_id(),
                origin: "119016".into(),
                destination: "139998".into(),
                created: "2026-11-21T09:00:00+09:00".into(),
                legal_basis: "児童福祉法第25条の3 & <要対協>".into(),
                reason: "moved".into(),
            },
            manifest: Vec::new(),
            children: Some(vec![Child {
                origin_resident_no: "100000000001".into(),
                support_measure: true,
                objection: None,
            }]),
            records: Some(vec![PackageRecord {
                origin_resident_no: "100000000001".into(),
                source: "juki".into(),
                source_record_id: "s-1".into(),
                record_type: "subject".into(),
                data: serde_json::json!({"record_type": "subject", "note": "a<b & \"c\" 'd' 髙"}),
            }]),
        };
        package.manifest = manifest_of(&package);
        package
    }

    #[test]
    fn xml_json_xml_round_trip_is_byte_identical() {
        let package = sample();
        let xml = to_xml(&package);
        let parsed = parse(&xml).unwrap();
        assert_eq!(parsed, package);
        let json = to_json(&parsed);
        let back = parse(&json).unwrap();
        assert_eq!(to_xml(&back), xml);
    }

    #[test]
    fn ids_other_than_a_lowercase_uuid_are_refused_in_both_forms() {
        let long = "a".repeat(10 * 1024);
        let hostile = [
            "../../x",
            "/abs/x",
            "",
            long.as_str(),
            "00000000-0000-4000-8000-00000000000A",
            "00000000-0000-4000-8000-0000000000001",
            "00000000/0000-4000-8000-000000000001",
        ];
        for id in hostile {
            let mut package = sample();
            package.header.package_id = id.to_string();
            for bytes in [to_xml(&package), to_json(&package)] {
                let error = parse(&bytes).unwrap_err();
                assert_eq!(
                    (error.code, error.pointer.as_str()),
                    ("id_invalid", "/package_id")
                );
                assert!(
                    error.message.len() < 200,
                    "the message quotes a bounded prefix"
                );
            }
            assert_eq!(file_name(id, ".xml").unwrap_err().code, "id_invalid");
        }
        let mut package = sample();
        package.header.conversation_id = "../c".into();
        assert_eq!(
            parse(&to_xml(&package)).unwrap_err().pointer,
            "/conversation_id"
        );
        assert!(is_valid_id(&random_id()));
    }

    #[test]
    fn attribute_floods_are_refused_before_reading_on() {
        let xml = String::from_utf8(to_xml(&sample())).unwrap();
        let flood: String = (0..100_000).map(|i| format!(" a{i}=\"x\"")).collect();
        let hostile = xml.replacen(
            "<transfer-package ",
            &format!("<transfer-package{flood} "),
            1,
        );
        let started = std::time::Instant::now();
        let error = parse(hostile.as_bytes()).unwrap_err();
        assert_eq!(error.code, "too_many_attributes");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "refused in {:?}",
            started.elapsed()
        );
        let on_a_part = xml.replacen("<part ", &format!("<part{flood} "), 1);
        let error = parse(on_a_part.as_bytes()).unwrap_err();
        assert_eq!(
            (error.code, error.pointer.as_str()),
            ("too_many_attributes", "/manifest/0")
        );
    }

    #[test]
    fn containers_hold_at_most_max_items() {
        let mut package = sample();
        let child = package.children.as_ref().unwrap()[0].clone();
        package.children = Some(vec![child; MAX_ITEMS + 1]);
        package.manifest = manifest_of(&package);
        for bytes in [to_xml(&package), to_json(&package)] {
            let error = parse(&bytes).unwrap_err();
            assert_eq!(
                (error.code, error.pointer.as_str()),
                ("too_many_items", "/children")
            );
        }
    }

    #[test]
    fn every_single_byte_flip_is_refused() {
        let package = sample();
        let key = new_signing_key();
        let signature = sign_package(&key, &package);
        let xml = to_xml(&package);
        for i in 0..xml.len() {
            let mut tampered = xml.clone();
            tampered[i] ^= 0x01;
            let accepted = parse(&tampered).and_then(|p| {
                verify_package_signature(&p, &signature)?;
                check_manifest(&p)
            });
            assert!(accepted.is_err(), "a flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn manifest_problems_are_named() {
        let mut package = sample();
        package.records.as_mut().unwrap()[0].source_record_id = "s-2".into();
        assert_eq!(
            check_manifest(&package).unwrap_err().code,
            "digest_mismatch"
        );
        let mut package = sample();
        package.records = None;
        assert_eq!(check_manifest(&package).unwrap_err().code, "part_missing");
        let mut package = sample();
        package.manifest[0].count = 2;
        assert_eq!(check_manifest(&package).unwrap_err().code, "count_mismatch");
    }

    #[test]
    fn signatures_bind_header_and_manifest() {
        let package = sample();
        let key = new_signing_key();
        let signature = sign_package(&key, &package);
        verify_package_signature(&package, &signature).unwrap();
        let parsed = DetachedSignature::parse(&signature.to_string()).unwrap();
        assert_eq!(parsed, signature);
        let mut moved = package.clone();
        moved.header.destination = "139999".into();
        assert_eq!(
            verify_package_signature(&moved, &signature)
                .unwrap_err()
                .code,
            "signature_invalid"
        );
        let other = sign_package(&new_signing_key(), &package);
        let forged = DetachedSignature {
            public_key: signature.public_key.clone(),
            signature: other.signature,
        };
        assert!(verify_package_signature(&package, &forged).is_err());
    }

    #[test]
    fn receipts_round_trip() {
        let receipt = Receipt {
            package_id: random_id(),
            conversation_id: random_id(),
            origin: "119016".into(),
            destination: "139998".into(),
            package_sha256: "ab".repeat(32),
            received: "2026-11-21T00:00:00Z".into(),
            children: 2,
            records: 40,
        };
        let xml = receipt_to_xml(&receipt);
        assert_eq!(parse_receipt(&xml).unwrap(), receipt);
    }

    fn outcome() -> Outcome {
        Outcome {
            package_id: random_id(),
            conversation_id: random_id(),
            origin: "119016".into(),
            destination: "139998".into(),
            package_sha256: "ab".repeat(32),
            decided: "2026-11-21T00:00:00Z".into(),
            children: vec![
                ChildOutcome {
                    position: 0,
                    decision: ChildDecision::Accepted,
                    reason: None,
                    records_copied: 12,
                    records_declined: 1,
                },
                ChildOutcome {
                    position: 1,
                    decision: ChildDecision::Declined,
                    reason: Some(crate::transfer::DeclineReason::WrongDestination),
                    records_copied: 0,
                    records_declined: 4,
                },
            ],
        }
    }

    #[test]
    fn outcomes_round_trip_in_both_forms() {
        let outcome = outcome();
        let xml = outcome_to_xml(&outcome);
        assert_eq!(parse_outcome(&xml).unwrap(), outcome);
        let json = serde_json::to_vec(&outcome).unwrap();
        let (from_json, canonical) = parse_outcome_canonical(&json).unwrap();
        assert_eq!(from_json, outcome);
        assert_eq!(
            canonical.as_ref(),
            xml.as_slice(),
            "the signature covers the same bytes"
        );
        let text = String::from_utf8(xml).unwrap();
        assert_eq!(
            parse_outcome(text.replacen("\"/>", "\" />", 1).as_bytes())
                .unwrap_err()
                .code,
            "not_canonical"
        );
    }

    #[test]
    fn outcomes_name_each_child_once_and_explain_declines() {
        let refused = |change: &dyn Fn(&mut Outcome)| {
            let mut outcome = outcome();
            change(&mut outcome);
            let error = parse_outcome(&outcome_to_xml(&outcome)).unwrap_err();
            let json = serde_json::to_vec(&outcome).unwrap();
            assert_eq!(
                parse_outcome_canonical(&json).unwrap_err(),
                error,
                "both forms"
            );
            (error.code, error.pointer)
        };
        assert_eq!(
            refused(&|o| o.children.swap(0, 1)),
            ("position_invalid", "/children/0/position".to_string())
        );
        assert_eq!(
            refused(&|o| o.children[1].reason = None),
            ("attribute_missing", "/children/1/reason".to_string())
        );
        assert_eq!(
            refused(&|o| o.children[0].reason = Some(crate::transfer::DeclineReason::Other)),
            ("attribute_invalid", "/children/0/reason".to_string())
        );
        assert_eq!(
            refused(&|o| o.children[1].records_copied = 1),
            ("count_mismatch", "/children/1/records_copied".to_string())
        );
        assert_eq!(
            refused(&|o| o.children.clear()),
            ("part_missing", "/children".to_string())
        );
        assert_eq!(
            refused(&|o| o.package_id = "../x".into()),
            ("id_invalid", "/package_id".to_string())
        );
    }
}
