//! The bounded queue of one conversation.
//!
//! ractor mailboxes are unbounded, so a chat's events wait here instead, under a lock that
//! the pusher, the conversation actor and the manager's sweep all take; the actor's own
//! mailbox only ever holds one wake-up.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

pub(super) struct MailboxState<J> {
    pub(super) queue: VecDeque<J>,
    /// A `Drain` message is pending in the actor's (unbounded) ractor mailbox or being
    /// handled; keeping it to at most one is what keeps that mailbox bounded.
    pub(super) scheduled: bool,
    /// When the queue last became empty; the manager's sweep evicts on it.
    pub(super) last_active: Instant,
}

pub(super) struct Mailbox<J> {
    state: Mutex<MailboxState<J>>,
    /// Signalled when room frees up (or the actor died), for a pusher waiting under
    /// [`Overflow::Block`](super::Overflow::Block).
    pub(super) space: Notify,
}

impl<J> Mailbox<J> {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(MailboxState {
                queue: VecDeque::new(),
                scheduled: false,
                last_active: Instant::now(),
            }),
            space: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, MailboxState<J>> {
        crate::sync::lock(&self.state)
    }
}
