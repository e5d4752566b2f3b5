//! One authorised socket from the reader's side: responses go to the pending table, events
//! to the outlet, and when the outlet is full the reader holds a bounded backlog before it
//! stops reading (backpressure reaches TCP, but responses keep flowing until then). It also
//! stops reading while the event memory budget is full, until handled events give it back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::args::{LinkEvent, SocketArgs, Ws};
use super::event::{Acknowledger, ServerEvent};
use super::queue::channel as frame_queue;
use super::writer::write_loop;
use crate::protocol::{Frame, RawValue};
use crate::runtime::config::AckMode;

/// How a session ended.
pub(super) enum SessionEnd {
    /// Closed on request.
    Shutdown,
    /// Lost; the reason is logged. `received`: anything (an event, a response, a pong) came
    /// on the socket after `auth`, so it was a working connection, not a flapping one.
    Lost { reason: String, received: bool },
}

impl SessionEnd {
    fn lost(reason: impl Into<String>, received: bool) -> Self {
        SessionEnd::Lost {
            reason: reason.into(),
            received,
        }
    }
}

/// Retires the socket's generation however the session ends (an abort or a panic included)
/// and reports the loss, so the requests in flight on it are always settled.
struct OfflineGuard<'a> {
    args: &'a SocketArgs,
    generation: u64,
    /// Shared with the socket's acknowledgers: set first, so an event whose handling starts
    /// after this point knows its acknowledgement cannot arrive.
    retired: Arc<AtomicBool>,
}

impl Drop for OfflineGuard<'_> {
    fn drop(&mut self) {
        self.retired.store(true, Ordering::Release);
        if self.args.link.retire(self.generation) {
            let _ = self.args.report.send_message(LinkEvent::Lost {
                generation: self.generation,
            });
        }
    }
}

/// One authorised socket: reads frames, resolves responses, queues events, until the socket
/// is lost or `close` is cancelled.
pub(super) async fn session(
    args: &SocketArgs,
    ws: Ws,
    overflow: &mut VecDeque<ServerEvent>,
    close: &CancellationToken,
) -> SessionEnd {
    let config = &args.config;
    if config.ack_mode == AckMode::AfterHandled {
        // Unacknowledged: the server delivers them again on this connection. OnReceive
        // events were acknowledged on receipt, so they are kept and delivered from here.
        overflow.clear();
    }
    let (queue, rx) = frame_queue(config.write_queue_limit);
    // Acknowledgements never wait for room (see `queue`); requests go through the link.
    let tx = queue.acks();
    let generation = args.link.install(queue);
    let retired = Arc::new(AtomicBool::new(false));
    let _offline = OfflineGuard {
        args,
        generation,
        retired: retired.clone(),
    };
    let _ = args.report.send_message(LinkEvent::Up { generation });
    let (sink, mut stream) = ws.split();
    let awaiting_pong = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        close.clone(),
        config.keepalive,
        config.pong_timeout,
        awaiting_pong.clone(),
    ));
    let mut writer = AbortOnDropHandle::new(writer);
    // Events the full stream could not take yet. While it holds fewer than `event_buffer`
    // events the socket is still read, so responses keep flowing to a consumer that waits for
    // a bot call; once it is full too, reading stops (backpressure).
    let cap = config.event_buffer.max(1);
    // Bytes of events read and not done with, wherever they are; only this reader adds to it.
    let budget = args.events.budget().clone();
    let mut received = false;
    loop {
        let full = budget.is_full();
        let sender = if overflow.is_empty() {
            None
        } else {
            match args.events.sender() {
                Some(s) => Some(s),
                None => {
                    // Shutting down: un-acked events are re-delivered to the next session.
                    overflow.clear();
                    continue;
                }
            }
        };
        tokio::select! {
            permit = async {
                match &sender {
                    Some(s) => s.reserve().await,
                    None => std::future::pending().await,
                }
            }, if sender.is_some() => match permit {
                Ok(permit) => {
                    if let Some(ev) = overflow.pop_front() {
                        permit.send(ev);
                    }
                }
                Err(_) => overflow.clear(),
            },
            _ = args.events.closed(), if !overflow.is_empty() => overflow.clear(),
            // Reading stops while the budget is full, responses included (they share the
            // socket): handlers waiting for a call resume once events are given back.
            _ = budget.room(), if full => {}
            msg = stream.next(), if overflow.len() < cap && !full => match msg {
                Some(Ok(Message::Text(text))) => {
                    received = true;
                    on_text(args, &tx, &retired, text.as_str(), overflow)
                }
                Some(Ok(Message::Pong(_))) => {
                    received = true;
                    awaiting_pong.store(false, Ordering::Release)
                }
                Some(Ok(Message::Close(frame))) => {
                    return SessionEnd::lost(
                        format!("server closed the socket ({frame:?})"),
                        received,
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                    // Refused before it was buffered; its id is unknown, so it cannot be acked.
                    tracing::error!(
                        error = %e,
                        max_message_size = config.max_message_size,
                        max_frame_size = config.max_frame_size,
                        "protocol error: incoming message over the size limit; reconnecting"
                    );
                    return SessionEnd::lost(format!("protocol error: {e}"), received);
                }
                Some(Err(e)) => return SessionEnd::lost(format!("socket error: {e}"), received),
                None => return SessionEnd::lost("socket ended", received),
            },
            end = &mut writer => {
                return match end {
                    Ok(Ok(())) => SessionEnd::Shutdown,
                    Ok(Err(reason)) => SessionEnd::lost(reason, received),
                    Err(e) => SessionEnd::lost(format!("writer task failed: {e}"), received),
                };
            }
        }
    }
}

fn on_text(
    args: &SocketArgs,
    tx: &mpsc::UnboundedSender<Frame>,
    retired: &Arc<AtomicBool>,
    text: &str,
    overflow: &mut VecDeque<ServerEvent>,
) {
    match Frame::decode(text) {
        Ok(Frame::Response { id, payload }) => args.responses.resolve(id, payload),
        Ok(Frame::Request {
            id,
            method,
            payload,
        }) => deliver(args, tx, retired, id, method, payload, overflow),
        Err(e) => tracing::warn!(error = %e, "malformed frame dropped"),
    }
}

fn deliver(
    args: &SocketArgs,
    tx: &mpsc::UnboundedSender<Frame>,
    retired: &Arc<AtomicBool>,
    id: u64,
    method: String,
    payload: Box<RawValue>,
    overflow: &mut VecDeque<ServerEvent>,
) {
    if let Some(tap) = &args.tap {
        tap.observe(&method, &payload);
    }
    let events = args.events.sender();
    let Some(events) = events else {
        // Nobody consumes events. While running, ack them so the server does not keep
        // re-delivering; while shutting down, leave them for the next session.
        if !args.events.is_closed() {
            let _ = tx.send(Frame::ack(id));
        }
        return;
    };
    // Counted until the event is acknowledged or dropped, whoever holds it then.
    let share = args.events.charge(&method, &payload);
    let ack = match args.config.ack_mode {
        AckMode::OnReceive => {
            let _ = tx.send(Frame::ack(id));
            Acknowledger::noop(id)
        }
        AckMode::AfterHandled => Acknowledger::new(id, tx.clone()).retired_with(retired.clone()),
    }
    .holding(share);
    let event = ServerEvent {
        id,
        method,
        payload,
        ack,
    };
    if !overflow.is_empty() {
        overflow.push_back(event);
        return;
    }
    match events.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(event)) => overflow.push_back(event),
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::debug!(id, "event stream dropped; event discarded");
        }
    }
}
