//! What the runtime is told at build time: where the server is, how to authenticate, and the
//! limits and timeouts every actor reads. Built once by the facade's builder and shared
//! read-only (`Arc<Config>`), so no actor can change another's settings behind its back.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::types::ParseMode;

/// A secret string (token, password). `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::from(secret.into()))
    }

    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// When an event is acknowledged to the server.
///
/// What each mode promises (verified by `tests/faults.rs` against the emulator, which re-delivers
/// unacknowledged events to the next connection that authorises with
/// `receive_unread`; the real server's handling of
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

/// Where the token comes from.
#[derive(Debug, Clone)]
pub(crate) enum AuthSource {
    /// A fixed token (no re-login possible).
    Token,
    /// OAuth password grant against the Bridge (§2).
    Credentials { user: String, password: Secret },
    /// Three-step OAuth-application flow (§2.1).
    OAuthApp {
        client_id: String,
        user: String,
        password: Secret,
    },
}

/// Reconnect back-off: exponential with jitter between `min_delay` and `max_delay`, giving up
/// after `max_retries` consecutive failed attempts (the count restarts after each successful
/// `auth`).
///
/// Back-off is for failures only: when a working socket is lost (the server restarts, a load
/// balancer cuts the connection) the first new attempt starts at once, after a random jitter
/// of at most `first_retry_jitter` (and at most `min_delay`; none with `jitter` off). Only if
/// that attempt
/// fails does the back-off start, at `min_delay`. A socket that passes `auth` and is closed
/// before anything arrives on it and before `min_delay` has passed counts as a failure too (a
/// server that closes every socket at once gets growing delays, never a tight loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// First delay. Default 1 s.
    pub min_delay: Duration,
    /// Delay cap. Default 60 s.
    pub max_delay: Duration,
    /// Consecutive failures tolerated; `None` retries forever. Default 5, as the official
    /// client.
    pub max_retries: Option<usize>,
    /// Randomise delays so many bots do not reconnect in lock-step. Default on.
    pub jitter: bool,
    /// The most the first attempt after a working socket was lost waits (a random share of
    /// it, with `jitter` on). Default 20 ms: enough to spread bots whose sockets a load
    /// balancer cut together, short beside a reconnect. When the server itself restarted,
    /// that first attempt fails and the jittered back-off spreads the bots out anyway.
    pub first_retry_jitter: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_retries: Some(5),
            jitter: true,
            first_retry_jitter: Duration::from_millis(20),
        }
    }
}

impl ReconnectPolicy {
    /// Sets the first delay.
    pub fn min_delay(mut self, d: Duration) -> Self {
        self.min_delay = d;
        self
    }

    /// Sets the delay cap.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// Sets the number of consecutive failures tolerated (`None`: forever).
    pub fn max_retries(mut self, n: Option<usize>) -> Self {
        self.max_retries = n;
        self
    }

    /// Turns jitter on or off.
    pub fn jitter(mut self, on: bool) -> Self {
        self.jitter = on;
        self
    }

    /// Sets the most the first reconnect after a lost working socket waits.
    pub fn first_retry_jitter(mut self, d: Duration) -> Self {
        self.first_retry_jitter = d;
        self
    }

    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut b = ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay.max(self.min_delay));
        b = match self.max_retries {
            Some(n) => b.with_max_times(n),
            None => b.without_max_times(),
        };
        if self.jitter {
            b = b.with_jitter();
        }
        b.build()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub host: String,
    pub port: u16,
    pub https: bool,
    pub auth: AuthSource,
    pub receive_unread: bool,
    pub receive_system_messages: bool,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub reconnect: ReconnectPolicy,
    pub ack_mode: AckMode,
    pub event_buffer: usize,
    pub event_memory: usize,
    pub offline_queue: usize,
    pub keepalive: Duration,
    pub pong_timeout: Duration,
    /// TCP connect, TLS and the WebSocket upgrade of one attempt, together.
    pub connect_timeout: Duration,
    /// Bytes of requests one socket's writer queue may hold before callers wait for room.
    pub write_queue_limit: usize,
    pub restart_limit: (u32, Duration),
    pub default_parse_mode: ParseMode,
    pub max_message_size: usize,
    pub max_frame_size: usize,
}

impl Config {
    pub(crate) fn http_base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    pub(crate) fn ws_url(&self) -> String {
        let scheme = if self.https { "wss" } else { "ws" };
        format!("{scheme}://{}:{}/websocket/chat_bot", self.host, self.port)
    }
}
