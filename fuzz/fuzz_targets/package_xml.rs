//! Transfer packages (XML or their JSON form) and receipts. Beyond "never panics": what parses
//! is canonical — an accepted XML document is byte for byte the rendering of what was read,
//! and the JSON form converts to XML that reads back as the same package.
#![no_main]

use std::sync::LazyLock;

use kodomo_hub::schema::Standard;
use kodomo_hub::transfer::package;
use libfuzzer_sys::fuzz_target;

static STANDARD: LazyLock<Standard> = LazyLock::new(Standard::load);

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = package::parse(data) {
        let xml = package::to_xml(&parsed);
        let is_json = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !is_json {
            assert_eq!(xml, data, "an accepted XML package is its canonical form");
        }
        assert_eq!(package::parse(&xml).as_ref(), Ok(&parsed), "XML reads back the same");
        let _ = package::check_contents(&parsed, &STANDARD);
    }
    if let Ok(receipt) = package::parse_receipt(data) {
        assert_eq!(package::receipt_to_xml(&receipt), data);
    }
});
