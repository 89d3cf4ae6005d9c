//! Requests: the inbox and one request's detail.

use tauri::State;

use crate::dto::{InboxPage, RequestDetail};
use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::view;
use crate::Shell;

/// Most lines one call returns: the UI asks for the rows in view, never the whole inbox.
pub const MAX_PAGE: u32 = 500;

/// A page of the inbox (pending requests and decisions not yet delivered, most urgent first)
/// with the whole inbox's counts.
#[tauri::command]
pub async fn list_requests(shell: State<'_, Shell>, offset: u32, limit: u32) -> IpcResult<InboxPage> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(IpcError::new(ErrorCode::InvalidInput, format!("limit must be 1 to {MAX_PAGE}")));
    }
    let names = shell.ep_names().await?;
    let page = shell.console.inbox_page(offset, limit).await?;
    Ok(InboxPage {
        rows: page
            .entries
            .into_iter()
            .map(|line| {
                let flood = shell.notifier.is_flooded(&line.workload);
                view::summary(line, &names, flood)
            })
            .collect(),
        offset,
        total: page.total,
        pending: page.pending,
        next_expiry: page.next_expiry,
    })
}

/// Everything about request `id` of enforcement point `ep` (an id alone may be several
/// enforcement points').
#[tauri::command]
pub async fn get_request(shell: State<'_, Shell>, ep: String, id: String) -> IpcResult<RequestDetail> {
    let names = shell.ep_names().await?;
    let request = shell.console.request_at(Some(&ep), &id).await?;
    let flood = shell.notifier.is_flooded(&request.line.workload);
    Ok(view::detail(request, &names, flood))
}
