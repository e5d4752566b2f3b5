//! The connection's state as the rest of the bot sees it.
//!
//! The socket task only *reports* what happens to it; the Supervisor decides what that
//! means for the bot and publishes it here, so there is one writer of the state and every
//! reader (`start`, `run`, waiting requests, health hooks) sees the same sequence.

use std::sync::Arc;

use tokio::sync::watch;

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
    /// The value of the `state` label of `trueconf_connection_state` (see
    /// [`ops`](crate::ops)): `idle`, `connecting`, `authenticating`, `ready`, `reconnecting`,
    /// `stopped` or `failed`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ConnectionState::Idle => "idle",
            ConnectionState::Connecting => "connecting",
            ConnectionState::Authenticating => "authenticating",
            ConnectionState::Ready => "ready",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Stopped => "stopped",
            ConnectionState::Failed(_) => "failed",
        }
    }

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

/// Called on every state change (health reporting).
pub(crate) type StateHook = Arc<dyn Fn(&ConnectionState) + Send + Sync>;

/// The published [`ConnectionState`]. A terminal state is final: later changes are ignored,
/// so a late report from a dying socket cannot turn `Failed` back into `Reconnecting`.
pub(crate) struct StateBoard {
    tx: watch::Sender<ConnectionState>,
    hook: Option<StateHook>,
}

impl StateBoard {
    pub(crate) fn new(hook: Option<StateHook>) -> Self {
        StateBoard {
            tx: watch::channel(ConnectionState::Idle).0,
            hook,
        }
    }

    pub(crate) fn current(&self) -> ConnectionState {
        self.tx.borrow().clone()
    }

    pub(crate) fn is_terminal(&self) -> bool {
        self.tx.borrow().is_terminal()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.tx.subscribe()
    }

    /// Publishes `next` unless the state is terminal already or unchanged.
    pub(crate) fn publish(&self, next: ConnectionState) {
        let mut lost = false;
        let changed = self.tx.send_if_modified(|s| {
            if s.is_terminal() || *s == next {
                return false;
            }
            lost = *s == ConnectionState::Ready
                && matches!(next, ConnectionState::Reconnecting { .. });
            *s = next.clone();
            true
        });
        if changed {
            crate::runtime::telemetry::state_changed(next.metric_label(), lost);
            tracing::debug!(state = ?next, "connection state");
            if let Some(hook) = &self.hook {
                hook(&next);
            }
        }
    }

    /// Waits for `Ready` or a terminal state and returns it.
    pub(crate) async fn settled(&self) -> ConnectionState {
        let mut rx = self.subscribe();
        rx.wait_for(|s| matches!(s, ConnectionState::Ready) || s.is_terminal())
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped)
    }

    /// Waits for a terminal state and returns it.
    pub(crate) async fn finished(&self) -> ConnectionState {
        let mut rx = self.subscribe();
        rx.wait_for(ConnectionState::is_terminal)
            .await
            .map(|s| s.clone())
            .unwrap_or(ConnectionState::Stopped)
    }
}
