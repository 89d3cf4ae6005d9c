//! Verified step-up requests: ingestion (verify against the pinned key, then persist), resolution
//! updates from the enforcement point, and the views the front ends show.

use countersign_protocol::{self as protocol, ProtocolError, StepUpClaims, Validation, TYP_STEP_UP};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::ep::Ep;
use crate::profile::hex;
use crate::{display, history, now, Console, ConsoleError, Result};

/// What became of a token offered by an enforcement point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Verified and stored now.
    New(String),
    /// Already stored.
    Known,
    /// Verified but already expired: not stored, not shown.
    Expired,
    /// Failed verification: recorded in the history, never stored as a request.
    Rejected(String),
}

/// The terminal states an enforcement point reports.
pub const TERMINAL: [&str; 4] = ["approved", "denied", "expired", "withdrawn"];

/// A stored request as a front end shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// Enforcement point id.
    pub ep: String,
    /// Request id.
    pub id: String,
    /// What the user sees: pending, approved, denied, expired, withdrawn, or "decided, not delivered".
    pub state: String,
    /// Tier set by the enforcement point's policy.
    pub tier: String,
    /// Workload identity.
    pub workload: String,
    /// Expiry (seconds since epoch).
    pub exp: i64,
    /// Seconds left before expiry (0 when expired).
    pub seconds_left: i64,
    /// Request digest (what a decision is bound to).
    pub digest: String,
    /// This approver's latest decision, if any: (verdict, outcome).
    pub decision: Option<DecisionSummary>,
    /// Warnings about the request's text (hidden characters).
    pub warnings: Vec<String>,
    /// The verified claims, exactly as signed.
    pub claims: Value,
    /// The original signed token.
    pub jwt: String,
}

/// What an inbox line shows of a request: computed from the verified claims once, when the request
/// is stored, so that listing a large inbox parses no claims and walks no strings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Glance {
    /// The agent's display name.
    pub agent: String,
    /// Display names (or subjects) of those it acts for, outermost first.
    pub on_behalf_of: Vec<String>,
    /// Purpose code.
    pub purpose_code: String,
    /// The purpose statement, cut to [`Glance::STATEMENT_CHARS`] characters (the request has it whole).
    pub purpose_statement: String,
    /// Data class the policy judged by.
    pub data_class: String,
    /// Declared data categories.
    pub categories: Vec<String>,
    /// Target system.
    pub system: String,
    /// Target environment.
    pub environment: String,
    /// Issued at (seconds since epoch).
    pub iat: i64,
    /// Distinct approvals the policy requires.
    pub approvals_required: u32,
    /// Whether the critical-tier binding code is required.
    pub binding_required: bool,
    /// How many display-safety warnings the request's text raises.
    pub warnings: u32,
}

impl Glance {
    /// Longest purpose statement kept for a list line.
    pub const STATEMENT_CHARS: usize = 280;

    /// The glance of verified claims.
    pub fn of(c: &Value) -> Glance {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect()
        };
        let statement = text(&c["purpose"]["statement"]);
        let purpose_statement = match statement.char_indices().nth(Self::STATEMENT_CHARS) {
            Some((cut, _)) => format!("{}…", &statement[..cut]),
            None => statement,
        };
        Glance {
            agent: text(&c["identity"]["display"]),
            on_behalf_of: c["identity"]["on_behalf_of"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["display"].as_str().or(p["sub"].as_str()).unwrap_or_default().to_string())
                .collect(),
            purpose_code: text(&c["purpose"]["code"]),
            purpose_statement,
            data_class: text(&c["data"]["class"]),
            categories: strings(&c["data"]["categories"]),
            system: text(&c["target"]["system"]),
            environment: text(&c["target"]["environment"]),
            iat: c["iat"].as_i64().unwrap_or_default(),
            approvals_required: c["policy"]["approvals_required"].as_u64().unwrap_or(1) as u32,
            binding_required: c["binding"]["required"].as_bool().unwrap_or(false),
            warnings: warnings(c).len() as u32,
        }
    }
}

/// A line of the inbox: a pending request as stored, without its claims or token.
#[derive(Debug, Clone, Serialize)]
pub struct InboxEntry {
    /// Enforcement point id.
    pub ep: String,
    /// Request id.
    pub id: String,
    /// As in [`RequestView::state`]; in the inbox, pending or [`UNDELIVERED`].
    pub state: String,
    /// Tier set by the enforcement point's policy.
    pub tier: String,
    /// Workload identity.
    pub workload: String,
    /// Expiry (seconds since epoch).
    pub exp: i64,
    /// What the line shows.
    pub glance: Glance,
}

/// A page of the inbox with the counts of the whole inbox.
#[derive(Debug, Clone, Serialize)]
pub struct InboxPage {
    /// The lines asked for, most urgent first.
    pub entries: Vec<InboxEntry>,
    /// Lines in the whole inbox.
    pub total: u32,
    /// Of those, the ones awaiting this approver's decision (not decided here).
    pub pending: u32,
    /// The soonest expiry in the whole inbox: when it passes, the inbox changes.
    pub next_expiry: Option<i64>,
}

/// The state of a request decided here whose decision the enforcement point has not answered yet.
pub const UNDELIVERED: &str = "decided, not delivered";

impl RequestView {
    /// This request as an inbox line.
    pub fn entry(&self) -> InboxEntry {
        InboxEntry {
            ep: self.ep.clone(),
            id: self.id.clone(),
            state: self.state.clone(),
            tier: self.tier.clone(),
            workload: self.workload.clone(),
            exp: self.exp,
            glance: Glance::of(&self.claims),
        }
    }
}

#[derive(sqlx::FromRow)]
struct InboxRow {
    ep: String,
    id: String,
    undelivered: bool,
    tier: String,
    workload: String,
    exp: i64,
    glance: Option<String>,
    claims: Option<String>,
}

/// This approver's decision on a request.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DecisionSummary {
    /// approve / deny.
    pub verdict: String,
    /// The reason given.
    pub reason: String,
    /// NULL until delivered: accepted / refused.
    pub outcome: Option<String>,
    /// The enforcement point's answer.
    pub answer: Option<String>,
    /// When it was signed.
    pub signed_at: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub ep: String,
    pub id: String,
    pub jwt: String,
    pub claims: String,
    pub digest: String,
    pub tier: String,
    pub workload: String,
    pub exp: i64,
    pub state: String,
}

/// Warnings for every string in the claims that holds hidden characters.
pub fn warnings(claims: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::String(s) if display::visible(s).1 => {
                let mut codes: Vec<String> = Vec::new();
                for c in s.chars().filter(|c| display::is_hidden(*c)) {
                    let code = format!("U+{:04X}", c as u32);
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
                out.push(format!(
                    "{path} contains hidden or bidirectional control characters: {}",
                    codes.join(", ")
                ));
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                if display::visible(k).1 {
                    out.push(format!("{path}: a key contains invisible or bidirectional control characters"));
                }
                walk(x, &format!("{path}.{k}"), out)
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(claims, "request", &mut out);
    // Names an approver reads to recognise what acts and on what: look-alike letters there are a trap.
    let mut names: Vec<(String, &Value)> = vec![
        ("identity.workload".into(), &claims["identity"]["workload"]),
        ("identity.display".into(), &claims["identity"]["display"]),
        ("target.system".into(), &claims["target"]["system"]),
        ("purpose.code".into(), &claims["purpose"]["code"]),
    ];
    for (i, a) in claims["actions"].as_array().into_iter().flatten().enumerate() {
        names.push((format!("actions[{i}].tool"), &a["tool"]));
        names.push((format!("actions[{i}].operation"), &a["operation"]));
        names.push((format!("actions[{i}].target"), &a["target"]));
    }
    for (path, v) in names {
        if let Some(scripts) = v.as_str().and_then(display::mixed_script) {
            out.push(format!(
                "request.{path} mixes {} letters (look-alike characters)",
                scripts.join(" and ")
            ));
        }
    }
    out
}

impl Console {
    /// Verify `jwt` (announced as request `id`) against `ep`'s pinned key and store it when valid.
    /// A failure is recorded once in the history as `request rejected`, with the reason.
    pub async fn ingest(&self, ep: &Ep, id: Option<&str>, jwt: &str) -> Result<Ingested> {
        let t = now();
        let checked = ep.key().and_then(|key| {
            let v = protocol::verify::<StepUpClaims>(jwt, TYP_STEP_UP, &key, &Validation::at(t))?;
            if v.claims.iss != ep.ep {
                return Err(ConsoleError::Invalid(format!("issued by {:?}, not {:?}", v.claims.iss, ep.ep)));
            }
            if id.is_some_and(|id| id != v.claims.jti) {
                return Err(ConsoleError::Invalid(format!(
                    "announced as {id:?} but its jti is {:?}",
                    v.claims.jti
                )));
            }
            Ok(v)
        });
        let v = match checked {
            Ok(v) => v,
            Err(ConsoleError::Protocol(ProtocolError::Expired { .. })) => return Ok(Ingested::Expired),
            Err(e) => return self.reject(ep, id, jwt, &e.to_string()).await,
        };
        if v.claims.exp <= t {
            return Ok(Ingested::Expired);
        }
        let digest = protocol::request_digest(&v.raw)?;
        let claims = serde_json::to_string(&v.raw).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        let glance =
            serde_json::to_string(&Glance::of(&v.raw)).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        let mut tx = self.relaxed_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO requests (ep, id, jwt, claims, digest, tier, workload, iat, exp, received_at, glance)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&ep.ep)
        .bind(&v.claims.jti)
        .bind(jwt)
        .bind(&claims)
        .bind(&digest)
        .bind(v.claims.policy.tier.as_str())
        .bind(&v.claims.identity.workload)
        .bind(v.claims.iat)
        .bind(v.claims.exp)
        .bind(t)
        .bind(&glance)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(Ingested::Known);
        }
        let c = &v.claims;
        let detail = history::HistoryDetail::RequestReceived(history::Received {
            jwt: jwt.to_string(),
            digest,
            workload: c.identity.workload.clone(),
            display: c.identity.display.clone(),
            on_behalf_of: c.identity.on_behalf_of.iter().map(|p| p.sub.clone()).collect(),
            purpose: c.purpose.code.clone(),
            statement: c.purpose.statement.clone(),
            class: c.data.class,
            tier: c.policy.tier,
            target: format!("{}/{}", c.target.system, c.target.environment),
            policy_reason: c.policy.reason.clone(),
        });
        history::append(&mut tx, t, Some(&ep.ep), Some(&c.jti), &detail).await?;
        tx.commit().await?;
        Ok(Ingested::New(c.jti.clone()))
    }

    async fn reject(&self, ep: &Ep, id: Option<&str>, jwt: &str, reason: &str) -> Result<Ingested> {
        let digest = hex(&Sha256::digest(jwt.as_bytes()));
        let mut tx = self.relaxed_tx().await?;
        let fresh = sqlx::query("INSERT INTO rejected (ep, digest) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(&ep.ep)
            .bind(&digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if fresh > 0 {
            let detail = history::Rejected { reason: reason.to_string(), jwt: jwt.to_string() };
            history::append(
                &mut tx,
                now(),
                Some(&ep.ep),
                id,
                &history::HistoryDetail::RequestRejected(detail),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(Ingested::Rejected(reason.to_string()))
    }

    /// Record what the enforcement point says a request's state is. Only a pending request moves,
    /// and only to a terminal state; the move is logged as `resolved`.
    pub async fn apply_state(&self, ep: &str, id: &str, state: &str) -> Result<bool> {
        if !TERMINAL.contains(&state) {
            return Ok(false);
        }
        let mut tx = self.relaxed_tx().await?;
        let moved =
            sqlx::query("UPDATE requests SET state = ? WHERE ep = ? AND id = ? AND state = 'pending'")
                .bind(state)
                .bind(ep)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if moved > 0 {
            let detail = history::HistoryDetail::Resolved(history::Resolved { state: state.parse()? });
            history::append(&mut tx, now(), Some(ep), Some(id), &detail).await?;
            tx.commit().await?;
        }
        Ok(moved > 0)
    }

    /// The stored request `id` of enforcement point `ep` (its id or URL). A request id is unique
    /// only within its enforcement point: without `ep`, an id that several enforcement points use
    /// is [`ConsoleError::Ambiguous`] (naming them), never one of them picked — and with `ep`, any
    /// of them can still be reached, whatever another enforcement point sends under the same id.
    pub(crate) async fn find(&self, ep: Option<&str>, id: &str) -> Result<RequestRow> {
        let ep = match ep {
            Some(ep) => Some(self.ep(ep).await?.ep),
            None => None,
        };
        let mut rows = sqlx::query_as::<_, RequestRow>(
            "SELECT * FROM requests WHERE id = ? AND (? IS NULL OR ep = ?) ORDER BY ep LIMIT 10",
        )
        .bind(id)
        .bind(&ep)
        .bind(&ep)
        .fetch_all(self.db())
        .await?;
        match rows.len() {
            0 => Err(ConsoleError::NotFound(match &ep {
                Some(ep) => format!("request {id} of {ep}"),
                None => format!("request {id}"),
            })),
            1 => Ok(rows.remove(0)),
            _ => Err(ConsoleError::Ambiguous(format!(
                "request id {id} is used by several enforcement points ({}): name one with --ep",
                rows.iter().map(|r| r.ep.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    pub(crate) async fn latest_decision(&self, ep: &str, id: &str) -> Result<Option<DecisionSummary>> {
        Ok(sqlx::query_as::<_, DecisionSummary>(
            "SELECT verdict, reason, outcome, answer, signed_at FROM decisions WHERE ep = ? AND request_id = ?
             ORDER BY signed_at DESC, rowid DESC LIMIT 1",
        )
        .bind(ep)
        .bind(id)
        .fetch_optional(self.db())
        .await?)
    }

    async fn view(&self, r: RequestRow) -> Result<RequestView> {
        let decision = self.latest_decision(&r.ep, &r.id).await?;
        view_of(r, decision)
    }

    /// One request by id, when only one enforcement point uses that id (see [`Console::request_at`]).
    pub async fn request(&self, id: &str) -> Result<RequestView> {
        self.request_at(None, id).await
    }

    /// One request by enforcement point (id or URL; `None`: whichever one uses `id`, if only
    /// one does) and id.
    pub async fn request_at(&self, ep: Option<&str>, id: &str) -> Result<RequestView> {
        let row = self.find(ep, id).await?;
        self.view(row).await
    }

    /// How many requests await a decision, per enforcement point — one COUNT query, for badges and
    /// the tray, which must not build every view of a 10,000-request inbox on each event.
    pub async fn pending_counts(&self) -> Result<std::collections::HashMap<String, u32>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT ep, COUNT(*) FROM requests WHERE state = 'pending' AND exp > ? GROUP BY ep",
        )
        .bind(now())
        .fetch_all(self.db())
        .await?;
        Ok(rows.into_iter().map(|(ep, n)| (ep, n as u32)).collect())
    }

    /// One page of the inbox: requests still awaiting a decision (not expired), including those
    /// decided here but not yet delivered, most urgent first (tier, then expiry, then id) — read
    /// from the stored glances, so a page costs the same with 10 or 10,000 pending; with the
    /// inbox's counts and next expiry.
    pub async fn inbox_page(&self, offset: u32, limit: u32) -> Result<InboxPage> {
        let t = now();
        let rows = sqlx::query_as::<_, InboxRow>(
            "SELECT r.ep, r.id, r.tier, r.workload, r.exp, r.glance,
                    CASE WHEN r.glance IS NULL THEN r.claims END AS claims,
                    EXISTS (SELECT 1 FROM decisions d
                             WHERE d.ep = r.ep AND d.request_id = r.id AND d.outcome IS NULL) AS undelivered
               FROM requests r INDEXED BY requests_inbox
              WHERE r.state = 'pending' AND r.exp > ?
              ORDER BY r.urgency, r.exp, r.id
              LIMIT ? OFFSET ?",
        )
        .bind(t)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.db())
        .await?;
        let (total, next_expiry): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(exp) FROM requests WHERE state = 'pending' AND exp > ?")
                .bind(t)
                .fetch_one(self.db())
                .await?;
        // Few decisions wait for delivery at any time: count from that side (their own partial
        // index; CROSS JOIN keeps SQLite from walking every pending request instead).
        let undelivered: i64 = sqlx::query_scalar(
            "SELECT COUNT(*)
               FROM (SELECT DISTINCT ep, request_id FROM decisions INDEXED BY decisions_undelivered
                      WHERE outcome IS NULL) u
              CROSS JOIN requests r ON r.ep = u.ep AND r.id = u.request_id
              WHERE r.state = 'pending' AND r.exp > ?",
        )
        .bind(t)
        .fetch_one(self.db())
        .await?;
        let entries = rows
            .into_iter()
            .map(|r| {
                let glance = match (&r.glance, &r.claims) {
                    (Some(g), _) => serde_json::from_str(g),
                    (None, Some(c)) => serde_json::from_str::<Value>(c).map(|c| Glance::of(&c)),
                    (None, None) => Ok(Glance::default()),
                }
                .map_err(|e| ConsoleError::Invalid(format!("stored request {}: {e}", r.id)))?;
                Ok(InboxEntry {
                    ep: r.ep,
                    id: r.id,
                    state: if r.undelivered { UNDELIVERED } else { "pending" }.to_string(),
                    tier: r.tier,
                    workload: r.workload,
                    exp: r.exp,
                    glance,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(InboxPage { entries, total: total as u32, pending: (total - undelivered) as u32, next_expiry })
    }

    /// Requests still awaiting a decision (not expired), oldest expiry first; includes requests
    /// decided here but not yet delivered.
    pub async fn pending(&self) -> Result<Vec<RequestView>> {
        let rows = sqlx::query_as::<_, RequestRow>(
            "SELECT * FROM requests WHERE state = 'pending' AND exp > ? ORDER BY exp, id",
        )
        .bind(now())
        .fetch_all(self.db())
        .await?;
        // Every latest decision in one query, not one query per request (10,000 pending stay fast).
        let mut latest: std::collections::HashMap<(String, String), DecisionSummary> = Default::default();
        let decided = sqlx::query_as::<_, LatestDecision>(
            "SELECT d.ep, d.request_id, d.verdict, d.reason, d.outcome, d.answer, d.signed_at
               FROM decisions d JOIN requests r ON r.ep = d.ep AND r.id = d.request_id
              WHERE r.state = 'pending' ORDER BY d.signed_at, d.rowid",
        )
        .fetch_all(self.db())
        .await?;
        for d in decided {
            latest.insert((d.ep, d.request_id), d.decision);
        }
        rows.into_iter()
            .map(|r| {
                let d = latest.remove(&(r.ep.clone(), r.id.clone()));
                view_of(r, d)
            })
            .collect()
    }
}

/// A decision with the request it belongs to.
#[derive(sqlx::FromRow)]
struct LatestDecision {
    ep: String,
    request_id: String,
    #[sqlx(flatten)]
    decision: DecisionSummary,
}

/// The front-end view of a stored request and this approver's latest decision on it.
fn view_of(r: RequestRow, decision: Option<DecisionSummary>) -> Result<RequestView> {
    let claims: Value = serde_json::from_str(&r.claims).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
    let t = now();
    let state = match (&decision, r.state.as_str()) {
        (Some(d), "pending") if d.outcome.is_none() => UNDELIVERED.to_string(),
        (_, "pending") if r.exp <= t => "expired".to_string(),
        (_, s) => s.to_string(),
    };
    Ok(RequestView {
        warnings: warnings(&claims),
        ep: r.ep,
        id: r.id,
        state,
        tier: r.tier,
        workload: r.workload,
        exp: r.exp,
        seconds_left: (r.exp - t).max(0),
        digest: r.digest,
        decision,
        claims,
        jwt: r.jwt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn glance_cuts_long_statements_and_counts_warnings() {
        let long = "é".repeat(Glance::STATEMENT_CHARS + 10);
        let c = json!({
            "identity": {"display": "Pay\u{202E}bot", "on_behalf_of": [{"sub": "u1", "display": "Ann"}, {"sub": "u2"}]},
            "purpose": {"code": "p", "statement": long},
            "data": {"class": "restricted", "categories": ["pii", 3]},
            "target": {"system": "erp", "environment": "prod"},
            "actions": [{"tool": "p\u{0430}y", "args": {}}],
            "policy": {"approvals_required": 2}, "binding": {"required": true}, "iat": 7,
        });
        let g = Glance::of(&c);
        assert_eq!(g.purpose_statement.chars().count(), Glance::STATEMENT_CHARS + 1);
        assert!(g.purpose_statement.ends_with('…'));
        assert_eq!(g.on_behalf_of, ["Ann", "u2"]);
        assert_eq!(g.categories, ["pii"]);
        assert_eq!((g.approvals_required, g.binding_required, g.iat), (2, true, 7));
        assert_eq!(g.warnings as usize, warnings(&c).len());
        assert!(g.warnings >= 2, "bidi in the display name and a mixed-script tool: {g:?}");
    }
}
