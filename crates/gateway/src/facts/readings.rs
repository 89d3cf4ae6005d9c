//! Readings: every string an action carries, and the other ways a system could read each one
//! (NFKC, percent-decoded, the JSON inside it), with whether it sits under a key naming SQL.

use std::collections::BTreeSet;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization as _;

use super::normal_name;
use super::sql::sql_key;

/// Role values and the `external` flag, under keys of any case at any depth.
pub(super) fn keyed_facts(key: &str, value: &Value, roles: &mut BTreeSet<String>, external: &mut bool) {
    let key = normal_name(key);
    let role_key =
        ["role", "roles", "permission", "permissions", "group", "groups", "privilege", "privileges"]
            .contains(&key.as_str())
            || key.ends_with("role")
            || key.ends_with("roles");
    match value {
        Value::String(s) if role_key => {
            roles.insert(normal_name(s));
        }
        Value::Bool(true) if key == "external" => *external = true,
        Value::Array(items) => items.iter().for_each(|v| keyed_facts(&key, v, roles, external)),
        Value::Object(map) => map.iter().for_each(|(k, v)| keyed_facts(k, v, roles, external)),
        _ => {}
    }
}

/// Every string in a JSON value: values and object keys, at any depth.
pub(super) fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k);
                collect_strings(v, out);
            }
        }
        _ => {}
    }
}

/// Other ways a system could read a string, each scanned like the string itself (extra readings can
/// only add hosts, SQL or names): its NFKC form (`ｈｔｔｐｓ：／／…`), its percent-decoded form
/// (`https%3A%2F%2F…`), and when it is a JSON object or array, the keys and strings inside it (with
/// whether each sits under a SQL key).
pub(super) fn other_readings(s: &str, under_sql_key: bool) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let nfkc: String = s.nfkc().collect();
    if nfkc != s {
        out.push((nfkc, under_sql_key));
    }
    if s.contains('%') {
        let decoded = percent_decoded(s);
        if decoded != s {
            out.push((decoded, under_sql_key));
        }
    }
    let trimmed = s.trim_start();
    if trimmed.starts_with(['{', '[']) {
        if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
            json_readings(&value, under_sql_key, &mut out);
        }
    }
    out
}

/// The keys and strings inside a JSON value, with whether each is under a SQL key.
fn json_readings(value: &Value, under: bool, out: &mut Vec<(String, bool)>) {
    match value {
        Value::String(s) => out.push((s.clone(), under)),
        Value::Array(items) => items.iter().for_each(|v| json_readings(v, under, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push((k.clone(), false));
                json_readings(v, under || sql_key(k), out);
            }
        }
        _ => {}
    }
}

/// `%XX` escapes decoded (invalid UTF-8 replaced), everything else kept.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The strings under a key that names SQL (`sql_key`), at any depth.
pub(super) fn collect_sql_keyed<'a>(key: &str, value: &'a Value, under: bool, out: &mut BTreeSet<&'a str>) {
    let under = under || sql_key(key);
    match value {
        Value::String(s) if under => {
            out.insert(s.as_str());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_sql_keyed(key, v, under, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_sql_keyed(k, v, under, out)),
        _ => {}
    }
}
