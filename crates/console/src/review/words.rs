//! History rows and enforcement-point answers in words, for the CLI and the app.

use serde_json::Value;

use crate::history::HistoryDetail;

/// An enforcement point's answer to a decision (its JSON body, as stored) in words.
pub fn answer_text(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => answer_words(&v),
        Err(_) => cut(raw),
    }
}

/// An enforcement point's answer (its JSON body) in words.
pub fn answer_words(v: &Value) -> String {
    let counts = v["approvals"].as_u64().zip(v["approvals_required"].as_u64());
    match (v["state"].as_str(), v["message"].as_str(), counts) {
        (Some("pending"), _, Some((n, of))) => {
            format!("still pending at the enforcement point: {n} of {of} approvals")
        }
        (Some(state), _, Some((n, of))) if of > 1 => {
            format!("the enforcement point reports it {state} ({n} of {of} approvals)")
        }
        (Some(state), ..) => format!("the enforcement point reports it {state}"),
        (None, Some(message), _) => format!("the enforcement point refused it: {message}"),
        _ => cut(&v.to_string()),
    }
}

/// At most 200 characters of something odd, rather than all of it.
fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

/// One history row in words, for the CLI and the app: what happened, beside the columns (time,
/// kind, tier, class, workload) that say the rest.
pub fn row_summary(detail: &HistoryDetail) -> String {
    let fp = |k: &str| countersign_protocol::jwk::fingerprint(k);
    match detail {
        HistoryDetail::RequestReceived(r) => {
            let what = if r.statement.is_empty() { &r.purpose } else { &r.statement };
            format!("{what} — {}", r.target)
        }
        HistoryDetail::RequestRejected(r) => r.reason.clone(),
        HistoryDetail::DecisionSigned(d) if d.reason.is_empty() => verdict_word(d.verdict).to_string(),
        HistoryDetail::DecisionSigned(d) => format!("{}: {}", verdict_word(d.verdict), d.reason),
        HistoryDetail::Delivered(d) | HistoryDetail::DeliveryRefused(d) => {
            format!("HTTP {} — {}", d.status, answer_words(&d.answer))
        }
        HistoryDetail::Resolved(r) => format!("→ {}", r.state.as_str()),
        HistoryDetail::KeyCreated(k) | HistoryDetail::KeyRotated(k) => {
            let retired: Vec<String> = k.retired.iter().map(|r| fp(r)).collect();
            match retired.is_empty() {
                true => format!("key {}", fp(&k.kid)),
                false => format!("key {}, replacing {}", fp(&k.kid), retired.join(", ")),
            }
        }
        // Shown as stored, as before a summary was written for it.
        HistoryDetail::KeyRotationSent(_) => cut(&detail.to_text().unwrap_or_default()),
        HistoryDetail::Checkpoint(c) => format!("rows 1–{} signed by key {}", c.upto, fp(&c.kid)),
        HistoryDetail::Reanchored(r) => {
            let mut text = format!(
                "{} rows accepted as the history; the keyring's anchor was at row {}",
                r.rows, r.previous_anchor.seq
            );
            if let Some(from) = r.missing_from {
                text.push_str(&format!(" (rows from {from} on are gone)"));
            }
            if let Some(at) = r.diverged_at {
                text.push_str(&format!(" (the history differs from row {at} on)"));
            }
            text
        }
        // Not its raw detail: a row of a known kind that failed to parse may hold a signed token
        // (which carries a binding code). `history export` has the stored text.
        HistoryDetail::Unreadable { .. } => {
            "(a row this version cannot read; `history export` has it)".into()
        }
    }
}

/// A verdict as the history shows it.
fn verdict_word(v: countersign_protocol::Verdict) -> &'static str {
    match v {
        countersign_protocol::Verdict::Approve => "approve",
        countersign_protocol::Verdict::Deny => "deny",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_read_as_words() {
        use super::answer_text;
        let one = r#"{"approvals":1,"approvals_required":1,"id":"x","state":"approved"}"#;
        assert_eq!(answer_text(one), "the enforcement point reports it approved");
        let quorum = r#"{"approvals":2,"approvals_required":2,"id":"x","state":"approved"}"#;
        assert_eq!(answer_text(quorum), "the enforcement point reports it approved (2 of 2 approvals)");
        let waiting = r#"{"approvals":1,"approvals_required":2,"id":"x","state":"pending"}"#;
        assert_eq!(answer_text(waiting), "still pending at the enforcement point: 1 of 2 approvals");
        let refused = r#"{"error":"conflict","message":"already decided"}"#;
        assert_eq!(answer_text(refused), "the enforcement point refused it: already decided");
        assert_eq!(answer_text("<html>bad gateway</html>"), "<html>bad gateway</html>");
        assert_eq!(answer_text(&"x".repeat(500)).len(), 200, "an odd answer is cut, not dumped");
    }

    #[test]
    fn history_rows_read_as_words() {
        use serde_json::json;
        // Stored rows as earlier versions wrote them, read typed.
        let summary = |kind: &str, detail: serde_json::Value| {
            super::row_summary(&crate::history::HistoryDetail::parse(kind, &detail.to_string()))
        };
        let kid = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
        let jwk = countersign_protocol::Jwk::from_key(&countersign_protocol::generate_key().verifying_key());
        let received = json!({"statement": "Export leads", "purpose": "crm.export", "target": "crm/production",
            "jwt": "j", "digest": "d", "workload": "spiffe://w", "class": "internal", "tier": "high"});
        assert_eq!(summary("request received", received), "Export leads — crm/production");
        let signed = |verdict: &str, reason: &str| json!({"jti": "d1", "verdict": verdict, "reason": reason, "kid": kid, "digest": "d", "token": "t"});
        assert_eq!(summary("decision signed", signed("approve", "")), "approve");
        assert_eq!(summary("decision signed", signed("deny", "no")), "deny: no");
        let delivered = json!({"status": 200, "jti": "j", "answer": {"state": "approved", "approvals": 1, "approvals_required": 1}});
        assert_eq!(summary("delivered", delivered), "HTTP 200 — the enforcement point reports it approved");
        assert_eq!(
            summary("key created", json!({"kid": kid, "jwk": jwk, "retired": []})),
            "key kPrK _qmx VWaY VA9w wBF6 Iuo3"
        );
        let rotated = json!({"kid": "AAAABBBB", "jwk": jwk, "retired": [kid]});
        assert_eq!(summary("key rotated", rotated), "key AAAA BBBB, replacing kPrK _qmx VWaY VA9w wBF6 Iuo3");
        let cp = json!({"upto": 99, "head": "h", "kid": kid, "sig": "s"});
        assert_eq!(summary("checkpoint", cp), "rows 1–99 signed by key kPrK _qmx VWaY VA9w wBF6 Iuo3");
        let re = json!({"previous_anchor": {"seq": 40, "hash": "h"}, "rows": 12, "missing_from": 13});
        assert_eq!(
            summary("history re-anchored", re),
            "12 rows accepted as the history; the keyring's anchor was at row 40 (rows from 13 on are gone)"
        );
        assert_eq!(summary("resolved", json!({"state": "withdrawn"})), "→ withdrawn");
        let sent = json!({"old_kid": null, "new_kid": kid, "outcome": {"result": "accepted"}});
        assert_eq!(summary("key rotation sent", sent.clone()), sent.to_string());
        // An unreadable row is not dumped: a known kind that failed to parse may hold a signed token.
        let token = json!({"verdict": "approve", "jwt": "eyJ.binding_code.sig"});
        for (kind, detail) in [("something new", json!({"a": 1})), ("decision signed", token)] {
            assert_eq!(summary(kind, detail), "(a row this version cannot read; `history export` has it)");
        }
    }
}
