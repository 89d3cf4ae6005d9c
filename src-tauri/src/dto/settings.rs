//! The settings that cross IPC.

use super::Tier;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// User settings.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub notify_threshold: Tier,
    pub notifications_paused: bool,
}

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; Settings)
}
