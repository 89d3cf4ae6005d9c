//! Principals compared as people, not as strings.
//!
//! Quorum counts distinct principals and self-approval compares an approver with the people an
//! agent acts for; both must see through spelling. [`normalize`] gives the form principals are
//! stored and compared in; [`skeleton`] is the UTS #39 confusable skeleton of that form, so
//! `аlice` with a Cyrillic `а` and `alice` compare equal. Neither is meant for display.
//!
//! A principal is an e-mail address. Its normal form is NFKC, Unicode case-folded, with every
//! invisible or blank-rendering character removed; in the address, comments `(…)` and quotes are
//! dropped, a sub-address (`alice+agent@`) counts as its mailbox (`alice@`: the same person reads
//! both), and the domain is in IDNA ASCII form without a trailing dot (`bücher.example`,
//! `xn--bcher-kva.example` and `bücher.example.` are one domain). Comparing more strictly only
//! ever refuses more: a second key for someone who merely looks like an enrolled person, or an
//! approval by someone who merely looks like the person an agent acts for.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::UnicodeNormalization as _;

/// The normalized form of a principal (see the module documentation).
pub fn normalize(principal: &str) -> String {
    let nfkc: String = principal.nfkc().collect();
    let folded = caseless::default_case_fold_str(&nfkc);
    let visible: String = folded.chars().filter(|c| !is_invisible(*c)).collect();
    let visible: String = visible.nfkc().collect();
    canonical_address(&visible)
}

/// The UTS #39 confusable skeleton of the normalized principal, with combining marks removed
/// and dot look-alikes read as dots (a dotted `İ`, an `é` built from `e` + U+0301 or an
/// `acme‧example` read as the plain forms at a glance).
pub fn skeleton(principal: &str) -> String {
    // Compare what a reader sees: the domain in Unicode (punycode hides look-alikes).
    let n = normalize(principal);
    let shown = match n.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", idna::domain_to_unicode(domain).0),
        None => n,
    };
    let dotted: String = shown.chars().map(|c| if is_dot_like(c) { '.' } else { c }).collect();
    let skeleton: String = unicode_security::skeleton(&dotted).collect();
    skeleton
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| if is_dot_like(c) { '.' } else { c })
        .collect()
}

/// Whether two principals name the same person as far as a reader can tell: equal normalized
/// forms, or equal confusable skeletons.
pub fn same_principal(a: &str, b: &str) -> bool {
    let (na, nb) = (normalize(a), normalize(b));
    !na.is_empty() && (na == nb || skeleton(&na) == skeleton(&nb))
}

/// Check a principal given at enrolment or as an agent's owner: a plain e-mail address —
/// `local@domain`, no white space, control, invisible, quote, comment or bracket characters, and
/// a domain IDNA accepts. Returns the normalized form.
pub fn validate(principal: &str) -> Result<String, String> {
    let raw: String = principal.nfkc().collect::<String>().trim().to_owned();
    if raw.is_empty() {
        return Err("the principal is empty".into());
    }
    if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control() || is_invisible(*c)) {
        return Err(format!("the principal contains the invisible or blank character U+{:04X}", c as u32));
    }
    if let Some(c) = raw.chars().find(|c| "\"()<>[]\\,;:".contains(*c)) {
        return Err(format!("the principal contains {c:?}: give a plain address (name@domain)"));
    }
    let (local, domain) = match raw.split_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') => (l, d),
        _ => return Err("the principal must be an e-mail address (name@domain)".into()),
    };
    if local.starts_with('+') {
        return Err("the principal's mailbox is empty before the '+'".into());
    }
    if let Some(c) = domain.chars().find(|c| is_dot_like(*c) && *c != '.') {
        return Err(format!("the principal's domain contains U+{:04X}, which reads as a dot", c as u32));
    }
    idna::domain_to_ascii(domain.trim_end_matches('.'))
        .map_err(|_| format!("the principal's domain {domain:?} is not a valid domain name"))?;
    Ok(normalize(&raw))
}

/// The address with comments and quotes removed, the sub-address dropped and the domain in IDNA
/// ASCII form without a trailing dot. Text without an `@` is returned as it is.
fn canonical_address(s: &str) -> String {
    let mut plain = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '"' => {}
            _ => plain.push(c),
        }
    }
    let Some((local, domain)) = plain.rsplit_once('@') else {
        return plain;
    };
    let mailbox = local.split('+').next().unwrap_or_default();
    let domain: String = domain
        .chars()
        .map(|c| if matches!(c, '\u{3002}' | '\u{FF0E}' | '\u{FF61}') { '.' } else { c })
        .collect();
    let domain = domain.trim_end_matches('.');
    let domain = idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_owned());
    format!("{mailbox}@{}", domain.trim_end_matches('.'))
}

/// Characters that render as nothing or as blank space: white space, controls, format
/// characters, Default_Ignorable code points, and blank look-alikes no property covers (the
/// Braille blank, Hangul fillers, musical-notation spacers).
fn is_invisible(c: char) -> bool {
    if c.is_whitespace() || c.is_control() {
        return true;
    }
    let cp = c as u32;
    if matches!(CodePointMapData::<GeneralCategory>::new().get32(cp), GeneralCategory::Format)
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains32(cp)
    {
        return true;
    }
    matches!(
        c,
        '\u{2800}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{1D159}'
            | '\u{1D15A}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{034F}' | '\u{180E}'
    )
}

/// Characters a reader takes for a full stop.
fn is_dot_like(c: char) -> bool {
    matches!(
        c,
        '.' | '\u{00B7}'
            | '\u{0387}'
            | '\u{06D4}'
            | '\u{0701}'
            | '\u{0702}'
            | '\u{2024}'
            | '\u{2027}'
            | '\u{2E31}'
            | '\u{2E33}'
            | '\u{3002}'
            | '\u{30FB}'
            | '\u{A4F8}'
            | '\u{FF0E}'
            | '\u{FF61}'
            | '\u{FF65}'
            | '\u{2219}'
            | '\u{22C5}'
            | '\u{16EB}'
            | '\u{1364}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_person_are_the_same_principal() {
        let plain = "alice@acme.example";
        for variant in [
            "alice@acme.example ",
            "\u{00A0}alice@acme.example",
            "ALICE@ACME.EXAMPLE",
            "Alice@Acme.Example\t",
            "\u{0430}lice@acme.example",   // Cyrillic а
            "alice@acme.exa\u{200B}mple",  // zero-width space
            "ａｌｉｃｅ@acme.example",     // fullwidth
            "al\u{0131}ce@acme.example",   // dotless i
            "alice@acme.example\u{FE0F}",  // variation selector
            "ALİCE@ACME.EXAMPLE",          // dotted capital I
            "ali\u{0301}ce@acme.example",  // combining acute accent
            "alice@acme.example\u{2800}",  // Braille blank
            "alice\u{2800}@acme.example",  // Braille blank inside
            "alice@acme.example\u{1D159}", // musical null notehead
            "alice@acme.example.",         // trailing dot
            "alice@acme\u{3002}example",   // ideographic full stop
            "alice@acme\u{2027}example",   // hyphenation point
            "alice@acme\u{00B7}example",   // middle dot
            "alice+agent@acme.example",    // sub-address
            "\"alice\"@acme.example",      // quoted local part
            "alice(comment)@acme.example", // comment
            "alice@acme.example\u{3164}",  // Hangul filler
        ] {
            assert!(same_principal(plain, variant), "{variant:?} should be alice");
        }
        assert!(same_principal("alice@bücher.example", "alice@xn--bcher-kva.example"), "IDNA forms");
    }

    #[test]
    fn different_people_stay_different() {
        assert!(!same_principal("alice@acme.example", "alicia@acme.example"));
        assert!(!same_principal("alice@acme.example", "alice@acme.example.org"));
        assert!(!same_principal("alice@acme.example", "bob@acme.example"));
        assert!(!same_principal("", ""));
    }

    #[test]
    fn enrolment_refuses_what_is_not_a_plain_address() {
        assert_eq!(validate(" Alice@Acme.Example ").unwrap(), "alice@acme.example");
        assert_eq!(validate("alice+ops@acme.example").unwrap(), "alice@acme.example", "one mailbox");
        assert_eq!(validate("alice@Bücher.example").unwrap(), "alice@xn--bcher-kva.example");
        for bad in [
            "",
            "   ",
            "alice",
            "@acme.example",
            "alice@",
            "al ice@acme.example",
            "a@b@c",
            "a\u{1}@b",
            "alice\u{2800}@acme.example",
            "alice@acme.example\u{200B}",
            "\"alice\"@acme.example",
            "alice(x)@acme.example",
            "<alice@acme.example>",
            "+x@acme.example",
            "alice@acme\u{2027}example",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
