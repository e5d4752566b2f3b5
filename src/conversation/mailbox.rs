//! The bounded queue of one conversation.
//!
//! ractor mailboxes are unbounded, so a chat's events wait here instead, under a lock that
//! the pusher, the conversation actor and the manager's sweep all take; the actor's own
//! mailbox only ever holds one wake-up per chat bound to it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use ractor::ActorId;
use tokio::sync::Notify;

use super::key::LaneKey;

pub(super) struct MailboxState<J> {
    pub(super) queue: VecDeque<J>,
    /// An actor is bound to this queue: a `Drain` for it is pending in that actor's
    /// (unbounded) ractor mailbox or being handled. Keeping it to at most one is what keeps
    /// that mailbox bounded, and what keeps one chat on one actor at a time.
    pub(super) scheduled: bool,
    /// The actor bound while `scheduled`: the manager forgets this chat if that actor fails.
    pub(super) bound: Option<ActorId>,
    /// When the queue last became empty; the manager's sweep evicts on it.
    pub(super) last_active: Instant,
    /// When it last became idle, as a pool-wide sequence number.
    pub(super) idle_seq: u64,
    /// The sequence number of its entry in the pool's idle order, 0 for none: one entry per
    /// chat at most, so the order never holds more entries than live chats (and the
    /// hibernated since the last sweep).
    pub(super) idle_entry: u64,
}

pub(super) struct Mailbox<J> {
    /// The chat, so that the actor that empties the queue can name it in the idle order.
    pub(super) key: LaneKey,
    state: Mutex<MailboxState<J>>,
    /// Signalled when room frees up (or the actor died), for a pusher waiting under
    /// [`Overflow::Block`](super::Overflow::Block).
    pub(super) space: Notify,
}

impl<J> Mailbox<J> {
    pub(super) fn new(key: LaneKey) -> Self {
        Self {
            key,
            state: Mutex::new(MailboxState {
                queue: VecDeque::new(),
                scheduled: false,
                bound: None,
                last_active: Instant::now(),
                idle_seq: 0,
                idle_entry: 0,
            }),
            space: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, MailboxState<J>> {
        crate::sync::lock(&self.state)
    }
}
