//! Reading packages (canonical XML or JSON) and receipts: bounded, and refusing any byte
//! that differs from the canonical rendering.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::check::{check_header_and_size, check_outcome, require_id};
use super::*;

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

pub(super) fn too_many_items(container: &str, offset: Option<u64>) -> PackageError {
    PackageError {
        offset,
        ..PackageError::new(
            "too_many_items",
            format!("/{container}"),
            format!("<{container}> holds more than {MAX_ITEMS} items"),
        )
    }
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

/// Whether `bytes` are the JSON form (an object) rather than XML.
fn is_json_form(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Read the JSON form of a package or receipt: one object with unique keys and exactly the
/// model's fields.
fn from_json_form<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    use crate::schema::strict_json::{self, StrictJsonError};
    let value = strict_json::parse(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey(pointer) => PackageError::new(
            "duplicate_key",
            pointer,
            "a key appears twice in its object",
        ),
        StrictJsonError::Syntax(e) => PackageError::new("json_malformed", "", e.to_string()),
    })?;
    serde_json::from_value(value)
        .map_err(|e| PackageError::new("json_malformed", "", e.to_string()))
}

/// Read a package from its XML form (must be canonical) or its JSON form; `true` when XML.
fn parse_form(bytes: &[u8]) -> Result<(Package, bool)> {
    if is_json_form(bytes) {
        let package = from_json_form(bytes)?;
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

/// Read a receipt from its XML form (must be canonical) or its JSON form, and give its
/// canonical XML too — what the receipt's signature covers, whatever the form.
pub fn parse_receipt_canonical(bytes: &[u8]) -> Result<(Receipt, Cow<'_, [u8]>)> {
    if !is_json_form(bytes) {
        return Ok((parse_receipt(bytes)?, Cow::Borrowed(bytes)));
    }
    let receipt: Receipt = from_json_form(bytes)?;
    require_id(&receipt.package_id, "/package_id")?;
    require_id(&receipt.conversation_id, "/conversation_id")?;
    let xml = receipt_to_xml(&receipt);
    // Fields the XML form cannot carry as given (a control character, say) are refused.
    if parse_receipt(&xml).as_ref() != Ok(&receipt) {
        return Err(PackageError::new(
            "not_canonical",
            "",
            "the receipt has no canonical XML form",
        ));
    }
    Ok((receipt, Cow::Owned(xml)))
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

/// Read an outcome message (canonical XML, or its JSON form) and give its canonical XML too —
/// what the outcome's signature covers, whatever the form. Its structure is checked
/// (`check_outcome`): ids, one entry per position, reasons only with declines.
pub fn parse_outcome_canonical(bytes: &[u8]) -> Result<(Outcome, Cow<'_, [u8]>)> {
    if !is_json_form(bytes) {
        return Ok((parse_outcome(bytes)?, Cow::Borrowed(bytes)));
    }
    let outcome: Outcome = from_json_form(bytes)?;
    check_outcome(&outcome)?;
    let xml = outcome_to_xml(&outcome);
    if parse_outcome(&xml).as_ref() != Ok(&outcome) {
        return Err(PackageError::new(
            "not_canonical",
            "",
            "the outcome has no canonical XML form",
        ));
    }
    Ok((outcome, Cow::Owned(xml)))
}

/// Read an outcome message (canonical XML).
pub fn parse_outcome(bytes: &[u8]) -> Result<Outcome> {
    require_utf8(bytes, "outcome")?;
    let mut xml = XmlIn::new(bytes);
    let root = root(&mut xml, OUTCOME_ROOT, true)?;
    let offset = xml.offset();
    match xml.next()? {
        Event::Start(e) if e.name().as_ref() == b"children" => {}
        Event::Start(e) | Event::Empty(e) => return Err(unexpected(&name_of(&e), offset)),
        _ => {
            return Err(PackageError::at(
                "xml_malformed",
                offset,
                "the outcome has no <children>",
            ));
        }
    }
    let children = items(&mut xml, "children", "child", false, |_, child| {
        let decision = match child.get("decision")?.as_str() {
            "accepted" => ChildDecision::Accepted,
            "declined" => ChildDecision::Declined,
            _ => {
                return Err(PackageError::new(
                    "attribute_invalid",
                    format!("{}/decision", child.pointer),
                    "decision is neither accepted nor declined",
                ));
            }
        };
        let reason = child
            .optional("reason")
            .map(|code| {
                crate::transfer::DeclineReason::parse(&code).ok_or_else(|| {
                    PackageError::new(
                        "attribute_invalid",
                        format!("{}/reason", child.pointer),
                        format!("{code:?} is not a decline reason code"),
                    )
                })
            })
            .transpose()?;
        Ok(ChildOutcome {
            position: child.number("position")?,
            decision,
            reason,
            records_copied: child.number("records-copied")?,
            records_declined: child.number("records-declined")?,
        })
    })?;
    let offset = xml.offset();
    match xml.next()? {
        Event::End(e) if e.name().as_ref() == OUTCOME_ROOT.as_bytes() => {}
        _ => {
            return Err(PackageError::at(
                "xml_malformed",
                offset,
                "unexpected content after <children>",
            ));
        }
    }
    let outcome = Outcome {
        package_id: root.get("package-id")?,
        conversation_id: root.get("conversation-id")?,
        origin: root.get("origin")?,
        destination: root.get("destination")?,
        package_sha256: root.get("package-sha256")?,
        decided: root.get("decided")?,
        children,
    };
    check_outcome(&outcome)?;
    require_canonical(bytes, &outcome_to_xml(&outcome), "outcome")?;
    Ok(outcome)
}
