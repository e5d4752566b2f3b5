//! The state the pool handle, the conversation actors and their manager share, and the
//! messages those actors take.
//!
//! It sits below all three so that each can reach it without reaching the others: the pool
//! starts the actors, the actors only need the queue and the in-flight count back.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use dashmap::DashMap;
use ractor::ActorRef;
use tokio::sync::Notify;

use super::config::LaneConfig;
use super::key::LaneKey;
use super::mailbox::Mailbox;

/// A boxed, `Send` future (what handlers and middleware return once type-erased).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs one queued item. Must not panic (the dispatcher's worker catches handler panics).
pub(crate) type Worker<J> = Arc<dyn Fn(J) -> BoxFuture<()> + Send + Sync>;

/// One entry of the lane map.
pub(super) enum Conv<J> {
    Live {
        mailbox: Arc<Mailbox<J>>,
        actor: ActorRef<Drain>,
    },
    /// No actor and no queue: the chat's last event was done at `since`.
    Hibernating { since: Instant },
}

/// What the pool handle, the conversation actors and the manager hold in common.
pub(super) struct PoolInner<J> {
    pub(super) map: DashMap<LaneKey, Conv<J>>,
    pub(super) config: LaneConfig,
    pub(super) worker: Worker<J>,
    pub(super) manager: OnceLock<ActorRef<Sweep>>,
    pub(super) in_flight: AtomicUsize,
    pub(super) all_done: Notify,
    pub(super) hibernating: AtomicUsize,
}

impl<J> PoolInner<J> {
    /// One queued item finished (or was lost): wakes [`drain`](super::ConversationPool::drain)
    /// when it was the last.
    pub(super) fn done_one(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_waiters();
        }
    }
}

/// Run the next queued items: the only message a conversation actor gets.
#[derive(Debug)]
pub(super) struct Drain;

/// The manager's one message: evict the conversations idle for the timeout.
#[derive(Debug)]
pub(super) struct Sweep;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hibernating_record_is_small() {
        // A hibernating record is the key and an `Instant`, with nothing on the heap.
        assert!(std::mem::size_of::<Conv<()>>() <= 24);
    }
}
