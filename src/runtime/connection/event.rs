//! Events as they leave the connection: the [`ServerEvent`] each server request becomes,
//! the [`Acknowledger`] that answers it, and the bounded outlet they queue in.
//!
//! The connection never calls a consumer: it pushes events into the outlet and whoever took
//! the receiving end (the dispatcher, or the user's own loop) pulls them. That keeps the
//! runtime free of any knowledge of handlers.
//!
//! Every event also carries its share of the [`EventBudget`], the bytes of events read and not
//! yet done with, inside its [`Acknowledger`]: the one part of an event that travels with it
//! through every queue to the end of its handling, whoever consumes it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::protocol::{Frame, RawValue, RequestId};
use crate::sync::lock;

/// One server → client request (an *event*) as the runtime delivers it.
#[derive(Debug)]
pub struct ServerEvent {
    /// The server's frame id (server id space).
    pub id: RequestId,
    /// The event method, e.g. `"sendMessage"`.
    pub method: String,
    /// The raw payload.
    pub payload: Box<RawValue>,
    /// Acknowledges this event; in [`AckMode::OnReceive`](crate::runtime::config::AckMode::OnReceive) it was acknowledged already and
    /// this does nothing.
    pub ack: Acknowledger,
}

/// Acknowledges one event on the connection it arrived on. Dropping it without calling
/// [`Acknowledger::ack`] leaves the event unacknowledged.
///
/// It also holds the event's share of the bot's event memory
/// ([`BotBuilder::event_memory`](crate::bot::BotBuilder::event_memory)), in both
/// [`AckMode`](crate::runtime::config::AckMode)s: the share is given back when it is
/// acknowledged or dropped, so an event a consumer keeps unacknowledged keeps counting.
#[derive(Debug)]
pub struct Acknowledger {
    id: RequestId,
    sink: Option<mpsc::UnboundedSender<Frame>>,
    held: Option<Reservation>,
    /// Set when the connection's generation is retired, which happens before its writer
    /// (and so the sink's receiver) is gone.
    retired: Option<Arc<AtomicBool>>,
}

impl Acknowledger {
    /// An acknowledger that sends `{"type":2,"id":id}` through `sink` (the connection's
    /// outgoing frame queue).
    pub(crate) fn new(id: RequestId, sink: mpsc::UnboundedSender<Frame>) -> Self {
        Self {
            id,
            sink: Some(sink),
            held: None,
            retired: None,
        }
    }

    /// An acknowledger with nothing to do: the event was acknowledged on receipt, or it was
    /// made up by a test.
    pub fn noop(id: RequestId) -> Self {
        Self {
            id,
            sink: None,
            held: None,
            retired: None,
        }
    }

    /// The same acknowledger, holding the event's share of the budget until it is done.
    pub(crate) fn holding(mut self, share: Reservation) -> Self {
        self.held = Some(share);
        self
    }

    /// The same acknowledger, its connection counting as gone once `retired` is set.
    pub(crate) fn retired_with(mut self, retired: Arc<AtomicBool>) -> Self {
        self.retired = Some(retired);
        self
    }

    /// The flag set when the connection this event came on is retired (AfterHandled only).
    pub(crate) fn retired_flag(&self) -> Option<Arc<AtomicBool>> {
        self.retired.clone()
    }

    /// Whether calling [`Acknowledger::ack`] would send anything.
    pub fn is_pending(&self) -> bool {
        self.sink.is_some()
    }

    /// Whether the connection this event came on is gone, so an acknowledgement can no longer
    /// reach the server (which, in [`AckMode::AfterHandled`](crate::runtime::config::AckMode::AfterHandled)
    /// with `receive_unread`, delivers the event again on the next connection). False when
    /// there is nothing to acknowledge.
    pub fn connection_gone(&self) -> bool {
        self.sink.as_ref().is_some_and(|sink| {
            sink.is_closed()
                || self
                    .retired
                    .as_ref()
                    .is_some_and(|r| r.load(Ordering::Acquire))
        })
    }

    /// Sends the acknowledgement. If the connection the event came on is gone, nothing is
    /// sent: the server re-delivers the event to the next connection.
    pub fn ack(mut self) {
        if let Some(sink) = self.sink.take() {
            let _ = sink.send(Frame::ack(self.id));
        }
        // `self.held` is released here, after the ack was queued.
    }
}

/// Bytes an event is charged on top of its payload and method: an estimate of the structures
/// that carry it on its way (the event itself, the dispatcher's update with its routing view, a
/// queue slot), so a flood of tiny events is bounded too.
pub(crate) const EVENT_OVERHEAD: usize = 512;

/// The bytes of events read from the socket and not yet done with (acknowledged or dropped),
/// wherever they wait: the reader's backlog, the event stream, the dispatcher, a conversation's
/// queue, a running handler.
///
/// Only the socket reader charges it, and it reads the next frame only while the budget is not
/// full; so at most the limit plus one event is held. An event bigger than the whole budget is
/// therefore still read (when anything at all is free) and delivered: it cannot wedge the
/// reader, it only keeps it waiting until enough is given back.
pub(crate) struct EventBudget {
    limit: usize,
    used: AtomicUsize,
    /// Signalled when a share is given back while the budget is full: the reader may wait.
    room: Notify,
}

impl EventBudget {
    pub(crate) fn new(limit: usize) -> Self {
        EventBudget {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether the reader should stop reading.
    pub(crate) fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// Charges `bytes`, whether or not they fit: they were read already. The share is given
    /// back when the returned reservation drops.
    pub(crate) fn charge(self: &Arc<Self>, bytes: usize) -> Reservation {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        Reservation {
            budget: self.clone(),
            bytes,
        }
    }

    /// Returns after a share was given back (maybe spuriously): check
    /// [`is_full`](Self::is_full) again. Only the reader charges, so while it waits the budget
    /// only shrinks, and any share given back from the moment it saw the budget full stores a
    /// wake-up it cannot miss.
    pub(crate) async fn room(&self) {
        self.room.notified().await
    }

    fn release(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.limit {
            self.room.notify_one();
        }
    }
}

/// One event's share of the [`EventBudget`], given back on drop.
pub(crate) struct Reservation {
    budget: Arc<EventBudget>,
    bytes: usize,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Something that wants a look at every server event before it is queued (the FileTransfer
/// side reads progress and limits events this way). Installed by the runtime, so the
/// connection does not know who is looking.
pub(crate) trait EventTap: Send + Sync {
    /// Called on the socket task for every event; keep it quick.
    fn observe(&self, method: &str, payload: &RawValue);
}

/// The bounded queue between the connection and the event consumer, and the memory budget
/// of the events on their way through it and beyond.
pub(crate) struct EventOutlet {
    tx: Mutex<Option<mpsc::Sender<ServerEvent>>>,
    rx: Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    /// Cancelled when no more events should be taken (shutdown).
    closed: CancellationToken,
    budget: Arc<EventBudget>,
}

impl EventOutlet {
    /// A queue of `capacity` events; `memory` bytes of events may be held at once.
    pub(crate) fn new(capacity: usize, memory: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        EventOutlet {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            closed: CancellationToken::new(),
            budget: Arc::new(EventBudget::new(memory)),
        }
    }

    /// The memory budget of events read and not yet done with.
    pub(crate) fn budget(&self) -> &Arc<EventBudget> {
        &self.budget
    }

    /// Charges one event read from the socket against the budget.
    pub(crate) fn charge(&self, method: &str, payload: &RawValue) -> Reservation {
        self.budget
            .charge(EVENT_OVERHEAD + method.len() + payload.get().len())
    }

    /// The receiving end; `None` after the first call.
    pub(crate) fn take_receiver(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        lock(&self.rx).take()
    }

    /// Nobody took the receiver before start: events are acknowledged and dropped from now on.
    pub(crate) fn discard_untaken(&self) -> bool {
        if lock(&self.rx).take().is_some() {
            *lock(&self.tx) = None;
            return true;
        }
        false
    }

    /// The sending end, while there is a consumer.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<ServerEvent>> {
        lock(&self.tx).clone()
    }

    /// Stops taking events: the stream ends for its consumer once drained.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        *lock(&self.tx) = None;
        lock(&self.rx).take();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_share_bigger_than_the_budget_is_taken_and_its_return_wakes_the_reader() {
        let budget = Arc::new(EventBudget::new(100));
        assert!(!budget.is_full());
        let big = budget.charge(1000);
        assert!(budget.is_full());
        assert_eq!(budget.used(), 1000);
        let reader = tokio::spawn({
            let budget = budget.clone();
            async move {
                while budget.is_full() {
                    budget.room().await;
                }
            }
        });
        tokio::task::yield_now().await;
        drop(big);
        tokio::time::timeout(Duration::from_secs(1), reader)
            .await
            .expect("the reader woke")
            .unwrap();
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_share_given_back_between_the_look_and_the_wait_is_not_missed() {
        let budget = Arc::new(EventBudget::new(10));
        let share = budget.charge(10);
        assert!(budget.is_full());
        drop(share);
        tokio::time::timeout(Duration::from_secs(1), budget.room())
            .await
            .expect("the wake-up was stored");
    }

    #[test]
    fn acknowledging_or_dropping_an_event_gives_its_share_back() {
        let budget = Arc::new(EventBudget::new(0));
        assert_eq!(
            budget.limit, 1,
            "zero is taken as one byte: one event at a time"
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let acked = Acknowledger::new(1, tx).holding(budget.charge(7));
        let dropped = Acknowledger::noop(2).holding(budget.charge(5));
        assert_eq!(budget.used(), 12);
        acked.ack();
        assert!(rx.try_recv().is_ok(), "the ack went out");
        assert_eq!(budget.used(), 5);
        drop(dropped);
        assert_eq!(budget.used(), 0);
    }
}
