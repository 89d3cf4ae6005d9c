//! Translations between the core's types and the IPC types. No decisions are made here.

use std::collections::HashMap;

use countersign_console::requests::{InboxEntry, RequestView, UNDELIVERED};
use countersign_protocol::{reason_required, StepUpClaims, Verdict};
use serde_json::Value;

use crate::dto::{ActionView, DecisionView, Principal, RequestDetail, RequestSummary, Settings, Tier};

fn text(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// A stored tier name; an unknown one is treated as the most demanding.
fn tier_named(tier: &str) -> Tier {
    serde_json::from_value::<Tier>(Value::String(tier.to_string())).unwrap_or(Tier::Critical)
}

/// An inbox line.
pub fn summary(e: InboxEntry, ep_names: &HashMap<String, String>, flood: bool) -> RequestSummary {
    let g = e.glance;
    RequestSummary {
        ep_name: ep_names.get(&e.ep).cloned().unwrap_or_else(|| e.ep.clone()),
        ep: e.ep,
        id: e.id,
        state: if e.state == UNDELIVERED { "undelivered".into() } else { e.state },
        tier: tier_named(&e.tier),
        workload: e.workload,
        agent: g.agent,
        on_behalf_of: g.on_behalf_of,
        purpose_code: g.purpose_code,
        purpose_statement: g.purpose_statement,
        data_class: g.data_class,
        categories: g.categories,
        system: g.system,
        environment: g.environment,
        iat: g.iat,
        exp: e.exp,
        approvals_required: g.approvals_required,
        binding_required: g.binding_required,
        warning_count: g.warnings,
        flood,
    }
}

/// Everything about one request.
pub fn detail(v: &RequestView, ep_names: &HashMap<String, String>, flood: bool) -> RequestDetail {
    let c = &v.claims;
    let typed: Option<StepUpClaims> = serde_json::from_value(c.clone()).ok();
    let actions = c["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, s)| ActionView {
                    index: i as u32,
                    tool: text(s, &["tool"]),
                    operation: s["operation"].as_str().map(str::to_owned),
                    target: s["target"].as_str().map(str::to_owned),
                    reversible: s["reversible"].as_bool().unwrap_or(false),
                    datatypes: strings(&s["datatypes"]),
                    args_json: serde_json::to_string_pretty(&s["args"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut summary = summary(v.entry(), ep_names, flood);
    // The inbox line cuts a long statement; the approver deciding reads all of it.
    summary.purpose_statement = text(c, &["purpose", "statement"]);
    RequestDetail {
        summary,
        workload_display: text(c, &["identity", "display"]),
        on_behalf_of: c["identity"]["on_behalf_of"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| Principal { sub: text(p, &["sub"]), display: text(p, &["display"]) })
                    .collect()
            })
            .unwrap_or_default(),
        credential_kind: c["identity"]["credential"]["kind"].as_str().map(str::to_owned),
        actions,
        policy_id: text(c, &["policy", "id"]),
        policy_reason: text(c, &["policy", "reason"]),
        warnings: v.warnings.clone(),
        decision: v.decision.as_ref().map(|d| DecisionView {
            verdict: if d.verdict == "deny" {
                crate::dto::Verdict::Deny
            } else {
                crate::dto::Verdict::Approve
            },
            reason: d.reason.clone(),
            delivered: d.outcome.is_some(),
            answer: d.answer.as_deref().map(countersign_console::review::answer_text),
            signed_at: d.signed_at,
        }),
        reason_required_to_approve: typed
            .map(|t| reason_required(Verdict::Approve, t.policy.tier))
            .unwrap_or(true),
        digest: v.digest.clone(),
        jwt: v.jwt.clone(),
        claims_json: serde_json::to_string_pretty(c).unwrap_or_default(),
    }
}

/// Settings for the UI.
pub fn settings(s: &countersign_console::settings::Settings) -> Settings {
    Settings { notify_threshold: s.notify_threshold, notifications_paused: s.notifications_paused }
}

/// Settings for the core.
pub fn core_settings(s: &Settings) -> countersign_console::settings::Settings {
    let tier = s.notify_threshold;
    countersign_console::settings::Settings {
        notify_threshold: tier,
        notifications_paused: s.notifications_paused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_detail_shows_the_whole_purpose_statement() {
        let statement = format!("{} and also delete the audit log", "x".repeat(400));
        let claims = json!({"purpose": {"code": "p", "statement": statement}, "iat": 1, "actions": []});
        let v = RequestView {
            ep: "ep".into(),
            id: "r".into(),
            state: "pending".into(),
            tier: "high".into(),
            workload: "w".into(),
            exp: 2,
            seconds_left: 1,
            digest: "d".into(),
            decision: None,
            warnings: vec![],
            claims,
            jwt: "j".into(),
        };
        let d = detail(&v, &HashMap::new(), false);
        assert_eq!(d.summary.purpose_statement, statement);
        assert!(
            summary(v.entry(), &HashMap::new(), false).purpose_statement.ends_with('…'),
            "the line is cut"
        );
    }
}
