//! Ed25519 public keys as JWK (RFC 8037) and their RFC 7638 thumbprints.

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{b64, unb64, ProtocolError};

/// An Ed25519 public key as a JWK: `{"kty":"OKP","crv":"Ed25519","x":…}`.
///
/// `kid` is optional on the wire; when present it must equal the thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Jwk {
    /// Key type; always `OKP`.
    pub kty: String,
    /// Curve; always `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
    /// The key id: the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use; `sig` when present.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Algorithm; `EdDSA` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

/// A JWK set: `{"keys":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// The JWK of a verifying key, with `kid`, `use` and `alg` filled in.
    pub fn from_key(key: &VerifyingKey) -> Self {
        let mut jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: b64(key.as_bytes()),
            kid: None,
            use_: Some("sig".into()),
            alg: Some("EdDSA".into()),
        };
        jwk.kid = Some(jwk.thumbprint());
        jwk
    }

    /// RFC 7638 thumbprint: SHA-256 over `{"crv":…,"kty":…,"x":…}` (required members, sorted,
    /// no whitespace), base64url without padding.
    pub fn thumbprint(&self) -> String {
        // The members are fixed ASCII-safe names; the values are JSON-escaped by serde_json.
        let json = format!(
            r#"{{"crv":{},"kty":{},"x":{}}}"#,
            serde_json::Value::String(self.crv.clone()),
            serde_json::Value::String(self.kty.clone()),
            serde_json::Value::String(self.x.clone())
        );
        b64(&Sha256::digest(json.as_bytes()))
    }

    /// Decode into a verifying key, checking `kty`, `crv`, the length of `x`, and that a
    /// present `kid` equals the thumbprint.
    pub fn to_key(&self) -> Result<VerifyingKey, ProtocolError> {
        if self.kty != "OKP" {
            return Err(ProtocolError::InvalidKey(format!("kty must be OKP, not {:?}", self.kty)));
        }
        if self.crv != "Ed25519" {
            return Err(ProtocolError::InvalidKey(format!("crv must be Ed25519, not {:?}", self.crv)));
        }
        if let Some(alg) = &self.alg {
            if alg != "EdDSA" {
                return Err(ProtocolError::InvalidKey(format!("alg must be EdDSA, not {alg:?}")));
            }
        }
        let bytes: [u8; 32] =
            unb64(&self.x)?.try_into().map_err(|_| ProtocolError::InvalidKey("x must be 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| ProtocolError::InvalidKey(format!("not a valid Ed25519 point: {e}")))?;
        if key.is_weak() {
            return Err(ProtocolError::InvalidKey("weak (small-order) key".into()));
        }
        if let Some(kid) = &self.kid {
            if *kid != self.thumbprint() {
                return Err(ProtocolError::InvalidKey("kid is not the key's RFC 7638 thumbprint".into()));
            }
        }
        Ok(key)
    }
}

/// The `kid` (RFC 7638 thumbprint) of a verifying key.
pub fn kid_of(key: &VerifyingKey) -> String {
    Jwk::from_key(key).thumbprint()
}

/// The enforcement point id that belongs to a key id: `ep-` + its first 16 characters. An
/// enforcement point's id is a function of its key, so a console derives it from the pinned key
/// and never takes it from a document an attacker could serve.
pub fn ep_id(kid: &str) -> String {
    format!("ep-{}", kid.chars().take(16).collect::<String>())
}

/// A short human fingerprint of a kid, for people to compare: groups of four characters separated
/// by spaces (a space never occurs in base64url, so the groups are unambiguous).
pub fn fingerprint(kid: &str) -> String {
    kid.chars()
        .take(24)
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1–A.3: the Ed25519 test key and its thumbprint.
    #[test]
    fn rfc8037_thumbprint() {
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            kid: None,
            use_: None,
            alg: None,
        };
        assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let key = jwk.to_key().unwrap();
        assert_eq!(kid_of(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn fingerprint_groups_are_unambiguous() {
        // `-` and `_` are base64url characters: only a space can separate the groups.
        assert_eq!(
            fingerprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"),
            "kPrK _qmx VWaY VA9w wBF6 Iuo3"
        );
        assert_eq!(fingerprint("AwMhOnYRs_6lGYD5soe3yqRr-xJG"), "AwMh OnYR s_6l GYD5 soe3 yqRr");
    }

    #[test]
    fn rejects_foreign_keys() {
        let mut jwk = Jwk::from_key(&crate::generate_key().verifying_key());
        jwk.to_key().unwrap();
        let mut bad = jwk.clone();
        bad.crv = "X25519".into();
        assert!(bad.to_key().is_err());
        bad = jwk.clone();
        bad.kty = "EC".into();
        assert!(bad.to_key().is_err());
        bad = jwk.clone();
        bad.x = "AAAA".into();
        assert!(bad.to_key().is_err());
        jwk.kid = Some("not-the-thumbprint".into());
        assert!(jwk.to_key().is_err());
    }
}
