//! Transfers when a family moves between towns of one hub (転出入時の引継ぎ): the states a
//! transfer moves through and the coded reasons, independent of storage and HTTP.

use serde::{Deserialize, Serialize};

pub mod exchange;
pub mod package;
pub mod trust;
pub mod workflow;

/// Persisted state of a transfer. Escalation is a flag on offered/held transfers past their
/// deadline (they stay open and are listed for a named officer; nothing is ever deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Waiting for the destination.
    Offered,
    /// The family left but the destination is not known yet.
    Held,
    Accepted,
    /// Sent to another hub as a signed package, whose signed receipt came back: the
    /// destination hub holds the records now (its own officers accept or decline there).
    Delivered,
    Declined,
    Cancelled,
}

impl std::fmt::Display for TransferStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored text of a status; text the hub never writes is an error, not a default.
impl TryFrom<String> for TransferStatus {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        TransferStatus::parse(&text).ok_or_else(|| format!("unknown transfer status {text:?}"))
    }
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Offered => "offered",
            TransferStatus::Held => "held",
            TransferStatus::Accepted => "accepted",
            TransferStatus::Delivered => "delivered",
            TransferStatus::Declined => "declined",
            TransferStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<TransferStatus> {
        [
            TransferStatus::Offered,
            TransferStatus::Held,
            TransferStatus::Accepted,
            TransferStatus::Delivered,
            TransferStatus::Declined,
            TransferStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Still waiting for someone (and so may be escalated).
    pub fn is_open(self) -> bool {
        matches!(self, TransferStatus::Offered | TransferStatus::Held)
    }
}

/// The boxes an officer lists transfers by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum TransferBox {
    /// Offered to the caller's town.
    Inbox,
    /// Offered (or held) by the caller's town.
    Outbox,
    /// Destination unknown, any origin.
    Held,
    /// Held transfers with a child matching a subject of the caller's town: the family may have
    /// arrived here (claim to confirm).
    Arrivals,
    /// Open past their deadline, of the caller's town.
    Escalated,
}

/// Why the origin transfers (code list).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum TransferReason {
    /// 転居 (the family moved).
    Moved,
    /// 避難 (the family fled; DV support measure).
    Refuge,
    /// 施設入所 (admission to a facility).
    Facility,
    Other,
}

impl TransferReason {
    /// The stored and transmitted code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            TransferReason::Moved => "moved",
            TransferReason::Refuge => "refuge",
            TransferReason::Facility => "facility",
            TransferReason::Other => "other",
        }
    }
}

/// Why the destination declines (code list).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// 転入の事実なし: the family is not (yet) resident here.
    NotResident,
    /// The transfer was addressed to the wrong town.
    WrongDestination,
    /// The legal basis stated does not allow this town to receive the records.
    InsufficientLegalBasis,
    Other,
}

impl DeclineReason {
    /// The stored code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            DeclineReason::NotResident => "not_resident",
            DeclineReason::WrongDestination => "wrong_destination",
            DeclineReason::InsufficientLegalBasis => "insufficient_legal_basis",
            DeclineReason::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Option<DeclineReason> {
        [
            DeclineReason::NotResident,
            DeclineReason::WrongDestination,
            DeclineReason::InsufficientLegalBasis,
            DeclineReason::Other,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// What the destination does with one frozen record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Copy it into the destination.
    Accept,
    /// Not needed here; it stays only with the origin.
    Decline,
    /// Retracted by the origin after the offer (an error there): never copied.
    Withdrawn,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Accept => "accept",
            Disposition::Decline => "decline",
            Disposition::Withdrawn => "withdrawn",
        }
    }
}

/// The source name under which the destination keeps a transferred record, so provenance is
/// visible and the same record can never arrive twice (the hub's unique key includes it).
pub fn transferred_source(origin: &str, origin_source: &str) -> String {
    format!("transfer:{origin}:{origin_source}")
}

/// A step that moves a transfer from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The destination takes the children and their records.
    Accept,
    /// The destination refuses, with a coded reason.
    Decline,
    /// The origin withdraws before anyone decided.
    Cancel,
    /// A town that found a held transfer's family among its arrivals takes it over.
    Claim,
    /// The other hub's signed receipt came back for a package.
    Deliver,
}

impl Step {
    /// The name used in audit actions (`transfer.<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Accept => "accept",
            Step::Decline => "decline",
            Step::Cancel => "cancel",
            Step::Claim => "claim",
            Step::Deliver => "deliver",
        }
    }

    /// The step in the past tense, for messages.
    fn done(self) -> &'static str {
        match self {
            Step::Accept => "accepted",
            Step::Decline => "declined",
            Step::Cancel => "cancelled",
            Step::Claim => "claimed",
            Step::Deliver => "delivered",
        }
    }
}

impl TransferStatus {
    /// The state after `step`, or why the step is not possible from this state.
    pub fn after(self, step: Step) -> Result<TransferStatus, String> {
        let next = match (step, self) {
            (Step::Accept, TransferStatus::Offered) => TransferStatus::Accepted,
            (Step::Decline, TransferStatus::Offered) => TransferStatus::Declined,
            (Step::Deliver, TransferStatus::Offered) => TransferStatus::Delivered,
            (Step::Cancel, TransferStatus::Offered | TransferStatus::Held) => {
                TransferStatus::Cancelled
            }
            (Step::Claim, TransferStatus::Held) => TransferStatus::Offered,
            _ => {
                return Err(format!(
                    "a transfer that is {} cannot be {}",
                    self.as_str(),
                    step.done()
                ));
            }
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_codes_are_the_serialised_names() {
        use TransferReason::*;
        for reason in [Moved, Refuge, Facility, Other] {
            assert_eq!(serde_json::json!(reason), reason.code());
        }
        for reason in [
            DeclineReason::NotResident,
            DeclineReason::WrongDestination,
            DeclineReason::InsufficientLegalBasis,
            DeclineReason::Other,
        ] {
            assert_eq!(serde_json::json!(reason), reason.code());
            assert_eq!(DeclineReason::parse(reason.code()), Some(reason));
        }
        assert_eq!(DeclineReason::parse("moved"), None);
    }

    #[test]
    fn steps_follow_the_state_machine() {
        use TransferStatus::*;
        let states = [Offered, Held, Accepted, Delivered, Declined, Cancelled];
        let allowed = [
            (Step::Accept, Offered, Accepted),
            (Step::Decline, Offered, Declined),
            (Step::Deliver, Offered, Delivered),
            (Step::Cancel, Offered, Cancelled),
            (Step::Cancel, Held, Cancelled),
            (Step::Claim, Held, Offered),
        ];
        for step in [
            Step::Accept,
            Step::Decline,
            Step::Cancel,
            Step::Claim,
            Step::Deliver,
        ] {
            for state in states {
                let expected = allowed
                    .iter()
                    .find(|(s, from, _)| *s == step && *from == state)
                    .map(|(_, _, to)| *to);
                match (state.after(step), expected) {
                    (Ok(next), Some(to)) => assert_eq!(next, to, "{step:?} from {state:?}"),
                    (Err(message), None) => assert_eq!(
                        message,
                        format!(
                            "a transfer that is {} cannot be {}",
                            state.as_str(),
                            step.done()
                        )
                    ),
                    (got, want) => panic!("{step:?} from {state:?}: {got:?}, expected {want:?}"),
                }
            }
        }
    }

    #[test]
    fn refusals_read_as_english() {
        assert_eq!(
            TransferStatus::Accepted.after(Step::Decline).unwrap_err(),
            "a transfer that is accepted cannot be declined"
        );
        assert_eq!(
            TransferStatus::Declined.after(Step::Cancel).unwrap_err(),
            "a transfer that is declined cannot be cancelled"
        );
        assert_eq!(
            TransferStatus::Offered.after(Step::Claim).unwrap_err(),
            "a transfer that is offered cannot be claimed"
        );
    }
}
