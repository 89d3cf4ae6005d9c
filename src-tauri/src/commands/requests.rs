//! Requests: the inbox and one request's detail.

use tauri::State;

use crate::dto::{RequestDetail, RequestSummary};
use crate::error::IpcResult;
use crate::view;
use crate::Shell;

/// Pending requests and decisions not yet delivered, for the inbox.
#[tauri::command]
pub async fn list_requests(shell: State<'_, Shell>) -> IpcResult<Vec<RequestSummary>> {
    let names = shell.ep_names().await?;
    let entries = shell.console.inbox().await?;
    Ok(entries
        .into_iter()
        .map(|e| {
            let flood = shell.notifier.is_flooded(&e.workload);
            view::summary(e, &names, flood)
        })
        .collect())
}

/// Everything about one request.
#[tauri::command]
pub async fn get_request(shell: State<'_, Shell>, id: String) -> IpcResult<RequestDetail> {
    let names = shell.ep_names().await?;
    let v = shell.console.request(&id).await?;
    Ok(view::detail(&v, &names, shell.notifier.is_flooded(&v.workload)))
}
