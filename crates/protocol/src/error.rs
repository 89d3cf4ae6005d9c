//! The one error type of the protocol crate. Every rejection names the check that failed.

/// Why a token, key or document was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The input is not structurally valid (not three base64url segments, bad base64, not an object…).
    #[error("malformed: {0}")]
    Malformed(String),
    /// The JSON is not I-JSON (RFC 7493): invalid syntax, a duplicate key, or a number beyond ±2^53.
    #[error("not I-JSON: {0}")]
    NotIJson(String),
    /// The header's `alg` is not `EdDSA`.
    #[error("unsupported alg {0:?}: only EdDSA is accepted")]
    UnsupportedAlg(String),
    /// The header's `typ` is not the one expected for this kind of token.
    #[error("wrong typ: expected {expected:?}, found {found:?}")]
    WrongType {
        /// The `typ` this verification required.
        expected: String,
        /// The `typ` the token carried (empty when absent).
        found: String,
    },
    /// The header carries no `kid`.
    #[error("missing kid in header")]
    MissingKid,
    /// No trusted key has this `kid`.
    #[error("unknown key {0}")]
    UnknownKey(String),
    /// The Ed25519 signature does not verify (strict verification).
    #[error("bad signature")]
    BadSignature,
    /// The `aud` claim is not the expected audience.
    #[error("wrong audience: expected {expected:?}, found {found:?}")]
    WrongAudience {
        /// The audience this verifier is.
        expected: String,
        /// The audience the token names.
        found: String,
    },
    /// The `iss` claim does not match the signing key or expected issuer.
    #[error("issuer mismatch: expected {expected:?}, found {found:?}")]
    IssuerMismatch {
        /// The issuer required.
        expected: String,
        /// The issuer found.
        found: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("expired at {exp}, now {now}")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future: iat {iat}, now {now}")]
    NotYetValid {
        /// The token's `iat`.
        iat: i64,
        /// The verifier's clock.
        now: i64,
    },
    /// `exp - iat` exceeds the maximum lifetime allowed for this kind of token.
    #[error("lifetime {lifetime}s exceeds the maximum of {max}s")]
    LifetimeTooLong {
        /// `exp - iat`.
        lifetime: i64,
        /// The maximum allowed.
        max: i64,
    },
    /// A required claim is missing or has the wrong type or value.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A JWK is not an Ed25519 public key (`kty OKP`, `crv Ed25519`, 32-byte `x`).
    #[error("invalid key: {0}")]
    InvalidKey(String),
}
