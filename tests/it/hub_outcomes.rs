//! Outcome messages between hubs (issue 19): when the destination town accepts or declines an
//! imported package, its hub signs an outcome (per child, by position in the package: decision,
//! coded reason, records copied and declined); the origin imports it over HTTP or with the CLI,
//! and its transfer shows the decision. Replays change nothing; forged, tampered or conflicting
//! outcomes are refused and change nothing.

use crate::common;
use crate::hub_exchange::{
    CHILD, DEST, DEST_CHILD, DEST_DV_CHILD, DV_CHILD, ORIGIN, Pair, audit_actions, import,
    import_receipt, offer, package, pair, run_ok, show, signing_key,
};

use common::{Backend, Resp, describe};
use kodomo_hub::transfer::package as transfer_package;
use serde_json::{Value, json};

/// Offer, export and import: the transfer id at the origin, at the destination, and the
/// receipt with its signature.
fn delivered_package(p: &Pair) -> (i64, i64, Vec<u8>, String) {
    let id = offer(p);
    let (xml, signature) = package(p, id, "xml");
    let r = import(p, &xml, &signature, "application/xml");
    assert_eq!(r.status, 201, "import: {}", r.text());
    let inbound: i64 = r
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let receipt_signature = r.header("kodomo-signature").unwrap().to_string();
    (id, inbound, r.body, receipt_signature)
}

fn outcome_of(p: &Pair, inbound: i64, format: &str) -> Resp {
    p.dest_hub.get(
        &format!("/v1/transfers/{inbound}/outcome?format={format}"),
        Some(&p.dest_officer),
    )
}

fn post_outcome(p: &Pair, body: &[u8], signature: &str, content_type: &str) -> Resp {
    p.origin_hub.post(
        "/v1/transfer-outcomes",
        Some(&p.origin_officer),
        Some(content_type),
        &[("X-Actor", "officer-o1"), ("Kodomo-Signature", signature)],
        body.to_vec(),
    )
}

fn refused(r: &Resp, code: &str) {
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], code, "{}", r.text());
}

fn moved_out(p: &Pair) -> Vec<String> {
    p.origin_hub.raw_db().strings(&format!(
        "SELECT resident_no AS v FROM subjects WHERE municipality_code = '{ORIGIN}' AND moved_out_to = '{DEST}' ORDER BY resident_no"
    ))
}

fn accepted_outcome_travels_back_over_http(backend: Backend) {
    let p = pair(backend);
    let (id, inbound, receipt, receipt_signature) = delivered_package(&p);
    assert_eq!(
        outcome_of(&p, inbound, "xml").status,
        404,
        "no outcome before the town decides"
    );
    assert_eq!(
        import_receipt(&p, &receipt, &receipt_signature).ok()["status"],
        "delivered"
    );
    let accepted = p.dest_hub.post(
        &format!("/v1/transfers/{inbound}/accept"),
        Some(&p.dest_officer),
        Some("application/json"),
        &[("X-Actor", "officer-d1")],
        json!({
            "placements": [
                {"origin_resident_no": CHILD, "destination_resident_no": DEST_CHILD},
                {"origin_resident_no": DV_CHILD, "destination_resident_no": DEST_DV_CHILD},
            ],
            "declined_records": ["sa-202"],
        })
        .to_string(),
    );
    assert_eq!(accepted.status, 200, "accept: {}", accepted.text());

    let xml = outcome_of(&p, inbound, "xml");
    assert_eq!(xml.status, 200, "{}", xml.text());
    let signature = xml.header("kodomo-signature").unwrap().to_string();
    let text = xml.text();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<transfer-outcome "),
        "{text}"
    );
    assert!(
        !text.contains(CHILD) && !text.contains(DV_CHILD) && !text.contains(DEST_CHILD),
        "no resident number travels back: {text}"
    );
    let fields = outcome_of(&p, inbound, "json").ok();
    assert_eq!(fields["origin"], ORIGIN);
    assert_eq!(fields["destination"], DEST);
    // Children in package order (C-201, then C-202): C-201's subject record and checkup were
    // copied; of C-202's three records the school attendance was declined.
    assert_eq!(
        fields["children"],
        json!([
            {"position": 0, "decision": "accepted", "records_copied": 2, "records_declined": 0},
            {"position": 1, "decision": "accepted", "records_copied": 2, "records_declined": 1},
        ])
    );

    // A changed count fails the signature and changes nothing.
    let tampered = text.replacen("records-declined=\"1\"", "records-declined=\"0\"", 1);
    refused(
        &post_outcome(&p, tampered.as_bytes(), &signature, "application/xml"),
        "signature_invalid",
    );
    assert!(show(&p.origin_hub, &p.origin_officer, id)["destination_outcome"].is_null());

    // The JSON form under the same signature is the same outcome.
    let imported = post_outcome(
        &p,
        fields.to_string().as_bytes(),
        &signature,
        "application/json",
    );
    let view = imported.ok();
    assert_eq!(view["status"], "delivered");
    assert!(
        view.get("children").is_none(),
        "the answer carries no child's data (the importing officer may not see every child): {view}"
    );
    assert_eq!(view["destination_outcome"], fields);
    assert_eq!(
        show(&p.origin_hub, &p.origin_officer, id)["destination_outcome"],
        fields
    );
    assert_eq!(
        moved_out(&p),
        [CHILD, DV_CHILD],
        "accepted children moved out"
    );
    // Replayed (in either form) it changes nothing and is answered the same.
    let again = post_outcome(&p, text.as_bytes(), &signature, "application/xml");
    assert_eq!(again.ok(), view);
    // The origin keeps the canonical XML and reads its outcome back the same way.
    let origin_copy = p.origin_hub.get(
        &format!("/v1/transfers/{id}/outcome"),
        Some(&p.origin_officer),
    );
    assert_eq!(origin_copy.text(), text);
    assert_eq!(
        origin_copy.header("kodomo-signature"),
        Some(signature.as_str())
    );

    let origin_actions = audit_actions(&p.origin_hub);
    assert_eq!(
        origin_actions
            .iter()
            .filter(|a| *a == "transfer.outcome.import")
            .count(),
        2,
        "one entry per child, once: {origin_actions:?}"
    );
    for hub in [&p.origin_hub, &p.dest_hub] {
        let out = hub.cli(&["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", describe(&out));
    }
}
both_backends!(accepted_outcome_travels_back_over_http);

/// A declined transfer's outcome goes through files with the CLI, before the receipt: it
/// delivers the transfer and leaves the children with the origin (not moved out). A different
/// outcome for the same package, even signed by the destination, is refused; so is one signed
/// by a hub the origin does not trust, or one about another package.
fn declined_outcome_through_files_keeps_the_children(backend: Backend) {
    let p = pair(backend);
    let (id, inbound, receipt, receipt_signature) = delivered_package(&p);
    let declined = p.dest_hub.post(
        &format!("/v1/transfers/{inbound}/decline"),
        Some(&p.dest_officer),
        Some("application/json"),
        &[("X-Actor", "officer-d1")],
        json!({"reason": "not_resident"}).to_string(),
    );
    assert_eq!(declined.status, 200, "decline: {}", declined.text());

    let dir = tempfile::tempdir().unwrap();
    let written = run_ok(
        &p.dest_hub,
        &[
            "transfer",
            "outcome-export",
            "--municipality",
            DEST,
            "--id",
            &inbound.to_string(),
            "--out",
            dir.path().to_str().unwrap(),
        ],
    );
    let path = std::path::PathBuf::from(written.trim());
    assert!(
        path.to_str().unwrap().ends_with(".outcome.xml"),
        "{written}"
    );
    let bytes = std::fs::read(&path).unwrap();
    let outcome = transfer_package::parse_outcome(&bytes).unwrap();
    assert!(
        outcome
            .children
            .iter()
            .all(|c| c.decision == transfer_package::ChildDecision::Declined
                && c.records_copied == 0),
        "{outcome:?}"
    );
    assert_eq!(
        outcome
            .children
            .iter()
            .map(|c| c.records_declined)
            .collect::<Vec<_>>(),
        [2, 3]
    );

    // Signed by a key the origin does not trust.
    let stranger = transfer_package::new_signing_key();
    let forged = transfer_package::DetachedSignature::sign(&stranger, &bytes).to_string();
    refused(
        &post_outcome(&p, &bytes, &forged, "application/xml"),
        "signer_unknown",
    );

    let imported = run_ok(
        &p.origin_hub,
        &[
            "transfer",
            "outcome",
            "--municipality",
            ORIGIN,
            path.to_str().unwrap(),
            "--actor",
            "officer-o1",
        ],
    );
    assert_eq!(
        imported.trim(),
        format!(
            "transfer {id} delivered; destination decided: declined (not_resident), declined (not_resident)"
        )
    );
    assert!(moved_out(&p).is_empty(), "declined children stay");
    let view = show(&p.origin_hub, &p.origin_officer, id);
    assert_eq!(
        view["destination_outcome"]["children"][0]["reason"],
        "not_resident"
    );
    // The receipt arriving afterwards is kept and changes nothing.
    assert_eq!(
        import_receipt(&p, &receipt, &receipt_signature).ok()["status"],
        "delivered"
    );
    assert!(moved_out(&p).is_empty());

    // The destination's own key signing a different decision for the same package.
    let key = signing_key(&p.dest_hub);
    let mut changed = outcome.clone();
    changed.children[0].decision = transfer_package::ChildDecision::Accepted;
    changed.children[0].reason = None;
    let changed_xml = transfer_package::outcome_to_xml(&changed);
    let changed_signature =
        transfer_package::DetachedSignature::sign(&key, &changed_xml).to_string();
    refused(
        &post_outcome(&p, &changed_xml, &changed_signature, "application/xml"),
        "outcome_conflict",
    );
    // …and an outcome about a package the origin never sent.
    let mut unknown = outcome.clone();
    unknown.package_id = transfer_package::random_id();
    let unknown_xml = transfer_package::outcome_to_xml(&unknown);
    let unknown_signature =
        transfer_package::DetachedSignature::sign(&key, &unknown_xml).to_string();
    refused(
        &post_outcome(&p, &unknown_xml, &unknown_signature, "application/xml"),
        "package_unknown",
    );
    let kept: Value = show(&p.origin_hub, &p.origin_officer, id)["destination_outcome"].clone();
    assert_eq!(kept["children"][0]["decision"], "declined");
}
both_backends!(declined_outcome_through_files_keeps_the_children);
