//! `countersign-mcp hook claude-code`: a Claude Code PreToolUse hook that makes a coding agent's tool call a
//! step-up at the gateway, and answers "allow" with exactly the approved input or blocks the call.
//!
//! Fail closed. Claude Code blocks a tool call only when its hook exits 2 (and shows stderr to the model);
//! exit 1, a crash or a kill lets the call run. So every path that is not an allow or an approval — a denial,
//! an expiry, an unreachable gateway, malformed input, a bad config, a panic — writes its reason to stderr and
//! exits 2. An allow is exit 0 with the PreToolUse decision JSON on stdout, whose `updatedInput` is the input
//! the redeemed grant names (so what runs is what was approved, not what the event said).
//!
//! What the draft carries: the action's `tool` is the event's `tool_name` (`Bash`, `Write`, `mcp__srv__tool`),
//! its risk from `[tools.<tool_name>]`, else `[defaults]`; its `args` are `tool_input` exactly; its `target` is
//! the event's `cwd` (where a command runs, what relative paths mean). Identity, purpose and system come from
//! the config as for the proxy. `session_id`, `transcript_path`, `permission_mode` and `tool_use_id` are not
//! sent: they are the coding agent's local bookkeeping, nothing an approver can check, and the transcript path
//! names local files. All strings from the event are hostile: they travel as data and are quoted, never
//! interpreted, in messages.

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use countersign_protocol::StepUpDraft;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Loaded};
use crate::enforce::{enforce, Hold, Outcome};
use crate::gateway::{Gateway, MAX_WAIT_S};

/// The exit code that makes Claude Code block the call and show stderr to the model.
pub const BLOCK: u8 = 2;

/// Largest hook event read (a `Write` carries the whole file; the gateway takes drafts up to 256 KiB).
pub const MAX_EVENT: usize = 1 << 20;

/// The only event this hook answers.
pub const PRE_TOOL_USE: &str = "PreToolUse";

/// Why a hook event is refused. The call is blocked and nothing is submitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// Not one strict JSON value (duplicate keys, lossy numbers, trailing data, not UTF-8).
    #[error("the hook event is not strict JSON ({0})")]
    Malformed(String),
    /// The JSON value is not an object.
    #[error("the hook event is not a JSON object")]
    NotObject,
    /// Another event than PreToolUse (or none).
    #[error("the hook event is {0}, not PreToolUse; configure this hook under \"PreToolUse\" only")]
    NotPreToolUse(String),
    /// A field the hook needs is missing or has the wrong type.
    #[error("the hook event has no {0}")]
    Missing(&'static str),
    /// A field the hook uses has the wrong type.
    #[error("the hook event's {0} is not a string")]
    NotString(&'static str),
}

/// The part of a PreToolUse event the hook uses; other fields are ignored (newer versions add more).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The tool, by Claude Code's name for it.
    pub tool_name: String,
    /// Its input, exactly as the model proposed it.
    pub tool_input: Map<String, Value>,
    /// The working directory the call happens in.
    pub cwd: Option<String>,
}

/// A hostile string for a message: quoted with escapes, and cut short.
fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

impl Event {
    /// Parse stdin's bytes strictly (I-JSON: a duplicate key could mean one tool to the hook and another to
    /// the agent), and check that it is a PreToolUse event with a tool name and an input object.
    pub fn parse(bytes: &[u8]) -> Result<Event, EventError> {
        let value =
            countersign_protocol::ijson::parse(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        let Value::Object(mut event) = value else {
            return Err(EventError::NotObject);
        };
        match event.get("hook_event_name") {
            Some(Value::String(name)) if name == PRE_TOOL_USE => {}
            Some(Value::String(name)) => return Err(EventError::NotPreToolUse(quoted(name))),
            Some(other) => return Err(EventError::NotPreToolUse(quoted(&other.to_string()))),
            None => return Err(EventError::NotPreToolUse("unnamed".into())),
        }
        let tool_name = match event.remove("tool_name") {
            Some(Value::String(t)) if !t.trim().is_empty() => t,
            _ => return Err(EventError::Missing("tool_name (a non-empty string)")),
        };
        let tool_input = match event.remove("tool_input") {
            Some(Value::Object(input)) => input,
            _ => return Err(EventError::Missing("tool_input (an object)")),
        };
        let cwd = match event.remove("cwd") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c),
            Some(_) => return Err(EventError::NotString("cwd")),
        };
        Ok(Event { tool_name, tool_input, cwd })
    }
}

/// The draft for an event: [`crate::draft::draft`] with the `cwd` as the action's target, and a lifetime no
/// longer than the hook waits (`[approval] ttl_s` if shorter, else `[hook] max_wait_s`).
pub fn draft(loaded: &Loaded, event: &Event) -> StepUpDraft {
    let c = &loaded.config;
    let ttl = c.approval.ttl_s.map_or(c.hook.max_wait_s, |t| t.min(c.hook.max_wait_s));
    let mut d = crate::draft::draft(loaded, &event.tool_name, event.tool_input.clone(), None, Some(ttl));
    for action in &mut d.actions {
        action.target = event.cwd.clone();
    }
    d
}

/// What the hook answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Exit 0 with this decision JSON on stdout.
    Allow(Value),
    /// Exit 2 with this reason on stderr.
    Block(String),
}

fn blocked(why: impl std::fmt::Display) -> Answer {
    Answer::Block(format!("Countersign blocked this tool call: {why}. Nothing was approved."))
}

/// The PreToolUse decision that lets the call run with `input`.
pub fn allow(input: Map<String, Value>, reason: String) -> Value {
    json!({"hookSpecificOutput": {
        "hookEventName": PRE_TOOL_USE,
        "permissionDecision": "allow",
        "permissionDecisionReason": reason,
        "updatedInput": Value::Object(input),
    }})
}

/// Decide one event at the gateway: allowed by policy, approved by humans within `[hook] max_wait_s`, or
/// blocked. A call still held at the deadline is withdrawn at the gateway.
pub async fn decide(loaded: &Loaded, event: &Event) -> Answer {
    let gw = match Gateway::new(
        loaded.gateway.clone(),
        loaded.agent_token.clone(),
        loaded.system_token.clone(),
        Duration::from_millis(loaded.config.gateway.timeout_ms),
    ) {
        Ok(gw) => gw,
        Err(e) => return blocked(e),
    };
    let hold = Hold {
        every: Duration::from_secs(MAX_WAIT_S),
        max_wait: Some(Duration::from_secs(loaded.config.hook.max_wait_s)),
    };
    match enforce(&gw, &draft(loaded, event), hold, |_| {}, &CancellationToken::new()).await {
        Outcome::Forward { id, approved_by_people, args } => {
            let reason = if approved_by_people {
                format!("Countersign: approved by the required approvers (request {id})")
            } else {
                format!("Countersign: allowed by the policy (request {id})")
            };
            Answer::Allow(allow(args, reason))
        }
        Outcome::Refuse(r) => Answer::Block(r.text().to_owned()),
        // Nothing cancels the hook's token; should it happen, nothing was approved.
        Outcome::Withdrawn => blocked("the request was withdrawn"),
    }
}

/// Read the event, load the config, decide. Any failure is a [`Answer::Block`].
fn answer(config: &Path) -> Answer {
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(MAX_EVENT as u64 + 1).read_to_end(&mut bytes) {
        return blocked(format_args!("the hook event could not be read ({e})"));
    }
    if bytes.len() > MAX_EVENT {
        return blocked(format_args!("the hook event is larger than {MAX_EVENT} bytes"));
    }
    let event = match Event::parse(&bytes) {
        Ok(e) => e,
        Err(e) => return blocked(e),
    };
    let loaded = match config::load(config, &|name| std::env::var(name).ok()) {
        Ok(l) => l,
        Err(e) => return blocked(e),
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt.block_on(decide(&loaded, &event)),
        Err(e) => blocked(format_args!("the hook cannot start ({e})")),
    }
}

fn block(reason: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{reason}");
    ExitCode::from(BLOCK)
}

/// Run the hook on stdin and stdout. Exit 0 only with an allow written in full; everything else exits 2,
/// panics included (the workspace must keep `panic = "unwind"` for that).
pub fn claude_code(config: &Path) -> ExitCode {
    let answer = std::panic::catch_unwind(AssertUnwindSafe(|| answer(config)))
        .unwrap_or_else(|_| blocked("the hook failed unexpectedly"));
    match answer {
        Answer::Allow(decision) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{decision}").and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => block(&format!(
                    "Countersign blocked this tool call: the hook could not write its answer ({e})."
                )),
            }
        }
        Answer::Block(reason) => block(&reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use countersign_protocol::{DataClass, Principal};

    fn event(extra: &str) -> String {
        format!(
            r#"{{"session_id":"s1","transcript_path":"/tmp/t.jsonl","cwd":"/home/jo/repo","permission_mode":"default",
            "hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{{"command":"ls","timeout":120000}},
            "tool_use_id":"toolu_1"{extra}}}"#
        )
    }

    #[test]
    fn a_pre_tool_use_event_parses_and_unknown_fields_are_ignored() {
        let e =
            Event::parse(event(r#","prompt_id":"p","effort":{"level":"high"}"#).as_bytes()).expect("parses");
        assert_eq!(e.tool_name, "Bash");
        assert_eq!(Value::Object(e.tool_input), json!({"command": "ls", "timeout": 120000}));
        assert_eq!(e.cwd.as_deref(), Some("/home/jo/repo"));
    }

    /// The variant's name, for tables of expected refusals.
    fn kind(e: &EventError) -> &'static str {
        match e {
            EventError::Malformed(_) => "malformed",
            EventError::NotObject => "not an object",
            EventError::NotPreToolUse(_) => "not PreToolUse",
            EventError::Missing(_) => "missing",
            EventError::NotString(_) => "not a string",
        }
    }

    #[test]
    fn events_the_hook_cannot_trust_are_refused() {
        let swap = |from: &str, to: &str| event("").replacen(from, to, 1);
        let cases = [
            ("not json".to_owned(), "malformed"),
            (event(r#","tool_name":"Read""#), "malformed"),
            (swap(r#""command":"ls""#, r#""command":"ls","command":"rm -rf /""#), "malformed"),
            (format!("{} {{}}", event("")), "malformed"),
            ("[1]".to_owned(), "not an object"),
            (swap("PreToolUse", "PostToolUse"), "not PreToolUse"),
            (swap(r#""hook_event_name":"PreToolUse","#, ""), "not PreToolUse"),
            (swap(r#""PreToolUse""#, "7"), "not PreToolUse"),
            (swap(r#""tool_name":"Bash","#, ""), "missing"),
            (swap(r#""Bash""#, r#""  ""#), "missing"),
            (swap(r#"{"command":"ls","timeout":120000}"#, r#""ls""#), "missing"),
            (swap(r#""/home/jo/repo""#, "[]"), "not a string"),
        ];
        for (text, expected) in cases {
            let got = Event::parse(text.as_bytes()).expect_err(&text);
            assert_eq!(kind(&got), expected, "{text}: {got:?}");
        }
        let post = Event::parse(swap("PreToolUse", "PostToolUse").as_bytes()).expect_err("refused");
        assert_eq!(post, EventError::NotPreToolUse("\"PostToolUse\"".into()), "the name, quoted");
        let cwd = Event::parse(swap(r#""/home/jo/repo""#, "[]").as_bytes()).expect_err("refused");
        assert_eq!(cwd, EventError::NotString("cwd"));
    }

    #[test]
    fn a_hostile_event_name_is_quoted_and_cut() {
        let name = format!("Pre\u{202E}\n{}", "x".repeat(200));
        let e = Event::parse(event("").replacen("PreToolUse", &name.replace('\n', "\\n"), 1).as_bytes());
        let text = e.expect_err("refused").to_string();
        assert!(text.contains("\\u{202e}\\n") && text.contains('…'), "{text}");
        assert!(!text.contains(&"x".repeat(70)), "cut short: {text}");
    }

    fn loaded(extra: &str) -> Loaded {
        let text = format!(
            r#"[gateway]
url = "http://127.0.0.1:1"
[agent]
workload = "spiffe://acme.example/claude"
display = "Claude Code"
[target]
system = "laptop"
environment = "dev"
[purpose]
code = "code"
statement = "Fix the build"
[tools.Bash]
class = "internal"
reversible = false
operation = "run a shell command"
{extra}"#
        );
        let config = Config::parse(&text, Path::new("c.toml")).expect("config");
        Loaded {
            gateway: config.validate().expect("valid"),
            config,
            agent_token: "csa_x".into(),
            system_token: "cst_x".into(),
            on_behalf_of: vec![Principal { sub: "jo".into(), display: "Jo".into() }],
        }
    }

    #[test]
    fn the_draft_carries_the_input_exactly_the_cwd_as_target_and_a_bounded_lifetime() {
        let e = Event::parse(event("").as_bytes()).expect("parses");
        let d = draft(&loaded("[hook]\nmax_wait_s = 90\n"), &e);
        let a = &d.actions[0];
        assert_eq!((a.tool.as_str(), &a.args), ("Bash", &e.tool_input));
        assert_eq!(a.target.as_deref(), Some("/home/jo/repo"));
        assert_eq!(a.operation.as_deref(), Some("run a shell command"));
        assert_eq!(d.data.class, DataClass::Internal, "the risk of [tools.Bash]");
        assert_eq!(d.ttl_s, Some(90), "no longer than the hook waits");
        let d = draft(&loaded("[approval]\nttl_s = 30\n[hook]\nmax_wait_s = 90\n"), &e);
        assert_eq!(d.ttl_s, Some(30), "a shorter configured lifetime stays");
        let d = draft(&loaded("[approval]\nttl_s = 900\n[hook]\nmax_wait_s = 90\n"), &e);
        assert_eq!(d.ttl_s, Some(90), "a longer one is cut to the wait");
        let other = Event { tool_name: "mcp__github__merge".into(), ..e };
        let d = draft(&loaded(""), &other);
        assert_eq!(d.data.class, DataClass::Restricted, "a tool the config does not name: [defaults]");
        assert!(!d.actions[0].reversible);
    }

    #[test]
    fn an_allow_names_the_input_to_run() {
        let input = json!({"file_path": "/a", "content": "x"}).as_object().cloned().expect("object");
        let v = allow(input.clone(), "because".into());
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "allow");
        assert_eq!(v["hookSpecificOutput"]["permissionDecisionReason"], "because");
        assert_eq!(v["hookSpecificOutput"]["updatedInput"], Value::Object(input));
    }
}
