//! The writer half of a session: frames from the queue go out in batches, pings keep the
//! socket honest, and a close frame ends it on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::args::Ws;
use crate::protocol::Frame;

/// Writes until the queue closes, the socket fails, a pong is overdue (`Err`: the reason) or
/// `shutdown` is cancelled (`Ok`).
pub(super) async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    shutdown: CancellationToken,
    keepalive: Duration,
    pong_timeout: Duration,
    awaiting_pong: Arc<AtomicBool>,
) -> Result<(), String> {
    const BATCH: usize = 128;
    let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    let mut pong_deadline: Option<Instant> = None;
    let far = || Instant::now() + Duration::from_secs(86_400);
    let err = |e: tokio_tungstenite::tungstenite::Error| format!("write failed: {e}");
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(frame) = frame else { return Err("writer queue closed".into()) };
                sink.feed(Message::text(frame.encode())).await.map_err(err)?;
                // Frames queued meanwhile go out with the same flush; one yield first lets the
                // tasks already woken (handlers holding their replies) add theirs, which turns
                // many small writes into a few large ones.
                let mut yielded = false;
                let mut n = 0;
                while n < BATCH {
                    match rx.try_recv() {
                        Ok(f) => {
                            sink.feed(Message::text(f.encode())).await.map_err(err)?;
                            n += 1;
                        }
                        Err(_) if !yielded => {
                            yielded = true;
                            tokio::task::yield_now().await;
                        }
                        Err(_) => break,
                    }
                }
                sink.flush().await.map_err(err)?;
            }
            _ = ping.tick() => {
                let answered = !awaiting_pong.swap(true, Ordering::AcqRel);
                sink.send(Message::Ping(Default::default())).await.map_err(err)?;
                // An unanswered earlier ping keeps its deadline.
                if answered || pong_deadline.is_none() {
                    pong_deadline = Some(Instant::now() + pong_timeout);
                }
            }
            _ = sleep_until(pong_deadline.unwrap_or_else(far)), if pong_deadline.is_some() => {
                if awaiting_pong.load(Ordering::Acquire) {
                    return Err(format!("no pong within {pong_timeout:?}"));
                }
                pong_deadline = None;
            }
            _ = shutdown.cancelled() => {
                // Whatever was queued before the shutdown (acks, last requests) goes first.
                while let Ok(f) = rx.try_recv() {
                    let _ = sink.feed(Message::text(f.encode())).await;
                }
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "bot shutdown".into(),
                    })))
                    .await;
                let _ = sink.close().await;
                return Ok(());
            }
        }
    }
}
