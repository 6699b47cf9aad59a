//! Transfers when a family moves between towns of one hub (転出入時の引継ぎ): the states a
//! transfer moves through and the coded reasons, independent of storage and HTTP.

use serde::{Deserialize, Serialize};

pub mod package;
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

/// Who may do what: the answer to a step that is not allowed in the current state.
pub fn check_step(status: TransferStatus, step: &str) -> Result<(), String> {
    let allowed = match step {
        "accept" | "decline" | "deliver" => status == TransferStatus::Offered,
        "cancel" => status.is_open(),
        "claim" => status == TransferStatus::Held,
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "a transfer that is {} cannot be {step}ed",
            status.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_state_machine() {
        assert!(check_step(TransferStatus::Offered, "accept").is_ok());
        assert!(check_step(TransferStatus::Held, "accept").is_err());
        assert!(check_step(TransferStatus::Held, "claim").is_ok());
        assert!(check_step(TransferStatus::Accepted, "cancel").is_err());
        assert!(check_step(TransferStatus::Held, "cancel").is_ok());
        assert!(check_step(TransferStatus::Declined, "decline").is_err());
    }
}
