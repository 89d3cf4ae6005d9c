//! Principals compared as people, not as strings.
//!
//! Quorum counts distinct principals and self-approval compares an approver with the people an
//! agent acts for; both must see through spelling. [`normalize`] gives the form principals are
//! stored and compared in (NFKC, trimmed, Unicode case-folded, NFKC again so folding cannot
//! un-normalize); [`skeleton`] is the UTS #39 confusable skeleton of that form, so `аlice` with a
//! Cyrillic `а` and `alice` compare equal. Neither is meant for display.

use unicode_normalization::UnicodeNormalization as _;

/// The normalized form of a principal: NFKC, trimmed (Unicode white space, including no-break
/// spaces), case-folded, then NFKC again; invisible format characters (Default_Ignorable code
/// points such as zero-width spaces and joiners) are dropped.
pub fn normalize(principal: &str) -> String {
    let nfkc: String = principal.nfkc().collect();
    let folded = caseless::default_case_fold_str(nfkc.trim());
    let cleaned: String = folded.chars().filter(|c| !is_ignorable(*c)).collect();
    cleaned.nfkc().collect::<String>().trim().to_owned()
}

/// The UTS #39 confusable skeleton of the normalized principal, with combining marks removed
/// (a dotted `İ` or an `é` built from `e` + U+0301 reads as the plain letter at a glance, and
/// comparing more strictly only ever refuses more).
pub fn skeleton(principal: &str) -> String {
    let skeleton: String = unicode_security::skeleton(&normalize(principal)).collect();
    skeleton.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).collect()
}

/// Whether two principals name the same person as far as a reader can tell: equal normalized
/// forms, or equal confusable skeletons.
pub fn same_principal(a: &str, b: &str) -> bool {
    let (na, nb) = (normalize(a), normalize(b));
    !na.is_empty() && (na == nb || skeleton(&na) == skeleton(&nb))
}

/// Check a principal given at enrolment: an e-mail-like identifier with no control, format or
/// white-space characters inside it once normalized. Returns the normalized form.
pub fn validate(principal: &str) -> Result<String, String> {
    let n = normalize(principal);
    if n.is_empty() {
        return Err("the principal is empty".into());
    }
    if n.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the principal contains white space or control characters".into());
    }
    match n.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => Ok(n),
        _ => Err("the principal must be an e-mail address (name@domain)".into()),
    }
}

/// Default_Ignorable code points that survive NFKC and render as nothing.
fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
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
            "\u{0430}lice@acme.example",  // Cyrillic а
            "alice@acme.exa\u{200B}mple", // zero-width space
            "ａｌｉｃｅ@acme.example",    // fullwidth
            "al\u{0131}ce@acme.example",  // dotless i
            "alice@acme.example\u{FE0F}", // variation selector
            "ALİCE@ACME.EXAMPLE",         // dotted capital I
            "ali\u{0301}ce@acme.example", // combining acute accent
        ] {
            assert!(same_principal(plain, variant), "{variant:?} should be alice");
        }
    }

    #[test]
    fn different_people_stay_different() {
        assert!(!same_principal("alice@acme.example", "alicia@acme.example"));
        assert!(!same_principal("alice@acme.example", "alice@acme.example.org"));
        assert!(!same_principal("", ""));
    }

    #[test]
    fn enrolment_refuses_what_is_not_an_address() {
        assert_eq!(validate(" Alice@Acme.Example ").unwrap(), "alice@acme.example");
        for bad in ["", "   ", "alice", "@acme.example", "alice@", "al ice@acme.example", "a@b@c", "a\u{1}@b"]
        {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
