//! The Connection actor: the WebSocket, authorisation, keepalive and reconnects.
//!
//! Events leave this module as [`ServerEvent`] values; the runtime never calls into the
//! dispatcher.

use tokio::sync::mpsc;

use crate::protocol::{Frame, RawValue, RequestId};

/// When an event is acknowledged to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Acknowledge on receipt, before any handler runs (what the official client does).
    #[default]
    OnReceive,
    /// Acknowledge only after the handler finished, so an event a crash or disconnect
    /// interrupted is delivered again on reconnect (at-least-once).
    AfterHandled,
}

/// One server → client request (an *event*) as the runtime delivers it.
#[derive(Debug)]
pub struct ServerEvent {
    /// The server's frame id (server id space).
    pub id: RequestId,
    /// The event method, e.g. `"sendMessage"`.
    pub method: String,
    /// The raw payload.
    pub payload: Box<RawValue>,
    /// Acknowledges this event; in [`AckMode::OnReceive`] it was acknowledged already and
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
