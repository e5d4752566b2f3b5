//! The writer queue of one socket: frames on their way to the writer, bounded in bytes.
//!
//! Why a byte budget with backpressure, and not a queue that declares the socket stuck once
//! it is full, or a bounded channel:
//!
//! * a healthy socket can have a burst of large requests queued at once (many handlers
//!   replying together); tearing it down for that would fail writes that were fine. Whether a
//!   socket is dead is decided by the writer's deadlines (a write or a pong overdue), which is
//!   a question of time, not of volume;
//! * frames differ in size by orders of magnitude, so a count of frames bounds nothing;
//! * requests come from async callers that can wait, each within its own deadline, and a
//!   request that waited was never written, so it can go out on the next socket whatever it
//!   is; acknowledgements come from places that cannot wait (the reader, `Acknowledger::ack`)
//!   and are a few bytes each, produced only as fast as the server sends events, so they are
//!   never held back (a reader waiting for the writer would also stop reading responses).
//!
//! So requests take room from a byte budget (a semaphore) before they are queued and give it
//! back when the writer takes them; when the socket's writer is gone the budget is closed and
//! every waiting caller gets its frame back. While there is room a request is queued in the
//! same poll that asked for it, so requests keep the order their futures first ran; callers
//! that waited for room are served first come, first served (the semaphore is fair), with no
//! order promised between callers woken together.
//!
//! What a dead socket can hold is thus bounded: the budget, tungstenite's write buffer and the
//! kernel's socket buffer, until the writer's deadline (see `writer`) drops it all.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};

use crate::protocol::Frame;

/// Room a frame takes from the budget: its payload, method and envelope, capped at the whole
/// budget so a frame larger than the limit still goes out (alone). Acknowledgements and
/// responses take none. The writer gives back what this says, so it must depend on the frame
/// only.
fn cost(frame: &Frame, limit: u32) -> u32 {
    match frame {
        Frame::Request {
            method, payload, ..
        } => {
            let bytes = payload.get().len() + method.len() + 48;
            u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, limit)
        }
        Frame::Response { .. } => 0,
    }
}

/// A budget of `limit` bytes (at least 1; at most what one semaphore acquisition can take).
fn permits(limit: usize) -> u32 {
    u32::try_from(limit.max(1)).unwrap_or(u32::MAX)
}

/// A new queue holding at most `limit` bytes of requests.
pub(crate) fn channel(limit: usize) -> (FrameQueue, FrameReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let limit = permits(limit);
    let room = Arc::new(Semaphore::new(limit as usize));
    (
        FrameQueue {
            tx,
            room: room.clone(),
            limit,
        },
        FrameReceiver { rx, room, limit },
    )
}

/// The sending side of a socket's writer queue (cheap to clone).
#[derive(Clone)]
pub(crate) struct FrameQueue {
    tx: mpsc::UnboundedSender<Frame>,
    room: Arc<Semaphore>,
    limit: u32,
}

impl FrameQueue {
    /// Queues a request once there is room for it. `Err` gives the frame back unwritten: the
    /// socket is gone. Dropping the future while it waits takes no room.
    pub(crate) async fn send(&self, frame: Frame) -> Result<(), Frame> {
        let cost = cost(&frame, self.limit);
        if cost > 0 {
            match self.room.acquire_many(cost).await {
                // Given back by the receiver when the writer takes the frame.
                Ok(permit) => permit.forget(),
                Err(_) => return Err(frame),
            }
        }
        self.tx.send(frame).map_err(|e| e.0)
    }

    /// The unbudgeted sender acknowledgements go through (they must never wait; see the
    /// module docs). Only acknowledgements and responses may be sent on it.
    pub(crate) fn acks(&self) -> mpsc::UnboundedSender<Frame> {
        self.tx.clone()
    }

    /// Bytes of requests queued and not yet taken by the writer.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        (self.limit as usize).saturating_sub(self.room.available_permits())
    }
}

/// The writer's side of the queue. Dropping it (the socket is gone) closes the budget, so
/// callers waiting for room get their frames back at once.
pub(crate) struct FrameReceiver {
    rx: mpsc::UnboundedReceiver<Frame>,
    room: Arc<Semaphore>,
    limit: u32,
}

impl FrameReceiver {
    /// The next frame; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.release(&frame);
        Some(frame)
    }

    /// The next frame if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.rx.try_recv().ok()?;
        self.release(&frame);
        Some(frame)
    }

    fn release(&self, frame: &Frame) {
        let cost = cost(frame, self.limit);
        if cost > 0 {
            self.room.add_permits(cost as usize);
        }
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        self.room.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::RawValue;

    fn request(id: u64, bytes: usize) -> Frame {
        let text = format!("\"{}\"", "x".repeat(bytes));
        Frame::request(id, "sendMessage", RawValue::from_string(text).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_room_acks_do_not() {
        let (queue, mut rx) = channel(10_000);
        queue.send(request(1, 6_000)).await.unwrap();
        assert!(queue.queued_bytes() > 6_000);
        let q = queue.clone();
        let waiting = tokio::spawn(async move { q.send(request(2, 6_000)).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "over the budget: the caller waits");
        assert!(queue.queued_bytes() <= 10_000);
        queue.acks().send(Frame::ack(9)).unwrap();

        assert_eq!(rx.recv().await.unwrap().id(), 1);
        waiting.await.unwrap().unwrap();
        assert_eq!(rx.recv().await.unwrap().id(), 9);
        assert_eq!(rx.recv().await.unwrap().id(), 2);
        assert_eq!(queue.queued_bytes(), 0, "all room given back");
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_over_the_limit_goes_alone() {
        let (queue, mut rx) = channel(100);
        queue.send(request(1, 1_000)).await.unwrap();
        assert_eq!(queue.queued_bytes(), 100);
        assert_eq!(rx.recv().await.unwrap().id(), 1);
        queue.send(request(2, 1_000)).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_callers_get_their_frame_back_when_the_socket_goes() {
        let (queue, rx) = channel(100);
        queue.send(request(1, 80)).await.unwrap();
        let q = queue.clone();
        let waiting = tokio::spawn(async move { q.send(request(2, 80)).await });
        tokio::task::yield_now().await;
        drop(rx);
        let back = waiting.await.unwrap().expect_err("never queued");
        assert_eq!(back.id(), 2);
        assert!(queue.send(request(3, 1)).await.is_err());
    }
}
