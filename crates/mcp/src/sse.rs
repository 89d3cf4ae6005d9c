//! Server-sent events for the HTTP mode: framing the proxy's own messages, relaying the server's stream.

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::messages;

/// One JSON-RPC message as an SSE `message` event (JSON has no raw newlines, so one `data:` line).
pub fn event(message: &str) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
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
}
