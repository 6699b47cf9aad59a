//! Which peer key verifies a message: a peer hub's key signs for a span of time, so that a
//! rotated key keeps verifying what it signed before the rotation (until the overlap ends)
//! but nothing signed after it, and a removed peer's keys verify nothing.

use chrono::{DateTime, Utc};

use super::package::PackageError;

/// What the trust store holds about the key that made a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerKey {
    /// The peer hub the key belongs to.
    pub peer: String,
    /// It signs messages created from then on (`None`: any time before its successor's).
    pub valid_from: Option<DateTime<Utc>>,
    /// It signs messages created before then (its successor's start; `None`: current key).
    pub valid_until: Option<DateTime<Utc>>,
    /// After then it verifies nothing (the end of the overlap; `None`: no end).
    pub verify_until: Option<DateTime<Utc>>,
    /// When the peer was removed from the trust store.
    pub peer_removed: Option<DateTime<Utc>>,
}

impl PeerKey {
    /// Whether this key may verify a message that says it was created at `created` (RFC 3339;
    /// `pointer` names the field), checked at `now`. Refusals carry `signer_revoked`,
    /// `signer_key_retired` or `signer_key_not_yet_valid`.
    pub fn verifies(
        &self,
        created: &str,
        pointer: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PackageError> {
        let refuse = |code, message: String| Err(PackageError::new(code, "/signature", message));
        if let Some(removed) = self.peer_removed {
            return refuse(
                "signer_revoked",
                format!(
                    "the signing hub {} was removed from this hub's trust store on {}",
                    self.peer,
                    removed.to_rfc3339()
                ),
            );
        }
        if let Some(end) = self.verify_until.filter(|end| now >= *end) {
            return refuse(
                "signer_key_retired",
                format!(
                    "this key of {} was replaced and its overlap ended on {}",
                    self.peer,
                    end.to_rfc3339()
                ),
            );
        }
        let created = DateTime::parse_from_rfc3339(created)
            .map_err(|_| {
                PackageError::new(
                    "created_invalid",
                    pointer,
                    format!(
                        "{} is not an RFC 3339 time with offset",
                        pointer.trim_start_matches('/')
                    ),
                )
            })?
            .with_timezone(&Utc);
        if let Some(until) = self.valid_until.filter(|until| created >= *until) {
            return refuse(
                "signer_key_retired",
                format!(
                    "signed with a key {} replaced on {}; messages created since need its new key",
                    self.peer,
                    until.to_rfc3339()
                ),
            );
        }
        if let Some(from) = self.valid_from.filter(|from| created < *from) {
            return refuse(
                "signer_key_not_yet_valid",
                format!(
                    "signed with a key of {} that signs only messages created from {}",
                    self.peer,
                    from.to_rfc3339()
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn retired() -> PeerKey {
        PeerKey {
            peer: "p".into(),
            valid_from: None,
            valid_until: Some(at("2026-12-01T00:00:00Z")),
            verify_until: Some(at("2026-12-15T00:00:00Z")),
            peer_removed: None,
        }
    }

    #[test]
    fn a_retired_key_verifies_what_it_signed_before_until_the_overlap_ends() {
        let key = retired();
        let during = at("2026-12-10T00:00:00Z");
        // Offsets are compared as instants: 08:59 JST on Dec 1 is before midnight UTC.
        assert!(
            key.verifies("2026-12-01T08:59:00+09:00", "/created", during)
                .is_ok()
        );
        let after = key.verifies("2026-12-01T09:00:00+09:00", "/created", during);
        assert_eq!(after.unwrap_err().code, "signer_key_retired");
        let late = key.verifies(
            "2026-11-30T00:00:00Z",
            "/created",
            at("2026-12-15T00:00:00Z"),
        );
        assert_eq!(late.unwrap_err().code, "signer_key_retired");
    }

    #[test]
    fn a_new_key_signs_only_from_its_start_and_a_removed_peer_nothing() {
        let key = PeerKey {
            valid_from: Some(at("2026-12-01T00:00:00Z")),
            valid_until: None,
            verify_until: None,
            ..retired()
        };
        let now = at("2026-12-02T00:00:00Z");
        assert!(
            key.verifies("2026-12-01T00:00:00Z", "/created", now)
                .is_ok()
        );
        let early = key.verifies("2026-11-30T00:00:00Z", "/created", now);
        assert_eq!(early.unwrap_err().code, "signer_key_not_yet_valid");
        let removed = PeerKey {
            peer_removed: Some(now),
            ..key
        };
        let refused = removed
            .verifies("2026-12-01T00:00:00Z", "/created", now)
            .unwrap_err();
        assert_eq!(
            (refused.code, refused.pointer.as_str()),
            ("signer_revoked", "/signature")
        );
    }
}
