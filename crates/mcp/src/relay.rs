//! The message router of a line-based relay: client ⇄ server untouched, except the tool calls it holds.
//!
//! Every message from the client is parsed strictly (I-JSON: no duplicate keys, no lossy numbers) before it
//! is routed, so the proxy and the server can never read two different messages from the same bytes; one it
//! cannot parse strictly is refused, never passed on. A `tools/call` goes to the gateway and reaches the
//! server only with the arguments the gateway returns for its grant. Everything else passes byte for byte.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::enforce::Outcome;
use crate::guard::Guard;
use crate::messages::{
    self, id_key, IdKey, ToolCall, CANCELLED, INVALID_PARAMS, INVALID_REQUEST, TOOLS_CALL, TOOLS_LIST,
};

/// Where a relay writes: one message per item, without its line ending.
pub type Out = UnboundedSender<Vec<u8>>;

#[derive(Debug, Default)]
struct State {
    /// Calls held at the gateway, by the client's request id: each hold's serial and its cancel token.
    held: HashMap<IdKey, (u64, CancellationToken)>,
    /// The serial of the next hold. A client may reuse a cancelled call's id at once; the serial tells the
    /// cancelled call's task, when it ends, that the entry is now another call's and not its own to remove.
    serial: u64,
    /// Ids of `tools/list` requests whose answers have not come back yet.
    listing: HashSet<IdKey>,
}

/// Routes one client's session with one server.
#[derive(Debug)]
pub struct Relay {
    guard: Arc<Guard>,
    to_server: Out,
    to_client: Out,
    state: Mutex<State>,
}

impl Relay {
    /// A relay writing to these two outputs.
    pub fn new(guard: Arc<Guard>, to_server: Out, to_client: Out) -> Arc<Self> {
        Arc::new(Relay { guard, to_server, to_client, state: Mutex::new(State::default()) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, text: String) {
        let _ = self.to_client.send(text.into_bytes());
    }

    /// A message from the client.
    pub fn from_client(self: &Arc<Self>, bytes: Vec<u8>) {
        let value = match countersign_protocol::ijson::parse(&bytes) {
            Ok(v) => v,
            Err(e) => {
                let id = messages::head(&bytes).and_then(|h| h.id);
                tracing::warn!(error = ?e.to_string(), "refused a message that does not parse strictly");
                if let Some(id) = id {
                    self.answer(messages::rpc_error(
                        &id,
                        INVALID_REQUEST,
                        &format!("Countersign refused this message: it is not strict JSON ({e})"),
                    ));
                }
                return;
            }
        };
        if let Some(key) = messages::look_alike_key(&value) {
            tracing::warn!(key = ?key, "refused a message with a look-alike key");
            for id in messages::request_ids(&value) {
                self.answer(messages::rpc_error(&id, INVALID_REQUEST, &messages::look_alike_refusal(&key)));
            }
            return;
        }
        // A raw `\r` in a strictly parsed message can only be whitespace between tokens, but a server that
        // reads its stdin with universal newlines (the MCP Python SDK's `stdio_server`) ends a line there and
        // would read the pieces as separate messages: `{"method":"ping","x":\r{…tools/call…}\r}` is one ping
        // here and an unapproved tool call there. A space means the same to JSON and ends no line.
        let bytes: Vec<u8> = bytes.into_iter().map(|b| if b == b'\r' { b' ' } else { b }).collect();
        match value {
            Value::Array(items) if items.iter().any(messages::is_tool_call) => {
                // A batch (JSON-RPC 2.0, MCP 2025-03-26) holding a tool call: refused whole, each request answered.
                for item in &items {
                    if let Some(id) = item.get("id").filter(|i| !i.is_null()) {
                        self.answer(messages::rpc_error(
                            id,
                            INVALID_REQUEST,
                            "Countersign does not relay tools/call inside a batch; send it alone",
                        ));
                    }
                }
            }
            Value::Object(m) => self.route(m, bytes),
            _ => {
                let _ = self.to_server.send(bytes);
            }
        }
    }

    fn route(self: &Arc<Self>, m: Map<String, Value>, bytes: Vec<u8>) {
        let method = m.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
        let id = m.get("id").filter(|i| !i.is_null()).cloned();
        match (method.as_str(), id) {
            (TOOLS_CALL, None) => {
                tracing::warn!("dropped a tools/call without an id (a notification is never forwarded)")
            }
            (TOOLS_CALL, Some(_)) => match messages::tool_call(m) {
                Ok(call) => self.hold(call),
                Err((id, why)) => self.answer(messages::rpc_error(&id, INVALID_PARAMS, &why)),
            },
            (CANCELLED, _) => {
                let mut state = self.state();
                match messages::cancelled_id(&m)
                    .and_then(|id| state.held.remove(&id_key(&id)))
                    .map(|(_, t)| t)
                {
                    // Held here: the server never saw it. Withdrawn at the gateway; nobody answers it.
                    Some(token) => token.cancel(),
                    None => {
                        let _ = self.to_server.send(bytes);
                    }
                }
            }
            (TOOLS_LIST, Some(id)) => {
                self.state().listing.insert(id_key(&id));
                let _ = self.to_server.send(bytes);
            }
            _ => {
                let _ = self.to_server.send(bytes);
            }
        }
    }

    fn hold(self: &Arc<Self>, call: ToolCall) {
        let key = id_key(&call.id);
        let cancel = CancellationToken::new();
        let serial = {
            let mut state = self.state();
            if state.held.contains_key(&key) {
                drop(state);
                self.answer(messages::rpc_error(
                    &call.id,
                    INVALID_REQUEST,
                    "a call with this id is already waiting for approval",
                ));
                return;
            }
            state.serial += 1;
            let serial = state.serial;
            state.held.insert(key.clone(), (serial, cancel.clone()));
            serial
        };
        let relay = Arc::clone(self);
        tokio::spawn(async move {
            let mut step = 0;
            let token = call.progress_token.clone();
            let to_client = relay.to_client.clone();
            let progress = |w: &crate::enforce::Waiting| {
                if let Some(t) = &token {
                    step += 1;
                    let _ = to_client.send(messages::progress(t, step, &w.message()).into_bytes());
                }
            };
            let outcome = relay.guard.decide(&call, progress, &cancel).await;
            // Removed and sent under one lock: a cancellation that comes after is passed to the server, in order.
            let mut state = relay.state();
            let was_held = state.held.get(&key).is_some_and(|(s, _)| *s == serial);
            if was_held {
                state.held.remove(&key);
            }
            match outcome {
                Outcome::Forward { args, .. } if was_held => {
                    tracing::info!(tool = ?call.name, "approved tool call forwarded");
                    let _ = relay.to_server.send(call.with_arguments(args).into_bytes());
                }
                Outcome::Refuse(r) if was_held => relay.answer(messages::tool_error(&call.id, r.text())),
                // Cancelled by the client meanwhile: no answer, nothing forwarded.
                _ => {}
            }
        });
    }

    /// A message from the server: passed on as it is; `tools/list` answers teach the guard each tool's hints.
    pub fn from_server(&self, bytes: Vec<u8>) {
        if let Some(h) = messages::head(&bytes).filter(|h| h.method.is_none()) {
            let listed = h.id.is_some_and(|id| self.state().listing.remove(&id_key(&id)));
            if listed {
                self.guard.learn(messages::listed_hints(&bytes));
            }
        }
        let _ = self.to_client.send(bytes);
    }

    /// The client is gone: withdraw every held call, waiting at most `grace` for the gateway.
    pub async fn close(&self, grace: Duration) {
        let tokens: Vec<CancellationToken> = self.state().held.values().map(|(_, t)| t.clone()).collect();
        tokens.iter().for_each(CancellationToken::cancel);
        let until = tokio::time::Instant::now() + grace;
        while !self.state().held.is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
