//! What a manager reviews: history pages with a total, the charts, and times as a command line
//! gives them; exports are in [`export`], rows in words in [`words`].

use std::collections::BTreeMap;

use countersign_protocol::DataClass;
use serde::Serialize;

use crate::history::{Filter, HistoryDetail, Resolution, Row};
use crate::{Console, ConsoleError, Result};

mod export;
mod words;

pub use export::{csv_cell, write_csv, ExportFormat};
pub use words::{answer_text, answer_words, row_summary};

/// Decisions of one day (UTC) by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "DayCount"))]
pub struct DayStat {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Requests resolved approved.
    pub approved: u32,
    /// Requests resolved denied.
    pub denied: u32,
    /// Requests that expired.
    pub expired: u32,
}

/// Requests received of one data class.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ClassCount {
    /// The data class.
    pub data_class: DataClass,
    /// Requests received.
    pub count: u32,
}

/// The figures a manager wants at a glance (the history screen's charts).
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "HistoryStats"))]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Outcomes per day, oldest first.
    pub per_day: Vec<DayStat>,
    /// Requests received per data class, by class name.
    pub by_class: Vec<ClassCount>,
    /// Median seconds from a request's arrival to this approver's signed decision.
    pub decision_seconds_p50: Option<f64>,
    /// 90th percentile of the same.
    pub decision_seconds_p90: Option<f64>,
    /// Decisions signed.
    pub decisions: u32,
}

/// Civil date (UTC) of a Unix time, `YYYY-MM-DD`.
pub fn utc_day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// A point in time given on a command line: RFC 3339 (`2026-11-26T09:30:00Z`, `…+01:00`), a UTC
/// date (`2026-11-26`, its midnight), seconds since the epoch, or an age before `now` (`30m`, `2h`,
/// `7d`). Unix seconds, or a clear error naming the accepted forms.
pub fn parse_when(s: &str, now: i64) -> Result<i64> {
    let s = s.trim();
    let bad = || {
        ConsoleError::Invalid(format!(
            "{s:?}: use an RFC 3339 time (2026-11-26T09:30:00Z), a date (2026-11-26), seconds since \
             the epoch, or an age (30m, 2h, 7d)"
        ))
    };
    if let Ok(t) = s.parse::<i64>() {
        return Ok(t);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).ok_or_else(bad);
    }
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    Ok(now - secs)
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

impl Console {
    /// One page of history rows matching `filter`, newest first, and how many match in all.
    pub async fn history_page(&self, filter: &Filter, offset: i64, limit: i64) -> Result<(Vec<Row>, i64)> {
        let total = self.history_count(filter).await?;
        let f = Filter { limit: Some(limit), offset: Some(offset), ..filter.clone() };
        Ok((self.history(&f).await?, total))
    }

    /// Outcomes per day, requests per data class and time to decision over the rows `filter` selects.
    pub async fn history_stats(&self, filter: &Filter) -> Result<Stats> {
        let rows = self.history(&Filter { limit: None, offset: None, ..filter.clone() }).await?;
        let mut days: BTreeMap<String, DayStat> = BTreeMap::new();
        // By class name, as the chart lists them.
        let mut classes: BTreeMap<&'static str, ClassCount> = BTreeMap::new();
        let mut received: std::collections::HashMap<String, i64> = Default::default();
        let mut signed: Vec<(String, i64)> = Vec::new();
        for r in &rows {
            match r.typed_detail() {
                HistoryDetail::RequestReceived(d) => {
                    classes
                        .entry(d.class.as_str())
                        .or_insert(ClassCount { data_class: d.class, count: 0 })
                        .count += 1;
                    if let Some(id) = &r.request_id {
                        received.insert(id.clone(), r.at);
                    }
                }
                HistoryDetail::Resolved(d) => {
                    let day = days
                        .entry(utc_day(r.at))
                        .or_insert_with(|| DayStat { day: utc_day(r.at), ..Default::default() });
                    match d.state {
                        Resolution::Approved => day.approved += 1,
                        Resolution::Denied => day.denied += 1,
                        Resolution::Expired => day.expired += 1,
                        Resolution::Withdrawn => {}
                    }
                }
                HistoryDetail::DecisionSigned(_) => {
                    if let Some(id) = &r.request_id {
                        signed.push((id.clone(), r.at));
                    }
                }
                _ => {}
            }
        }
        let mut waits: Vec<f64> =
            signed.iter().filter_map(|(id, at)| received.get(id).map(|r| (at - r).max(0) as f64)).collect();
        waits.sort_by(f64::total_cmp);
        Ok(Stats {
            per_day: days.into_values().collect(),
            by_class: classes.into_values().collect(),
            decision_seconds_p50: percentile(&waits, 0.5),
            decision_seconds_p90: percentile(&waits, 0.9),
            decisions: signed.len() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400), "2000-02-29");
        assert_eq!(utc_day(1_795_651_200), "2026-11-26");
    }

    #[test]
    fn times_on_the_command_line() {
        let now = 1_795_651_200 + 3600;
        assert_eq!(parse_when("2026-11-26T01:00:00Z", 0).unwrap(), now);
        assert_eq!(parse_when("2026-11-26T02:00:00+01:00", 0).unwrap(), now);
        assert_eq!(parse_when("2026-11-26", 0).unwrap(), 1_795_651_200);
        assert_eq!(parse_when("1795651200", 0).unwrap(), 1_795_651_200);
        assert_eq!(parse_when("2h", now).unwrap(), now - 7200);
        assert_eq!(parse_when("7d", now).unwrap(), now - 7 * 86_400);
        for bad in ["yesterday", "2026-13-01", "5y", "", "2026-11-26T25:00:00Z"] {
            let e = parse_when(bad, now).unwrap_err().to_string();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
    }
}
