//! Server-sent events for the HTTP mode: framing the proxy's own messages, relaying the server's stream.

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::messages;

/// One JSON-RPC message as an SSE `message` event. The proxy's own messages have no raw line breaks, but a
/// server's JSON answer relayed here may (pretty-printed, or hostile: `}\n\ndata: {…}` would end the event
/// early and start another), so each line gets its own `data:` field and the client reads one message back.
pub fn event(message: &str) -> Bytes {
    let mut out = String::from("event: message\n");
    let body = message.trim_end_matches(['\r', '\n']);
    for line in body.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The `data` of every event in a complete SSE body.
pub async fn data_of(body: &[u8]) -> Vec<Vec<u8>> {
    use eventsource_stream::Eventsource;
    let chunk = Bytes::copy_from_slice(body);
    futures::stream::once(async move { Ok::<Bytes, std::io::Error>(chunk) })
        .eventsource()
        .filter_map(|e| async move { e.ok().map(|e| e.data.into_bytes()) })
        .collect()
        .await
}

/// Relay the server's answer to an approved call into the client's SSE stream: an SSE answer chunk by
/// chunk, a JSON answer as one event, an HTTP error as a JSON-RPC error for the call.
pub async fn pipe(r: reqwest::Response, id: &Value, tx: &UnboundedSender<Result<Bytes, std::io::Error>>) {
    let status = r.status();
    let is_sse = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !status.is_success() {
        let text = format!("the MCP server answered the approved call with HTTP {status}");
        let _ = tx.send(Ok(event(&messages::rpc_error(id, -32603, &text))));
        return;
    }
    if is_sse {
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            if tx.send(chunk.map_err(std::io::Error::other)).is_err() {
                return;
            }
        }
    } else {
        match r.bytes().await {
            Ok(b) => {
                let _ = tx.send(Ok(event(&String::from_utf8_lossy(&b))));
            }
            Err(e) => {
                let text = format!("the MCP server's answer was cut off: {}", e.without_url());
                let _ = tx.send(Ok(event(&messages::rpc_error(id, -32603, &text))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_frame_and_parse_back() {
        let mut body = event(r#"{"a":1}"#).to_vec();
        body.extend_from_slice(b": comment\nid: 7\nevent: message\ndata: {\"b\":\ndata: 2}\n\n");
        assert_eq!(data_of(&body).await, vec![br#"{"a":1}"#.to_vec(), b"{\"b\":\n2}".to_vec()]);
    }

    #[tokio::test]
    async fn a_servers_line_breaks_stay_inside_its_one_event() {
        // A server's JSON answer relayed as an event: pretty-printed, or with lines that look like SSE fields.
        let answer =
            "{\"jsonrpc\": \"2.0\",\r\n \"id\": 1,\r \"result\": {}}\n\ndata: {\"id\":2,\"result\":{}}\n";
        let got = data_of(&event(answer)).await;
        assert_eq!(got.len(), 1, "one event: {got:?}");
        let want = answer.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(String::from_utf8_lossy(&got[0]), want.trim_end_matches('\n'));
    }
}
