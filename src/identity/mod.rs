//! Identity resolution (名寄せ): normalising the basic four items for matching and resolving
//! records without a resident number to subjects.

pub mod normalize;
pub mod resolve;
