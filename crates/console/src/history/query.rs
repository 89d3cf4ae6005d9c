//! Which history rows to list: the filter, its outcome vocabulary, and the SQL it becomes.

use serde::{Deserialize, Serialize};

use super::chain::Row;
use super::kind::{HistoryKind, Resolution};
use crate::{Console, ConsoleError, Result};

/// How a request ended, as the history's outcome filter asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Requests this console approved (its signed decision).
    Approve,
    /// Requests this console denied (its signed decision).
    Deny,
    /// Requests the enforcement point reported expired, and requests still pending here whose
    /// expiry has passed (the inbox shows them expired too).
    Expired,
    /// Requests the enforcement point reported withdrawn.
    Withdrawn,
}

impl std::str::FromStr for Outcome {
    type Err = ConsoleError;

    fn from_str(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
            ConsoleError::Invalid(format!("unknown outcome {s:?} (approve, deny, expired or withdrawn)"))
        })
    }
}

/// Which history rows to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only rows at or after this time.
    pub since: Option<i64>,
    /// Only rows before this time.
    pub until: Option<i64>,
    /// Only rows of this enforcement point.
    pub ep: Option<String>,
    /// Only rows of this kind.
    pub kind: Option<HistoryKind>,
    /// Full-text search (every word must occur).
    pub search: Option<String>,
    /// Only rows of requests by this workload, or on behalf of this principal.
    pub identity: Option<String>,
    /// Only rows of requests of this data class.
    pub class: Option<String>,
    /// Only rows of requests of this tier.
    pub tier: Option<String>,
    /// Only rows of requests that ended this way (see [`Outcome`]).
    pub outcome: Option<Outcome>,
    /// Most rows returned (newest first); `None` = all.
    pub limit: Option<i64>,
    /// Rows skipped before the first one returned (newest first).
    pub offset: Option<i64>,
}

/// An FTS5 query matching rows that contain every word of `text`, each taken literally.
pub(super) fn fts_query(text: &str) -> String {
    text.split_whitespace().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
}

/// The query selecting `select` over the history rows `filter` matches (without order or limit);
/// whether full-text search drives it (then `f.rowid` orders it).
fn filtered<'a>(filter: &Filter, select: &str) -> (sqlx::QueryBuilder<'a, sqlx::Sqlite>, bool) {
    // With a search, FTS5 drives the query in rowid (= seq) order, so "newest N" stops early.
    let search = filter.search.as_deref().map(fts_query).filter(|t| !t.is_empty());
    let mut q = match &search {
        Some(text) => {
            let mut q = sqlx::QueryBuilder::new(format!(
                "SELECT {select} FROM history_fts f JOIN history h ON h.seq = f.rowid WHERE history_fts MATCH "
            ));
            q.push_bind(text.clone());
            q
        }
        None => sqlx::QueryBuilder::new(format!("SELECT {select} FROM history h WHERE 1 = 1")),
    };
    if let Some(s) = filter.since {
        q.push(" AND h.at >= ").push_bind(s);
    }
    if let Some(u) = filter.until {
        q.push(" AND h.at < ").push_bind(u);
    }
    if let Some(ep) = &filter.ep {
        q.push(" AND h.ep = ").push_bind(ep.clone());
    }
    if let Some(kind) = filter.kind {
        q.push(" AND h.kind = ").push_bind(kind.as_str());
    }
    // A request is (enforcement point, id): another enforcement point's request under the same id
    // never lends its attributes.
    let of_requests = |q: &mut sqlx::QueryBuilder<'a, sqlx::Sqlite>, kind: HistoryKind| {
        q.push(" AND (h.ep, h.request_id) IN (SELECT ep, request_id FROM history WHERE kind = ");
        q.push_bind(kind.as_str()).push(" AND ");
    };
    if let Some(who) = &filter.identity {
        of_requests(&mut q, HistoryKind::RequestReceived);
        q.push("(json_extract(detail, '$.workload') = ").push_bind(who.clone());
        q.push(" OR EXISTS (SELECT 1 FROM json_each(detail, '$.on_behalf_of') WHERE value = ")
            .push_bind(who.clone());
        q.push(")))");
    }
    if let Some(class) = &filter.class {
        of_requests(&mut q, HistoryKind::RequestReceived);
        q.push("json_extract(detail, '$.class') = ").push_bind(class.clone()).push(")");
    }
    if let Some(tier) = &filter.tier {
        of_requests(&mut q, HistoryKind::RequestReceived);
        q.push("json_extract(detail, '$.tier') = ").push_bind(tier.clone()).push(")");
    }
    match filter.outcome {
        None => {}
        Some(Outcome::Approve | Outcome::Deny) => {
            let verdict = if filter.outcome == Some(Outcome::Approve) { "approve" } else { "deny" };
            of_requests(&mut q, HistoryKind::DecisionSigned);
            q.push("json_extract(detail, '$.verdict') = ").push_bind(verdict).push(")");
        }
        Some(Outcome::Withdrawn) => {
            of_requests(&mut q, HistoryKind::Resolved);
            q.push("json_extract(detail, '$.state') = ").push_bind(Resolution::Withdrawn.as_str()).push(")");
        }
        Some(Outcome::Expired) => {
            q.push(" AND ((h.ep, h.request_id) IN (SELECT ep, request_id FROM history WHERE kind = ");
            q.push_bind(HistoryKind::Resolved.as_str());
            q.push(" AND json_extract(detail, '$.state') = ").push_bind(Resolution::Expired.as_str());
            q.push(") OR (h.ep, h.request_id) IN (SELECT ep, id FROM requests WHERE state = 'pending' AND exp <= ");
            q.push_bind(crate::now()).push("))");
        }
    }
    (q, search.is_some())
}

impl Console {
    /// History rows matching `filter`, newest first.
    pub async fn history(&self, filter: &Filter) -> Result<Vec<Row>> {
        let (mut q, search) = filtered(filter, "h.*");
        q.push(if search { " ORDER BY f.rowid DESC" } else { " ORDER BY h.seq DESC" });
        if filter.limit.is_some() || filter.offset.is_some() {
            q.push(" LIMIT ").push_bind(filter.limit.unwrap_or(-1));
            q.push(" OFFSET ").push_bind(filter.offset.unwrap_or(0).max(0));
        }
        Ok(q.build_query_as::<Row>().fetch_all(self.db()).await?)
    }

    /// How many history rows match `filter` (ignoring its limit and offset).
    pub async fn history_count(&self, filter: &Filter) -> Result<i64> {
        let (mut q, _) = filtered(filter, "COUNT(*)");
        Ok(q.build_query_scalar::<i64>().fetch_one(self.db()).await?)
    }
}
