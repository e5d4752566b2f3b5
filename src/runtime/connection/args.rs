//! What the socket task is given when it starts and what it reports while it runs: the
//! whole contract between the Connection actor's task and its supervisor.

use std::sync::Arc;

use ractor::DerivedActorRef;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::event::{EventOutlet, EventTap};
use super::identity::Identity;
use super::link::{Link, ResponseSink};
use super::state::Failure;
use crate::runtime::config::Config;

/// The WebSocket of one session.
pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the socket task reports to its supervisor, in the order it happens.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// Connecting: `attempt` 0 is the very first connection, later ones count consecutive
    /// failures (at least 1 once a connection was lost).
    Connecting {
        /// Consecutive failed attempts.
        attempt: u32,
    },
    /// The socket is open and `auth` was sent.
    Authenticating,
    /// Socket `generation` is authorised: requests can be written to it.
    Up {
        /// The socket's generation.
        generation: u64,
    },
    /// Socket `generation` is gone; the requests in flight on it must be settled.
    Lost {
        /// The socket's generation.
        generation: u64,
    },
    /// The task ended: on request (`None`) or for good (`Some`: the failure).
    Closed(Option<Failure>),
}

/// Everything the socket task needs, handed over by the supervisor at every (re)start.
#[derive(Clone)]
pub(crate) struct SocketArgs {
    pub config: Arc<Config>,
    pub tls: Arc<rustls::ClientConfig>,
    pub http: reqwest::Client,
    pub identity: Arc<Identity>,
    pub link: Arc<Link>,
    pub events: Arc<EventOutlet>,
    pub responses: Arc<dyn ResponseSink>,
    pub tap: Option<Arc<dyn EventTap>>,
    /// Cancelled by the runtime to close every socket at once (the supervisor is gone).
    pub halt: CancellationToken,
    pub report: DerivedActorRef<LinkEvent>,
}
