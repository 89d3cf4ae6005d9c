//! HTTP: the routes of protocol v1, translated onto [`App`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use countersign_protocol::{ijson, StepUpDraft};
use futures::stream::{Stream, StreamExt as _};
use serde::Deserialize;

use crate::app::{App, Event, Viewer};
use crate::error::ApiError;
use crate::store;

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// Longest long-poll.
pub const MAX_WAIT_S: u64 = 60;
/// SSE keep-alive interval.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

type Shared = State<Arc<App>>;

/// The router of protocol v1.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/.well-known/countersign", get(well_known))
        .route("/v1/step-ups", post(submit).get(list))
        .route("/v1/step-ups/{id}", get(status).delete(withdraw))
        .route("/v1/step-ups/{id}/decisions", post(decide))
        .route("/v1/events", get(events))
        .route("/v1/approvers/rotate", post(rotate))
        .route("/v1/grants/redeem", post(redeem))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!("request body is larger than {MAX_BODY} bytes"))
        } else {
            ApiError::malformed(r.body_text())
        }
    })
}

async fn well_known(State(app): Shared) -> Json<serde_json::Value> {
    Json(app.well_known())
}

async fn submit(
    State(app): Shared,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let workload = app.agent(bearer(&headers)?).await?;
    let b = body(b)?;
    let value = ijson::parse(&b).map_err(|e| ApiError::malformed(e.to_string()))?;
    let draft: StepUpDraft = serde_json::from_value(value)
        .map_err(|e| ApiError::malformed(format!("not a step-up draft: {e}")))?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map_err(|_| ApiError::malformed("bad Idempotency-Key")));
    let key = key.transpose()?;
    let (status, body) = app.submit(&workload, draft, key).await?;
    Ok((status, Json(body)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

/// Items in one page of `GET /v1/step-ups` when the approver does not say.
pub const LIST_DEFAULT_LIMIT: i64 = 200;
/// Most items one page of `GET /v1/step-ups` holds.
pub const LIST_MAX_LIMIT: i64 = 1000;
/// Bytes of signed requests after which a page of `GET /v1/step-ups` ends (a page holds at least
/// one item, so a single larger request still gets through).
pub const LIST_BUDGET: usize = 1 << 20;

/// An approver's backfill: the signed requests in a state (pending by default), oldest first, one
/// page at a time — at most `limit` items and about [`LIST_BUDGET`] bytes — after the request
/// `after` (the previous page's `next`); `next` is set when more remain.
async fn list(
    State(app): Shared,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    app.approver(bearer(&headers)?).await?;
    let state = q.state.unwrap_or_else(|| "pending".into());
    if !["pending", "approved", "denied", "expired", "withdrawn"].contains(&state.as_str()) {
        return Err(ApiError::malformed(format!("unknown state {state:?}")));
    }
    let limit = q.limit.unwrap_or(LIST_DEFAULT_LIMIT);
    if !(1..=LIST_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::malformed(format!("limit must be 1 to {LIST_MAX_LIMIT}")));
    }
    let page = store::step_ups_in_state(app.db(), &state, q.after.as_deref(), limit, LIST_BUDGET)
        .await?
        .ok_or_else(|| ApiError::malformed("`after` names no request"))?;
    let items: Vec<_> =
        page.items.into_iter().map(|(id, jwt)| serde_json::json!({"id": id, "jwt": jwt})).collect();
    let mut body = serde_json::json!({ "items": items });
    if let Some(next) = page.next {
        body["next"] = next.into();
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn status(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<WaitQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = bearer(&headers)?;
    let viewer = if token.starts_with("csa_") {
        let workload = app.agent(token).await?;
        if app.owner(&id).await? != workload {
            return Err(ApiError::forbidden("this request belongs to another workload"));
        }
        Viewer::Agent
    } else {
        app.approver(token).await?;
        Viewer::Approver
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_S));
    Ok(Json(app.wait_status(&id, wait, viewer).await?))
}

async fn withdraw(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let workload = app.agent(bearer(&headers)?).await?;
    Ok(Json(app.withdraw(&workload, &id).await?))
}

async fn decide(
    State(app): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let approver = app.approver(bearer(&headers)?).await?;
    let b = body(b)?;
    let token = std::str::from_utf8(&b).map_err(|_| ApiError::malformed("the body must be a compact JWS"))?;
    let (status, body) = app.decide(&approver, &id, token).await?;
    Ok((status, Json(body)).into_response())
}

async fn rotate(
    State(app): Shared,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = body(b)?;
    let statement =
        std::str::from_utf8(&b).map_err(|_| ApiError::malformed("the body must be a compact JWS"))?;
    Ok(Json(app.rotate(statement).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemBody {
    grant: String,
}

async fn redeem(
    State(app): Shared,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let system = app.target_system(bearer(&headers)?).await?;
    let b = body(b)?;
    let value = ijson::parse(&b).map_err(|e| ApiError::malformed(e.to_string()))?;
    let req: RedeemBody = serde_json::from_value(value)
        .map_err(|e| ApiError::malformed(format!("expected {{\"grant\": JWT}}: {e}")))?;
    Ok(Json(app.redeem(&system, &req.grant).await?))
}

fn sse_event(e: &Event) -> SseEvent {
    SseEvent::default().id(e.seq.to_string()).event(e.kind).data(&e.data)
}

async fn events(
    State(app): Shared,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let (approver, token_exp) = app.approver_session(bearer(&headers)?).await?;
    if crate::app::now() > token_exp {
        // Within the verification leeway, yet a stream would end at once: refuse it plainly.
        return Err(ApiError::unauthorized("the auth token has expired"));
    }
    let last: Option<i64> = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| ApiError::malformed("Last-Event-ID must be an event sequence number"))?,
        ),
    };
    // Subscribe before reading the backlog so nothing falls between the two. The backlog is read
    // page by page as the client takes it, never whole into memory.
    let rx = app.subscribe();
    // The stream lives no longer than its token, and ends within a second of the approver's key
    // being removed or rotated away: a forwarding task checks both while it relays events.
    let (tx, out) = tokio::sync::mpsc::channel::<SseEvent>(256);
    tokio::spawn(relay(app.clone(), approver.kid, token_exp, last, rx, tx));
    let stream = tokio_stream::wrappers::ReceiverStream::new(out).map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// How often an open event stream re-checks that its approver is still enrolled.
pub const STREAM_RECHECK: Duration = Duration::from_millis(250);

/// Most backlog events read from the store at once.
const BACKLOG_PAGE: i64 = 200;

/// Whether an approver's stream may go on: its token has not expired and its key is enrolled.
async fn still_allowed(app: &App, kid: &str, token_exp: i64) -> bool {
    if crate::app::now() > token_exp {
        tracing::info!(%kid, "event stream ended: its auth token expired");
        return false;
    }
    match app.enrolled(kid).await {
        Ok(Some(_)) => true,
        Ok(None) => {
            tracing::info!(%kid, "event stream ended: the approver's key is no longer enrolled");
            false
        }
        Err(e) => {
            tracing::warn!(%kid, error = %e.message, "event stream ended: enrolment check failed");
            false
        }
    }
}

/// Relay the backlog after `last` (page by page), then live events, to one approver's stream,
/// until the client goes, the subscriber lags (the client resumes with Last-Event-ID), the auth
/// token expires or the approver's key is no longer active.
async fn relay(
    app: Arc<App>,
    kid: String,
    token_exp: i64,
    last: Option<i64>,
    mut rx: tokio::sync::broadcast::Receiver<Event>,
    tx: tokio::sync::mpsc::Sender<SseEvent>,
) {
    let mut high = last.unwrap_or(0);
    if last.is_some() {
        loop {
            if !still_allowed(&app, &kid, token_exp).await {
                return;
            }
            let page = match store::events_after(app.db(), high, BACKLOG_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(%kid, error = %e, "event stream ended: reading the backlog failed");
                    return;
                }
            };
            let n = page.len() as i64;
            for (seq, kind, data) in page {
                if !still_allowed(&app, &kid, token_exp).await {
                    return;
                }
                let kind = if kind == "step-up" { "step-up" } else { "resolved" };
                let event = Event { seq, kind, data, emitted: std::time::Instant::now() };
                if tx.send(sse_event(&event)).await.is_err() {
                    return;
                }
                high = seq;
            }
            if n < BACKLOG_PAGE {
                break;
            }
        }
    }
    let mut check = tokio::time::interval(STREAM_RECHECK);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(e) if e.seq > high => {
                    high = e.seq;
                    // Checked per event too (from a copy at most APPROVER_CACHE old): a removed
                    // approver receives nothing submitted after the removal took effect.
                    if !still_allowed(&app, &kid, token_exp).await || tx.send(sse_event(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            },
            _ = check.tick() => {
                if !still_allowed(&app, &kid, token_exp).await {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}
