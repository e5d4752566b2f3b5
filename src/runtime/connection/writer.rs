//! The writer half of a session: frames from the queue go out in batches, pings keep the
//! socket honest, and a close frame ends it on shutdown.
//!
//! Every write has a deadline. A server that stops reading fills the kernel's buffers and
//! then blocks the write; while it is blocked the keepalive clock keeps running (the pong
//! deadline is enforced inside the write), and a write step (one frame into tungstenite's
//! 128 KiB write buffer, a flush, a ping) that takes longer than the pong timeout declares
//! the socket lost. The session then ends like for any lost socket: the
//! requests in flight on it are settled, the queue is dropped (so what piled up for the dead
//! socket is freed and callers waiting for room send again on the next one), and the bot
//! reconnects.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::args::Ws;
use super::queue::FrameReceiver;
use crate::protocol::Frame;

type Sink = SplitSink<Ws, Message>;

/// Why the writer stopped.
enum Stop {
    Shutdown,
    Lost(String),
}

/// The keepalive clock: when the pong of the last ping is due.
struct PongClock {
    awaiting: Arc<AtomicBool>,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl PongClock {
    /// A ping went out.
    fn pinged(&mut self, answered: bool) {
        // An unanswered earlier ping keeps its deadline.
        if answered || self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.timeout);
        }
    }

    /// Resolves when the deadline passes: `Err` if the pong never came. Pending while no ping
    /// is out.
    async fn due(&mut self) -> Result<(), Stop> {
        let Some(deadline) = self.deadline else {
            return std::future::pending().await;
        };
        sleep_until(deadline).await;
        self.deadline = None;
        if self.awaiting.load(Ordering::Acquire) {
            return Err(Stop::Lost(format!("no pong within {:?}", self.timeout)));
        }
        Ok(())
    }
}

/// Writes until the queue closes, the socket fails, a write or a pong is overdue (`Err`: the
/// reason) or `shutdown` is cancelled (`Ok`). The pong timeout is the write deadline too.
pub(super) async fn write_loop(
    mut sink: Sink,
    mut rx: FrameReceiver,
    shutdown: CancellationToken,
    keepalive: Duration,
    pong_timeout: Duration,
    awaiting_pong: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    // After a slow write, one ping, not a burst of the missed ones.
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pong = PongClock {
        awaiting: awaiting_pong,
        timeout: pong_timeout,
        deadline: None,
    };
    let stop = loop {
        let step = tokio::select! {
            frame = rx.recv() => match frame {
                Some(frame) => write_batch(&mut sink, &mut rx, frame, &mut pong, &shutdown).await,
                None => Err(Stop::Lost("writer queue closed".into())),
            },
            _ = ping.tick() => {
                let answered = !pong.awaiting.swap(true, Ordering::AcqRel);
                let sent = bounded(
                    sink.send(Message::Ping(Default::default())),
                    &mut pong,
                    &shutdown,
                )
                .await;
                pong.pinged(answered);
                sent
            }
            due = pong.due() => due,
            _ = shutdown.cancelled() => Err(Stop::Shutdown),
        };
        if let Err(stop) = step {
            break stop;
        }
    };
    match stop {
        Stop::Lost(reason) => Err(reason),
        Stop::Shutdown => {
            // Whatever was queued before the shutdown (acks, last requests) goes first; a
            // socket that does not take it within the write deadline is closed anyway.
            let close = async {
                while let Some(f) = rx.try_recv() {
                    sink.feed(Message::text(f.encode())).await?;
                }
                sink.send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bot shutdown".into(),
                })))
                .await?;
                sink.close().await
            };
            let _ = tokio::time::timeout(pong_timeout, close).await;
            Ok(())
        }
    }
}

/// One batch: `first` and whatever else is queued, then a flush. Each step is bounded on its
/// own: a feed waits at most for tungstenite's write buffer (128 KiB) to reach the kernel, so
/// the deadline measures a lack of progress, and a slow but live link is not cut off in the
/// middle of a large batch.
async fn write_batch(
    sink: &mut Sink,
    rx: &mut FrameReceiver,
    first: Frame,
    pong: &mut PongClock,
    shutdown: &CancellationToken,
) -> Result<(), Stop> {
    const BATCH: usize = 128;
    bounded(sink.feed(Message::text(first.encode())), pong, shutdown).await?;
    // Frames queued meanwhile go out with the same flush; one yield first lets the tasks
    // already woken (handlers holding their replies) add theirs, which turns many small
    // writes into a few large ones.
    let mut yielded = false;
    let mut n = 0;
    while n < BATCH {
        match rx.try_recv() {
            Some(f) => {
                bounded(sink.feed(Message::text(f.encode())), pong, shutdown).await?;
                n += 1;
            }
            None if !yielded => {
                yielded = true;
                tokio::task::yield_now().await;
            }
            None => break,
        }
    }
    bounded(sink.flush(), pong, shutdown).await
}

/// Runs one write step with a deadline (the pong timeout) while the keepalive clock keeps
/// running: a peer that stopped reading blocks the write, and is declared lost instead of
/// blocking the writer forever. A shutdown interrupts the write (the close sequence has a
/// deadline of its own).
async fn bounded(
    write: impl Future<Output = Result<(), WsError>>,
    pong: &mut PongClock,
    shutdown: &CancellationToken,
) -> Result<(), Stop> {
    let limit = pong.timeout;
    let stalled = sleep_until(Instant::now() + limit);
    tokio::pin!(write, stalled);
    loop {
        tokio::select! {
            done = &mut write => {
                return done.map_err(|e| Stop::Lost(format!("write failed: {e}")));
            }
            _ = &mut stalled => {
                return Err(Stop::Lost(format!(
                    "a write did not complete within {limit:?}: the server stopped reading"
                )));
            }
            due = pong.due() => due?,
            _ = shutdown.cancelled() => return Err(Stop::Shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_tungstenite::MaybeTlsStream;

    use super::*;
    use crate::protocol::RawValue;
    use crate::runtime::connection::queue::channel;

    /// A WebSocket whose peer accepted it and then never reads again.
    async fn stalled_socket() -> (Ws, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let _ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            std::future::pending::<()>().await;
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let (ws, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/"), MaybeTlsStream::Plain(stream))
                .await
                .unwrap();
        (ws, peer)
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_fails_the_writer_and_the_queue_stays_in_budget() {
        const LIMIT: usize = 256 << 10;
        let (ws, peer) = stalled_socket().await;
        let (sink, _stream) = ws.split();
        let (queue, rx) = channel(LIMIT);
        let writer = tokio::spawn(write_loop(
            sink,
            rx,
            CancellationToken::new(),
            Duration::from_millis(200),
            Duration::from_millis(500),
            Arc::new(AtomicBool::new(false)),
        ));
        let q = queue.clone();
        let producer = tokio::spawn(async move {
            let text = format!("\"{}\"", "x".repeat(16 << 10));
            let mut most = 0;
            for id in 0.. {
                let frame = Frame::request(
                    id,
                    "sendMessage",
                    RawValue::from_string(text.clone()).unwrap(),
                );
                if q.send(frame).await.is_err() {
                    return most;
                }
                most = most.max(q.queued_bytes());
            }
            most
        });
        let reason = tokio::time::timeout(Duration::from_secs(60), writer)
            .await
            .expect("the writer gives up on a peer that stopped reading")
            .unwrap()
            .expect_err("the socket is lost");
        assert!(
            reason.contains("pong") || reason.contains("stopped reading"),
            "{reason}"
        );
        let most = tokio::time::timeout(Duration::from_secs(60), producer)
            .await
            .expect("a caller waiting for room gets its frame back once the writer is gone")
            .unwrap();
        assert!(most <= LIMIT, "queued {most} bytes, budget {LIMIT}");
        assert!(most > LIMIT / 2, "the budget was used: {most}");
        peer.abort();
    }

    #[tokio::test]
    async fn shutdown_is_not_held_up_by_a_stalled_write() {
        let (ws, peer) = stalled_socket().await;
        let (sink, _stream) = ws.split();
        let (queue, rx) = channel(64 << 20);
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(write_loop(
            sink,
            rx,
            shutdown.clone(),
            Duration::from_secs(3600),
            Duration::from_secs(5),
            Arc::new(AtomicBool::new(false)),
        ));
        // Far more than the kernel takes: the writer ends up blocked inside a write.
        let text = format!("\"{}\"", "x".repeat(64 << 10));
        for id in 0..256 {
            let raw = RawValue::from_string(text.clone()).unwrap();
            queue
                .send(Frame::request(id, "sendMessage", raw))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!writer.is_finished());
        shutdown.cancel();
        let end = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("the close sequence has a deadline, and a stalled write yields to shutdown")
            .unwrap();
        // `Err` would mean the write ran into its own deadline instead of yielding.
        assert!(end.is_ok(), "{end:?}");
        peer.abort();
    }
}
