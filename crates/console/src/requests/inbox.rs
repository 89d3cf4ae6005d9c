//! Listing requests: the inbox a page at a time (from the stored lines), the pending requests
//! whole, and the pending counts per enforcement point.

use serde::Serialize;

use super::{detail_of, stored_claims, DecisionSummary, InboxState, RequestDetail, RequestLine, RequestRow};
use crate::{display, now, Console, ConsoleError, Result};

/// A page of the inbox with the counts of the whole inbox.
#[derive(Debug, Clone, Serialize)]
pub struct InboxPage {
    /// The lines asked for, most urgent first.
    pub entries: Vec<RequestLine>,
    /// Lines in the whole inbox.
    pub total: u32,
    /// Of those, the ones awaiting this approver's decision (not decided here).
    pub pending: u32,
    /// The soonest expiry in the whole inbox: when it passes, the inbox changes.
    pub next_expiry: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct InboxRow {
    ep: String,
    id: String,
    undelivered: bool,
    glance: Option<String>,
    claims: Option<String>,
}

impl Console {
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
            "SELECT r.ep, r.id, r.glance,
                    CASE WHEN r.glance IS NULL OR json_extract(r.glance, '$.purposeCode') IS NULL
                         THEN r.claims END AS claims,
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
                // Rows stored before lines had this shape (or had one at all) are built from their claims.
                let stored = r.glance.as_deref().and_then(|g| serde_json::from_str::<RequestLine>(g).ok());
                let mut line = match (stored, r.claims) {
                    (Some(line), _) => line,
                    (None, Some(text)) => {
                        let (claims, raw) = stored_claims("in the inbox", &text)?;
                        RequestLine::of(&claims, display::warnings(&raw).len()).for_list()
                    }
                    (None, None) => {
                        return Err(ConsoleError::Invalid("a stored line of another shape".into()))
                    }
                };
                line.state = if r.undelivered { InboxState::Undelivered } else { InboxState::Pending };
                // The address is the row's key, never what the stored JSON says it is.
                (line.ep, line.id) = (r.ep, r.id);
                Ok(line)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(InboxPage { entries, total: total as u32, pending: (total - undelivered) as u32, next_expiry })
    }

    /// Requests still awaiting a decision (not expired), oldest expiry first; includes requests
    /// decided here but not yet delivered.
    pub async fn pending(&self) -> Result<Vec<RequestDetail>> {
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
                detail_of(r, d)
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
