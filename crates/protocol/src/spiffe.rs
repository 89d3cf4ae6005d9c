//! SPIFFE IDs in their one canonical spelling.
//!
//! A workload identity names an agent: registered owners, rate limits and the self-approval check
//! hang on it. Two spellings of one identity (`…/agent` and `…/agent/`, `ACME.example`) or two
//! identities that look alike (`agent-1` and `agent-l`) would let one agent escape what is bound
//! to the other. The gateway registers only canonical IDs (the SPIFFE ID specification, section 2:
//! lower-case trust domain of `[a-z0-9.-_]`, path segments of `[a-zA-Z0-9.-_]`, none empty, `.` or
//! `..`, no trailing slash, no query, fragment, port or user info) and refuses one that looks like
//! a registered one.

/// The longest SPIFFE ID accepted (the specification's limit).
pub const MAX_LEN: usize = 2048;

/// Check that `id` is a canonical SPIFFE ID; the reason when it is not.
pub fn check_canonical(id: &str) -> Result<(), String> {
    if id.len() > MAX_LEN {
        return Err(format!("a SPIFFE ID has at most {MAX_LEN} bytes"));
    }
    let rest = id.strip_prefix("spiffe://").ok_or("a SPIFFE ID starts with spiffe:// (lower case)")?;
    let (domain, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if domain.is_empty() {
        return Err("the trust domain is empty".into());
    }
    if let Some(c) = domain.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_')) {
        return Err(format!("the trust domain may hold only a-z 0-9 . - _ (found {c:?})"));
    }
    if path.is_empty() {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err("the path has an empty segment or a trailing slash".into()),
            "." | ".." => return Err("the path may not hold . or .. segments".into()),
            s => {
                if let Some(c) =
                    s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                {
                    return Err(format!("path segments may hold only A-Z a-z 0-9 . - _ (found {c:?})"));
                }
            }
        }
    }
    Ok(())
}

/// Whether two SPIFFE IDs look alike (equal UTS #39 confusable skeletons, e.g. `agent-1` and
/// `agent-l`, `rn` and `m`) without being the same ID.
pub fn look_alike(a: &str, b: &str) -> bool {
    a != b && unicode_security::skeleton(a).eq(unicode_security::skeleton(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_pass_and_other_spellings_do_not() {
        for ok in
            ["spiffe://acme.example", "spiffe://acme.example/ns/prod/sa/agent", "spiffe://a-b_c.d/x.y-z_1"]
        {
            assert_eq!(check_canonical(ok), Ok(()), "{ok}");
        }
        for bad in [
            "spiffe://acme.example/ns/agent/",
            "spiffe://ACME.example/agent",
            "SPIFFE://acme.example/agent",
            "spiffe://acme.example//agent",
            "spiffe://acme.example/./agent",
            "spiffe://acme.example/../agent",
            "spiffe://acme.example:443/agent",
            "spiffe://user@acme.example/agent",
            "spiffe://acme.example/agent?x=1",
            "spiffe://acme.example/agent#x",
            "spiffe://acme.example/ag%65nt",
            "spiffe://acme.example/\u{0430}gent",
            "spiffe:///agent",
            "https://acme.example/agent",
        ] {
            assert!(check_canonical(bad).is_err(), "{bad} should be refused");
        }
        assert!(check_canonical(&format!("spiffe://a/{}", "x".repeat(MAX_LEN))).is_err());
    }

    #[test]
    fn look_alikes_are_found() {
        assert!(look_alike("spiffe://acme.example/agent-1", "spiffe://acme.example/agent-l"));
        assert!(look_alike("spiffe://acme.example/arn", "spiffe://acme.example/am"));
        assert!(!look_alike("spiffe://acme.example/agent", "spiffe://acme.example/agent"));
        assert!(!look_alike("spiffe://acme.example/agent", "spiffe://acme.example/other"));
    }
}
