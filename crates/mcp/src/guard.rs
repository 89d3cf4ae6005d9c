//! The tool-call guard both transports share: the config, the gateway client, and the hints the server gave.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::ToolAnnotations;
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::draft::draft;
use crate::enforce::{enforce, Hold, Outcome, Waiting};
use crate::gateway::{Gateway, GatewayError};
use crate::messages::ToolCall;

/// Decides tool calls for one proxied server.
#[derive(Debug)]
pub struct Guard {
    loaded: Loaded,
    gateway: Gateway,
    hints: Mutex<HashMap<String, ToolAnnotations>>,
}

impl Guard {
    /// A guard for this configuration.
    pub fn new(loaded: Loaded) -> Result<Arc<Self>, GatewayError> {
        let timeout = Duration::from_millis(loaded.config.gateway.timeout_ms);
        let gateway = Gateway::new(
            loaded.gateway.clone(),
            loaded.agent_token.clone(),
            loaded.system_token.clone(),
            timeout,
        )?;
        Ok(Arc::new(Guard { loaded, gateway, hints: Mutex::new(HashMap::new()) }))
    }

    /// The configuration.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Remember the hints a `tools/list` answer gave (they can only make a tool stricter).
    pub fn learn(&self, listed: Vec<(String, ToolAnnotations)>) {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        for (name, h) in listed {
            hints.insert(name, h);
        }
    }

    /// Decide a call: forward (with the approved arguments), refuse, or withdrawn on `cancel`.
    pub async fn decide(
        &self,
        call: &ToolCall,
        progress: impl FnMut(&Waiting),
        cancel: &CancellationToken,
    ) -> Outcome {
        let hints = self.hints.lock().unwrap_or_else(|p| p.into_inner()).get(&call.name).cloned();
        let d = draft(&self.loaded, &call.name, call.arguments.clone(), hints.as_ref(), None);
        let every = if call.progress_token.is_some() {
            Duration::from_millis(self.loaded.config.approval.progress_interval_ms)
        } else {
            Duration::from_secs(crate::gateway::MAX_WAIT_S)
        };
        tracing::info!(tool = ?call.name, "tool call sent to the gateway");
        enforce(&self.gateway, &d, Hold { every, max_wait: None }, progress, cancel).await
    }
}
