//! What a manager reviews: history pages with a total, the charts, and exports.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::history::{Filter, Row};
use crate::{Console, ConsoleError, Result};

/// Decisions of one day (UTC) by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
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

/// The figures a manager wants at a glance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Outcomes per day, oldest first.
    pub per_day: Vec<DayStat>,
    /// Requests received per data class.
    pub by_class: Vec<(String, u32)>,
    /// Median seconds from a request's arrival to this approver's signed decision.
    pub decision_seconds_p50: Option<f64>,
    /// 90th percentile of the same.
    pub decision_seconds_p90: Option<f64>,
    /// Decisions signed.
    pub decisions: u32,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header.
    Csv,
}

impl ExportFormat {
    /// Parse `jsonl` or `csv`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(ConsoleError::Invalid(format!("unknown export format {other:?} (jsonl or csv)"))),
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
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
        let mut classes: BTreeMap<String, u32> = BTreeMap::new();
        let mut received: std::collections::HashMap<String, i64> = Default::default();
        let mut signed: Vec<(String, i64)> = Vec::new();
        for r in &rows {
            let d: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
            match r.kind.as_str() {
                "request received" => {
                    if let Some(c) = d["class"].as_str() {
                        *classes.entry(c.to_string()).or_default() += 1;
                    }
                    if let Some(id) = &r.request_id {
                        received.insert(id.clone(), r.at);
                    }
                }
                "resolved" => {
                    let day = days
                        .entry(utc_day(r.at))
                        .or_insert_with(|| DayStat { day: utc_day(r.at), ..Default::default() });
                    match d["state"].as_str() {
                        Some("approved") => day.approved += 1,
                        Some("denied") => day.denied += 1,
                        Some("expired") => day.expired += 1,
                        _ => {}
                    }
                }
                "decision signed" => {
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
            by_class: classes.into_iter().collect(),
            decision_seconds_p50: percentile(&waits, 0.5),
            decision_seconds_p90: percentile(&waits, 0.9),
            decisions: signed.len() as u32,
        })
    }

    /// Write the whole history, oldest first, with every column (including the original signed
    /// tokens held in `detail` and the chain hashes) — everything an auditor needs.
    pub async fn export_history(&self, format: ExportFormat, out: &mut impl Write) -> Result<usize> {
        let mut rows = self.history(&Filter::default()).await?;
        rows.reverse();
        let io = |e: std::io::Error| ConsoleError::Invalid(format!("writing the export: {e}"));
        if format == ExportFormat::Csv {
            writeln!(out, "seq,at,kind,ep,request_id,detail,prev_hash,hash").map_err(io)?;
        }
        for r in &rows {
            let line = match format {
                ExportFormat::Jsonl => {
                    serde_json::to_string(r).map_err(|e| ConsoleError::Invalid(e.to_string()))?
                }
                ExportFormat::Csv => [
                    r.seq.to_string(),
                    r.at.to_string(),
                    csv_field(&r.kind),
                    csv_field(r.ep.as_deref().unwrap_or("")),
                    csv_field(r.request_id.as_deref().unwrap_or("")),
                    csv_field(&r.detail),
                    r.prev_hash.clone(),
                    r.hash.clone(),
                ]
                .join(","),
            };
            writeln!(out, "{line}").map_err(io)?;
        }
        Ok(rows.len())
    }

    /// Export into `<profile>/exports/history-<time>.<format>`; the path written.
    pub async fn export_history_file(&self, format: &str) -> Result<PathBuf> {
        let format_ = ExportFormat::parse(format)?;
        let dir = self.profile().dir.join("exports");
        std::fs::create_dir_all(&dir)
            .map_err(|e| ConsoleError::Invalid(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(format!("history-{}.{format}", crate::now()));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .map_err(|e| ConsoleError::Invalid(format!("creating {}: {e}", path.display())))?,
        );
        self.export_history(format_, &mut file).await?;
        file.flush().map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        Ok(path)
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
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b\"\nc"), "\"a,\"\"b\"\"\nc\"");
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
    }
}
