//! Property tests: signing round-trips, and any change to a token's bytes makes it fail.

use countersign_protocol::{sign, verify, Validation};
use proptest::prelude::*;
use serde_json::{json, Value};

fn claims(s: &str, n: i64) -> Value {
    json!({"iss":"ep","aud":"a","iat":1_000,"exp":2_000,"jti":s,"n":n,"nested":{"s":s,"list":[s,n]}})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(s in ".{0,40}", n in -9_007_199_254_740_992i64..=9_007_199_254_740_992i64) {
        let key = countersign_protocol::generate_key();
        let c = claims(&s, n);
        let t = sign(&c, "t+jwt", &key).unwrap();
        let v = verify::<Value>(&t, "t+jwt", &key.verifying_key(), &Validation::at(1_500)).unwrap();
        prop_assert_eq!(v.raw, c);
    }

    #[test]
    fn any_byte_change_fails(s in "[a-z]{1,20}", pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let key = countersign_protocol::generate_key();
        let t = sign(&claims(&s, 7), "t+jwt", &key).unwrap();
        let mut bytes = t.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = bytes[i].wrapping_add(delta);
        // A token arrives as text: bytes that are not UTF-8 reach a verifier as replacement
        // characters (or not at all). Either way the result must be a rejection, every case.
        let tampered = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert_ne!(&tampered, &t);
        prop_assert!(verify::<Value>(&tampered, "t+jwt", &key.verifying_key(), &Validation::at(1_500)).is_err());
    }

    /// Tampering that stays inside the token alphabet (base64url and the dots): the changed
    /// token is always well-formed text, and always refused.
    #[test]
    fn any_character_change_fails(s in "[a-z]{1,20}", pos in any::<prop::sample::Index>(), pick in any::<prop::sample::Index>()) {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        let key = countersign_protocol::generate_key();
        let t = sign(&claims(&s, 7), "t+jwt", &key).unwrap();
        let mut bytes = t.clone().into_bytes();
        let i = pos.index(bytes.len());
        let others: Vec<u8> = ALPHABET.iter().copied().filter(|c| *c != bytes[i]).collect();
        bytes[i] = others[pick.index(others.len())];
        let tampered = String::from_utf8(bytes).expect("the alphabet is ASCII");
        prop_assert!(verify::<Value>(&tampered, "t+jwt", &key.verifying_key(), &Validation::at(1_500)).is_err());
    }
}
