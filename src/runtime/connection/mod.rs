//! The Connection: one WebSocket to the server at a time, authorised, kept alive and
//! reconnected, and the vocabulary the rest of the bot uses to talk about it.
//!
//! * [`ConnectionState`], [`Failure`]: the life cycle as published by the supervisor;
//! * [`ServerEvent`], [`Acknowledger`], [`AckMode`]: events as they leave the socket;
//! * the link (which socket requests go to, and its generation) and the identity (token,
//!   domain, own id), both written only here;
//! * the writer queue of each socket, bounded in bytes (callers wait for room), and the
//!   deadlines that declare a socket lost when its server stops reading or answering;
//! * the Connection actor and its socket task, which report every step as a `LinkEvent`.
//!
//! Events leave this module as values in a bounded queue; the runtime never calls into the
//! dispatcher.

mod actor;
mod args;
mod event;
mod http;
mod identity;
mod link;
mod queue;
mod session;
mod socket;
mod state;
pub(crate) mod tls;
mod writer;

pub use crate::runtime::config::AckMode;
pub(crate) use actor::{ConnMsg, ConnectionActor};
pub(crate) use args::{LinkEvent, SocketArgs};
pub use event::{Acknowledger, ServerEvent};
pub(crate) use event::{EventBudget, EventOutlet, EventTap};
pub(crate) use identity::Identity;
pub(crate) use link::{Link, ResponseSink};
/// A writer queue for tests standing in for a socket.
#[cfg(test)]
pub(crate) use queue::{FrameReceiver, channel as frame_queue};
pub use state::{ConnectionState, Failure, FailureKind};
pub(crate) use state::{StateBoard, StateHook};
pub use tls::{TlsOptions, install_crypto_provider};
