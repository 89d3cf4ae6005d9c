//! Translations between the core's types and the IPC types. No decisions are made here.

use std::collections::HashMap;

use countersign_console::requests::{self as core, RequestLine};

use crate::dto::{RequestDetail, RequestSummary};

/// An inbox line: the core's, with the enforcement point's name and the flood flag.
pub fn summary(line: RequestLine, ep_names: &HashMap<String, String>, flood: bool) -> RequestSummary {
    let ep_name = ep_names.get(&line.ep).cloned().unwrap_or_else(|| line.ep.clone());
    RequestSummary { line, ep_name, flood }
}

/// Everything about one request: its whole line (the purpose statement uncut) and the core's detail.
pub fn detail(
    request: core::RequestDetail,
    ep_names: &HashMap<String, String>,
    flood: bool,
) -> RequestDetail {
    RequestDetail { summary: summary(request.line.clone(), ep_names, flood), request }
}
