//! The JSON-RPC messages the proxy reads or writes itself; every other message passes through untouched.

use rmcp::model::{CallToolResult, ContentBlock, ToolAnnotations};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The MCP method the proxy holds.
pub const TOOLS_CALL: &str = "tools/call";
/// The MCP method whose answers tell the proxy each tool's hints.
pub const TOOLS_LIST: &str = "tools/list";
/// The notification by which a client abandons a request.
pub const CANCELLED: &str = "notifications/cancelled";

/// JSON-RPC: the request is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the parameters are invalid.
pub const INVALID_PARAMS: i64 = -32602;

/// A request id as a map key: its JSON text after parsing (`"7"` and `7` differ, as in JSON-RPC).
pub type IdKey = String;

/// The key of a JSON-RPC id.
pub fn id_key(id: &Value) -> IdKey {
    id.to_string()
}

/// The envelope of one message, as far as routing needs it.
#[derive(Debug, Default, Deserialize)]
pub struct Head {
    /// The request id (absent for notifications).
    #[serde(default)]
    pub id: Option<Value>,
    /// The method (absent for responses).
    #[serde(default)]
    pub method: Option<String>,
}

/// Read the envelope of a server's message leniently; `None` for anything that is not a JSON object.
pub fn head(bytes: &[u8]) -> Option<Head> {
    serde_json::from_slice(bytes).ok()
}

/// A `tools/call` request, with everything needed to forward it later.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The client's request id, echoed in the answer.
    pub id: Value,
    /// The tool's exact name.
    pub name: String,
    /// The arguments as the agent proposed them.
    pub arguments: Map<String, Value>,
    /// The client's progress token, if it asked for progress.
    pub progress_token: Option<Value>,
    /// The whole message, to forward with the approved arguments in place of these.
    pub message: Map<String, Value>,
}

/// Parse a `tools/call` request. The error is the id and the text of a JSON-RPC "invalid params" answer.
pub fn tool_call(message: Map<String, Value>) -> Result<ToolCall, (Value, String)> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let params = message
        .get("params")
        .and_then(Value::as_object)
        .ok_or((id.clone(), "params must be an object".into()))?;
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or((id.clone(), "params.name must be a string".into()))?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err((id, "params.arguments must be an object".into())),
    };
    let progress_token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
        .cloned();
    let name = name.to_owned();
    Ok(ToolCall { id, name, arguments, progress_token, message })
}

/// Names a case-folding server could read from a look-alike key: the JSON-RPC envelope's, and the ones in
/// `params` that say which tool runs with what.
const ENVELOPE: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];
const PARAMS: [&str; 4] = ["name", "arguments", "_meta", "task"];

/// A key as case-insensitive JSON readers match it to a field: ASCII case folded, and the four non-ASCII
/// letters whose simple case mapping is ASCII: `ſ` (U+017F) as `s` and the Kelvin sign (U+212A) as `k` (Go's
/// `encoding/json`), dotless `ı` (U+0131) and `İ` (U+0130) as `i` (.NET's ordinal ignore-case).
fn fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            '\u{130}' | '\u{131}' => 'i',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn look_alike_in(object: &Map<String, Value>, names: &[&str]) -> Option<String> {
    object.keys().find(|k| names.iter().any(|n| k.as_str() != *n && fold(k) == *n)).cloned()
}

/// The first key of a message (or of any message in a batch) that is not an envelope or `params` name but
/// folds to one, like `Method` or `paramſ`. Servers on Go's `encoding/json` (mcp-go, go-sdk before
/// CVE-2026-27896) or on case-insensitive .NET options read `{"method":"ping","Method":"tools/call"}` as a
/// tool call; such a message is refused.
pub fn look_alike_key(message: &Value) -> Option<String> {
    match message {
        Value::Array(items) => items.iter().find_map(look_alike_key),
        Value::Object(m) => look_alike_in(m, &ENVELOPE)
            .or_else(|| m.get("params").and_then(Value::as_object).and_then(|p| look_alike_in(p, &PARAMS))),
        _ => None,
    }
}

/// Why a message with a look-alike key is refused.
pub fn look_alike_refusal(key: &str) -> String {
    format!("Countersign refused this message: its key {key:?} is not a JSON-RPC or MCP name but reads as one to some servers")
}

/// The ids of the requests in a message or a batch (answers and notifications have none to answer).
pub fn request_ids(message: &Value) -> Vec<Value> {
    let items = match message {
        Value::Array(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    items.iter().filter_map(|m| m.get("id").filter(|i| !i.is_null()).cloned()).collect()
}

/// Whether a message is a `tools/call` request (or looks like one: held either way).
pub fn is_tool_call(message: &Value) -> bool {
    message.get("method").and_then(Value::as_str) == Some(TOOLS_CALL)
}

impl ToolCall {
    /// The message to send the server: this call with `arguments` in place of the agent's. Nothing else changes.
    pub fn with_arguments(&self, arguments: Map<String, Value>) -> String {
        let mut message = self.message.clone();
        if let Some(Value::Object(params)) = message.get_mut("params") {
            params.insert("arguments".into(), Value::Object(arguments));
        }
        Value::Object(message).to_string()
    }
}

/// The request id a `notifications/cancelled` names, if it is one.
pub fn cancelled_id(message: &Map<String, Value>) -> Option<Value> {
    message.get("params")?.get("requestId").filter(|v| !v.is_null()).cloned()
}

/// The tools and hints in a `tools/list` answer; tools without readable hints are left out.
pub fn listed_hints(bytes: &[u8]) -> Vec<(String, ToolAnnotations)> {
    #[derive(Deserialize)]
    struct Tool {
        name: String,
        #[serde(default)]
        annotations: Option<Value>,
    }
    #[derive(Deserialize)]
    struct ToolsResult {
        #[serde(default)]
        tools: Vec<Value>,
    }
    #[derive(Deserialize)]
    struct Answer {
        result: Option<ToolsResult>,
    }
    let Ok(Answer { result: Some(r) }) = serde_json::from_slice::<Answer>(bytes) else { return Vec::new() };
    r.tools
        .into_iter()
        .filter_map(|t| serde_json::from_value::<Tool>(t).ok())
        .filter_map(|t| Some((t.name, serde_json::from_value::<ToolAnnotations>(t.annotations?).ok()?)))
        .collect()
}

/// A tool result with `isError: true`: the model reads `text` (a refusal is not a transport error).
pub fn tool_error(id: &Value, text: &str) -> String {
    let result = CallToolResult::error(vec![ContentBlock::text(text)]);
    json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// A JSON-RPC error answer.
pub fn rpc_error(id: &Value, code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// A progress notification for a held call.
pub fn progress(token: &Value, progress: u64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "method": "notifications/progress",
        "params": {"progressToken": token, "progress": progress, "message": message}})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn a_call_is_forwarded_with_only_its_arguments_replaced() {
        let text = r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"progressToken":7},"extra":{"x":1}}}"#;
        let call = tool_call(obj(text)).unwrap();
        assert_eq!(
            (call.name.as_str(), call.id.clone(), call.progress_token.clone()),
            ("echo", json!("a-1"), Some(json!(7)))
        );
        let out: Value = serde_json::from_str(
            &call.with_arguments(json!({"message": "approved"}).as_object().unwrap().clone()),
        )
        .unwrap();
        let mut want: Value = serde_json::from_str(text).unwrap();
        want["params"]["arguments"] = json!({"message": "approved"});
        assert_eq!(out, want);
    }

    #[test]
    fn malformed_calls_are_refused_with_their_id() {
        for (text, why) in [
            (r#"{"id":1,"method":"tools/call"}"#, "params must be an object"),
            (r#"{"id":1,"method":"tools/call","params":{"name":3}}"#, "params.name must be a string"),
            (
                r#"{"id":1,"method":"tools/call","params":{"name":"x","arguments":[1]}}"#,
                "params.arguments must be an object",
            ),
        ] {
            let (id, message) = tool_call(obj(text)).unwrap_err();
            assert_eq!((id, message.as_str()), (json!(1), why));
        }
        let ok = tool_call(obj(
            r#"{"id":2,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":1.5}}}"#,
        ))
        .unwrap();
        assert!(
            ok.arguments.is_empty() && ok.progress_token.is_none(),
            "no arguments is none; a float token is not a token"
        );
    }

    #[test]
    fn heads_cancellations_and_hints_are_read_leniently() {
        assert!(head(b"[1,2]").is_none(), "a batch is not one message");
        let h = head(br#"{"jsonrpc":"2.0","method":"ping","id":null}"#).unwrap();
        assert_eq!((h.id, h.method.as_deref()), (None, Some("ping")));
        assert_eq!(
            cancelled_id(&obj(r#"{"method":"notifications/cancelled","params":{"requestId":"x"}}"#)),
            Some(json!("x"))
        );
        assert_eq!(cancelled_id(&obj(r#"{"method":"notifications/cancelled"}"#)), None);
        let listed = listed_hints(
            br#"{"id":1,"result":{"tools":[{"name":"a","annotations":{"destructiveHint":true}},{"name":"b"},{"nope":1},{"name":"c","annotations":{"destructiveHint":"yes"}}]}}"#,
        );
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].1.destructive_hint), ("a", Some(true)));
    }

    #[test]
    fn keys_a_case_folding_server_would_read_as_the_envelope_are_found() {
        for (text, key) in [
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}"#, "Method"),
            (r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}"#, "METHOD"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping","param\u017f":{}}"#, "param\u{17F}"),
            (r#"{"id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}"#, "Name"),
            (
                r#"{"id":1,"method":"tools/call","params":{"name":"a","argument\u017f":{}}}"#,
                "argument\u{17F}",
            ),
            (r#"[{"method":"ping"},{"Id":2,"method":"ping"}]"#, "Id"),
            (r#"{"id":1,"\u0131d":2,"method":"ping"}"#, "\u{131}d"),
            (r#"{"id":1,"method":"tools/call","params":{"name":"a","tas\u212a":{}}}"#, "tas\u{212A}"),
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(look_alike_key(&v).as_deref(), Some(key), "{text}");
        }
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"Name":"x","ARGUMENTS":1}}}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":{"names":1,"uri":"u"},"extra":{"Method":1}}"#,
            r#"[1,"Method"]"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(look_alike_key(&v), None, "only the envelope and params are looked at: {text}");
        }
    }

    #[test]
    fn refusals_are_tool_results_the_model_reads() {
        let v: Value = serde_json::from_str(&tool_error(&json!(3), "denied: <b>no</b>")).unwrap();
        assert_eq!(v["result"]["isError"], json!(true));
        assert_eq!(v["result"]["content"][0], json!({"type": "text", "text": "denied: <b>no</b>"}));
        assert_eq!(v["id"], json!(3));
    }
}
