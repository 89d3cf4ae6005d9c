//! Review history: pages, charts, verification and export.

use tauri::State;

use countersign_console::review::Stats;

use crate::dto::{HistoryFilter, HistoryPage, HistoryRow, VerifyReport};
use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::Shell;

/// Most rows in one page.
const MAX_PAGE: i64 = 1000;

/// A page of history rows, newest first, and the number of matching rows.
#[tauri::command]
pub async fn history_page(
    shell: State<'_, Shell>,
    filter: HistoryFilter,
    offset: i64,
    limit: i64,
) -> IpcResult<HistoryPage> {
    let f = filter.to_core();
    let (rows, total) = shell.console.history_page(&f, offset.max(0), limit.clamp(1, MAX_PAGE)).await?;
    Ok(HistoryPage { rows: rows.iter().map(HistoryRow::from).collect(), total })
}

/// Decisions per day by outcome, requests by data class, time to decision.
#[tauri::command]
pub async fn history_stats(shell: State<'_, Shell>, filter: HistoryFilter) -> IpcResult<Stats> {
    Ok(shell.console.history_stats(&filter.to_core()).await?)
}

/// Verify the hash chain.
#[tauri::command]
pub async fn history_verify(shell: State<'_, Shell>) -> IpcResult<VerifyReport> {
    Ok(match shell.console.verify_history().await {
        Ok(rows) => VerifyReport {
            intact: true,
            rows,
            first_bad: None,
            message: format!("{rows} rows, chain intact"),
        },
        Err(countersign_console::ConsoleError::Tampered { seq, message }) => VerifyReport {
            intact: false,
            rows: 0,
            first_bad: Some(seq),
            message: format!("row {seq}: {message}"),
        },
        Err(e) => return Err(e.into()),
    })
}

/// Export the whole history (with the original signed tokens) next to the profile; the path.
#[tauri::command]
pub async fn history_export(shell: State<'_, Shell>, format: String) -> IpcResult<String> {
    let format = match format.as_str() {
        "jsonl" | "csv" => format,
        other => {
            return Err(IpcError::new(ErrorCode::InvalidInput, format!("unknown export format {other:?}")))
        }
    };
    let path = shell.console.export_history_file(&format).await?;
    Ok(path.display().to_string())
}
