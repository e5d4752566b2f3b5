//! The link: the one authorised socket requests can be written to right now, and its
//! generation.
//!
//! Every socket gets a new generation number. A request is tagged with the generation it
//! was written on, so when that socket goes away the RequestRouter knows exactly which
//! requests were in flight on it. Only the connection installs and retires sockets; the
//! request path reads the link to find the writer, and waits on it while there is none.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

use super::queue::FrameQueue;
use crate::protocol::{RawValue, RequestId};

/// The writer queue of one authorised socket.
#[derive(Clone)]
pub(crate) struct LinkWriter {
    /// The socket's generation.
    pub generation: u64,
    /// Its outgoing frame queue.
    pub tx: FrameQueue,
}

/// Where responses read from the socket go (the RequestRouter's pending table), installed
/// by the runtime so the connection does not depend on the request side.
pub(crate) trait ResponseSink: Send + Sync {
    /// A fresh request id from the one counter every request uses (`auth` included).
    fn next_id(&self) -> RequestId;
    /// A `type: 2` frame arrived for request `id`.
    fn resolve(&self, id: RequestId, payload: Option<Box<RawValue>>);
}

/// The current socket's writer, if any, and the generation counter.
pub(crate) struct Link {
    writer: watch::Sender<Option<LinkWriter>>,
    /// Bumped (while the writer slot is locked) whenever a socket goes away.
    generation: AtomicU64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            writer: watch::channel(None).0,
            generation: AtomicU64::new(0),
        }
    }
}

impl Link {
    /// The authorised socket's writer; `None` while offline.
    pub(crate) fn writer(&self) -> Option<LinkWriter> {
        self.writer.borrow().clone()
    }

    /// The generation of the current (or next) socket.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until a socket is installed (or the link is dropped).
    pub(crate) async fn online(&self) {
        let mut rx = self.writer.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Waits until socket `generation` is no longer the current one.
    pub(crate) async fn retired(&self, generation: u64) {
        let mut rx = self.writer.subscribe();
        let _ = rx
            .wait_for(|w| w.as_ref().is_none_or(|w| w.generation != generation))
            .await;
    }

    /// Installs the writer of a freshly authorised socket; returns its generation. Only the
    /// connection (and tests standing in for it) install and retire sockets.
    pub(crate) fn install(&self, tx: FrameQueue) -> u64 {
        let mut generation = 0;
        self.writer.send_modify(|slot| {
            generation = self.generation.load(Ordering::Acquire);
            *slot = Some(LinkWriter { generation, tx });
        });
        generation
    }

    /// Retires socket `generation`: later requests wait for the next socket. Returns whether
    /// it was the current one (a socket is retired once, however its session ended).
    pub(crate) fn retire(&self, generation: u64) -> bool {
        self.writer.send_if_modified(|slot| {
            if self.generation.load(Ordering::Acquire) != generation {
                return false;
            }
            *slot = None;
            self.generation.store(generation + 1, Ordering::Release);
            true
        })
    }
}
