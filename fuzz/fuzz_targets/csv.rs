//! CSV files as `import` reads them: encoding detection (UTF-8, BOM, CP932), headers, cells
//! (和暦 dates, lists, formula guards), then validation.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use kodomo_hub::ingest::files::read_candidates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how the file is declared: detected, UTF-8 or CP932.
    let Some((&declared, bytes)) = data.split_first() else {
        return;
    };
    let encoding = [None, Some("utf-8"), Some("cp932")][usize::from(declared) % 3];
    let path = Path::new("fuzz.csv");
    if let Ok(candidates) = read_candidates(&common::INGESTOR, path, bytes, None, encoding) {
        common::validate(&candidates);
    }
});
