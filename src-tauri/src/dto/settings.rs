//! The settings that cross IPC: the core's [`Settings`], as stored in the profile.

pub use countersign_console::settings::Settings;

/// The TypeScript twins of this module's types, as (name, text).
pub(super) fn bindings(cfg: &ts_rs::Config) -> Vec<(String, String)> {
    super::export!(cfg; Settings)
}
