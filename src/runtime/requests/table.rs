//! The pending table: request ids and the requests waiting for their response.
//!
//! It is a [`DashMap`] the socket reader resolves directly (through the connection's
//! `ResponseSink`), so a response reaches its caller without an actor hop. What happens to
//! the entries of a lost socket or at shutdown is decided by the RequestRouter actor.
//!
//! An entry is told its outcome one of two ways. An awaited call has a caller parked on a
//! oneshot. A [queued](crate::bot::Call::queue) call has nobody waiting: its entry carries a
//! callback, run where the outcome happens (the socket reader, the router's sweep of expired
//! entries), so a call that is not awaited costs no task and no wake-up of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{DisconnectKind, Error};
use crate::protocol::{RawValue, RequestId};
use crate::runtime::connection::ResponseSink;

/// How a pending request ended, as told to its caller.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The server's response payload (`None`: no payload).
    Response(Option<Box<RawValue>>),
    /// The socket died before an answer; the request is safe to send again.
    Retry,
    /// The request failed for good.
    Failed(Error),
}

/// What a queued call does with its outcome.
pub(crate) type Callback = Box<dyn FnOnce(Outcome) + Send + Sync>;

/// Where a pending request's outcome goes.
pub(crate) enum Reply {
    /// A caller awaiting it.
    Waiter(oneshot::Sender<Outcome>),
    /// A queued call: nobody waits, so the table enforces its deadline (see
    /// [`RequestTable::expire`]).
    Callback {
        /// Runs once, with the outcome.
        done: Callback,
        /// When it fails with [`Error::Timeout`].
        deadline: Instant,
        /// The timeout the deadline came from, for the error.
        after: Duration,
    },
}

impl Reply {
    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            Reply::Waiter(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Callback { done, .. } => done(outcome),
        }
    }

    fn expired(&self, now: Instant) -> bool {
        matches!(self, Reply::Callback { deadline, .. } if *deadline <= now)
    }
}

/// A request waiting for its response.
pub(crate) struct Pending {
    /// The wire method, for messages.
    pub method: &'static str,
    /// The socket generation it was written on.
    pub generation: u64,
    /// Safe to send again after a lost socket (a read).
    pub idempotent: bool,
    /// Where the outcome goes.
    pub tx: Reply,
}

/// Ids and pending requests. Ids come from one counter that is never reset, so a late
/// response from an old socket can never resolve a newer request.
pub(crate) struct RequestTable {
    next_id: AtomicU64,
    pending: DashMap<RequestId, Pending>,
}

impl Default for RequestTable {
    fn default() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            pending: DashMap::new(),
        }
    }
}

impl RequestTable {
    pub(crate) fn next_id(&self) -> RequestId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn insert(&self, id: RequestId, pending: Pending) {
        self.pending.insert(id, pending);
    }

    pub(crate) fn remove(&self, id: RequestId) -> Option<Pending> {
        self.pending.remove(&id).map(|(_, p)| p)
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Resolves the request `id` with a `type:2` frame's payload. Only responses come here:
    /// event ids live in the server's id space.
    pub(crate) fn resolve(&self, id: RequestId, payload: Option<Box<RawValue>>) {
        match self.remove(id) {
            Some(p) => p.tx.send(Outcome::Response(payload)),
            None => tracing::debug!(id, "response for an unknown or expired request dropped"),
        }
    }

    /// Settles every request sent on socket generation `generation` or older: reads are
    /// told to retry, writes fail with [`DisconnectKind::OutcomeUnknown`].
    pub(crate) fn settle_offline(&self, generation: u64) -> usize {
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|e| e.generation <= generation)
            .map(|e| *e.key())
            .collect();
        let mut settled = 0;
        for id in ids {
            let Some(p) = self
                .pending
                .remove_if(&id, |_, p| p.generation <= generation)
                .map(|(_, p)| p)
            else {
                continue;
            };
            settled += 1;
            let outcome = if p.idempotent {
                Outcome::Retry
            } else {
                Outcome::Failed(Error::disconnected(
                    DisconnectKind::OutcomeUnknown,
                    format!(
                        "connection lost while `{}` (id {id}) was in flight; it may or may not \
                         have been applied",
                        p.method
                    ),
                ))
            };
            p.tx.send(outcome);
        }
        settled
    }

    /// Fails the queued calls whose deadline passed by `now` with [`Error::Timeout`]
    /// (awaited calls time out in their caller); returns how many.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|e| e.tx.expired(now))
            .map(|e| *e.key())
            .collect();
        let mut expired = 0;
        for id in ids {
            let Some((_, p)) = self.pending.remove_if(&id, |_, p| p.tx.expired(now)) else {
                continue;
            };
            if let Reply::Callback { after, .. } = &p.tx {
                let error = Error::Timeout {
                    what: p.method.to_owned(),
                    after: *after,
                };
                expired += 1;
                p.tx.send(Outcome::Failed(error));
            }
        }
        expired
    }

    /// Fails every pending request with [`Error::Disconnected`] of `kind`.
    pub(crate) fn fail_all(&self, kind: DisconnectKind, reason: &str) -> usize {
        let ids: Vec<RequestId> = self.pending.iter().map(|e| *e.key()).collect();
        let mut failed = 0;
        for id in ids {
            if let Some(p) = self.remove(id) {
                failed += 1;
                p.tx.send(Outcome::Failed(Error::disconnected(
                    kind,
                    format!("`{}` (id {id}): {reason}", p.method),
                )));
            }
        }
        failed
    }
}

impl ResponseSink for RequestTable {
    fn next_id(&self) -> RequestId {
        RequestTable::next_id(self)
    }

    fn resolve(&self, id: RequestId, payload: Option<Box<RawValue>>) {
        RequestTable::resolve(self, id, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(generation: u64, idempotent: bool) -> (Pending, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (
            Pending {
                method: "m",
                generation,
                idempotent,
                tx: Reply::Waiter(tx),
            },
            rx,
        )
    }

    #[test]
    fn ids_increase_and_responses_resolve_only_their_request() {
        let t = RequestTable::default();
        let a = t.next_id();
        let b = t.next_id();
        assert!(b > a);
        let (p, mut rx) = pending(0, false);
        t.insert(a, p);
        t.resolve(b, None);
        assert!(rx.try_recv().is_err());
        t.resolve(a, None);
        assert!(matches!(rx.try_recv(), Ok(Outcome::Response(None))));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn offline_retries_reads_fails_writes_and_spares_newer_sockets() {
        let t = RequestTable::default();
        let (read, mut read_rx) = pending(3, true);
        let (write, mut write_rx) = pending(3, false);
        let (newer, mut newer_rx) = pending(4, false);
        t.insert(1, read);
        t.insert(2, write);
        t.insert(3, newer);
        assert_eq!(t.settle_offline(3), 2);
        assert!(matches!(read_rx.try_recv(), Ok(Outcome::Retry)));
        assert!(matches!(
            write_rx.try_recv(),
            Ok(Outcome::Failed(Error::Disconnected {
                kind: DisconnectKind::OutcomeUnknown,
                ..
            }))
        ));
        assert!(newer_rx.try_recv().is_err());
        assert_eq!(t.fail_all(DisconnectKind::ShuttingDown, "bye"), 1);
        assert!(matches!(
            newer_rx.try_recv(),
            Ok(Outcome::Failed(Error::Disconnected {
                kind: DisconnectKind::ShuttingDown,
                ..
            }))
        ));
    }
}
