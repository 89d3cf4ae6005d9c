//! Countersign protocol v1: the contract between enforcement points and approver consoles.
//!
//! Everything here is pure: no I/O, no clock of its own (callers pass `now`), no global state.
//! An enforcement point embeds this crate to verify decisions; the console uses it to verify
//! step-up requests and to sign decisions.
//!
//! - [`jwk`]: Ed25519 public keys as JWK and their RFC 7638 thumbprints (`kid`).
//! - [`ijson`]: strict I-JSON (RFC 7493) parsing: no duplicate keys, no numbers beyond ±2^53.
//! - [`canonical`]: RFC 8785 canonical JSON and the request digest.
//! - [`jws`]: compact JWS with `alg: EdDSA` (RFC 7515 / RFC 8037), signing and strict verification.
//! - [`claims`]: typed claims of the step-up request, the decision, the approver auth token and the grant.

pub mod canonical;
pub mod claims;
pub mod error;
pub mod ijson;
pub mod jwk;
pub mod jws;
pub mod principal;
pub mod spiffe;

pub use canonical::{canonicalize, request_digest};
pub use claims::*;
pub use error::ProtocolError;
pub use jwk::{Jwk, Jwks};
pub use jws::{now, sign, verify, Header, KeyResolver, Validation, Verified};

/// Signing keys are plain ed25519-dalek keys; re-exported so users need no direct dependency.
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// Maximum clock leeway any verification may allow, in seconds.
pub const MAX_LEEWAY_S: i64 = 60;

/// A fresh identifier with 128 bits from the operating system's CSPRNG, base64url without padding.
pub fn new_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Generate a new Ed25519 signing key from the operating system's CSPRNG.
pub fn generate_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(s: &str) -> Result<Vec<u8>, ProtocolError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| ProtocolError::Malformed(format!("invalid base64url: {e}")))
}
