//! HTTP and WebSocket endpoints of the emulator (axum).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::pattern::{self, Blob};
use super::shared::Shared;
use super::wire::{E_BAD_PAYLOAD, FILE_READY, Out, uuid};
use crate::sync::lock;

pub(crate) fn router(inner: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v4/server", get(server_info))
        .route("/bridge/api/client/v1/oauth/token", post(token))
        .route("/api/v4/oauth2/token", post(oauth2_token))
        .route(
            "/bridge/api/client/v1/auth/web_rest_api_token",
            post(web_rest_api_token),
        )
        .route("/bridge/api/client/v1/auth/token", post(auth_code_token))
        .route(
            "/bridge/api/client/v1/files",
            // Uploads are bounded by the emulated upload limits, not by axum's 2 MB default.
            post(upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/bridge/api/client/v1/files/{id}/{what}", get(download))
        .route("/websocket/chat_bot", get(ws))
        .route("/websocket/chat_bot/", get(ws))
        .with_state(inner)
}

async fn server_info(State(inner): State<Arc<Shared>>) -> Response {
    axum::Json(json!({
        "product": { "display_name": inner.cfg.domain, "version": inner.cfg.version }
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn parse_body(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

async fn token(State(inner): State<Arc<Shared>>, body: Bytes) -> Response {
    let Some(req) = parse_body(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body is not a JSON object",
        );
    };
    if field(&req, "client_id") != "chat_bot" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id must be chat_bot",
        );
    }
    if field(&req, "grant_type") != "password" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only the password grant is supported",
        );
    }
    if !inner.password_login.load(Relaxed) {
        return oauth_error(
            StatusCode::FORBIDDEN,
            "auth_method_disabled",
            "Password authentication is disabled",
        );
    }
    match inner.check_password(field(&req, "username"), field(&req, "password")) {
        Some(login) => issue(&inner, &login),
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid username or password",
        ),
    }
}

fn issue(inner: &Shared, login: &str) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "access_token": inner.token_for(login),
            "token_type": "JWT",
            "expires_in": inner.cfg.token_ttl.as_secs(),
        })),
    )
        .into_response()
}

async fn oauth2_token(State(inner): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = parse_body(&body).unwrap_or_default();
    let Some(app) = inner
        .cfg
        .oauth_apps
        .iter()
        .find(|a| a.client_id == field(&req, "client_id"))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client_id",
        );
    };
    let Some(login) = inner.check_password(field(&req, "username"), field(&req, "password")) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "Invalid username or password",
        );
    };
    if app.scopes.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": { "errors": [{
                "reason": "invalidScope",
                "message": "No scope configured for this application"
            }], "code": 400 } })),
        )
            .into_response();
    }
    let token = uuid();
    lock(&inner.web_tokens).insert(token.clone(), login);
    axum::Json(json!({ "access_token": token, "token_type": "bearer", "expires_in": 3600 }))
        .into_response()
}

async fn web_rest_api_token(State(inner): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = parse_body(&body).unwrap_or_default();
    let owner = lock(&inner.web_tokens).get(field(&req, "token")).cloned();
    match owner {
        Some(login) if login == field(&req, "client_id") => {
            let code = uuid();
            lock(&inner.auth_codes).insert(code.clone(), login);
            axum::Json(json!({ "authorization_code": code })).into_response()
        }
        _ => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "unknown web API token",
        ),
    }
}

async fn auth_code_token(State(inner): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = parse_body(&body).unwrap_or_default();
    if field(&req, "grant_type") != "authorization_code" || field(&req, "client_id") != "user" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "expected the authorization_code grant for client user",
        );
    }
    let login = lock(&inner.auth_codes).remove(field(&req, "code"));
    match login {
        Some(login) => issue(&inner, &login),
        None => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "unknown authorization code",
        ),
    }
}

async fn upload(
    State(inner): State<Arc<Shared>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let bad =
        |msg: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg }))).into_response();
    let Some(task) = headers.get("Upload-Task-Id").and_then(|v| v.to_str().ok()) else {
        return bad("missing Upload-Task-Id header");
    };
    let mut file = None;
    let mut preview = None;
    loop {
        let mut part = match multipart.next_field().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return bad(&format!("malformed multipart body: {e}")),
        };
        let name = part.name().unwrap_or_default().to_owned();
        let file_name = part.file_name().unwrap_or_default().to_owned();
        let mime = part
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_owned();
        match name.as_str() {
            "file" => {
                // Content that is the testkit pattern is kept as its length only, so tests can
                // push gigabytes through; anything else is kept as received.
                let mut held: Vec<Bytes> = Vec::new();
                let (mut len, mut is_pattern) = (0u64, true);
                loop {
                    let chunk = match part.chunk().await {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => return bad(&format!("malformed multipart body: {e}")),
                    };
                    if is_pattern && !pattern::is_pattern(len, &chunk) {
                        is_pattern = false;
                        held.push(pattern::pattern(0, len as usize));
                    }
                    len += chunk.len() as u64;
                    if !is_pattern {
                        held.push(chunk);
                    }
                }
                let blob = if is_pattern {
                    Blob::Pattern(len)
                } else {
                    Blob::Mem(held.concat().into())
                };
                file = Some((mime, blob));
            }
            "preview" => match part.bytes().await {
                Ok(d) => preview = Some((file_name, mime, d)),
                Err(e) => return bad(&format!("malformed multipart body: {e}")),
            },
            other => return bad(&format!("unexpected multipart part {other:?}")),
        }
    }
    let Some((mime, data)) = file else {
        return bad("missing multipart part \"file\"");
    };
    if mime == "sticker/webp" && preview.is_none() {
        return bad("a sticker upload needs a preview part");
    }
    let result = inner.state().upload(task, mime, data, preview);
    match result {
        Ok(id) => axum::Json(json!({ "temporalFileId": id })).into_response(),
        Err(msg) => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": msg }))).into_response(),
    }
}

async fn download(
    State(inner): State<Arc<Shared>>,
    Path((id, what)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&inner.download_ranges).push(range_header);
    let found = {
        let st = inner.state();
        st.files.get(&id).and_then(|f| {
            if q.get("token") != Some(&f.token) {
                return None;
            }
            match what.as_str() {
                "download" if f.ready == FILE_READY => Some((f.mime.clone(), f.data.clone())),
                "preview" => f
                    .preview
                    .as_ref()
                    .map(|(_, m, d)| (m.clone(), Blob::Mem(d.clone()))),
                _ => None,
            }
        })
    };
    let Some((mime, data)) = found else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let len = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| !inner.ignore_ranges.load(Relaxed))
        .map(|r| parse_range(r, len));
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT_RANGES, "bytes");
    let (builder, start, end) = match range {
        None => (builder.status(StatusCode::OK), 0, len),
        Some(Some((start, end))) => (
            builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")),
            start,
            end + 1,
        ),
        Some(None) => {
            return builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let cut = inner.cut_download.swap(u64::MAX, Relaxed);
    let stall = inner.stall_download.load(Relaxed);
    let stream = body_stream(data, start, end, cut, stall);
    builder
        .header(header::CONTENT_LENGTH, end - start)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The bytes `start..end` of `data`; the connection is aborted after `cut` bytes, or the body
/// stops (connection left open) after `stall` bytes.
fn body_stream(
    data: Blob,
    start: u64,
    end: u64,
    cut: u64,
    stall: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let limit = cut.min(stall);
    futures_util::stream::unfold(
        Some((data.chunks(start, end), 0u64)),
        move |st| async move {
            let (mut chunks, sent) = st?;
            if sent >= limit {
                if sent >= cut {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "download cut by fault injection",
                    );
                    return Some((Err(e), None));
                }
                std::future::pending::<()>().await;
            }
            let mut chunk = chunks.next()?;
            if sent + chunk.len() as u64 > limit {
                chunk = chunk.slice(..(limit - sent) as usize);
            }
            let sent = sent + chunk.len() as u64;
            Some((Ok(chunk), Some((chunks, sent))))
        },
    )
}

/// One `bytes=` range, inclusive; `None` when it cannot be satisfied.
fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && start < len).then_some((start, end))
}

async fn ws(State(inner): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    if inner.refusing() {
        return (StatusCode::SERVICE_UNAVAILABLE, "connections refused").into_response();
    }
    upgrade.on_upgrade(move |socket| connection(inner, socket))
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: u8,
    id: u64,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    payload: Option<Value>,
}

async fn connection(inner: Arc<Shared>, socket: WebSocket) {
    let id = inner.next_conn.fetch_add(1, Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    inner.state().open(id, tx);
    inner.notify.notify_waiters();
    let (mut sink, mut stream) = socket.split();
    'conn: loop {
        tokio::select! {
            out = rx.recv() => {
                let mut next = out;
                // Write everything queued, then flush once: one syscall for a burst of frames.
                loop {
                    match next {
                        Some(Out::Text(t)) => {
                            let last = inner.count_frame();
                            if sink.feed(Message::Text(t.into())).await.is_err() {
                                break 'conn;
                            }
                            if last {
                                let _ = sink.flush().await;
                                break 'conn;
                            }
                        }
                        Some(Out::Close(code, reason)) => {
                            let frame = CloseFrame { code, reason: reason.into() };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            break 'conn;
                        }
                        Some(Out::Drop) | None => break 'conn,
                    }
                    next = match rx.try_recv() {
                        Ok(o) => Some(o),
                        Err(_) => break,
                    };
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => handle_frame(&inner, id, t.as_str()).await,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                // The library queued the Pong; send it now, not with the next frame.
                Some(Ok(Message::Ping(_))) => {
                    if sink.flush().await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
        }
    }
    inner.state().close(id);
    inner.notify.notify_waiters();
}

async fn handle_frame(inner: &Arc<Shared>, conn: u64, text: &str) {
    let frame: Incoming<'_> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(_) => {
            inner.state().stats.malformed_frames += 1;
            return;
        }
    };
    if frame.kind == 2 {
        inner.state().ack(conn, frame.id);
        return;
    }
    let delay = inner.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let id = frame.id;
    let payload = frame.payload.unwrap_or_else(|| json!({}));
    let mut st = inner.state();
    let Some(method) = frame.method.filter(|_| frame.kind == 1) else {
        st.stats.malformed_frames += 1;
        st.respond(conn, id, &Err(E_BAD_PAYLOAD));
        return;
    };
    st.record(&method, &payload);
    if method == "auth" {
        st.auth(conn, id, &payload, &inner.secret);
    } else {
        let result = st.call(conn, &method, &payload);
        st.respond(conn, id, &result);
    }
    drop(st);
    inner.notify.notify_waiters();
}
