//! The review history across IPC: the filter, rows and pages, the charts (the core's figures), the
//! chain's state, and the translations from the core's history types.

use countersign_console::history::{Filter, HistoryDetail, HistoryKind, Outcome, Row};
use countersign_console::review::{ClassCount, DayStat, Stats};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{DataClass, Tier, Verdict};

/// History filters.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryFilter {
    #[ts(type = "number | null")]
    pub since: Option<i64>,
    #[ts(type = "number | null")]
    pub until: Option<i64>,
    pub identity: Option<String>,
    pub data_class: Option<DataClass>,
    pub tier: Option<Tier>,
    pub outcome: Option<Outcome>,
    pub ep: Option<String>,
    pub search: Option<String>,
}

impl HistoryFilter {
    /// The core's filter: blank text fields are no filter.
    pub fn to_core(&self) -> Filter {
        let some = |s: &Option<String>| s.as_ref().map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
        Filter {
            since: self.since,
            until: self.until,
            ep: some(&self.ep),
            identity: some(&self.identity),
            class: self.data_class.map(|c| c.as_str().to_string()),
            tier: self.tier.map(|t| t.as_str().to_string()),
            outcome: self.outcome,
            search: some(&self.search),
            ..Filter::default()
        }
    }
}

/// One history row: its kind, the request attributes its detail records, and a summary in words.
/// `kind` is `null` for a stored row of a kind this version does not know.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    #[ts(type = "number")]
    pub seq: i64,
    #[ts(type = "number")]
    pub at: i64,
    pub kind: Option<HistoryKind>,
    pub ep: Option<String>,
    pub request_id: Option<String>,
    pub workload: Option<String>,
    pub tier: Option<Tier>,
    pub data_class: Option<DataClass>,
    pub verdict: Option<Verdict>,
    pub summary: String,
}

impl From<&Row> for HistoryRow {
    fn from(r: &Row) -> Self {
        let detail = r.typed_detail();
        let (mut workload, mut tier, mut data_class, mut verdict) = (None, None, None, None);
        match &detail {
            HistoryDetail::RequestReceived(d) => {
                (workload, tier, data_class) = (Some(d.workload.clone()), Some(d.tier), Some(d.class));
            }
            HistoryDetail::DecisionSigned(d) => verdict = Some(d.verdict),
            _ => {}
        }
        HistoryRow {
            seq: r.seq,
            at: r.at,
            kind: detail.kind(),
            ep: r.ep.clone(),
            request_id: r.request_id.clone(),
            workload,
            tier,
            data_class,
            verdict,
            summary: countersign_console::review::row_summary(&detail),
        }
    }
}

/// A page of history, newest first.
#[derive(Debug, Clone, Serialize, TS)]
pub struct HistoryPage {
    pub rows: Vec<HistoryRow>,
    #[ts(type = "number")]
    pub total: i64,
}

/// The state of the history's hash chain.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub intact: bool,
    #[ts(type = "number")]
    pub rows: i64,
    #[ts(type = "number | null")]
    pub first_bad: Option<i64>,
    pub message: String,
}

/// The TypeScript twins of this module's types (and of the core's history types it carries), as
/// (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; HistoryKind, Outcome, HistoryFilter, HistoryRow, HistoryPage, DayStat, ClassCount, Stats, VerifyReport)
}
