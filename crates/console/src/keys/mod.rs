//! The approver's Ed25519 key in the OS keyring.
//!
//! One keyring entry per profile: service [`SERVICE`], account = the profile id. The entry holds
//! the 32-byte private seed as base64url; nothing else anywhere holds it. The database records only
//! public keys, so decisions signed before a rotation stay verifiable. Keyring calls block (D-Bus),
//! so they run on the blocking pool.
//!
//! [`store`] is where the secret lives, [`active`] the profile's one active key (read, created on
//! first use, recorded), [`rotation`] its replacement and the statements that tell the
//! enforcement points.

pub mod active;
pub mod rotation;
pub mod store;

pub use active::KeyInfo;
pub(crate) use active::LoadedKey;
pub use rotation::{EpRotation, Rotation, RotationOutcome, ROTATION_LIFETIME_S};
#[cfg(test)]
pub use store::MemoryStore;
pub use store::{OsKeyring, SecretStore, SERVICE};
