//! Compact JWS (RFC 7515) with `alg: EdDSA` over Ed25519 (RFC 8037), and strict verification.
//!
//! Verification order matters: the header is checked (`alg`, `typ`, `kid`), the key resolved and
//! the signature verified with `verify_strict` *before* the payload is parsed; then the payload
//! must be I-JSON, and the time and audience claims are checked against the caller's clock.

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

use crate::{b64, ijson, jwk::kid_of, unb64, ProtocolError, MAX_LEEWAY_S};

/// The only signature algorithm accepted.
pub const ALG: &str = "EdDSA";

/// A JWS protected header as Countersign writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `EdDSA`.
    pub alg: String,
    /// The signer's key id (RFC 7638 thumbprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The token type, e.g. `countersign-step-up+jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// Where verification finds the public key for a `kid`.
pub trait KeyResolver {
    /// The trusted key with this `kid`, if any.
    fn resolve(&self, kid: &str) -> Option<VerifyingKey>;
}

impl KeyResolver for HashMap<String, VerifyingKey> {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self.get(kid).copied()
    }
}

impl KeyResolver for VerifyingKey {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        (kid_of(self) == kid).then_some(*self)
    }
}

impl<F: Fn(&str) -> Option<VerifyingKey>> KeyResolver for F {
    fn resolve(&self, kid: &str) -> Option<VerifyingKey> {
        self(kid)
    }
}

/// What a verification checks besides the signature.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The verifier's clock, in seconds since the Unix epoch (injectable for tests).
    pub now: i64,
    /// Allowed clock skew in seconds; clamped to [`MAX_LEEWAY_S`].
    pub leeway: i64,
    /// When set, the `aud` claim must equal it.
    pub audience: Option<String>,
    /// When set, `exp - iat` must not exceed it.
    pub max_lifetime: Option<i64>,
}

/// Seconds since the Unix epoch: the clock every `iat`, `exp` and stored time is read against, for
/// the gateway, the console and the tests alike (0 for a clock set before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Validation {
    /// Validation at `now` with a 30 s leeway, no audience and no lifetime cap.
    pub fn at(now: i64) -> Self {
        Validation { now, leeway: 30, audience: None, max_lifetime: None }
    }

    /// Require this audience.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience = Some(aud.into());
        self
    }

    /// Cap the token's lifetime.
    pub fn max_lifetime(mut self, seconds: i64) -> Self {
        self.max_lifetime = Some(seconds);
        self
    }
}

/// A token whose signature and claims were verified.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    /// The protected header.
    pub header: Header,
    /// The typed claims.
    pub claims: C,
    /// The claims exactly as signed (used for digests: never re-serialize the typed claims).
    pub raw: Value,
    /// The key that verified the signature.
    pub key: VerifyingKey,
}

/// Sign `claims` as a compact JWS with header `{"alg":"EdDSA","kid":…,"typ":…}`.
///
/// The claims must serialize to an I-JSON object.
pub fn sign<C: Serialize>(claims: &C, typ: &str, key: &SigningKey) -> Result<String, ProtocolError> {
    let header = Header { alg: ALG.into(), kid: Some(kid_of(&key.verifying_key())), typ: Some(typ.into()) };
    let header = serde_json::to_vec(&header).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let payload = serde_json::to_value(claims).map_err(|e| ProtocolError::InvalidClaims(e.to_string()))?;
    if !payload.is_object() {
        return Err(ProtocolError::InvalidClaims("claims must be a JSON object".into()));
    }
    ijson::check_value(&payload)?;
    let payload = serde_json::to_vec(&payload).map_err(|e| ProtocolError::InvalidClaims(e.to_string()))?;
    Ok(sign_raw(&header, &payload, key))
}

/// Sign exact header and payload bytes (for test vectors and interoperability checks).
pub fn sign_raw(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&sig.to_bytes()))
}

/// Decode a token's header without verifying anything (to route it, e.g. by `kid`).
pub fn decode_header(token: &str) -> Result<Header, ProtocolError> {
    let (h, _, _) = split(token)?;
    parse_header(h)
}

/// Decode a token's claims without verifying anything. Never trust the result: use it only to
/// find which key or request a token refers to before calling [`verify`].
pub fn decode_unverified(token: &str) -> Result<Value, ProtocolError> {
    let (_, p, _) = split(token)?;
    let value = ijson::parse(&unb64(p)?)?;
    if !value.is_object() {
        return Err(ProtocolError::Malformed("claims must be a JSON object".into()));
    }
    Ok(value)
}

fn split(token: &str) -> Result<(&str, &str, &str), ProtocolError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => Ok((h, p, s)),
        _ => Err(ProtocolError::Malformed("a compact JWS has three non-empty dot-separated parts".into())),
    }
}

fn parse_header(h: &str) -> Result<Header, ProtocolError> {
    let value = ijson::parse(&unb64(h)?)?;
    let obj =
        value.as_object().ok_or_else(|| ProtocolError::Malformed("header must be a JSON object".into()))?;
    if obj.contains_key("crit") {
        return Err(ProtocolError::Malformed("critical header parameters are not supported".into()));
    }
    let alg = obj.get("alg").and_then(Value::as_str).unwrap_or_default();
    if alg != ALG {
        return Err(ProtocolError::UnsupportedAlg(alg.to_owned()));
    }
    serde_json::from_value(value).map_err(|e| ProtocolError::Malformed(format!("header: {e}")))
}

/// Verify a compact JWS of type `typ` signed by a key from `keys`, then check its claims against
/// `validation` and deserialize them.
///
/// Checks, in order: three parts; header is I-JSON with `alg: EdDSA`, no `crit`, the expected
/// `typ`, a `kid`; the `kid` resolves to a trusted key; the signature verifies strictly; the
/// payload is an I-JSON object; `exp` and `iat` are integers, `iat ≤ now + leeway`,
/// `now ≤ exp + leeway`, `exp − iat` within the lifetime cap; `aud` matches when required;
/// the claims have the expected shape.
pub fn verify<C: DeserializeOwned>(
    token: &str,
    typ: &str,
    keys: &impl KeyResolver,
    validation: &Validation,
) -> Result<Verified<C>, ProtocolError> {
    let (h, p, s) = split(token)?;
    let header = parse_header(h)?;
    let found_typ = header.typ.clone().unwrap_or_default();
    if found_typ != typ {
        return Err(ProtocolError::WrongType { expected: typ.into(), found: found_typ });
    }
    let kid = header.kid.clone().ok_or(ProtocolError::MissingKid)?;
    let key = keys.resolve(&kid).ok_or_else(|| ProtocolError::UnknownKey(kid.clone()))?;
    let sig_bytes: [u8; 64] =
        unb64(s)?.try_into().map_err(|_| ProtocolError::Malformed("signature must be 64 bytes".into()))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| ProtocolError::BadSignature)?;

    let raw = ijson::parse(&unb64(p)?)?;
    let obj =
        raw.as_object().ok_or_else(|| ProtocolError::Malformed("claims must be a JSON object".into()))?;
    let int = |name: &str| {
        obj.get(name).and_then(Value::as_i64).ok_or_else(|| {
            ProtocolError::InvalidClaims(format!("`{name}` must be an integer (seconds since epoch)"))
        })
    };
    let (iat, exp) = (int("iat")?, int("exp")?);
    let leeway = validation.leeway.clamp(0, MAX_LEEWAY_S);
    if validation.now > exp + leeway {
        return Err(ProtocolError::Expired { exp, now: validation.now });
    }
    if iat > validation.now + leeway {
        return Err(ProtocolError::NotYetValid { iat, now: validation.now });
    }
    if exp < iat {
        return Err(ProtocolError::InvalidClaims("`exp` is before `iat`".into()));
    }
    if let Some(max) = validation.max_lifetime {
        if exp - iat > max {
            return Err(ProtocolError::LifetimeTooLong { lifetime: exp - iat, max });
        }
    }
    if let Some(expected) = &validation.audience {
        let found = obj.get("aud").and_then(Value::as_str).unwrap_or_default();
        if found != expected {
            return Err(ProtocolError::WrongAudience { expected: expected.clone(), found: found.into() });
        }
    }
    let claims =
        serde_json::from_value(raw.clone()).map_err(|e| ProtocolError::InvalidClaims(e.to_string()))?;
    Ok(Verified { header, claims, raw, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rfc8037_key() -> SigningKey {
        let d: [u8; 32] = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A").unwrap().try_into().unwrap();
        SigningKey::from_bytes(&d)
    }

    /// RFC 8037 appendix A.4: the Ed25519 JWS, byte for byte.
    #[test]
    fn rfc8037_a4_signature() {
        let key = rfc8037_key();
        assert_eq!(b64(key.verifying_key().as_bytes()), "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        let token = sign_raw(br#"{"alg":"EdDSA"}"#, b"Example of Ed25519 signing", &key);
        assert_eq!(
            token,
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    fn claims(now: i64) -> Value {
        json!({"iss":"a","aud":"ep","iat":now,"exp":now+60,"jti":"x"})
    }

    #[test]
    fn round_trip_and_checks() {
        let key = crate::generate_key();
        let vk = key.verifying_key();
        let now = 1_800_000_000;
        let t = sign(&claims(now), "t+jwt", &key).unwrap();
        let v: Verified<Value> = verify(&t, "t+jwt", &vk, &Validation::at(now).audience("ep")).unwrap();
        assert_eq!(v.raw, claims(now));

        assert!(matches!(
            verify::<Value>(&t, "other+jwt", &vk, &Validation::at(now)),
            Err(ProtocolError::WrongType { .. })
        ));
        assert!(matches!(
            verify::<Value>(&t, "t+jwt", &vk, &Validation::at(now).audience("nope")),
            Err(ProtocolError::WrongAudience { .. })
        ));
        assert!(matches!(
            verify::<Value>(&t, "t+jwt", &vk, &Validation::at(now + 200)),
            Err(ProtocolError::Expired { .. })
        ));
        assert!(matches!(
            verify::<Value>(&t, "t+jwt", &vk, &Validation::at(now - 200)),
            Err(ProtocolError::NotYetValid { .. })
        ));
        assert!(matches!(
            verify::<Value>(&t, "t+jwt", &vk, &Validation::at(now).max_lifetime(30)),
            Err(ProtocolError::LifetimeTooLong { .. })
        ));
        let other = crate::generate_key().verifying_key();
        assert!(matches!(
            verify::<Value>(&t, "t+jwt", &other, &Validation::at(now)),
            Err(ProtocolError::UnknownKey(_))
        ));
        // Leeway is capped at 60 s whatever the caller asks for.
        let mut lax = Validation::at(now + 60 + 61);
        lax.leeway = 10_000;
        assert!(matches!(verify::<Value>(&t, "t+jwt", &vk, &lax), Err(ProtocolError::Expired { .. })));
    }

    /// A signature that does not verify is refused even when the kid resolves to a key: a token
    /// signed by another key under a trusted kid, and a payload swapped in after signing.
    #[test]
    fn bad_signatures_are_refused() {
        let key = crate::generate_key();
        let vk = key.verifying_key();
        let now = 1_800_000_000;
        let every_kid_is_trusted = |_: &str| Some(vk);
        let forged = sign(&claims(now), "t+jwt", &crate::generate_key()).unwrap();
        assert!(matches!(
            verify::<Value>(&forged, "t+jwt", &every_kid_is_trusted, &Validation::at(now)),
            Err(ProtocolError::BadSignature)
        ));
        let genuine = sign(&claims(now), "t+jwt", &key).unwrap();
        let other =
            sign(&json!({"iss":"b","aud":"ep","iat":now,"exp":now+60,"jti":"y"}), "t+jwt", &key).unwrap();
        let mut parts: Vec<&str> = genuine.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(matches!(
            verify::<Value>(&parts.join("."), "t+jwt", &vk, &Validation::at(now)),
            Err(ProtocolError::BadSignature)
        ));
    }

    #[test]
    fn rejects_other_algs_and_crit() {
        let key = crate::generate_key();
        let vk = key.verifying_key();
        let kid = kid_of(&vk);
        let payload = serde_json::to_vec(&claims(0)).unwrap();
        for header in [
            json!({"alg":"none","kid":kid,"typ":"t"}),
            json!({"alg":"HS256","kid":kid,"typ":"t"}),
            json!({"alg":"Ed25519","kid":kid,"typ":"t"}),
        ] {
            let t = sign_raw(&serde_json::to_vec(&header).unwrap(), &payload, &key);
            assert!(matches!(
                verify::<Value>(&t, "t", &vk, &Validation::at(0)),
                Err(ProtocolError::UnsupportedAlg(_))
            ));
        }
        let t = sign_raw(
            &serde_json::to_vec(&json!({"alg":"EdDSA","kid":kid,"typ":"t","crit":["x"]})).unwrap(),
            &payload,
            &key,
        );
        assert!(matches!(
            verify::<Value>(&t, "t", &vk, &Validation::at(0)),
            Err(ProtocolError::Malformed(_))
        ));
        let t = sign_raw(br#"{"alg":"EdDSA","typ":"t"}"#, &payload, &key);
        assert!(matches!(verify::<Value>(&t, "t", &vk, &Validation::at(0)), Err(ProtocolError::MissingKid)));
    }

    #[test]
    fn rejects_non_ijson_payload_even_when_signed() {
        let key = crate::generate_key();
        let vk = key.verifying_key();
        let header = serde_json::to_vec(&json!({"alg":"EdDSA","kid":kid_of(&vk),"typ":"t"})).unwrap();
        let t = sign_raw(&header, br#"{"iat":0,"exp":10,"iat":0}"#, &key);
        assert!(matches!(verify::<Value>(&t, "t", &vk, &Validation::at(0)), Err(ProtocolError::NotIJson(_))));
        let t = sign_raw(&header, br#"{"iat":0,"exp":10,"n":18014398509481984}"#, &key);
        assert!(matches!(verify::<Value>(&t, "t", &vk, &Validation::at(0)), Err(ProtocolError::NotIJson(_))));
    }

    #[test]
    fn rejects_malformed_tokens() {
        let vk = crate::generate_key().verifying_key();
        for t in ["", "a.b", "a.b.c.d", "..", "!!.b.c", "eyJhbGciOiJFZERTQSJ9..sig"] {
            assert!(verify::<Value>(t, "t", &vk, &Validation::at(0)).is_err(), "{t}");
        }
    }
}
