//! Identity resolution (名寄せ): normalising the basic four items for matching and resolving
//! records without a resident number to subjects.

pub mod normalize;
pub mod resolve;

/// Where a record without a resident number stands in the identity queue.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    utoipa::ToSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// A person must decide (several candidates, a near match, an unmapped 外字).
    Review,
    /// No candidate yet; retried when new subjects arrive.
    Pending,
    /// Linked to a subject.
    Linked,
    /// A person decided none of the candidates is this child.
    Rejected,
}

impl QueueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Review => "review",
            QueueStatus::Pending => "pending",
            QueueStatus::Linked => "linked",
            QueueStatus::Rejected => "rejected",
        }
    }
}
