//! Writing the canonical XML (and the JSON form) of packages and receipts.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use sha2::{Digest, Sha256};

use super::*;

struct XmlOut(quick_xml::Writer<Vec<u8>>);

impl XmlOut {
    fn new() -> Self {
        XmlOut(quick_xml::Writer::new(Vec::new()))
    }
    fn event(&mut self, event: Event) {
        // Writing into a Vec cannot fail.
        self.0.write_event(event).expect("write to memory");
    }
    fn newline(&mut self) {
        self.event(Event::Text(BytesText::from_escaped("\n")));
    }
    fn declaration(&mut self) {
        self.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        self.newline();
    }
    fn start(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.event(Event::Start(
            BytesStart::new(name).with_attributes(attributes.iter().copied()),
        ));
    }
    fn end(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }
    fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.event(Event::Empty(
            BytesStart::new(name).with_attributes(attributes.iter().copied()),
        ));
        self.newline();
    }
    fn text_element(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        self.start(name, attributes);
        // Only `<`, `>` and `&` need escaping in text; JSON's quotes stay readable.
        self.event(Event::Text(BytesText::from_escaped(
            quick_xml::escape::partial_escape(text),
        )));
        self.end(name);
        self.newline();
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "true" } else { "false" }
}

fn header_attributes(header: &Header) -> [(&'static str, &str); 9] {
    [
        ("xmlns", NAMESPACE),
        ("schema-version", &header.schema_version),
        ("package-id", &header.package_id),
        ("conversation-id", &header.conversation_id),
        ("origin", &header.origin),
        ("destination", &header.destination),
        ("created", &header.created),
        ("legal-basis", &header.legal_basis),
        ("reason", &header.reason),
    ]
}

/// The bytes of one part: what its digest, length and count describe.
fn part_bytes(package: &Package, name: &str) -> Option<(Vec<u8>, u64)> {
    let mut out = XmlOut::new();
    let count = match name {
        "children" => {
            let children = package.children.as_ref()?;
            for child in children {
                let mut attributes = vec![
                    ("origin-resident-no", child.origin_resident_no.as_str()),
                    ("support-measure", yes_no(child.support_measure)),
                ];
                if let Some(objection) = &child.objection {
                    attributes.push(("objected-on", &objection.objected_on));
                    if let Some(note) = &objection.legal_note {
                        attributes.push(("objection-note", note));
                    }
                }
                out.empty("child", &attributes);
            }
            children.len()
        }
        "records" => {
            let records = package.records.as_ref()?;
            for record in records {
                out.text_element(
                    "record",
                    &[
                        ("origin-resident-no", &record.origin_resident_no),
                        ("source", &record.source),
                        ("source-record-id", &record.source_record_id),
                        ("record-type", &record.record_type),
                    ],
                    &record.data.to_string(),
                );
            }
            records.len()
        }
        _ => return None,
    };
    Some((out.bytes(), count as u64))
}

/// The manifest that describes the package's parts as they are.
pub fn manifest_of(package: &Package) -> Vec<PartEntry> {
    PARTS
        .iter()
        .filter_map(|name| {
            let (bytes, count) = part_bytes(package, name)?;
            Some(PartEntry {
                name: name.to_string(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                length: bytes.len() as u64,
                count,
            })
        })
        .collect()
}

/// What the signature covers: the root start tag and the manifest, exactly as in the document.
pub fn signed_info(header: &Header, manifest: &[PartEntry]) -> Vec<u8> {
    let mut out = XmlOut::new();
    out.start(PACKAGE_ROOT, &header_attributes(header));
    out.newline();
    out.start("manifest", &[]);
    out.newline();
    for entry in manifest {
        let (length, count) = (entry.length.to_string(), entry.count.to_string());
        out.empty(
            "part",
            &[
                ("name", &entry.name),
                ("sha256", &entry.sha256),
                ("length", &length),
                ("count", &count),
            ],
        );
    }
    out.end("manifest");
    out.newline();
    out.bytes()
}

/// The canonical XML of a package.
pub fn to_xml(package: &Package) -> Vec<u8> {
    let mut out = XmlOut::new();
    out.declaration();
    let mut bytes = out.bytes();
    bytes.extend(signed_info(&package.header, &package.manifest));
    for name in PARTS {
        if let Some((part, _)) = part_bytes(package, name) {
            let mut out = XmlOut::new();
            out.start(name, &[]);
            out.newline();
            bytes.extend(out.bytes());
            bytes.extend(part);
            let mut out = XmlOut::new();
            out.end(name);
            out.newline();
            bytes.extend(out.bytes());
        }
    }
    let mut out = XmlOut::new();
    out.end(PACKAGE_ROOT);
    out.newline();
    bytes.extend(out.bytes());
    bytes
}

/// The canonical XML of a receipt.
pub fn receipt_to_xml(receipt: &Receipt) -> Vec<u8> {
    let (children, records) = (receipt.children.to_string(), receipt.records.to_string());
    let mut out = XmlOut::new();
    out.declaration();
    out.empty(
        RECEIPT_ROOT,
        &[
            ("xmlns", NAMESPACE),
            ("package-id", &receipt.package_id),
            ("conversation-id", &receipt.conversation_id),
            ("origin", &receipt.origin),
            ("destination", &receipt.destination),
            ("package-sha256", &receipt.package_sha256),
            ("received", &receipt.received),
            ("children", &children),
            ("records", &records),
        ],
    );
    out.bytes()
}

/// The canonical XML of an outcome message.
pub fn outcome_to_xml(outcome: &Outcome) -> Vec<u8> {
    let mut out = XmlOut::new();
    out.declaration();
    out.start(
        OUTCOME_ROOT,
        &[
            ("xmlns", NAMESPACE),
            ("package-id", &outcome.package_id),
            ("conversation-id", &outcome.conversation_id),
            ("origin", &outcome.origin),
            ("destination", &outcome.destination),
            ("package-sha256", &outcome.package_sha256),
            ("decided", &outcome.decided),
        ],
    );
    out.newline();
    out.start("children", &[]);
    out.newline();
    for child in &outcome.children {
        let position = child.position.to_string();
        let copied = child.records_copied.to_string();
        let declined = child.records_declined.to_string();
        let mut attributes = vec![
            ("position", position.as_str()),
            ("decision", child.decision.as_str()),
        ];
        if let Some(reason) = child.reason {
            attributes.push(("reason", reason.code()));
        }
        attributes.push(("records-copied", &copied));
        attributes.push(("records-declined", &declined));
        out.empty("child", &attributes);
    }
    out.end("children");
    out.newline();
    out.end(OUTCOME_ROOT);
    out.newline();
    out.bytes()
}

/// The JSON form of a package (same fields; records' data as JSON values).
pub fn to_json(package: &Package) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(package).expect("a package serialises");
    text.push(b'\n');
    text
}
