//! The review history: append-only rows chained by hash, their typed kinds, the queries over them,
//! and the signed checkpoints anchored in the keyring.
//!
//! - [`kind`]: what each row records ([`HistoryKind`], [`HistoryDetail`]).
//! - [`chain`]: the stored row, appending and verifying the hash chain.
//! - [`query`]: filters and pages.
//! - [`anchor`]: signed checkpoints, the keyring's anchor, verification and re-anchoring.

pub mod anchor;
pub mod chain;
pub mod kind;
pub mod query;

pub use anchor::{Reanchored, CHECKPOINT_AGE_S, CHECKPOINT_EVERY};
pub use chain::{append, row_hash, verify, Row, GENESIS};
pub use kind::*;
pub use query::{Filter, Outcome};

#[cfg(test)]
mod tests;
