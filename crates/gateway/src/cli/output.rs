//! What the command line prints: one function per kind of line, so the wording lives in one place.

use std::net::SocketAddr;

use countersign_gateway::policy::CaseResult;
use countersign_gateway::store::Approver;
use countersign_protocol::Jwk;

/// The line a started gateway prints (tests and scripts read the address from it).
pub fn listening(ep: &str, scheme: &str, addr: SocketAddr) {
    println!("countersign-gateway {ep} listening on {scheme}://{addr}");
}

/// The gateway's identity: ep id, key id, fingerprint and public JWK.
pub fn identity(jwk: &Jwk) -> anyhow::Result<()> {
    let kid = jwk.thumbprint();
    println!("ep:  ep-{}", &kid[..16]);
    println!("kid: {kid}");
    println!("fingerprint: {}", countersign_protocol::jwk::fingerprint(&kid));
    println!("{}", serde_json::to_string(jwk)?);
    Ok(())
}

/// An enrolment, with the key it retired.
pub fn enrolled(kid: &str, replaced: Option<&str>) {
    match replaced {
        Some(old) => println!("enrolled approver {kid} (retired {old})"),
        None => println!("enrolled approver {kid}"),
    }
}

/// One approver key of `approvers list`.
pub fn approver(a: &Approver) {
    let state = match (&a.retired_why, &a.replaced_by) {
        (None, _) => String::new(),
        (Some(why), Some(by)) => format!("  [{why}, now {by}]"),
        (Some(why), None) => format!("  [{why}]"),
    };
    println!("{}  {}  <{}>{state}", a.kid, a.name, a.principal_key);
}

/// One workload of `agents list`.
pub fn agent(workload: &str, tokens: i64) {
    println!("{workload}  ({tokens} token{})", if tokens == 1 { "" } else { "s" });
}

/// A plain line: a token shown once, or what a command did.
pub fn line(text: &str) {
    println!("{text}");
}

/// A value as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The results of `policy test`, one line per case and a summary; the number failed.
pub fn case_results(results: &[CaseResult]) -> usize {
    let failed = results.iter().filter(|r| !r.passed).count();
    for r in results {
        println!("{} {}: {}", if r.passed { "ok  " } else { "FAIL" }, r.name, r.detail);
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    failed
}
