//! Signed transfer packages between hubs (another council, or a town outside the cloud): the
//! same transfer as an XML document with a manifest of its parts (SHA-256 digest, byte length,
//! item count) and a detached Ed25519 signature over the header and manifest; the receiving hub
//! answers with a signed receipt. Pure code: no storage, no HTTP.
//!
//! The XML is canonical: one rendering per package, written and read with quick-xml. A reader
//! re-renders what it parsed and refuses any byte that differs, so a flipped byte anywhere is
//! caught — by the parser, the canonical check, a part digest or the signature. The JSON form
//! carries the same fields; XML → JSON → XML gives back the same bytes.

use std::borrow::Cow;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use quick_xml::Reader;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const NAMESPACE: &str = "urn:kodomo-hub:transfer-package:1";
const PACKAGE_ROOT: &str = "transfer-package";
const RECEIPT_ROOT: &str = "transfer-receipt";
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

/// The destination hub's signed answer: it verified and imported the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub package_id: String,
    pub conversation_id: String,
    pub origin: String,
    pub destination: String,
    /// SHA-256 of the package's canonical XML as received.
    pub package_sha256: String,
    pub received: String,
    pub children: u64,
    pub records: u64,
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

// ---------------------------------------------------------------------------------------------
// Writing

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

// ---------------------------------------------------------------------------------------------
// Reading

/// Attributes of one element, with the element name for messages.
struct Attributes {
    element: String,
    pointer: String,
    values: Vec<(String, String)>,
}

impl Attributes {
    fn read(start: &BytesStart, pointer: &str, offset: u64) -> Result<Attributes> {
        let element = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        let mut values = Vec::new();
        for attribute in start.attributes() {
            if values.len() == MAX_ATTRIBUTES {
                return Err(PackageError {
                    pointer: pointer.to_string(),
                    ..PackageError::at(
                        "too_many_attributes",
                        offset,
                        format!("<{element}> has more than {MAX_ATTRIBUTES} attributes"),
                    )
                });
            }
            let attribute =
                attribute.map_err(|e| PackageError::at("xml_malformed", offset, e.to_string()))?;
            let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
            let value = attribute
                .unescape_value()
                .map_err(|e| PackageError::at("xml_malformed", offset, e.to_string()))?;
            values.push((key, value.into_owned()));
        }
        Ok(Attributes {
            element,
            pointer: pointer.to_string(),
            values,
        })
    }

    fn get(&self, name: &str) -> Result<String> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                PackageError::new(
                    "attribute_missing",
                    format!("{}/{}", self.pointer, name.replace('-', "_")),
                    format!("<{}> lacks the attribute {name}", self.element),
                )
            })
    }

    fn number(&self, name: &str) -> Result<u64> {
        self.get(name)?.parse().map_err(|_| {
            PackageError::new(
                "attribute_invalid",
                format!("{}/{name}", self.pointer),
                format!("{name} of <{}> is not a whole number", self.element),
            )
        })
    }

    fn optional(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// `objected-on` and the optional `objection-note` of a `<child>`; a note without a date
    /// is refused (the date is what the destination records).
    fn objection(&self) -> Result<Option<Objection>> {
        let legal_note = self.optional("objection-note");
        match self.optional("objected-on") {
            Some(objected_on) => Ok(Some(Objection {
                objected_on,
                legal_note,
            })),
            None if legal_note.is_some() => Err(PackageError::new(
                "attribute_missing",
                format!("{}/objection/objected_on", self.pointer),
                format!(
                    "<{}> has an objection-note but no objected-on",
                    self.element
                ),
            )),
            None => Ok(None),
        }
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name)?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(PackageError::new(
                "attribute_invalid",
                format!("{}/{}", self.pointer, name.replace('-', "_")),
                format!("{name} of <{}> is neither true nor false", self.element),
            )),
        }
    }

    fn namespace(&self) -> Result<()> {
        if self.get("xmlns")? == NAMESPACE {
            Ok(())
        } else {
            Err(PackageError::new(
                "namespace_unknown",
                "",
                format!("<{}> is not in the namespace {NAMESPACE}", self.element),
            ))
        }
    }
}

fn name_of(start: &BytesStart) -> String {
    String::from_utf8_lossy(start.name().as_ref()).into_owned()
}

fn unexpected(name: &str, offset: u64) -> PackageError {
    PackageError::at(
        "element_unexpected",
        offset,
        format!("unexpected <{name}> here"),
    )
}

/// Pull events of a document, with the error mapping every reader needs.
struct XmlIn<'a> {
    reader: Reader<&'a [u8]>,
}

impl<'a> XmlIn<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let mut reader = Reader::from_reader(bytes);
        reader.config_mut().trim_text(false);
        XmlIn { reader }
    }
    fn offset(&self) -> u64 {
        self.reader.buffer_position()
    }
    /// The next event that is not whitespace between elements.
    fn next(&mut self) -> Result<Event<'a>> {
        loop {
            let event = self.reader.read_event().map_err(|e| {
                PackageError::at("xml_malformed", self.reader.error_position(), e.to_string())
            })?;
            match &event {
                Event::Text(text) if text.iter().all(u8::is_ascii_whitespace) => continue,
                Event::Decl(_) | Event::Comment(_) => continue,
                _ => return Ok(event),
            }
        }
    }
    /// Text content up to the end of the current element (entities resolved).
    fn text_until_end(&mut self, element: &str) -> Result<String> {
        let mut text = String::new();
        loop {
            let offset = self.offset();
            let event = self.reader.read_event().map_err(|e| {
                PackageError::at("xml_malformed", self.reader.error_position(), e.to_string())
            })?;
            match event {
                Event::Text(t) => text.push_str(
                    &t.decode()
                        .map_err(|e| PackageError::at("xml_malformed", offset, e.to_string()))?,
                ),
                Event::CData(t) => text.push_str(
                    &t.decode()
                        .map_err(|e| PackageError::at("xml_malformed", offset, e.to_string()))?,
                ),
                Event::GeneralRef(r) => {
                    let resolved = match r
                        .resolve_char_ref()
                        .map_err(|e| PackageError::at("xml_malformed", offset, e.to_string()))?
                    {
                        Some(c) => c,
                        None => match &*r {
                            b"amp" => '&',
                            b"lt" => '<',
                            b"gt" => '>',
                            b"quot" => '"',
                            b"apos" => '\'',
                            other => {
                                return Err(PackageError::at(
                                    "xml_malformed",
                                    offset,
                                    format!("unknown entity &{};", String::from_utf8_lossy(other)),
                                ));
                            }
                        },
                    };
                    text.push(resolved);
                }
                Event::End(e) if e.name().as_ref() == element.as_bytes() => return Ok(text),
                Event::Start(e) | Event::Empty(e) => return Err(unexpected(&name_of(&e), offset)),
                Event::Eof => {
                    return Err(PackageError::at(
                        "xml_malformed",
                        offset,
                        format!("the document ends inside <{element}>"),
                    ));
                }
                _ => {}
            }
        }
    }
}

/// The root element: its name (empty for a receipt, with content for a package) and namespace.
fn root(xml: &mut XmlIn, name: &str, with_content: bool) -> Result<Attributes> {
    let offset = xml.offset();
    let root = match xml.next()? {
        Event::Start(e) if with_content && e.name().as_ref() == name.as_bytes() => {
            Attributes::read(&e, "", offset)?
        }
        Event::Empty(e) if !with_content && e.name().as_ref() == name.as_bytes() => {
            Attributes::read(&e, "", offset)?
        }
        Event::Start(e) | Event::Empty(e) => return Err(unexpected(&name_of(&e), offset)),
        _ => {
            return Err(PackageError::at(
                "xml_malformed",
                offset,
                format!("no <{name}> element"),
            ));
        }
    };
    root.namespace()?;
    Ok(root)
}

/// The items of one container (`<manifest>`, `<children>`, `<records>`) up to its end tag;
/// `read` turns an item's attributes (and, for items with content, the content) into a value.
fn items<T>(
    xml: &mut XmlIn,
    container: &str,
    item: &str,
    with_content: bool,
    mut read: impl FnMut(&mut XmlIn, Attributes) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    loop {
        let offset = xml.offset();
        let (start, has_content) = match xml.next()? {
            Event::End(e) if e.name().as_ref() == container.as_bytes() => return Ok(out),
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            _ => {
                return Err(PackageError::at(
                    "xml_malformed",
                    offset,
                    format!("unexpected content in <{container}>"),
                ));
            }
        };
        if start.name().as_ref() != item.as_bytes() || has_content != with_content {
            return Err(unexpected(&name_of(&start), offset));
        }
        if out.len() == MAX_ITEMS {
            return Err(too_many_items(container, Some(offset)));
        }
        let pointer = format!("/{container}/{}", out.len());
        let attributes = Attributes::read(&start, &pointer, offset)?;
        out.push(read(xml, attributes)?);
    }
}

fn parse_package_xml(bytes: &[u8]) -> Result<Package> {
    let mut xml = XmlIn::new(bytes);
    let root = root(&mut xml, PACKAGE_ROOT, true)?;
    let header = Header {
        schema_version: root.get("schema-version")?,
        package_id: root.get("package-id")?,
        conversation_id: root.get("conversation-id")?,
        origin: root.get("origin")?,
        destination: root.get("destination")?,
        created: root.get("created")?,
        legal_basis: root.get("legal-basis")?,
        reason: root.get("reason")?,
    };
    let mut manifest = None;
    let mut children = None;
    let mut records = None;
    loop {
        let offset = xml.offset();
        match xml.next()? {
            Event::Start(e) => match name_of(&e).as_str() {
                "manifest" if manifest.is_none() => {
                    manifest = Some(items(&mut xml, "manifest", "part", false, |_, part| {
                        Ok(PartEntry {
                            name: part.get("name")?,
                            sha256: part.get("sha256")?,
                            length: part.number("length")?,
                            count: part.number("count")?,
                        })
                    })?);
                }
                "children" if children.is_none() => {
                    children = Some(items(&mut xml, "children", "child", false, |_, child| {
                        Ok(Child {
                            origin_resident_no: child.get("origin-resident-no")?,
                            support_measure: child.flag("support-measure")?,
                            objection: child.objection()?,
                        })
                    })?);
                }
                "records" if records.is_none() => {
                    records = Some(items(
                        &mut xml,
                        "records",
                        "record",
                        true,
                        |xml, record| {
                            let text = xml.text_until_end("record")?;
                            let data = serde_json::from_str(&text).map_err(|err| {
                                PackageError::new(
                                    "record_not_json",
                                    format!("{}/data", record.pointer),
                                    format!("the record's content is not JSON: {err}"),
                                )
                            })?;
                            Ok(PackageRecord {
                                origin_resident_no: record.get("origin-resident-no")?,
                                source: record.get("source")?,
                                source_record_id: record.get("source-record-id")?,
                                record_type: record.get("record-type")?,
                                data,
                            })
                        },
                    )?);
                }
                other => return Err(unexpected(other, offset)),
            },
            Event::Empty(e) => return Err(unexpected(&name_of(&e), offset)),
            Event::End(e) if e.name().as_ref() == PACKAGE_ROOT.as_bytes() => break,
            _ => {
                return Err(PackageError::at(
                    "xml_malformed",
                    offset,
                    "unexpected content in the package",
                ));
            }
        }
    }
    let manifest = manifest.ok_or_else(|| {
        PackageError::new(
            "manifest_missing",
            "/manifest",
            "the package has no manifest",
        )
    })?;
    Ok(Package {
        header,
        manifest,
        children,
        records,
    })
}

fn too_many_items(container: &str, offset: Option<u64>) -> PackageError {
    PackageError {
        offset,
        ..PackageError::new(
            "too_many_items",
            format!("/{container}"),
            format!("<{container}> holds more than {MAX_ITEMS} items"),
        )
    }
}

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
fn require_id(id: &str, pointer: &str) -> Result<()> {
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
fn check_header_and_size(package: &Package) -> Result<()> {
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

/// The file name of a package, receipt or signature with id `id`: `<id><suffix>`. Only a
/// valid id becomes a file name, so the file stays inside the directory it is joined to.
pub fn file_name(id: &str, suffix: &str) -> Result<String> {
    require_id(id, "/package_id")?;
    Ok(format!("{id}{suffix}"))
}

/// Refuse bytes that are not UTF-8, naming the first bad byte.
fn require_utf8(bytes: &[u8], what: &str) -> Result<()> {
    std::str::from_utf8(bytes).map(|_| ()).map_err(|e| {
        PackageError::at(
            "encoding_invalid",
            e.valid_up_to() as u64,
            format!("the {what} is not UTF-8"),
        )
    })
}

/// Refuse a document that is not byte for byte the canonical rendering of what it says.
fn require_canonical(bytes: &[u8], canonical: &[u8], what: &str) -> Result<()> {
    if bytes == canonical {
        return Ok(());
    }
    let offset = bytes
        .iter()
        .zip(canonical)
        .position(|(a, b)| a != b)
        .unwrap_or(bytes.len().min(canonical.len()));
    Err(PackageError::at(
        "not_canonical",
        offset as u64,
        format!(
            "the {what} differs from its canonical form (a changed byte, or not written by a conforming hub)"
        ),
    ))
}

/// Read a package from its XML form (must be canonical) or its JSON form; `true` when XML.
fn parse_form(bytes: &[u8]) -> Result<(Package, bool)> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        use crate::schema::strict_json::{self, StrictJsonError};
        let value = strict_json::parse(bytes).map_err(|e| match e {
            StrictJsonError::DuplicateKey(pointer) => PackageError::new(
                "duplicate_key",
                pointer,
                "a key appears twice in its object",
            ),
            StrictJsonError::Syntax(e) => PackageError::new("json_malformed", "", e.to_string()),
        })?;
        let package = serde_json::from_value(value)
            .map_err(|e| PackageError::new("json_malformed", "", e.to_string()))?;
        check_header_and_size(&package)?;
        return Ok((package, false));
    }
    require_utf8(bytes, "package")?;
    let package = parse_package_xml(bytes)?;
    check_header_and_size(&package)?;
    require_canonical(bytes, &to_xml(&package), "package")?;
    Ok((package, true))
}

/// Read a package from its XML form (must be canonical) or its JSON form.
pub fn parse(bytes: &[u8]) -> Result<Package> {
    parse_form(bytes).map(|(package, _)| package)
}

/// Read a package and give its canonical XML too: the input itself when it was XML (already
/// checked to be canonical), rendered when it was the JSON form.
pub fn parse_canonical(bytes: &[u8]) -> Result<(Package, Cow<'_, [u8]>)> {
    let (package, was_xml) = parse_form(bytes)?;
    let xml = if was_xml {
        Cow::Borrowed(bytes)
    } else {
        Cow::Owned(to_xml(&package))
    };
    Ok((package, xml))
}

/// The detached signature of a package or receipt file: the same path with `.sig` appended.
pub fn signature_path(file: &std::path::Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    std::path::PathBuf::from(name)
}

/// Read a receipt (canonical XML).
pub fn parse_receipt(bytes: &[u8]) -> Result<Receipt> {
    require_utf8(bytes, "receipt")?;
    let root = root(&mut XmlIn::new(bytes), RECEIPT_ROOT, false)?;
    let receipt = Receipt {
        package_id: root.get("package-id")?,
        conversation_id: root.get("conversation-id")?,
        origin: root.get("origin")?,
        destination: root.get("destination")?,
        package_sha256: root.get("package-sha256")?,
        received: root.get("received")?,
        children: root.number("children")?,
        records: root.number("records")?,
    };
    require_id(&receipt.package_id, "/package_id")?;
    require_id(&receipt.conversation_id, "/conversation_id")?;
    require_canonical(bytes, &receipt_to_xml(&receipt), "receipt")?;
    Ok(receipt)
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
    if serde_json::from_value::<super::TransferReason>(Value::String(header.reason.clone()))
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

// ---------------------------------------------------------------------------------------------
// Signatures

/// A detached signature: `ed25519;key=<public key hex>;sig=<signature hex>` — the content of a
/// `.sig` file and of the `Kodomo-Signature` HTTP header.
#[derive(Debug, Clone, PartialEq)]
pub struct DetachedSignature {
    pub public_key: String,
    pub signature: String,
}

impl DetachedSignature {
    pub fn sign(key: &SigningKey, message: &[u8]) -> DetachedSignature {
        DetachedSignature {
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(key.sign(message).to_bytes()),
        }
    }

    pub fn parse(text: &str) -> Result<DetachedSignature> {
        let bad = || {
            PackageError::new(
                "signature_malformed",
                "/signature",
                "expected ed25519;key=<64 hex digits>;sig=<128 hex digits>",
            )
        };
        let mut fields = text.trim().split(';');
        if fields.next() != Some("ed25519") {
            return Err(bad());
        }
        let key = fields
            .next()
            .and_then(|f| f.strip_prefix("key="))
            .ok_or_else(bad)?;
        let sig = fields
            .next()
            .and_then(|f| f.strip_prefix("sig="))
            .ok_or_else(bad)?;
        let hex_of = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if fields.next().is_some() || !hex_of(key, 64) || !hex_of(sig, 128) {
            return Err(bad());
        }
        Ok(DetachedSignature {
            public_key: key.to_ascii_lowercase(),
            signature: sig.to_ascii_lowercase(),
        })
    }

    pub fn verify(&self, message: &[u8]) -> Result<()> {
        let invalid =
            |why: &str| PackageError::new("signature_invalid", "/signature", why.to_string());
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| invalid("the public key is not 32 bytes"))?;
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("the signature is not 64 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&key).map_err(|_| invalid("not an Ed25519 public key"))?;
        key.verify(message, &Signature::from_bytes(&signature))
            .map_err(|_| invalid("the signature does not match the signed content and key"))
    }
}

impl std::fmt::Display for DetachedSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ed25519;key={};sig={}", self.public_key, self.signature)
    }
}

/// Sign a package: the signature covers the header and the manifest (which covers the parts).
pub fn sign_package(key: &SigningKey, package: &Package) -> DetachedSignature {
    DetachedSignature::sign(key, &signed_info(&package.header, &package.manifest))
}

pub fn verify_package_signature(package: &Package, signature: &DetachedSignature) -> Result<()> {
    signature.verify(&signed_info(&package.header, &package.manifest))
}

/// A fresh random identifier in UUID form (version 4).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("operating system randomness");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A new signing key from the operating system's randomness.
pub fn new_signing_key() -> SigningKey {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("operating system randomness");
    SigningKey::from_bytes(&secret)
}

/// The JSON form of a package (same fields; records' data as JSON values).
pub fn to_json(package: &Package) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(package).expect("a package serialises");
    text.push(b'\n');
    text
}

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
}
