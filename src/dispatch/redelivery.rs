//! The duplicate window when lost acknowledgements come back (issue 16): a key counts as
//! handled once its handler finished and its replies were accepted, not when it was received.
//!
//! With `AckMode::AfterHandled` and `receive_unread` the server re-sends, on the next
//! connection, every event whose acknowledgement it did not get. Recording a key on receipt
//! (what the plain window did) loses the events whose handling the lost
//! socket cut short: the redelivery is taken for a duplicate. So each key here is in one of
//! three states:
//!
//! * *queued*: a copy is on its way to its conversation, nothing was done yet;
//! * *running*: a copy's handler runs, or returned and its queued calls still wait for answers;
//! * *done*: the handler finished and no call of it was cut off by a lost connection.
//!
//! A redelivery of a *done* event is acknowledged and skipped (at the dispatch loop, as
//! before). Any other copy is queued on the same lane, behind the first, and decides there:
//! if the first copy is *running* it waits for it; then it is skipped if that copy got done,
//! and handled otherwise. A copy whose connection is gone before its handler starts is not
//! handled at all (its acknowledgement could not reach the server, so the server sends it
//! again): later copies of a chat's events come in the server's order, so the chat's order
//! holds across the reconnect. For the same reason a handler's calls are pinned to its event's
//! socket (`QueueScope::pinned`): once that socket is retired they fail instead of going out
//! on the next one, ahead of the answers to the earlier events cut off with it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::dedup::BuildNoHash;
use crate::bot::Acknowledger;

#[derive(Debug)]
enum Mark {
    Queued,
    Running(Arc<Notify>),
    Done,
}

#[derive(Debug)]
struct Inner {
    cap: usize,
    marks: HashMap<u64, Mark, BuildNoHash>,
    order: VecDeque<u64>,
}

impl Inner {
    /// Inserts `key`, forgetting the oldest key past the capacity.
    fn insert(&mut self, key: u64, mark: Mark) {
        if self.marks.insert(key, mark).is_some() {
            return;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.marks.remove(&old);
        }
        self.order.push_back(key);
    }
}

/// The bounded window of recent event keys, shared by the dispatch loop and the workers.
#[derive(Debug)]
pub(super) struct Window {
    inner: Mutex<Inner>,
    /// Whether unacknowledged events come again (AfterHandled with `receive_unread`): only
    /// then does a key wait for its handling to be done.
    settle: bool,
}

/// What the dispatch loop does with an event.
pub(super) enum Admit {
    /// Handled already: acknowledge it, skip it.
    Duplicate,
    /// Queue it; the ticket (if any) settles its key on the conversation.
    Queue(Option<Ticket>),
}

/// What a conversation does with a queued copy.
pub(super) enum Claim {
    /// Handle it; the ticket records the outcome when dropped.
    Go,
    /// Another copy got done: acknowledge it, skip it.
    Duplicate,
    /// Its connection is gone before it started: skip it without acknowledging, the server
    /// sends it again.
    Stale,
}

impl Window {
    /// A window of `cap` keys (0: no duplicate filtering); `settle`: see [`Window`].
    pub(super) fn new(cap: usize, settle: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                cap,
                marks: HashMap::default(),
                order: VecDeque::new(),
            }),
            settle,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every step under the lock leaves the window consistent: a panic cannot break it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dispatch loop: an event with duplicate key `key` arrived.
    pub(super) fn admit(self: &Arc<Self>, key: u64, ack: &Acknowledger) -> Admit {
        let mut inner = self.lock();
        if inner.cap == 0 {
            return Admit::Queue(None);
        }
        if !self.settle || !ack.is_pending() {
            // Nothing comes back unless its acknowledgement is lost, and that was sent on
            // receipt (or there is none): receipt is the moment that counts.
            return match inner.marks.get(&key) {
                Some(_) => Admit::Duplicate,
                None => {
                    inner.insert(key, Mark::Done);
                    Admit::Queue(None)
                }
            };
        }
        match inner.marks.get(&key) {
            Some(Mark::Done) => Admit::Duplicate,
            Some(_) => Admit::Queue(Some(self.ticket(key))),
            None => {
                inner.insert(key, Mark::Queued);
                Admit::Queue(Some(self.ticket(key)))
            }
        }
    }

    fn ticket(self: &Arc<Self>, key: u64) -> Ticket {
        Ticket {
            window: self.clone(),
            key,
            running: None,
            done: false,
        }
    }
}

/// One queued copy of an event whose key is settled by its handling.
pub(super) struct Ticket {
    window: Arc<Window>,
    key: u64,
    /// Set once this copy runs: the waiters of later copies are woken when it is dropped.
    running: Option<Arc<Notify>>,
    done: bool,
}

impl Ticket {
    /// Before the handler: whether to handle this copy (see [`Claim`]); waits while another
    /// copy of the event is running.
    pub(super) async fn claim(&mut self, ack: &Acknowledger) -> Claim {
        if self.running.is_some() {
            return Claim::Go;
        }
        loop {
            let notify = {
                let mut inner = self.window.lock();
                match inner.marks.get(&self.key) {
                    Some(Mark::Done) => return Claim::Duplicate,
                    Some(Mark::Running(notify)) => notify.clone(),
                    Some(Mark::Queued) | None => {
                        if ack.connection_gone() {
                            return Claim::Stale;
                        }
                        let notify = Arc::new(Notify::new());
                        inner.insert(self.key, Mark::Running(notify.clone()));
                        self.running = Some(notify);
                        return Claim::Go;
                    }
                }
            };
            // Registered before the lock is taken again below, and the copy that runs sets
            // its outcome under the lock before waking: no wake-up is missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if matches!(self.window.lock().marks.get(&self.key), Some(Mark::Running(n)) if Arc::ptr_eq(n, &notify))
            {
                notified.await;
            }
        }
    }

    /// The handling finished and none of its calls was cut off by a lost connection.
    pub(super) fn done(&mut self) {
        self.done = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(notify) = self.running.take() else {
            return;
        };
        {
            let mut inner = self.window.lock();
            let mark = if self.done { Mark::Done } else { Mark::Queued };
            // Only if this copy's mark is still there (not pushed out of the window).
            if let Some(slot) = inner.marks.get_mut(&self.key)
                && matches!(slot, Mark::Running(n) if Arc::ptr_eq(n, &notify))
            {
                *slot = mark;
            }
        }
        notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_ack() -> (
        Acknowledger,
        tokio::sync::mpsc::UnboundedReceiver<crate::protocol::Frame>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Acknowledger::new(1, tx), rx)
    }

    #[tokio::test]
    async fn a_copy_cut_off_by_a_lost_connection_is_handled_again() {
        let w = Window::new(10, true);
        let (ack, _rx) = pending_ack();
        let Admit::Queue(Some(mut first)) = w.admit(7, &ack) else {
            panic!("first copy not queued with a ticket")
        };
        assert!(matches!(first.claim(&ack).await, Claim::Go));
        // The reply failed with the socket: not done.
        drop(first);
        let (ack, _rx) = pending_ack();
        let Admit::Queue(Some(mut again)) = w.admit(7, &ack) else {
            panic!("redelivery taken for a duplicate")
        };
        assert!(matches!(again.claim(&ack).await, Claim::Go));
        again.done();
        drop(again);
        assert!(matches!(w.admit(7, &ack), Admit::Duplicate));
    }

    #[tokio::test]
    async fn a_copy_whose_connection_is_gone_is_left_for_the_redelivery() {
        let w = Window::new(10, true);
        let (ack, rx) = pending_ack();
        let Admit::Queue(Some(mut old)) = w.admit(7, &ack) else {
            panic!("not queued")
        };
        drop(rx);
        assert!(matches!(old.claim(&ack).await, Claim::Stale));
        let (ack2, _rx2) = pending_ack();
        let Admit::Queue(Some(mut new)) = w.admit(7, &ack2) else {
            panic!("not queued")
        };
        assert!(matches!(new.claim(&ack2).await, Claim::Go));
    }

    #[tokio::test]
    async fn a_copy_waits_for_the_running_one_and_skips_it_when_done() {
        let w = Window::new(10, true);
        let (ack, _rx) = pending_ack();
        let Admit::Queue(Some(mut first)) = w.admit(7, &ack) else {
            panic!("not queued")
        };
        let Admit::Queue(Some(mut second)) = w.admit(7, &ack) else {
            panic!("not queued")
        };
        assert!(matches!(first.claim(&ack).await, Claim::Go));
        let waiter = tokio::spawn(async move {
            let (ack, _rx) = pending_ack();
            matches!(second.claim(&ack).await, Claim::Duplicate)
        });
        tokio::task::yield_now().await;
        first.done();
        drop(first);
        assert!(waiter.await.unwrap(), "the second copy was handled too");
    }

    #[test]
    fn on_receive_counts_receipt() {
        let w = Window::new(2, true);
        let noop = Acknowledger::noop(1);
        assert!(matches!(w.admit(1, &noop), Admit::Queue(None)));
        assert!(matches!(w.admit(1, &noop), Admit::Duplicate));
        assert!(matches!(w.admit(2, &noop), Admit::Queue(None)));
        assert!(matches!(w.admit(3, &noop), Admit::Queue(None)));
        assert!(
            matches!(w.admit(1, &noop), Admit::Queue(None)),
            "forgotten past the window"
        );
    }
}
