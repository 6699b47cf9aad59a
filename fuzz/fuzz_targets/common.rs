//! What every target shares: the standard loaded once, and the validation every parsed
//! record goes through on the way in.

use std::sync::{Arc, LazyLock};

use kodomo_hub::ingest::{Candidate, Ingestor, Submission};
use kodomo_hub::schema::Standard;

pub static INGESTOR: LazyLock<Ingestor> =
    LazyLock::new(|| Ingestor::new(Arc::new(Standard::load())));

static SUBMISSION: LazyLock<Submission> = LazyLock::new(|| Submission {
    municipality: "131016".into(),
    source: "fuzz".into(),
    allowed_types: None,
    client_id: None,
});

/// Validate every record that parsed, as an import would (nothing is stored).
pub fn validate(candidates: &[Candidate]) {
    for candidate in candidates {
        if let Ok(record) = &candidate.parsed {
            let _ = INGESTOR.prepare(&SUBMISSION, candidate.index, record);
        }
    }
}
