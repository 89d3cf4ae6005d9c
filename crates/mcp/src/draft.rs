//! One tool call as a step-up draft: the config decides each tool's risk; the server's hints can only add to it.

use countersign_protocol::{Action, DataSpec, Identity, Purpose, StepUpDraft, Target};
use rmcp::model::ToolAnnotations;
use serde_json::{Map, Value};

use crate::config::{Loaded, ToolConfig};

/// The category added when the server says a tool reaches an open world (the internet, other systems).
pub const OPEN_WORLD: &str = "open-world";

/// A tool's risk after the server's hints: stricter than, or as strict as, the config; never looser.
///
/// Only hints the server states explicitly count. `destructiveHint: true` makes the tool irreversible;
/// `openWorldHint: true` adds the `open-world` category. `readOnlyHint` and `idempotentHint` relax nothing,
/// and a missing hint changes nothing: an untrusted server cannot talk a tool down.
pub fn stricter(config: &ToolConfig, hints: Option<&ToolAnnotations>) -> ToolConfig {
    let mut risk = config.clone();
    if let Some(h) = hints {
        if h.destructive_hint == Some(true) {
            risk.reversible = false;
        }
        if h.open_world_hint == Some(true) && !risk.categories.iter().any(|c| c == OPEN_WORLD) {
            risk.categories.push(OPEN_WORLD.to_owned());
        }
    }
    risk
}

/// The draft for calling `tool` with `args`: identity, purpose and target from the config, the tool's risk
/// from the config (made stricter by `hints`), the arguments exactly as the agent proposed them.
pub fn draft(
    loaded: &Loaded,
    tool: &str,
    args: Map<String, Value>,
    hints: Option<&ToolAnnotations>,
    ttl_s: Option<u64>,
) -> StepUpDraft {
    let c = &loaded.config;
    let risk = stricter(c.tool(tool), hints);
    StepUpDraft {
        identity: Identity {
            workload: c.agent.workload.clone(),
            display: c.agent.display.clone(),
            on_behalf_of: loaded.on_behalf_of.clone(),
            credential: None,
        },
        purpose: Purpose { code: c.purpose.code.clone(), statement: c.purpose.statement.clone() },
        data: DataSpec { class: risk.class, categories: risk.categories },
        target: Target { system: c.target.system.clone(), environment: c.target.environment.clone() },
        actions: vec![Action {
            tool: tool.to_owned(),
            operation: risk.operation,
            args,
            target: None,
            reversible: risk.reversible,
            datatypes: None,
        }],
        ttl_s: ttl_s.or(c.approval.ttl_s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_protocol::DataClass;

    fn named(reversible: bool) -> ToolConfig {
        ToolConfig { class: DataClass::Internal, categories: vec!["pii".into()], reversible, operation: None }
    }

    fn hints(
        read_only: Option<bool>,
        destructive: Option<bool>,
        open_world: Option<bool>,
    ) -> ToolAnnotations {
        let mut h = ToolAnnotations::default();
        h.read_only_hint = read_only;
        h.destructive_hint = destructive;
        h.open_world_hint = open_world;
        h.idempotent_hint = Some(true);
        h
    }

    #[test]
    fn hints_only_make_a_tool_stricter() {
        // (config reversible, readOnly, destructive, openWorld) → (reversible, open-world added)
        let table = [
            (true, None, None, None, true, false),
            (true, Some(true), Some(false), Some(false), true, false),
            (true, None, Some(true), None, false, false),
            (false, Some(true), Some(false), None, false, false),
            (true, Some(true), Some(true), Some(true), false, true),
            (false, None, None, Some(true), false, true),
            (true, Some(false), None, Some(false), true, false),
        ];
        for (reversible, ro, de, ow, want_rev, want_ow) in table {
            let got = stricter(&named(reversible), Some(&hints(ro, de, ow)));
            assert_eq!(got.reversible, want_rev, "{reversible} {ro:?} {de:?} {ow:?}");
            assert_eq!(got.categories.iter().any(|c| c == OPEN_WORLD), want_ow);
            assert_eq!(got.class, DataClass::Internal, "hints never change the class");
            assert!(got.categories.contains(&"pii".to_string()), "hints never remove a category");
        }
        assert_eq!(stricter(&named(true), None), named(true), "no hints: the config as it is");
        let twice = stricter(
            &stricter(&named(true), Some(&hints(None, None, Some(true)))),
            Some(&hints(None, None, Some(true))),
        );
        assert_eq!(twice.categories.iter().filter(|c| *c == OPEN_WORLD).count(), 1);
    }
}
