//! Transfer package vectors: a valid signed package and receipt, and each way one is refused.

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
    Ok(vec![
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
    ])
}
