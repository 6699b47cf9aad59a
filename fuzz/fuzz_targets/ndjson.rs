//! NDJSON framing (lines, blank lines, CR LF, a last line without newline), each line parsed
//! as strict JSON (duplicate keys refused), and the JSON batch form; then validation.
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use kodomo_hub::ingest::files::read_candidates;
use kodomo_hub::ingest::formats::json_batch_candidates;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ndjson");
    if let Ok(candidates) = read_candidates(&common::INGESTOR, path, data, None, None) {
        let lines = data.split(|b| *b == b'\n');
        let non_blank = lines.filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
        assert_eq!(candidates.len(), non_blank, "one candidate per non-blank line");
        common::validate(&candidates);
    }
    if let Ok(candidates) = json_batch_candidates(data, 10_000) {
        common::validate(&candidates);
    }
});
