//! The chat-bot WebSocket: one task per connection that writes what the state queues for it
//! and hands every client frame to the state.
//!
//! The task is the only place that touches the socket, so the socket faults (drop after N
//! frames, refused handshakes, response delay) are applied here, and writes are batched: all
//! queued frames are fed, then flushed once.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::testkit::shared::Shared;
use crate::testkit::tap::Direction;
use crate::testkit::wire::{E_BAD_PAYLOAD, Out};

/// `GET /websocket/chat_bot`: the upgrade, unless handshakes are being refused.
pub(super) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if shared.refusing() {
        return (StatusCode::SERVICE_UNAVAILABLE, "connections refused").into_response();
    }
    upgrade.on_upgrade(move |socket| connection(shared, socket))
}

/// A client frame: a request (`type:1`) or the ack of an event (`type:2`).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: u8,
    id: u64,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    payload: Option<Value>,
}

async fn connection(shared: Arc<Shared>, socket: WebSocket) {
    let id = shared.next_conn.fetch_add(1, Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.state().open(id, tx);
    shared.notify.notify_waiters();
    let (mut sink, mut stream) = socket.split();
    'conn: loop {
        tokio::select! {
            out = rx.recv() => {
                let mut next = out;
                // Write everything queued, then flush once: one syscall for a burst of frames.
                loop {
                    match next {
                        Some(Out::Text(text)) => {
                            shared.tap.record(id, Direction::Out, &text);
                            let last = shared.count_frame();
                            if sink.feed(Message::Text(text.into())).await.is_err() {
                                break 'conn;
                            }
                            if last {
                                let _ = sink.flush().await;
                                break 'conn;
                            }
                        }
                        Some(Out::Close(code, reason)) => {
                            // The session ends before the client can see the close frame:
                            // its un-acked events must be waiting when the client's next
                            // session authenticates, however soon that is.
                            shared.state().close(id);
                            let frame = CloseFrame { code, reason: reason.into() };
                            let _ = sink.send(Message::Close(Some(frame))).await;
                            break 'conn;
                        }
                        Some(Out::Drop) | None => break 'conn,
                    }
                    next = match rx.try_recv() {
                        Ok(out) => Some(out),
                        Err(_) => break,
                    };
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    shared.tap.record(id, Direction::In, text.as_str());
                    handle_frame(&shared, id, text.as_str()).await
                }
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
    shared.state().close(id);
    shared.tap.closed(id);
    shared.notify.notify_waiters();
}

/// One client text frame: an ack, `auth`, or any other method.
async fn handle_frame(shared: &Arc<Shared>, conn: u64, text: &str) {
    let frame: Incoming<'_> = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(_) => {
            shared.state().stats.malformed_frames += 1;
            return;
        }
    };
    if frame.kind == 2 {
        shared.state().ack(conn, frame.id);
        return;
    }
    let delay = shared.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let request_id = frame.id;
    let payload = frame.payload.unwrap_or_else(|| json!({}));
    let mut state = shared.state();
    let Some(method) = frame.method.filter(|_| frame.kind == 1) else {
        state.stats.malformed_frames += 1;
        state.respond(conn, request_id, &Err(E_BAD_PAYLOAD));
        return;
    };
    state.record(&method, &payload);
    if method == "auth" {
        state.auth(conn, request_id, &payload, &shared.secret);
    } else {
        let result = state.call(conn, &method, &payload);
        state.respond(conn, request_id, &result);
    }
    drop(state);
    shared.notify.notify_waiters();
}
