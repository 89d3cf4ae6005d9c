//! Strict I-JSON (RFC 7493) parsing.
//!
//! `serde_json` silently keeps the last of duplicate keys and turns large integers into lossy
//! floats; canonicalization (RFC 8785) then works on doubles. Both would let two parties read
//! different documents from the same bytes, so everything that is signed or digested is parsed
//! here first.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

use crate::ProtocolError;

/// Largest magnitude of a number accepted: 2^53 (RFC 7493 §2.2).
pub const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Maximum nesting depth of arrays and objects.
pub const MAX_DEPTH: usize = 64;

/// Parse bytes as I-JSON into a [`Value`], rejecting duplicate keys, numbers beyond ±2^53,
/// nesting deeper than [`MAX_DEPTH`], and trailing data.
pub fn parse(bytes: &[u8]) -> Result<Value, ProtocolError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { depth: 0 }.deserialize_value(&mut de).map_err(|e| ProtocolError::NotIJson(e.to_string()))?;
    de.end().map_err(|e| ProtocolError::NotIJson(e.to_string()))?;
    Ok(value)
}

/// Check that an already-built value is I-JSON-safe (numbers within ±2^53, depth bounded).
pub fn check_value(value: &Value) -> Result<(), ProtocolError> {
    fn walk(v: &Value, depth: usize) -> Result<(), ProtocolError> {
        if depth > MAX_DEPTH {
            return Err(ProtocolError::NotIJson(format!("nesting deeper than {MAX_DEPTH}")));
        }
        match v {
            Value::Number(n) => check_number(n).map_err(ProtocolError::NotIJson),
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, depth + 1)),
            Value::Object(o) => o.values().try_for_each(|x| walk(x, depth + 1)),
            _ => Ok(()),
        }
    }
    walk(value, 0)
}

fn check_number(n: &Number) -> Result<(), String> {
    let out_of_range = match (n.as_i64(), n.as_u64(), n.as_f64()) {
        (Some(i), _, _) => i.unsigned_abs() > MAX_SAFE as u64,
        (None, Some(u), _) => u > MAX_SAFE as u64,
        (None, None, Some(f)) => !f.is_finite() || f.abs() > MAX_SAFE,
        _ => true,
    };
    if out_of_range {
        Err(format!("number {n} is beyond ±2^53; send it as a string"))
    } else {
        Ok(())
    }
}

struct StrictSeed {
    depth: usize,
}

impl StrictSeed {
    fn deserialize_value<'de, D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor { depth: self.depth })
    }
}

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize_value(d)
    }
}

struct StrictVisitor {
    depth: usize,
}

impl StrictVisitor {
    fn number<E: de::Error>(n: Number) -> Result<Value, E> {
        check_number(&n).map_err(E::custom)?;
        Ok(Value::Number(n))
    }
}

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an I-JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Self::number(Number::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Self::number(Number::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        let n = Number::from_f64(v).ok_or_else(|| E::custom("non-finite number"))?;
        Self::number(n)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(format!("nesting deeper than {MAX_DEPTH}")));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed { depth: self.depth + 1 })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(format!("nesting deeper than {MAX_DEPTH}")));
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed { depth: self.depth + 1 })?;
            if out.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_json() {
        let v = parse(br#"{"a":[1,2.5,"x",null,true],"b":{"c":-9007199254740992}}"#).unwrap();
        assert_eq!(v["b"]["c"], -9007199254740992i64);
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        assert!(matches!(parse(br#"{"a":1,"a":2}"#), Err(ProtocolError::NotIJson(m)) if m.contains("duplicate")));
        assert!(parse(br#"{"x":[{"b":1,"b":1}]}"#).is_err());
    }

    #[test]
    fn rejects_numbers_beyond_2_pow_53() {
        assert!(parse(b"9007199254740993").is_err());
        assert!(parse(b"-9007199254740993").is_err());
        assert!(parse(b"123456789012345678901234567890").is_err());
        assert!(parse(b"1e300").is_err());
        assert!(parse(b"9007199254740992").is_ok());
    }

    #[test]
    fn rejects_trailing_data_and_bad_syntax() {
        assert!(parse(b"{} {}").is_err());
        assert!(parse(b"{").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn rejects_deep_nesting() {
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
