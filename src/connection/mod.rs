//! The Connection actor: the WebSocket, authorisation, keepalive and reconnects.
//!
//! Events leave this module as [`ServerEvent`] values; the runtime never calls into the
//! dispatcher.

use tokio::sync::mpsc;

use crate::protocol::{Frame, RawValue, RequestId};

/// When an event is acknowledged to the server.
///
/// What each mode promises (verified by `tests/faults.rs` against the emulator, which re-delivers
/// unacknowledged events to the next connection that authorises with
/// [`receive_unread`](crate::bot::BotBuilder::receive_unread); the real server's handling of
/// unacknowledged events is not documented, see PROTOCOL.md §6):
///
/// | | socket drops, restarts, refusals | the bot process dies |
/// |---|---|---|
/// | `OnReceive` | nothing lost | events received but not yet handled are lost |
/// | `AfterHandled` | nothing lost | nothing lost (re-delivered to the next process) |
///
/// In both modes an event whose acknowledgement died with the socket comes again: the stream
/// can carry a duplicate, which the [`Dispatcher`](crate::dispatch::Dispatcher)'s duplicate
/// window keeps from reaching a handler twice (for messages and timestamped events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// Acknowledge on receipt, before any handler runs (what the official client does).
    /// At-most-once across a crash of the bot process.
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

mod http;
mod session;
pub(crate) mod tls;

pub(crate) use session::{ConnMsg, ConnectionActor, TaskGuard};
pub use tls::TlsOptions;

pub use crate::error::FailureKind;
use crate::error::{ApiErrorCode, DisconnectKind, Error};

/// The life cycle of the bot's connection, published through
/// [`Bot::state`](crate::bot::Bot::state).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Built, not started yet.
    Idle,
    /// Fetching server info, a token, or opening the first socket.
    Connecting,
    /// The socket is open and `auth` was sent.
    Authenticating,
    /// Authorised: requests flow and events arrive.
    Ready,
    /// The connection was lost; `attempt` counts consecutive failed attempts.
    Reconnecting {
        /// 1 for the first retry after a loss.
        attempt: u32,
    },
    /// Shut down on request.
    Stopped,
    /// Gave up for good (bad credentials, unsupported server, retries exhausted…).
    Failed(Failure),
}

impl ConnectionState {
    /// Whether the bot is finished (stopped or failed) and will not reconnect.
    pub fn is_terminal(&self) -> bool {
        matches!(self, ConnectionState::Stopped | ConnectionState::Failed(_))
    }
}

/// Why the runtime gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// Human-readable explanation.
    pub message: String,
    /// The server's error code, when the failure came from an `auth` response.
    pub code: Option<ApiErrorCode>,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// The failure as an [`Error`] (`Error::Auth` for [`FailureKind::Auth`]).
    pub fn to_error(&self) -> Error {
        match self.kind {
            FailureKind::Auth => Error::Auth {
                reason: self.message.clone(),
                code: self.code,
            },
            FailureKind::UnsupportedServer => Error::Protocol(self.message.clone()),
            FailureKind::RetriesExhausted | FailureKind::RestartLimit | FailureKind::Internal => {
                Error::disconnected(DisconnectKind::Failed(self.kind), self.message.clone())
            }
            FailureKind::Tls => Error::Transport {
                message: self.message.clone(),
                source: None,
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
