//! Transfer package vectors: a valid signed package and the outcome message answering it, and
//! each way one is refused.

use serde_json::json;

use crate::schema::SchemaVersion;

use super::files::file_error;
use super::*;

/// A package file case: name, bytes, detached signature, requirement, description, errors.
type PackageCase = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    &'static str,
    &'static str,
    Vec<ExpectedError>,
);

/// Transfer packages, good and tampered, signed with a fixed synthetic key (published here, so
/// the vectors are reproducible; it signs nothing else).
pub(super) fn transfer_packages(version: &SchemaVersion) -> Result<Vec<PackageCase>, String> {
    use crate::transfer::package::{
        Child, Header, Objection, Package, PackageRecord, manifest_of, sign_package, to_xml,
    };
    let mut data = sample_record(version, crate::schema::SUBJECT_TYPE)?;
    data["source_record_id"] = json!("xfer-0001");
    let resident_no = data["subject"]["resident_no"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut package = Package {
        header: Header {
            schema_version: version.major.to_string(),
            package_id: "00000000-0000-4000-8000-000000000001".into(),
            conversation_id: "00000000-0000-4000-8000-000000000002".into(),
            origin: "131016".into(),
            destination: "011002".into(),
            created: "2021-04-01T09:00:00+09:00".into(),
            legal_basis: "児童福祉法第25条の3".into(),
            reason: "moved".into(),
        },
        manifest: Vec::new(),
        // The guardian objected (不同意): the objection travels with the child.
        children: Some(vec![Child {
            origin_resident_no: resident_no.clone(),
            support_measure: false,
            objection: Some(Objection {
                objected_on: "2021-03-15".into(),
                legal_note: Some("不同意書 第3号様式".into()),
            }),
        }]),
        records: Some(vec![PackageRecord {
            origin_resident_no: resident_no,
            source: "juki".into(),
            source_record_id: "xfer-0001".into(),
            record_type: crate::schema::SUBJECT_TYPE.into(),
            data,
        }]),
    };
    package.manifest = manifest_of(&package);
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x4b; 32]);
    let signature = sign_package(&key, &package).to_string().into_bytes();
    let xml = to_xml(&package);
    let text = String::from_utf8(xml.clone()).map_err(|e| e.to_string())?;
    // A record's birth date changed after signing: still canonical XML, but the records part
    // no longer has the digest the signed manifest states.
    let at = text
        .rfind("2021-04-01")
        .ok_or("the sample record has no date")?;
    let tampered = format!("{}2021-04-02{}", &text[..at], &text[at + 10..]);
    let undated_objection = text.replacen(" objected-on=\"2021-03-15\"", "", 1);
    let mut other = package.clone();
    other.header.package_id = "00000000-0000-4000-8000-000000000003".into();
    let foreign_signature = sign_package(&key, &other).to_string().into_bytes();
    let error = |pointer: &str, code: &str| vec![file_error(None, None, None, pointer, code)];
    let outcomes = transfer_outcomes(&key, &xml)?;
    let mut cases = vec![
        (
            "transfer-valid.xml".into(),
            xml.clone(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a signed transfer package",
            vec![],
        ),
        (
            "transfer-tampered.xml".into(),
            tampered.into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a record changed after signing",
            error("/manifest/1/sha256", "digest_mismatch"),
        ),
        (
            "transfer-objection-undated.xml".into(),
            undated_objection.into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a child's objection note without the date the guardian objected",
            error("/children/0/objection/objected_on", "attribute_missing"),
        ),
        (
            "transfer-not-canonical.xml".into(),
            text.replacen("\"/>", "\" />", 1).into_bytes(),
            Some(signature.clone()),
            "KDL-XFER-001",
            "a space added before the end of an empty element (same XML, not canonical)",
            error("", "not_canonical"),
        ),
        (
            "transfer-unsigned.xml".into(),
            xml.clone(),
            None,
            "KDL-XFER-002",
            "a package without its .sig",
            error("/signature", "signature_missing"),
        ),
        (
            "transfer-foreign-signature.xml".into(),
            xml,
            Some(foreign_signature),
            "KDL-XFER-002",
            "a signature over another package",
            error("/signature", "signature_invalid"),
        ),
    ];
    cases.extend(outcomes);
    Ok(cases)
}

/// Outcome messages answering the valid package, good and tampered, signed with the same key.
fn transfer_outcomes(
    key: &ed25519_dalek::SigningKey,
    package_xml: &[u8],
) -> Result<Vec<PackageCase>, String> {
    use crate::transfer::DeclineReason;
    use crate::transfer::package::{
        ChildDecision, ChildOutcome, DetachedSignature, Outcome, outcome_to_xml,
    };
    use sha2::Digest;
    let declined = Outcome {
        package_id: "00000000-0000-4000-8000-000000000001".into(),
        conversation_id: "00000000-0000-4000-8000-000000000002".into(),
        origin: "131016".into(),
        destination: "011002".into(),
        package_sha256: hex::encode(sha2::Sha256::digest(package_xml)),
        decided: "2021-04-05T15:30:00+09:00".into(),
        children: vec![ChildOutcome {
            position: 0,
            decision: ChildDecision::Declined,
            reason: Some(DeclineReason::NotResident),
            records_copied: 0,
            records_declined: 1,
        }],
    };
    let signed = |outcome: &Outcome| {
        let xml = outcome_to_xml(outcome);
        let signature = DetachedSignature::sign(key, &xml).to_string().into_bytes();
        (xml, signature)
    };
    let (xml, signature) = signed(&declined);
    let text = String::from_utf8(xml.clone()).map_err(|e| e.to_string())?;
    let mut unexplained = declined.clone();
    unexplained.children[0].reason = None;
    let (unexplained_xml, unexplained_signature) = signed(&unexplained);
    let error = |pointer: &str, code: &str| vec![file_error(None, None, None, pointer, code)];
    Ok(vec![
        (
            "transfer-outcome-valid.outcome.xml".into(),
            xml.clone(),
            Some(signature.clone()),
            "KDL-XFER-003",
            "a signed outcome: the package's one child declined (not resident)",
            vec![],
        ),
        (
            "transfer-outcome-tampered.outcome.xml".into(),
            text.replacen("records-declined=\"1\"", "records-declined=\"0\"", 1)
                .into_bytes(),
            Some(signature),
            "KDL-XFER-003",
            "a record count changed after signing",
            error("/signature", "signature_invalid"),
        ),
        (
            "transfer-outcome-reason-missing.outcome.xml".into(),
            unexplained_xml,
            Some(unexplained_signature),
            "KDL-XFER-003",
            "a declined child without a reason code",
            error("/children/0/reason", "attribute_missing"),
        ),
        (
            "transfer-outcome-unsigned.outcome.xml".into(),
            xml,
            None,
            "KDL-XFER-003",
            "an outcome without its .sig",
            error("/signature", "signature_missing"),
        ),
    ])
}
