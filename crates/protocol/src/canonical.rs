//! RFC 8785 JSON Canonicalization Scheme and the request digest.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::{b64, ProtocolError};

/// The RFC 8785 canonical form of a JSON value: object members sorted by UTF-16 code units,
/// no insignificant whitespace, ECMAScript number formatting, minimal string escaping.
///
/// The value must be I-JSON (see [`crate::ijson`]); numbers beyond ±2^53 are refused because
/// canonicalization would silently round them.
pub fn canonicalize(value: &Value) -> Result<String, ProtocolError> {
    crate::ijson::check_value(value)?;
    serde_jcs::to_string(value).map_err(|e| ProtocolError::NotIJson(e.to_string()))
}

/// The digest of a step-up request: `sha256:` + base64url(SHA-256(canonical claims)).
///
/// A decision carries this digest, binding it to exactly the claims the approver was shown.
pub fn request_digest(claims: &Value) -> Result<String, ProtocolError> {
    let canonical = canonicalize(claims)?;
    Ok(format!("sha256:{}", b64(&Sha256::digest(canonical.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8785 §3.2.3 / appendix: the main example, reproduced byte for byte.
    #[test]
    fn rfc8785_main_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        // 1E30 is beyond 2^53, which I-JSON forbids in this protocol: the crate's canonicalizer
        // refuses the example as given, and reproduces it byte for byte without that one number.
        assert!(matches!(canonicalize(&v), Err(ProtocolError::NotIJson(_))), "1E30 must be refused");
        let mut within = v.clone();
        within["numbers"].as_array_mut().unwrap().remove(1);
        assert_eq!(
            canonicalize(&within).unwrap(),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 §3.2.3: property sorting by UTF-16 code units.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let out = canonicalize(&v).unwrap();
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(out, expected);
    }

    /// RFC 8785 appendix B: IEEE 754 number serialization samples within the I-JSON range,
    /// through the crate's own canonicalizer; the samples beyond ±2^53 are refused by it.
    #[test]
    fn rfc8785_numbers() {
        for (input, expected) in [
            ("0", "0"),
            ("-0", "0"),
            ("1", "1"),
            ("4.50", "4.5"),
            ("0.002", "0.002"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("123456789012345.6", "123456789012345.6"),
            ("9007199254740991", "9007199254740991"),
            ("-9007199254740991", "-9007199254740991"),
        ] {
            let v: Value = serde_json::from_str(&format!("[{input}]")).unwrap();
            assert_eq!(canonicalize(&v).unwrap(), format!("[{expected}]"), "{input}");
        }
        for beyond in ["295147905179352830000", "9007199254740993", "-9007199254740993", "1e30"] {
            let v: Value = serde_json::from_str(&format!("[{beyond}]")).unwrap();
            assert!(canonicalize(&v).is_err(), "{beyond} is beyond I-JSON and must be refused");
        }
    }

    #[test]
    fn digest_ignores_member_order_and_whitespace() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":[true,"x"]}"#).unwrap();
        let b: Value = serde_json::from_str("{ \"a\" : [ true , \"x\" ] ,\n \"b\" : 1 }").unwrap();
        assert_eq!(request_digest(&a).unwrap(), request_digest(&b).unwrap());
        assert!(request_digest(&a).unwrap().starts_with("sha256:"));
        let c: Value = serde_json::from_str(r#"{"b":2,"a":[true,"x"]}"#).unwrap();
        assert_ne!(request_digest(&a).unwrap(), request_digest(&c).unwrap());
    }

    #[test]
    fn digest_refuses_unsafe_numbers() {
        let v: Value = serde_json::from_str(r#"{"amount":9007199254740993}"#).unwrap();
        assert!(request_digest(&v).is_err());
    }
}
