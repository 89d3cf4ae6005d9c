//! The review-history types that cross IPC: filters, rows, pages, charts and the chain's state.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::Tier;

/// History filters.
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryFilter {
    #[ts(type = "number | null")]
    pub since: Option<i64>,
    #[ts(type = "number | null")]
    pub until: Option<i64>,
    pub identity: Option<String>,
    pub data_class: Option<String>,
    pub tier: Option<Tier>,
    pub decision: Option<String>,
    pub ep: Option<String>,
    pub search: Option<String>,
}

/// One history row.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    #[ts(type = "number")]
    pub seq: i64,
    #[ts(type = "number")]
    pub at: i64,
    pub kind: String,
    pub ep: Option<String>,
    pub request_id: Option<String>,
    pub workload: Option<String>,
    pub tier: Option<String>,
    pub data_class: Option<String>,
    pub verdict: Option<String>,
    pub summary: String,
}

/// A page of history, newest first.
#[derive(Debug, Clone, Serialize, TS)]
pub struct HistoryPage {
    pub rows: Vec<HistoryRow>,
    #[ts(type = "number")]
    pub total: i64,
}

/// Decisions of one day by outcome.
#[derive(Debug, Clone, Serialize, TS)]
pub struct DayCount {
    pub day: String,
    pub approved: u32,
    pub denied: u32,
    pub expired: u32,
}

/// Requests of one data class.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ClassCount {
    pub data_class: String,
    pub count: u32,
}

/// The charts of the history screen.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HistoryStats {
    pub per_day: Vec<DayCount>,
    pub by_class: Vec<ClassCount>,
    pub decision_seconds_p50: Option<f64>,
    pub decision_seconds_p90: Option<f64>,
    pub decisions: u32,
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

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; HistoryFilter, HistoryRow, HistoryPage, DayCount, ClassCount, HistoryStats, VerifyReport)
}
