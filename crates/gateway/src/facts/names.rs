//! Names: normal forms, the words of tool and operation names (with vocabulary words found inside
//! longer tokens), systems and production markers named in strings, look-alike checks, workloads.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization as _;

use super::{PolicyData, WorkloadFacts, READ_VOCABULARY};

/// Tokens that mark a string as production (see [`ActionFacts::production_marker`]).
const PRODUCTION_MARKERS: &[&str] = &["prod", "production", "live"];

/// Whether `s` has a production marker as a whole token.
pub(super) fn names_production(s: &str) -> bool {
    normal_name(s).split(|c: char| !c.is_alphanumeric()).any(|t| PRODUCTION_MARKERS.contains(&t))
}

/// Catalogued systems `s` names (see [`ActionFacts::named_systems`]); internal host labels are added
/// by the caller.
pub(super) fn named_in(s: &str, data: &PolicyData, out: &mut BTreeSet<String>) {
    let whole = normal_name(s);
    if data.systems.contains_key(&whole) {
        out.insert(whole.clone());
    }
    for token in whole.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')) {
        let compound = token.chars().any(|c| c == '-' || c == '_' || c.is_numeric());
        if compound && data.systems.contains_key(token) {
            out.insert(token.to_owned());
        }
    }
}

/// NFKC, trimmed, lower case: the form names are looked up in.
pub fn normal_name(s: &str) -> String {
    s.nfkc().collect::<String>().trim().to_lowercase()
}

/// Catalogued systems whose compact name is contained in `name`'s (`hr-db.prod` → `hr-db`).
pub(super) fn resembled(name: &str, data: &PolicyData) -> Vec<String> {
    let compact = compact(name);
    data.systems.keys().filter(|k| compact.contains(&self::compact(k))).cloned().collect()
}

/// Letters and digits only, of the normal form.
pub(super) fn compact(s: &str) -> String {
    normal_name(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Only ASCII letters, digits and `. _ - / :`.
pub(super) fn plain_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
}

pub(super) fn workload_facts(workload: &str) -> WorkloadFacts {
    let parsed = url::Url::parse(workload).ok().filter(|u| {
        u.scheme() == "spiffe"
            && workload.starts_with("spiffe://")
            && u.username().is_empty()
            && u.password().is_none()
            && u.port().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    let trust_domain = parsed.and_then(|u| u.host_str().map(str::to_lowercase)).filter(|h| !h.is_empty());
    WorkloadFacts { spiffe: trust_domain.is_some(), trust_domain }
}

/// The words of a tool or operation name.
pub fn name_words(name: &str) -> BTreeSet<String> {
    let normal: String = name.nfkc().collect();
    let mut words = BTreeSet::new();
    for token in normal.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        words.insert(token.to_lowercase());
        // camelCase, PascalCase, acronyms (HTTPPost) and letter/digit boundaries.
        let chars: Vec<char> = token.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (p, c) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary = (p.is_lowercase() && c.is_uppercase())
                || (p.is_uppercase() && c.is_uppercase() && next_lower)
                || (p.is_alphabetic() && c.is_numeric())
                || (p.is_numeric() && c.is_alphabetic());
            if boundary {
                words.insert(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        if start > 0 {
            words.insert(chars[start..].iter().collect::<String>().to_lowercase());
        }
    }
    words
}

/// Risk-vocabulary words inside longer tokens (not read words; three-letter words only at an edge).
/// A token that is itself a vocabulary word (`payments`) is not searched (it would find `pay`).
pub(super) fn vocabulary_parts(words: &BTreeSet<String>, data: &PolicyData) -> BTreeSet<String> {
    let words: BTreeSet<&String> =
        words.iter().filter(|w| !data.vocabulary.values().any(|list| list.contains(*w))).collect();
    let mut parts = BTreeSet::new();
    for (list, vocabulary) in &data.vocabulary {
        if list == READ_VOCABULARY {
            continue;
        }
        for v in vocabulary {
            let n = v.chars().count();
            if n < 3 {
                continue;
            }
            let found = words.iter().any(|w| {
                w.chars().count() > n
                    && if n == 3 {
                        w.starts_with(v.as_str()) || w.ends_with(v.as_str())
                    } else {
                        w.contains(v.as_str())
                    }
            });
            if found {
                parts.insert(v.clone());
            }
        }
    }
    parts
}
