//! The state the pool handle, the conversation actors and their manager share, and the
//! messages those actors take.
//!
//! It sits below all three so that each can reach it without reaching the others: the pool
//! starts the actors, the actors only need the queue, the in-flight count and the pool of
//! unbound actors back.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// A queue, bound to an actor of the pool while it has work (`scheduled`).
    Live { mailbox: Arc<Mailbox<J>> },
    /// No actor and no queue: the chat's last event was done at `since`.
    Hibernating { since: Instant },
}

/// What the pool handle, the conversation actors and the manager hold in common.
pub(super) struct PoolInner<J> {
    pub(super) map: DashMap<LaneKey, Conv<J>>,
    pub(super) config: LaneConfig,
    pub(super) worker: Worker<J>,
    pub(super) manager: OnceLock<ActorRef<Sweep>>,
    /// Conversation actors bound to no chat, each with when it came back, oldest first: a
    /// chat that gets work takes the most recent one (its pages are warm), and the sweep stops
    /// those unused for `hibernate_after`. Reusing them is what makes a new chat cheap:
    /// spawning an actor costs two tasks, four channels and a supervision link.
    pub(super) unbound: Mutex<Vec<(ActorRef<Drain<J>>, Instant)>>,
    pub(super) in_flight: AtomicUsize,
    pub(super) all_done: Notify,
    pub(super) hibernating: AtomicUsize,
    /// Chat conversations with an actor (the global lane is not counted), at most
    /// `config.max_live`.
    pub(super) awake: AtomicUsize,
    /// Pushers waiting for a conversation to free its slot or have nothing to do.
    pub(super) room_waiters: AtomicUsize,
    /// Signalled, while someone waits, when a slot frees or a conversation runs out of work.
    pub(super) room: Notify,
    /// Chat conversations in about the order they ran out of work, at most one entry each
    /// (the chat's `idle_entry`). The live cap hibernates from the front, so making room costs
    /// about the batch, not a walk over every conversation. Entries of chats hibernated or
    /// forgotten otherwise are dropped when met, and by every sweep.
    pub(super) idle: Mutex<VecDeque<(u64, LaneKey)>>,
    pub(super) idle_seq: AtomicU64,
}

impl<J> PoolInner<J> {
    /// One queued item finished (or was lost): wakes [`drain`](super::ConversationPool::drain)
    /// when it was the last.
    pub(super) fn done_one(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_waiters();
        }
    }

    /// Takes a live slot for `key`'s new actor; `false` at the cap. The global lane needs none.
    pub(super) fn take_slot(&self, key: &LaneKey) -> bool {
        matches!(key, LaneKey::Global)
            || self
                .awake
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.config.max_live).then_some(n + 1)
                })
                .is_ok()
    }

    /// `key`'s actor is gone (hibernated, stopped, failed): its slot is free.
    pub(super) fn free_slot(&self, key: &LaneKey) {
        if !matches!(key, LaneKey::Global) {
            self.awake.fetch_sub(1, Ordering::AcqRel);
            self.room_changed();
        }
    }

    /// A slot freed or a conversation ran out of work: wakes a pusher waiting at the cap.
    /// SeqCst, paired with the waiter's: either it sees the waiter, or the waiter, which looks
    /// after announcing itself, sees the change.
    pub(super) fn room_changed(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Hibernates `conv` if it is live with nothing queued or running (so bound to no actor):
    /// its queue goes, a small record stays, its slot frees. Called with the map shard locked,
    /// as `push` is while it queues, so no event can slip into it meanwhile; and since the
    /// last bound actor had an empty queue and nothing running, the next one cannot overlap it.
    pub(super) fn hibernate(&self, key: &LaneKey, conv: &mut Conv<J>) -> bool {
        let since = match conv {
            Conv::Live { mailbox } => {
                let mb = mailbox.lock();
                if !mb.queue.is_empty() || mb.scheduled {
                    return false;
                }
                mb.last_active
            }
            Conv::Hibernating { .. } => return false,
        };
        *conv = Conv::Hibernating { since };
        self.hibernating.fetch_add(1, Ordering::AcqRel);
        self.free_slot(key);
        true
    }

    pub(super) fn next_idle_seq(&self) -> u64 {
        self.idle_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `key` ran out of work as its `seq`th idle time and has no entry in the idle order: it
    /// joins the back.
    pub(super) fn went_idle(&self, key: &LaneKey, seq: u64) {
        crate::sync::lock(&self.idle).push_back((seq, key.clone()));
    }

    /// Whether an idle-order entry is still `key`'s. Takes a map shard lock: not to be called
    /// with one held.
    fn is_entry(&self, key: &LaneKey, seq: u64) -> bool {
        self.map.get(key).is_some_and(|conv| match &*conv {
            Conv::Live { mailbox } => mailbox.lock().idle_entry == seq,
            Conv::Hibernating { .. } => false,
        })
    }

    /// Drops the entries of the idle order whose chats hibernated or were forgotten (after a
    /// sweep).
    pub(super) fn compact_idle(&self) {
        let mut idle = crate::sync::lock(&self.idle);
        idle.retain(|(seq, key)| self.is_entry(key, *seq));
        let keep = idle.len() * 2;
        idle.shrink_to(keep);
    }

    /// Hibernates up to `batch` of the chat conversations idle the longest; returns how many.
    ///
    /// Second chance: an entry whose chat had work since it was queued goes to the back with
    /// its newer idle time (or, busy now, leaves the order until it runs dry again).
    pub(super) fn hibernate_oldest(&self, batch: usize) -> usize {
        let mut freed = 0;
        while freed < batch {
            let Some((seq, key)) = crate::sync::lock(&self.idle).pop_front() else {
                break;
            };
            // Looked at under the shard lock, as `push` queues under it.
            let Some(mut conv) = self.map.get_mut(&key) else {
                continue;
            };
            let Conv::Live { mailbox } = &*conv else {
                continue;
            };
            let requeue = {
                let mut mb = mailbox.lock();
                if mb.idle_entry != seq {
                    continue;
                }
                if mb.scheduled || !mb.queue.is_empty() {
                    mb.idle_entry = 0;
                    continue;
                }
                (mb.idle_seq != seq).then(|| {
                    mb.idle_entry = mb.idle_seq;
                    mb.idle_seq
                })
            };
            if let Some(newer) = requeue {
                drop(conv);
                crate::sync::lock(&self.idle).push_back((newer, key));
            } else if self.hibernate(&key, &mut conv) {
                tracing::trace!(lane = %key, "conversation hibernated early: live cap reached");
                freed += 1;
            }
        }
        freed
    }

    /// An actor finished with the chat it was bound to: it waits for the next one.
    pub(super) fn unbind(&self, actor: ActorRef<Drain<J>>, at: Instant) {
        crate::sync::lock(&self.unbound).push((actor, at));
    }

    /// An actor bound to no chat, if one waits.
    pub(super) fn take_unbound(&self) -> Option<ActorRef<Drain<J>>> {
        crate::sync::lock(&self.unbound)
            .pop()
            .map(|(actor, _)| actor)
    }

    /// Stops the unbound actors unused since `cutoff`; returns how many.
    pub(super) fn retire_unbound(&self, cutoff: Instant) -> usize {
        let old: Vec<_> = {
            let mut unbound = crate::sync::lock(&self.unbound);
            // Pushed in (about) time order and taken from the end: the old ones are a prefix
            // (give or take an actor that came back microseconds apart from another).
            let n = unbound.partition_point(|(_, at)| *at < cutoff);
            unbound.drain(..n).collect()
        };
        for (actor, _) in &old {
            actor.stop(Some("unused".into()));
        }
        old.len()
    }
}

/// Run the next queued items of this chat's queue: the only message a conversation actor
/// gets. The first one binds the actor to the chat until the queue runs dry.
pub(super) struct Drain<J>(pub(super) Arc<Mailbox<J>>);

impl<J> std::fmt::Debug for Drain<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Drain")
    }
}

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
