//! `countersign-mcp http`: a streamable-HTTP reverse proxy in front of an MCP server, holding tool calls.
//!
//! POST bodies are parsed strictly (I-JSON) before they are routed, as in stdio. A `tools/call` is answered
//! by the proxy: an SSE stream carrying progress while the call is held, then the server's answer to the
//! approved call (or the refusal); a client that accepts only JSON gets one JSON answer at the end. Everything
//! else — other POSTs, the GET stream, DELETE — is relayed with its headers, its body streamed untouched.
//! A held call whose client goes away (its connection closed, or `notifications/cancelled`) is withdrawn.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Loaded;
use crate::enforce::Outcome;
use crate::guard::Guard;
use crate::messages::{
    self, id_key, IdKey, ToolCall, CANCELLED, INVALID_PARAMS, INVALID_REQUEST, TOOLS_CALL, TOOLS_LIST,
};
use crate::sse;

/// Request headers relayed to the server (everything else, hop-by-hop headers included, stays here; a body's
/// `content-type` is always `application/json`, see [`Shared::send`]).
const REQUEST_HEADERS: [&str; 6] =
    ["accept", "content-type", "authorization", "mcp-session-id", "mcp-protocol-version", "last-event-id"];
/// Response headers relayed to the client.
const RESPONSE_HEADERS: [&str; 3] = ["content-type", "mcp-session-id", "cache-control"];

type Chunks = mpsc::UnboundedSender<Result<Bytes, std::io::Error>>;

#[derive(Debug)]
struct Shared {
    guard: Arc<Guard>,
    upstream: Url,
    http: reqwest::Client,
    /// Held calls by (session, request id): each hold's serial and its cancel token. The serial keeps a
    /// cancelled call's task from removing the entry of a newer call that reused its id.
    held: Mutex<HashMap<(String, IdKey), (u64, CancellationToken)>>,
    /// The serial of the last hold.
    serial: std::sync::atomic::AtomicU64,
    /// Listening beyond loopback (`--public`): the `Host` check is the operator's own front's job.
    public: bool,
}

/// Serve until interrupted. Prints `countersign-mcp listening on URL` on stdout once bound.
pub async fn run(loaded: Loaded, listen: SocketAddr, upstream: Url, public: bool) -> anyhow::Result<i32> {
    if !listen.ip().is_loopback() && !public {
        anyhow::bail!(
            "refusing to listen on {listen}: whoever reaches it acts as this agent; use a loopback address, or --public \
             behind your own authentication"
        );
    }
    if !matches!(upstream.scheme(), "http" | "https") {
        anyhow::bail!("--upstream must be an http(s) URL");
    }
    let guard = Guard::new(loaded)?;
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let shared = Arc::new(Shared {
        public,
        guard,
        upstream: upstream.clone(),
        http,
        held: Mutex::new(HashMap::new()),
        serial: std::sync::atomic::AtomicU64::new(0),
    });
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("countersign-mcp listening on http://{addr}{}", upstream.path());
    let app = axum::Router::new().fallback(handle).with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(0)
}

fn refuse(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text.to_owned()).into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A browser page must not reach the proxy through DNS rebinding: an `Origin` must be this machine.
fn local_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    origin.to_str().ok().and_then(|o| Url::parse(o).ok()).is_some_and(|u| is_local(&u))
}

/// The same for `Host`: a rebinding page's same-origin GET carries no `Origin`, but its `Host` is the page's name.
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else { return true };
    host.to_str().ok().and_then(|h| Url::parse(&format!("http://{h}/")).ok()).is_some_and(|u| is_local(&u))
}

fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() != s.upstream.path() {
        return refuse(StatusCode::NOT_FOUND, &format!("the MCP endpoint is {}", s.upstream.path()));
    }
    if !local_origin(&headers) {
        return refuse(StatusCode::FORBIDDEN, "requests from web pages of other origins are refused");
    }
    if !s.public && !local_host(&headers) {
        return refuse(StatusCode::FORBIDDEN, "requests naming another host are refused (DNS rebinding)");
    }
    match method {
        Method::POST => post(&s, &headers, body).await,
        Method::GET | Method::DELETE => match s.send(method, &headers, None).await {
            Ok(r) => relay(r),
            Err(e) => unreachable_server(e),
        },
        _ => refuse(StatusCode::METHOD_NOT_ALLOWED, "the MCP endpoint takes POST, GET and DELETE"),
    }
}

fn unreachable_server(e: reqwest::Error) -> Response {
    refuse(StatusCode::BAD_GATEWAY, &format!("the MCP server could not be reached: {}", e.without_url()))
}

/// Whether a POST says its body is JSON. The proxy forwards every body as `application/json`, so it refuses
/// what the server would: above all a web page's `text/plain` POST, which a browser sends without a preflight.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    v.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json")
}

async fn post(s: &Arc<Shared>, headers: &HeaderMap, body: Bytes) -> Response {
    if !is_json(headers) {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the MCP endpoint takes application/json");
    }
    let value = match countersign_protocol::ijson::parse(&body) {
        Ok(v) => v,
        Err(e) => {
            let id = messages::head(&body).and_then(|h| h.id).unwrap_or(Value::Null);
            let text = format!("Countersign refused this message: it is not strict JSON ({e})");
            return json(StatusCode::BAD_REQUEST, messages::rpc_error(&id, INVALID_REQUEST, &text));
        }
    };
    if let Some(key) = messages::look_alike_key(&value) {
        let errors: Vec<String> = messages::request_ids(&value)
            .iter()
            .map(|id| messages::rpc_error(id, INVALID_REQUEST, &messages::look_alike_refusal(&key)))
            .collect();
        let body = match &value {
            Value::Array(_) => format!("[{}]", errors.join(",")),
            _ => errors.into_iter().next().unwrap_or_else(|| {
                messages::rpc_error(&Value::Null, INVALID_REQUEST, &messages::look_alike_refusal(&key))
            }),
        };
        return json(StatusCode::BAD_REQUEST, body);
    }
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let m = match value {
        Value::Array(items) if items.iter().any(messages::is_tool_call) => {
            let errors: Vec<Value> = items
                .iter()
                .filter_map(|i| i.get("id").filter(|id| !id.is_null()))
                .map(|id| {
                    let text = "Countersign does not relay tools/call inside a batch; send it alone";
                    serde_json::from_str(&messages::rpc_error(id, INVALID_REQUEST, text))
                        .unwrap_or(Value::Null)
                })
                .collect();
            return json(StatusCode::OK, Value::Array(errors).to_string());
        }
        Value::Object(m) => m,
        _ => return s.forward(headers, body).await,
    };
    let method = m.get("method").and_then(Value::as_str).unwrap_or_default();
    let id = m.get("id").filter(|i| !i.is_null()).cloned();
    match (method, id) {
        (TOOLS_CALL, None) => StatusCode::ACCEPTED.into_response(),
        (TOOLS_CALL, Some(_)) => match messages::tool_call(m) {
            Ok(call) => s.hold(session, headers, call).await,
            Err((id, why)) => json(StatusCode::OK, messages::rpc_error(&id, INVALID_PARAMS, &why)),
        },
        (CANCELLED, _) => {
            let token = messages::cancelled_id(&m).and_then(|id| {
                s.held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&(session, id_key(&id)))
                    .map(|(_, t)| t)
            });
            match token {
                Some(t) => {
                    t.cancel();
                    StatusCode::ACCEPTED.into_response()
                }
                None => s.forward(headers, body).await,
            }
        }
        (TOOLS_LIST, Some(_)) => match s.send(Method::POST, headers, Some(body)).await {
            Ok(r) => learn_and_relay(Arc::clone(&s.guard), r),
            Err(e) => unreachable_server(e),
        },
        _ => s.forward(headers, body).await,
    }
}

impl Shared {
    async fn send(
        &self,
        method: Method,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = self.http.request(method, self.upstream.clone());
        for name in REQUEST_HEADERS {
            // A body's type is the proxy's to state (below), never the client's.
            if body.is_some() && name == "content-type" {
                continue;
            }
            for v in headers.get_all(name) {
                req = req.header(name, v.as_bytes());
            }
        }
        if let Some(b) = body {
            // Every body sent here parsed as strict UTF-8 JSON. The client's `charset` must not reach the
            // server: `express.json()` decodes `charset=utf-7`, where `+ACI-` is a quote, so a ping here can
            // be a tools/call there.
            req = req.header("content-type", "application/json").body(b);
        }
        req.send().await
    }

    async fn forward(&self, headers: &HeaderMap, body: Bytes) -> Response {
        match self.send(Method::POST, headers, Some(body)).await {
            Ok(r) => relay(r),
            Err(e) => unreachable_server(e),
        }
    }

    /// Hold a call: answer with an SSE stream (progress, then the answer), or one JSON answer at the end.
    async fn hold(self: &Arc<Self>, session: String, headers: &HeaderMap, call: ToolCall) -> Response {
        let key = (session, id_key(&call.id));
        let cancel = CancellationToken::new();
        let serial = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.contains_key(&key) {
                let text = "a call with this id is already waiting for approval";
                return json(StatusCode::OK, messages::rpc_error(&call.id, INVALID_REQUEST, text));
            }
            let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            held.insert(key.clone(), (serial, cancel.clone()));
            serial
        };
        let accepts_sse = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/event-stream"));
        let task = Held {
            shared: Arc::clone(self),
            key,
            serial,
            headers: headers.clone(),
            call,
            cancel: cancel.clone(),
        };
        if accepts_sse {
            let (tx, rx) = mpsc::unbounded_channel();
            // The client closing the stream withdraws the call (the drop guard lives in the body).
            let guard = cancel.drop_guard();
            tokio::spawn(task.run(Reply::Sse(tx)));
            let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
                rx.recv().await.map(|chunk| (chunk, (rx, guard)))
            });
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        } else {
            let (tx, rx) = oneshot::channel();
            let _guard = cancel.drop_guard();
            tokio::spawn(task.run(Reply::Json(tx)));
            rx.await.unwrap_or_else(|_| StatusCode::ACCEPTED.into_response())
        }
    }
}

enum Reply {
    Sse(Chunks),
    Json(oneshot::Sender<Response>),
}

struct Held {
    shared: Arc<Shared>,
    key: (String, IdKey),
    serial: u64,
    headers: HeaderMap,
    call: ToolCall,
    cancel: CancellationToken,
}

impl Held {
    async fn run(self, reply: Reply) {
        let mut step = 0;
        let token = self.call.progress_token.clone();
        let outcome = self
            .shared
            .guard
            .decide(
                &self.call,
                |w| {
                    if let (Reply::Sse(tx), Some(t)) = (&reply, &token) {
                        step += 1;
                        let _ = tx.send(Ok(sse::event(&messages::progress(t, step, &w.message()))));
                    }
                },
                &self.cancel,
            )
            .await;
        let was_held = {
            let mut held = self.shared.held.lock().unwrap_or_else(|p| p.into_inner());
            let mine = held.get(&self.key).is_some_and(|(s, _)| *s == self.serial);
            mine && held.remove(&self.key).is_some()
        };
        let answer = match outcome {
            Outcome::Forward { args, .. } if was_held => {
                tracing::info!(tool = ?self.call.name, "approved tool call forwarded");
                let body = Bytes::from(self.call.with_arguments(args));
                match self.shared.send(Method::POST, &self.headers, Some(body)).await {
                    Ok(r) => Ok(r),
                    Err(e) => Err(messages::rpc_error(
                        &self.call.id,
                        -32603,
                        &format!("the approved call could not reach the MCP server: {}", e.without_url()),
                    )),
                }
            }
            Outcome::Refuse(r) if was_held => Err(messages::tool_error(&self.call.id, r.text())),
            _ => return,
        };
        match (reply, answer) {
            (Reply::Json(tx), Ok(r)) => {
                let _ = tx.send(relay(r));
            }
            (Reply::Json(tx), Err(text)) => {
                let _ = tx.send(json(StatusCode::OK, text));
            }
            (Reply::Sse(tx), Err(text)) => {
                let _ = tx.send(Ok(sse::event(&text)));
            }
            (Reply::Sse(tx), Ok(r)) => sse::pipe(r, &self.call.id, &tx).await,
        }
    }
}

/// The server's answer as it is: status, the MCP headers, the body streamed.
fn relay(r: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(v) = r.headers().get(name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(name, v);
        }
    }
    let body = Body::from_stream(r.bytes_stream().map(|c| c.map_err(std::io::Error::other)));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Relay a `tools/list` answer, and when it is complete teach the guard the hints it lists.
fn learn_and_relay(guard: Arc<Guard>, r: reqwest::Response) -> Response {
    let is_sse = r
        .headers()
        .get(header::CONTENT_TYPE.as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("event-stream"));
    let mut resp = relay(r);
    let body = std::mem::take(resp.body_mut());
    let learning = futures::stream::unfold(
        (body.into_data_stream(), Vec::new(), Some(guard)),
        move |(mut s, mut acc, guard)| async move {
            match s.next().await {
                Some(Ok(b)) => {
                    if acc.len() < crate::lines::MAX_LINE {
                        acc.extend_from_slice(&b);
                    }
                    Some((Ok::<Bytes, axum::Error>(b), (s, acc, guard)))
                }
                Some(Err(e)) => Some((Err(e), (s, acc, None))),
                None => {
                    if let Some(g) = guard {
                        let messages = if is_sse { sse::data_of(&acc).await } else { vec![acc] };
                        for m in messages {
                            g.learn(messages::listed_hints(&m));
                        }
                    }
                    None
                }
            }
        },
    );
    *resp.body_mut() = Body::from_stream(learning);
    resp
}
