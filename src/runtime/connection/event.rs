//! Events as they leave the connection: the [`ServerEvent`] each server request becomes,
//! the [`Acknowledger`] that answers it, and the bounded outlet they queue in.
//!
//! The connection never calls a consumer: it pushes events into the outlet and whoever took
//! the receiving end (the dispatcher, or the user's own loop) pulls them. That keeps the
//! runtime free of any knowledge of handlers.

use std::sync::Mutex;

use tokio::sync::mpsc;
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
#[derive(Debug)]
pub struct Acknowledger {
    id: RequestId,
    sink: Option<mpsc::UnboundedSender<Frame>>,
}

impl Acknowledger {
    /// An acknowledger that sends `{"type":2,"id":id}` through `sink` (the connection's
    /// outgoing frame queue).
    pub(crate) fn new(id: RequestId, sink: mpsc::UnboundedSender<Frame>) -> Self {
        Self {
            id,
            sink: Some(sink),
        }
    }

    /// An acknowledger with nothing to do: the event was acknowledged on receipt, or it was
    /// made up by a test.
    pub fn noop(id: RequestId) -> Self {
        Self { id, sink: None }
    }

    /// Whether calling [`Acknowledger::ack`] would send anything.
    pub fn is_pending(&self) -> bool {
        self.sink.is_some()
    }

    /// Sends the acknowledgement. If the connection the event came on is gone, nothing is
    /// sent: the server re-delivers the event to the next connection.
    pub fn ack(mut self) {
        if let Some(sink) = self.sink.take() {
            let _ = sink.send(Frame::ack(self.id));
        }
    }
}

/// Something that wants a look at every server event before it is queued (the FileTransfer
/// side reads progress and limits events this way). Installed by the runtime, so the
/// connection does not know who is looking.
pub(crate) trait EventTap: Send + Sync {
    /// Called on the socket task for every event; keep it quick.
    fn observe(&self, method: &str, payload: &RawValue);
}

/// The bounded queue between the connection and the event consumer.
pub(crate) struct EventOutlet {
    tx: Mutex<Option<mpsc::Sender<ServerEvent>>>,
    rx: Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    /// Cancelled when no more events should be taken (shutdown).
    closed: CancellationToken,
}

impl EventOutlet {
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        EventOutlet {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some(rx)),
            closed: CancellationToken::new(),
        }
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
