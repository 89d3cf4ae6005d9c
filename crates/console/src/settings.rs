//! The profile's settings, shared by the CLI and the desktop app.

use countersign_protocol::Tier;
use serde::{Deserialize, Serialize};

use crate::{Console, ConsoleError, Result};

/// What the approver chose: stored as this JSON in the profile, and the desktop UI's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Settings {
    /// Requests at or above this tier raise a desktop notification.
    pub notify_threshold: Tier,
    /// No notifications at all while set.
    pub notifications_paused: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { notify_threshold: Tier::Medium, notifications_paused: false }
    }
}

impl Console {
    /// The saved settings (defaults when never saved).
    pub async fn settings(&self) -> Result<Settings> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'settings'")
            .fetch_optional(self.db())
            .await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }

    /// Save settings; the saved values.
    pub async fn save_settings(&self, s: &Settings) -> Result<Settings> {
        let value = serde_json::to_string(s).map_err(|e| ConsoleError::Invalid(e.to_string()))?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ('settings', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(value)
            .execute(self.db())
            .await?;
        self.settings().await
    }
}
