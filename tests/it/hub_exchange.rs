//! Transfers between hubs (SPEC §6): two hub processes with separate databases exchange a signed
//! package and its signed receipt — over HTTP and through files with the CLI — and every
//! tampered, mis-signed, incomplete or replayed package is refused with a precise error and
//! imports nothing.

use crate::common;

use std::path::{Path, PathBuf};

use common::{Backend, Hub, OTHER_TOWN, Resp, TOWN, Town, describe, record, subject};
use ed25519_dalek::SigningKey;
use kodomo_hub::transfer::package as transfer_package;
use serde_json::{Value, json};

pub(crate) const ORIGIN: &str = TOWN;
pub(crate) const DEST: &str = OTHER_TOWN;
const LEGAL_BASIS: &str = "児童福祉法第25条の3";
pub(crate) const CHILD: &str = "C-201";
/// Under a DV support measure (支援措置).
pub(crate) const DV_CHILD: &str = "C-202";
pub(crate) const DEST_CHILD: &str = "D-701";
pub(crate) const DEST_DV_CHILD: &str = "D-702";

pub(crate) struct Pair {
    pub(crate) origin_hub: Hub,
    pub(crate) dest_hub: Hub,
    origin: Town,
    dest: Town,
    pub(crate) origin_officer: String,
    pub(crate) dest_officer: String,
}

fn public_key(hub: &Hub) -> String {
    let out = hub.cli(&["admin", "peer", "key"]);
    assert!(out.status.success(), "peer key: {}", describe(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn trust(hub: &Hub, name: &str, key: &str, town: &str) {
    let town = format!("{town}=町{town}");
    let out = hub.cli(&[
        "admin",
        "peer",
        "add",
        "--name",
        name,
        "--public-key",
        key,
        "--town",
        &town,
    ]);
    assert!(out.status.success(), "peer add: {}", describe(&out));
}

/// Two hubs that trust each other; the origin holds a household of two children.
pub(crate) fn pair(backend: Backend) -> Pair {
    let origin_hub = Hub::start(backend);
    let dest_hub = Hub::start(backend);
    let origin = origin_hub.town(ORIGIN);
    let dest = dest_hub.town(DEST);
    // The household includes a DV child: the officers handling it hold support-measure-reader.
    let dv_officer = "transfer-officer,support-measure-reader";
    let origin_officer = origin_hub.add_client(ORIGIN, "o-officer", dv_officer, None);
    let dest_officer = dest_hub.add_client(DEST, "d-officer", dv_officer, None);
    trust(&origin_hub, "dest-hub", &public_key(&dest_hub), DEST);
    trust(&dest_hub, "origin-hub", &public_key(&origin_hub), ORIGIN);
    let mut child = subject("s-201", CHILD, "佐藤 花子");
    child["birth_date"] = json!("2019-05-05");
    let mut dv_child = subject("s-202", DV_CHILD, "佐藤 一郎");
    dv_child["birth_date"] = json!("2017-03-03");
    dv_child["support_measure"] = json!(true);
    let records = vec![
        child,
        dv_child,
        record("infant-checkup", "ic-201", CHILD),
        record("child-protection-case", "cpc-202", DV_CHILD),
        record("school-attendance", "sa-202", DV_CHILD),
    ];
    let report = origin_hub.push(&origin, &records);
    assert_eq!(report["rejected"], 0, "household pushed: {report}");
    Pair {
        origin_hub,
        dest_hub,
        origin,
        dest,
        origin_officer,
        dest_officer,
    }
}

pub(crate) fn offer(p: &Pair) -> i64 {
    let r = p.origin_hub.post(
        "/v1/transfers",
        Some(&p.origin_officer),
        Some("application/json"),
        &[("X-Actor", "officer-o1")],
        json!({
            "destination": DEST, "children": [CHILD, DV_CHILD], "legal_basis": LEGAL_BASIS,
            "reason": "moved", "escalate_to": "課長 山本",
        })
        .to_string(),
    );
    assert_eq!(r.status, 201, "offer: {}", r.text());
    r.json()["id"].as_i64().unwrap()
}

/// The package of transfer `id` and its signature, in the given form.
pub(crate) fn package(p: &Pair, id: i64, format: &str) -> (Vec<u8>, String) {
    let r = p.origin_hub.get_with(
        &format!("/v1/transfers/{id}/package?format={format}"),
        Some(&p.origin_officer),
        &[("X-Actor", "officer-o1")],
    );
    assert_eq!(r.status, 200, "package: {}", r.text());
    let signature = r
        .header("kodomo-signature")
        .expect("signature header")
        .to_string();
    (r.body, signature)
}

pub(crate) fn import(p: &Pair, body: &[u8], signature: &str, content_type: &str) -> Resp {
    p.dest_hub.post(
        "/v1/transfer-packages",
        Some(&p.dest_officer),
        Some(content_type),
        &[("X-Actor", "officer-d1"), ("Kodomo-Signature", signature)],
        body.to_vec(),
    )
}

pub(crate) fn import_receipt(p: &Pair, body: &[u8], signature: &str) -> Resp {
    p.origin_hub.post(
        "/v1/transfer-receipts",
        Some(&p.origin_officer),
        Some("application/xml"),
        &[("X-Actor", "officer-o1"), ("Kodomo-Signature", signature)],
        body.to_vec(),
    )
}

fn inbox(hub: &Hub, token: &str) -> Vec<Value> {
    hub.get("/v1/transfers?box=inbox", Some(token)).ok()["transfers"]
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) fn show(hub: &Hub, token: &str, id: i64) -> Value {
    hub.get_with(
        &format!("/v1/transfers/{id}"),
        Some(token),
        &[("X-Purpose", "transfer"), ("X-Actor", "officer-read")],
    )
    .ok()
}

pub(crate) fn audit_actions(hub: &Hub) -> Vec<String> {
    let mut db = hub.raw_db();
    db.strings("SELECT action AS v FROM audit_log ORDER BY seq")
}

fn full_exchange_over_http(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (xml, signature) = package(&p, id, "xml");
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<transfer-package "));
    for attribute in [
        "schema-version=\"1\"",
        "package-id=",
        "conversation-id=",
        "origin=\"131016\"",
        "destination=\"011002\"",
        "created=",
        "legal-basis=\"児童福祉法第25条の3\"",
        "reason=\"moved\"",
    ] {
        assert!(text.contains(attribute), "{attribute} in the root element");
    }
    assert!(text.contains(&format!(
        "<child origin-resident-no=\"{DV_CHILD}\" support-measure=\"true\"/>"
    )));
    // Exporting again gives the same bytes (one package per transfer).
    assert_eq!(package(&p, id, "xml"), (xml.clone(), signature.clone()));

    let r = import(&p, &xml, &signature, "application/xml");
    assert_eq!(r.status, 201, "import: {}", r.text());
    let receipt = r.body.clone();
    let receipt_signature = r.header("kodomo-signature").unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    let inbound: i64 = location.rsplit('/').next().unwrap().parse().unwrap();

    // The destination officer sees it in the inbox and accepts it with placements.
    let waiting = inbox(&p.dest_hub, &p.dest_officer);
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["municipality_code"], ORIGIN);
    assert_eq!(waiting[0]["status"], "offered");
    let view = show(&p.dest_hub, &p.dest_officer, inbound);
    assert_eq!(view["record_count"], 5);
    let dv = view["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["origin_resident_no"] == DV_CHILD)
        .unwrap();
    assert_eq!(dv["support_measure"], true, "the DV flag travels: {view}");
    let accepted = p.dest_hub.post(
        &format!("/v1/transfers/{inbound}/accept"),
        Some(&p.dest_officer),
        Some("application/json"),
        &[("X-Actor", "officer-d1")],
        json!({"placements": [
            {"origin_resident_no": CHILD, "destination_resident_no": DEST_CHILD},
            {"origin_resident_no": DV_CHILD, "destination_resident_no": DEST_DV_CHILD},
        ]})
        .to_string(),
    );
    assert_eq!(accepted.status, 200, "accept: {}", accepted.text());
    let mut db = p.dest_hub.raw_db();
    assert_eq!(
        db.strings(&format!(
            "SELECT source_record_id AS v FROM records WHERE municipality_code = '{DEST}' ORDER BY source_record_id"
        )),
        ["cpc-202", "ic-201", "s-201", "s-202", "sa-202"]
    );
    assert_eq!(
        db.strings(&format!(
            "SELECT origin_municipality_code AS v FROM record_provenance WHERE municipality_code = '{DEST}' GROUP BY origin_municipality_code"
        )),
        [ORIGIN]
    );
    assert_eq!(
        db.strings(&format!("SELECT resident_no AS v FROM subjects WHERE municipality_code = '{DEST}' AND support_measure")),
        [DEST_DV_CHILD]
    );

    // The origin imports the receipt: delivered, children moved out; again is harmless.
    let closed = import_receipt(&p, &receipt, &receipt_signature);
    assert_eq!(closed.ok()["status"], "delivered");
    assert_eq!(
        import_receipt(&p, &receipt, &receipt_signature).ok()["status"],
        "delivered"
    );
    let mut origin_db = p.origin_hub.raw_db();
    assert_eq!(
        origin_db.strings(&format!(
            "SELECT resident_no AS v FROM subjects WHERE municipality_code = '{ORIGIN}' AND moved_out_to = '{DEST}' ORDER BY resident_no"
        )),
        [CHILD, DV_CHILD]
    );
    // The origin keeps its copy.
    assert_eq!(p.origin_hub.push(&p.origin, &[])["rejected"], 0);
    assert_eq!(
        origin_db.strings(&format!(
            "SELECT CAST(COUNT(*) AS TEXT) AS v FROM records WHERE municipality_code = '{ORIGIN}'"
        )),
        ["5"]
    );
    // Every step is in each hub's audit trail, and both trails verify.
    let origin_actions = audit_actions(&p.origin_hub);
    for action in [
        "transfer.offer",
        "transfer.package.export",
        "transfer.receipt.import",
    ] {
        assert!(
            origin_actions.iter().any(|a| a == action),
            "{action} audited at the origin"
        );
    }
    let dest_actions = audit_actions(&p.dest_hub);
    for action in ["transfer.package.import", "transfer.accept"] {
        assert!(
            dest_actions.iter().any(|a| a == action),
            "{action} audited at the destination"
        );
    }
    for hub in [&p.origin_hub, &p.dest_hub] {
        let out = hub.cli(&["audit", "verify"]);
        assert!(out.status.success(), "audit verify: {}", describe(&out));
    }
    let _ = &p.dest;
}
both_backends!(full_exchange_over_http);

/// A guardian's objection (不同意) recorded at the origin travels in the package and holds at
/// the destination hub from acceptance on — the destination cannot see the origin's opt-outs.
fn objections_travel_between_hubs(backend: Backend) {
    let p = pair(backend);
    let caseworker = "caseworker,support-measure-reader";
    let origin_cw = p.origin_hub.add_client(ORIGIN, "o-cw", caseworker, None);
    let dest_cw = p.dest_hub.add_client(DEST, "d-cw", caseworker, None);
    let put = p.origin_hub.put(
        &format!("/v1/municipalities/{ORIGIN}/subjects/{CHILD}/opt-out"),
        Some(&origin_cw),
        Some("application/json"),
        &[("X-Actor", "staff-1")],
        json!({"objected_on": "2025-04-01", "legal_note": "不同意書 第3号様式"}).to_string(),
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let id = offer(&p);
    let (xml, signature) = package(&p, id, "xml");
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(
        text.contains(&format!(
            "<child origin-resident-no=\"{CHILD}\" support-measure=\"false\" objected-on=\"2025-04-01\" objection-note=\"不同意書 第3号様式\"/>"
        )),
        "{text}"
    );
    let (json_form, _) = package(&p, id, "json");
    let json_form: Value = serde_json::from_slice(&json_form).unwrap();
    assert_eq!(
        json_form["children"][0]["objection"],
        json!({"objected_on": "2025-04-01", "legal_note": "不同意書 第3号様式"}),
        "{json_form}"
    );
    let r = import(&p, &xml, &signature, "application/xml");
    assert_eq!(r.status, 201, "import: {}", r.text());
    let inbound: i64 = r
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let accepted = p.dest_hub.post(
        &format!("/v1/transfers/{inbound}/accept"),
        Some(&p.dest_officer),
        Some("application/json"),
        &[("X-Actor", "officer-d1")],
        json!({"placements": [
            {"origin_resident_no": CHILD, "destination_resident_no": DEST_CHILD},
            {"origin_resident_no": DV_CHILD, "destination_resident_no": DEST_DV_CHILD},
        ]})
        .to_string(),
    );
    assert_eq!(accepted.status, 200, "accept: {}", accepted.text());

    let profile = |child: &str, purpose: &str| {
        p.dest_hub.get_with(
            &format!("/v1/municipalities/{DEST}/subjects/{child}"),
            Some(&dest_cw),
            &[("X-Purpose", purpose), ("X-Actor", "staff-2")],
        )
    };
    common::assert_same_answer(
        &profile(DEST_CHILD, "screening_review"),
        &profile("D-NOPE", "screening_review"),
        "objected child in the destination hub's screening",
    );
    let handled = profile(DEST_CHILD, "case_handling").ok();
    assert_eq!(handled["opt_out"]["objected_on"], "2025-04-01", "{handled}");
    // The sibling without an objection stays in screening views.
    profile(DEST_DV_CHILD, "screening_review").ok();
}
both_backends!(objections_travel_between_hubs);

/// A client that speaks only JSON (a generated client) imports a package and gets the receipt
/// in the body; the origin takes the receipt's JSON form under the same signature, and a
/// changed field fails the signature.
fn receipts_travel_in_json_form(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (package_json, signature) = package(&p, id, "json");
    let imported = p.dest_hub.post(
        "/v1/transfer-packages",
        Some(&p.dest_officer),
        Some("application/json"),
        &[
            ("X-Actor", "officer-d1"),
            ("Kodomo-Signature", signature.as_str()),
            ("Accept", "application/json"),
        ],
        package_json,
    );
    assert_eq!(imported.status, 201, "import: {}", imported.text());
    let receipt_signature = imported.header("kodomo-signature").unwrap().to_string();
    let body = imported.json();
    assert_eq!(body["receipt_signature"], receipt_signature);
    assert!(body["receipt"].as_str().unwrap().starts_with("<?xml"));
    let fields = body["receipt_fields"].clone();
    assert_eq!(fields["origin"], ORIGIN);
    assert_eq!(fields["children"], 2);
    assert_eq!(fields["records"], 5);
    let post_receipt = |receipt: &Value| {
        p.origin_hub.post(
            "/v1/transfer-receipts",
            Some(&p.origin_officer),
            Some("application/json"),
            &[
                ("X-Actor", "officer-o1"),
                ("Kodomo-Signature", receipt_signature.as_str()),
            ],
            receipt.to_string(),
        )
    };
    let mut changed = fields.clone();
    changed["records"] = json!(4);
    let refused_receipt = post_receipt(&changed);
    assert_eq!(refused_receipt.status, 422, "{}", refused_receipt.text());
    assert_eq!(
        show(&p.origin_hub, &p.origin_officer, id)["status"],
        "offered",
        "a receipt whose signature fails changes nothing"
    );
    let mut unknown_field = fields.clone();
    unknown_field["note"] = json!("extra");
    assert_eq!(post_receipt(&unknown_field).status, 422);
    let delivered = post_receipt(&fields);
    assert_eq!(delivered.ok()["status"], "delivered");
    // The origin keeps the canonical XML the signature covers, whatever form arrived.
    let mut db = p.origin_hub.raw_db();
    assert_eq!(
        db.strings("SELECT receipt_xml AS v FROM transfer_packages WHERE direction = 'outbound'"),
        [body["receipt"].as_str().unwrap()]
    );
}
both_backends!(receipts_travel_in_json_form);

pub(crate) fn run_ok(hub: &Hub, args: &[&str]) -> String {
    let out = hub.cli(args);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn exchange_through_files_with_the_cli(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p).to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let export = |format: &str| {
        let args = [
            "transfer",
            "export",
            "--municipality",
            ORIGIN,
            "--id",
            &id,
            "--out",
            out,
            "--format",
            format,
            "--actor",
            "officer-o1",
        ];
        PathBuf::from(run_ok(&p.origin_hub, &args).trim())
    };
    let xml_path = export("xml");
    let json_path = export("json");
    assert!(Path::new(&format!("{}.sig", xml_path.display())).exists());

    // The JSON form is the same package: converted back it is the XML, byte for byte.
    let json: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(json["records"].as_array().unwrap().len(), 5);
    let from_json =
        kodomo_hub::transfer::package::parse(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(
        kodomo_hub::transfer::package::to_xml(&from_json),
        std::fs::read(&xml_path).unwrap()
    );

    let imported = run_ok(
        &p.dest_hub,
        &[
            "transfer",
            "import",
            "--municipality",
            DEST,
            xml_path.to_str().unwrap(),
            "--escalate-to",
            "課長 北",
            "--actor",
            "officer-d1",
        ],
    );
    assert!(imported.contains("imported as transfer"), "{imported}");
    let receipt_path = xml_path.with_extension("receipt.xml");
    let receipt = std::fs::read(&receipt_path).unwrap();

    // Importing the JSON form of the same package is a replay: nothing imported, original receipt.
    let again = run_ok(
        &p.dest_hub,
        &[
            "transfer",
            "import",
            "--municipality",
            DEST,
            json_path.to_str().unwrap(),
            "--signature",
            &format!("{}.sig", xml_path.display()),
            "--escalate-to",
            "課長 北",
            "--actor",
            "officer-d1",
        ],
    );
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(
        std::fs::read(&receipt_path).unwrap(),
        receipt,
        "the original receipt"
    );
    assert_eq!(inbox(&p.dest_hub, &p.dest_officer).len(), 1);

    let closed = run_ok(
        &p.origin_hub,
        &[
            "transfer",
            "receipt",
            "--municipality",
            ORIGIN,
            receipt_path.to_str().unwrap(),
            "--actor",
            "officer-o1",
        ],
    );
    assert_eq!(closed.trim(), format!("transfer {id} delivered"));
    let listed = run_ok(&p.origin_hub, &["admin", "peer", "list"]);
    assert!(
        listed.starts_with("dest-hub\t") && listed.trim_end().ends_with(DEST),
        "{listed}"
    );
}
both_backends!(exchange_through_files_with_the_cli);

/// Nothing arrived at the destination: no transfer, no frozen record, no package row.
fn assert_nothing_imported(p: &Pair) {
    assert!(inbox(&p.dest_hub, &p.dest_officer).is_empty());
    let mut db = p.dest_hub.raw_db();
    for table in ["transfers", "transfer_records", "transfer_packages"] {
        assert_eq!(
            db.strings(&format!("SELECT CAST(COUNT(*) AS TEXT) AS v FROM {table}")),
            ["0"],
            "{table}"
        );
    }
}

fn refused(r: &Resp, code: &str, pointer: &str) {
    let problem = r.problem(422, code);
    assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
    assert_eq!(problem["errors"][0]["code"], code);
}

fn tampered_packages_import_nothing(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (xml, signature) = package(&p, id, "xml");
    let text = String::from_utf8(xml.clone()).unwrap();

    // One flipped byte inside a record: the records part no longer matches its digest.
    let mut flipped = xml.clone();
    let at = text.find("2019-05-05").unwrap() + 3;
    flipped[at] ^= 0x01;
    refused(
        &import(&p, &flipped, &signature, "application/xml"),
        "digest_mismatch",
        "/manifest/1/sha256",
    );

    // One flipped byte in the header (the destination): the signature no longer matches.
    let mut redirected = xml.clone();
    let at = text.find("destination=\"011002\"").unwrap() + "destination=\"01100".len();
    redirected[at] = b'9';
    refused(
        &import(&p, &redirected, &signature, "application/xml"),
        "signature_invalid",
        "/signature",
    );

    // Extra whitespace: not the canonical form.
    let mut spaced = xml.clone();
    spaced.insert(text.find("<manifest>").unwrap(), b' ');
    let r = import(&p, &spaced, &signature, "application/xml");
    assert!(
        r.problem(422, "not_canonical")["detail"]
            .as_str()
            .unwrap()
            .contains("byte")
    );

    // A signature by a key this hub does not trust, and a well-formed but wrong signature.
    let stranger = Hub::start(backend);
    let foreign = signature.replace(&signature[12..76], &public_key(&stranger));
    refused(
        &import(&p, &xml, &foreign, "application/xml"),
        "signer_unknown",
        "/signature",
    );
    let mut wrong = signature.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    refused(
        &import(&p, &xml, &wrong, "application/xml"),
        "signature_invalid",
        "/signature",
    );
    import(&p, &xml, "not a signature", "application/xml").problem(422, "signature_malformed");
    p.dest_hub
        .post(
            "/v1/transfer-packages",
            Some(&p.dest_officer),
            Some("application/xml"),
            &[("X-Actor", "d")],
            xml.clone(),
        )
        .problem(400, "signature_missing");

    // A missing part: the manifest still lists the records.
    let start = text.find("<records>").unwrap();
    let end = text.find("</records>\n").unwrap() + "</records>\n".len();
    let without = format!("{}{}", &text[..start], &text[end..]);
    refused(
        &import(&p, without.as_bytes(), &signature, "application/xml"),
        "part_missing",
        "/records",
    );

    // Broken XML names the byte.
    let cut = &xml[..xml.len() / 2];
    let r = import(&p, cut, &signature, "application/xml");
    assert!(
        r.problem(422, "xml_malformed")["detail"]
            .as_str()
            .unwrap()
            .contains("byte")
    );

    // Addressed to another town than the importer's.
    let other = p.dest_hub.town("282014");
    let _ = other;
    let other_officer = p
        .dest_hub
        .add_client("282014", "x-officer", "transfer-officer", None);
    let r = p.dest_hub.post(
        "/v1/transfer-packages",
        Some(&other_officer),
        Some("application/xml"),
        &[("X-Actor", "officer-x"), ("Kodomo-Signature", &signature)],
        xml.clone(),
    );
    refused(&r, "destination_mismatch", "/destination");
    assert_nothing_imported(&p);

    // The genuine package imports once; a replay is refused with the original receipt.
    let first = import(&p, &xml, &signature, "application/xml");
    assert_eq!(first.status, 201, "{}", first.text());
    let replay = import(&p, &xml, &signature, "application/xml");
    let problem = replay.problem(409, "package_already_imported");
    assert_eq!(problem["original_receipt"]["receipt"], first.text());
    assert_eq!(
        problem["original_receipt"]["receipt_signature"],
        first.header("kodomo-signature").unwrap()
    );
    assert_eq!(inbox(&p.dest_hub, &p.dest_officer).len(), 1);
    let mut db = p.dest_hub.raw_db();
    assert_eq!(
        db.strings("SELECT CAST(COUNT(*) AS TEXT) AS v FROM transfer_records"),
        ["5"]
    );

    // Receipts: tampered or signed by the wrong hub are refused; the transfer stays offered.
    let receipt = first.body.clone();
    let receipt_signature = first.header("kodomo-signature").unwrap().to_string();
    let mut bad = receipt.clone();
    let at = String::from_utf8(receipt.clone())
        .unwrap()
        .find("records=\"")
        .unwrap()
        + 9;
    bad[at] = b'9';
    refused(
        &import_receipt(&p, &bad, &receipt_signature),
        "signature_invalid",
        "/signature",
    );
    let (_, origin_signed) = package(&p, id, "xml");
    let self_signed = receipt_signature.replace(&receipt_signature[12..76], &origin_signed[12..76]);
    refused(
        &import_receipt(&p, &receipt, &self_signed),
        "signature_invalid",
        "/signature",
    );
    let status = show(&p.origin_hub, &p.origin_officer, id)["status"].clone();
    assert_eq!(status, "offered");
    assert_eq!(
        import_receipt(&p, &receipt, &receipt_signature).ok()["status"],
        "delivered"
    );
}
both_backends!(tampered_packages_import_nothing);

fn packages_only_for_peer_towns(backend: Backend) {
    let p = pair(backend);
    // Within one hub there is no package: the destination accepts in its inbox.
    p.origin_hub.town("282014");
    let r = p.origin_hub.post(
        "/v1/transfers",
        Some(&p.origin_officer),
        Some("application/json"),
        &[("X-Actor", "officer-o1")],
        json!({"destination": "282014", "children": [CHILD], "legal_basis": LEGAL_BASIS,
               "reason": "moved", "escalate_to": "課長"})
        .to_string(),
    );
    let id = r.json()["id"].as_i64().unwrap();
    p.origin_hub
        .get_with(
            &format!("/v1/transfers/{id}/package"),
            Some(&p.origin_officer),
            &[("X-Actor", "o")],
        )
        .problem(422, "unprocessable");
    // Another town's officer cannot fetch the package (not found, not forbidden).
    let id = offer(&p);
    let stranger = p
        .origin_hub
        .add_client("282014", "s-officer", "transfer-officer", None);
    p.origin_hub
        .get_with(
            &format!("/v1/transfers/{id}/package"),
            Some(&stranger),
            &[("X-Actor", "s")],
        )
        .problem(404, "not_found");
    // A caseworker is not a transfer officer.
    p.origin_hub
        .get_with(
            &format!("/v1/transfers/{id}/package"),
            Some(&p.origin.token),
            &[("X-Actor", "c")],
        )
        .problem(403, "forbidden");
    // Cancelled before it was sent: no package.
    let cancelled = p.origin_hub.post(
        &format!("/v1/transfers/{id}/cancel"),
        Some(&p.origin_officer),
        Some("application/json"),
        &[("X-Actor", "officer-o1")],
        "",
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    p.origin_hub
        .get_with(
            &format!("/v1/transfers/{id}/package"),
            Some(&p.origin_officer),
            &[("X-Actor", "o")],
        )
        .problem(409, "conflict");
    // No client can be made for a peer hub's town.
    let out = p.origin_hub.cli(&[
        "admin",
        "client",
        "add",
        "--municipality",
        DEST,
        "--name",
        "x",
        "--role",
        "source",
    ]);
    assert!(
        !out.status.success() && describe(&out).contains("peer hub"),
        "{}",
        describe(&out)
    );
}
both_backends!(packages_only_for_peer_towns);

/// A package from ORIGIN to DEST with id `package_id`, otherwise valid, signed by `key`.
fn forged_package(key: &SigningKey, package_id: &str) -> (Vec<u8>, String) {
    let mut package = transfer_package::Package {
        header: transfer_package::Header {
            schema_version: "1".into(),
            package_id: package_id.into(),
            conversation_id: transfer_package::random_id(),
            origin: ORIGIN.into(),
            destination: DEST.into(),
            created: "2026-11-21T09:00:00+09:00".into(),
            legal_basis: LEGAL_BASIS.into(),
            reason: "moved".into(),
        },
        manifest: Vec::new(),
        children: Some(vec![transfer_package::Child {
            origin_resident_no: CHILD.into(),
            support_measure: false,
            objection: None,
        }]),
        records: Some(vec![transfer_package::PackageRecord {
            origin_resident_no: CHILD.into(),
            source: "juki".into(),
            source_record_id: "s-201".into(),
            record_type: "subject".into(),
            data: subject("s-201", CHILD, "佐藤 花子"),
        }]),
    };
    package.manifest = transfer_package::manifest_of(&package);
    let signature = transfer_package::sign_package(key, &package).to_string();
    (transfer_package::to_xml(&package), signature)
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Finding 2 of issue 14: a package id becomes a file name. A peer the hub trusts signs
/// packages whose ids are paths, empty or 10 KB long; each is refused with `id_invalid` before
/// anything is stored or written (over HTTP and through the CLI), and a package with a proper
/// id then imports with its receipt inside the output directory.
fn hostile_package_ids_write_nothing(backend: Backend) {
    let hub = Hub::start(backend);
    hub.town(DEST);
    let officer = hub.add_client(DEST, "d-officer", "transfer-officer", None);
    let key = transfer_package::new_signing_key();
    trust(
        &hub,
        "signing-peer",
        &hex::encode(key.verifying_key().as_bytes()),
        ORIGIN,
    );

    let root = tempfile::tempdir().unwrap();
    let inbox_dir = root.path().join("a/b/in");
    let out_dir = root.path().join("a/b/out");
    std::fs::create_dir_all(&inbox_dir).unwrap();
    let file = inbox_dir.join("package.xml");
    let long = "a".repeat(10 * 1024);
    for id in [
        "../../x",
        "/abs/x",
        "",
        long.as_str(),
        "../../00000000-0000-4000-8000-000000000001",
    ] {
        let (xml, signature) = forged_package(&key, id);
        std::fs::write(&file, &xml).unwrap();
        std::fs::write(transfer_package::signature_path(&file), &signature).unwrap();
        let out = hub.cli(&[
            "transfer",
            "import",
            "--municipality",
            DEST,
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--escalate-to",
            "課長 北",
            "--actor",
            "officer-d1",
        ]);
        assert!(
            !out.status.success(),
            "id {id:.40} imported: {}",
            describe(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("id_invalid") && stderr.contains("/package_id"),
            "{stderr}"
        );
        assert_eq!(
            files_under(root.path()),
            ["a/b/in/package.xml", "a/b/in/package.xml.sig"],
            "id {id:.40}"
        );
        assert!(!Path::new("/abs/x.receipt.xml").exists());

        let r = hub.post(
            "/v1/transfer-packages",
            Some(&officer),
            Some("application/xml"),
            &[("X-Actor", "officer-d1"), ("Kodomo-Signature", &signature)],
            xml,
        );
        let problem = r.problem(422, "id_invalid");
        assert_eq!(problem["errors"][0]["pointer"], "/package_id", "{problem}");
    }
    let mut db = hub.raw_db();
    for table in ["transfers", "transfer_records", "transfer_packages"] {
        let count = db.strings(&format!("SELECT CAST(COUNT(*) AS TEXT) AS v FROM {table}"));
        assert_eq!(count, ["0"], "{table}");
    }

    let id = transfer_package::random_id();
    let (xml, signature) = forged_package(&key, &id);
    std::fs::write(&file, &xml).unwrap();
    std::fs::write(transfer_package::signature_path(&file), &signature).unwrap();
    let imported = run_ok(
        &hub,
        &[
            "transfer",
            "import",
            "--municipality",
            DEST,
            file.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--escalate-to",
            "課長 北",
            "--actor",
            "officer-d1",
        ],
    );
    assert!(imported.contains("imported as transfer"), "{imported}");
    assert!(out_dir.join(format!("{id}.receipt.xml")).exists());
    assert!(out_dir.join(format!("{id}.receipt.xml.sig")).exists());
}
both_backends!(hostile_package_ids_write_nothing);

/// The hub's current signing key, read from its key file.
pub(crate) fn signing_key(hub: &Hub) -> SigningKey {
    let text = std::fs::read_to_string(hub.data_dir().join("signing.key")).unwrap();
    let bytes: [u8; 32] = hex::decode(text.trim()).unwrap().try_into().unwrap();
    SigningKey::from_bytes(&bytes)
}

/// `forged_package`, said to be created at `created`.
fn package_created_at(key: &SigningKey, created: &str) -> (Vec<u8>, String) {
    let (xml, _) = forged_package(key, &transfer_package::random_id());
    let (mut package, _) = transfer_package::parse_canonical(&xml).unwrap();
    package.header.created = created.into();
    let signature = transfer_package::sign_package(key, &package).to_string();
    (transfer_package::to_xml(&package), signature)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// The origin rotates its key and the destination accepts the new one: packages signed with
/// the old key before the rotation still import during the overlap, the old key signs nothing
/// new, the new key only once accepted; every step is audited and the key history kept.
fn rotated_keys_verify_what_they_signed_before(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (before, before_signature) = package(&p, id, "xml");
    let old_key = signing_key(&p.origin_hub);
    let old_public = public_key(&p.origin_hub);
    let head = p.origin_hub.data_dir().join("head-before-rotation.json");
    std::fs::write(&head, run_ok(&p.origin_hub, &["audit", "head"])).unwrap();

    let rotated = run_ok(
        &p.origin_hub,
        &["admin", "peer", "key", "rotate", "--overlap-days", "7"],
    );
    let new_public = public_key(&p.origin_hub);
    assert_ne!(new_public, old_public);
    let new_key = signing_key(&p.origin_hub);
    assert_eq!(hex::encode(new_key.verifying_key().as_bytes()), new_public);
    let history = run_ok(&p.origin_hub, &["admin", "peer", "key", "history"]);
    assert_eq!(
        history.lines().collect::<Vec<_>>(),
        [&new_public, &old_public]
    );
    // A head signed before the rotation still verifies.
    run_ok(
        &p.origin_hub,
        &["audit", "verify", "--expect-head", head.to_str().unwrap()],
    );
    let valid_from = rotated
        .split("--valid-from ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the rotation names the peer's command: {rotated}"))
        .to_string();

    // Not yet accepted by the destination: the new key is unknown there.
    let (fresh, fresh_signature) = package_created_at(&new_key, &now());
    let unknown = import(&p, &fresh, &fresh_signature, "application/xml");
    refused(&unknown, "signer_unknown", "/signature");

    run_ok(
        &p.dest_hub,
        &[
            "admin",
            "peer",
            "update",
            "--name",
            "origin-hub",
            "--public-key",
            &new_public,
            "--valid-from",
            &valid_from,
            "--overlap-days",
            "7",
        ],
    );
    // The old key signs nothing created after the rotation…
    let (late, late_signature) = package_created_at(&old_key, &now());
    let retired = import(&p, &late, &late_signature, "application/xml");
    refused(&retired, "signer_key_retired", "/signature");
    // …and the new key nothing created before it.
    let (early, early_signature) = package_created_at(&new_key, "2026-01-01T09:00:00+09:00");
    let early = import(&p, &early, &early_signature, "application/xml");
    refused(&early, "signer_key_not_yet_valid", "/signature");
    assert_nothing_imported(&p);
    // What the old key signed before the rotation imports during the overlap.
    let imported = import(&p, &before, &before_signature, "application/xml");
    assert_eq!(imported.status, 201, "{}", imported.text());
    let accepted = import(&p, &fresh, &fresh_signature, "application/xml");
    assert_eq!(accepted.status, 201, "{}", accepted.text());

    let keys = run_ok(
        &p.dest_hub,
        &["admin", "peer", "keys", "--name", "origin-hub"],
    );
    let lines: Vec<&str> = keys.lines().collect();
    assert_eq!(lines.len(), 2, "{keys}");
    assert!(
        lines[0].starts_with(&old_public) && lines[0].contains("valid_until=20"),
        "{keys}"
    );
    assert!(
        lines[1].starts_with(&new_public) && lines[1].contains("valid_until=-"),
        "{keys}"
    );
    assert!(audit_actions(&p.origin_hub).contains(&"admin.peer.key_rotate".to_string()));
    assert!(audit_actions(&p.dest_hub).contains(&"admin.peer.update".to_string()));
}
both_backends!(rotated_keys_verify_what_they_signed_before);

/// With no overlap, the replaced key verifies nothing from the moment the new key starts.
fn without_overlap_the_old_key_verifies_nothing(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (before, before_signature) = package(&p, id, "xml");
    let rotated = run_ok(
        &p.origin_hub,
        &["admin", "peer", "key", "rotate", "--overlap-days", "0"],
    );
    assert!(rotated.contains("--overlap-days 0"), "{rotated}");
    run_ok(
        &p.dest_hub,
        &[
            "admin",
            "peer",
            "update",
            "--name",
            "origin-hub",
            "--public-key",
            &public_key(&p.origin_hub),
            "--valid-from",
            &now(),
            "--overlap-days",
            "0",
        ],
    );
    let refused_package = import(&p, &before, &before_signature, "application/xml");
    refused(&refused_package, "signer_key_retired", "/signature");
    assert_nothing_imported(&p);
}
both_backends!(without_overlap_the_old_key_verifies_nothing);

/// A removed peer's packages are refused with `signer_revoked`; the removal is audited and
/// listed, and a removed peer takes no new key.
fn removed_peers_are_refused(backend: Backend) {
    let p = pair(backend);
    let id = offer(&p);
    let (xml, signature) = package(&p, id, "xml");
    let removed = run_ok(
        &p.dest_hub,
        &["admin", "peer", "remove", "--name", "origin-hub"],
    );
    assert!(removed.contains("removed"), "{removed}");
    refused(
        &import(&p, &xml, &signature, "application/xml"),
        "signer_revoked",
        "/signature",
    );
    assert_nothing_imported(&p);
    let listed = run_ok(&p.dest_hub, &["admin", "peer", "list"]);
    assert!(listed.contains("\tremoved 20"), "{listed}");
    assert!(audit_actions(&p.dest_hub).contains(&"admin.peer.remove".to_string()));
    let again = p
        .dest_hub
        .cli(&["admin", "peer", "remove", "--name", "origin-hub"]);
    assert!(!again.status.success(), "{}", describe(&again));
    let update = p.dest_hub.cli(&[
        "admin",
        "peer",
        "update",
        "--name",
        "origin-hub",
        "--public-key",
        &public_key(&p.origin_hub),
        "--valid-from",
        &now(),
    ]);
    assert!(!update.status.success(), "{}", describe(&update));
    assert!(
        describe(&update).contains("was removed"),
        "{}",
        describe(&update)
    );
}
both_backends!(removed_peers_are_refused);
