//! The conversation actor: the one place a chat's events run, one at a time.
//!
//! Its only message is a wake-up to drain a chat's [`Mailbox`](super::mailbox::Mailbox); the events themselves never
//! travel through ractor, which is what keeps memory bounded per chat. An actor belongs to no
//! chat for good: a chat with work is bound to one (the pusher sends it the first `Drain`),
//! and once that chat's queue runs dry the actor goes back to the pool's unbound ones, to be
//! bound to the next chat that gets work. A chat is bound to at most one actor at a time (its
//! `scheduled` flag), and that actor runs its queue in order, so per-chat order holds across
//! rebinding: the next actor starts only after the previous one found the queue empty.

use std::marker::PhantomData;
use std::sync::{MutexGuard, Weak};
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::key::LaneKey;
use super::mailbox::MailboxState;
use super::shared::{Drain, PoolInner};

/// Queued items one `Drain` runs at most.
const DRAIN_BATCH: usize = 16;

/// A pooled conversation actor: runs the queued items of the chat it is bound to, one at a
/// time, in order.
pub(super) struct ConversationActor<J>(pub(super) PhantomData<fn() -> J>);

impl<J: Send + 'static> ConversationActor<J> {
    /// The queue ran dry: unbinds from the chat (whose next event binds an actor again) and
    /// waits in the pool, and the chat joins the idle order the live cap hibernates from.
    ///
    /// Takes the queue's lock from the caller that found it empty: a pusher that queued after
    /// an unlocked look would see `scheduled` still set and wake no one.
    fn release(
        pool: &PoolInner<J>,
        myself: ActorRef<Drain<J>>,
        key: &LaneKey,
        mut mb: MutexGuard<'_, MailboxState<J>>,
    ) {
        mb.scheduled = false;
        mb.bound = None;
        let now = Instant::now();
        mb.last_active = now;
        let seq = pool.next_idle_seq();
        mb.idle_seq = seq;
        // A chat already in the idle order keeps its place; whoever takes it from there sees
        // it has been idle for less long and puts it back.
        let enter = mb.idle_entry == 0 && !matches!(key, LaneKey::Global);
        if enter {
            mb.idle_entry = seq;
        }
        drop(mb);
        if enter {
            pool.went_idle(key, seq);
        }
        pool.unbind(myself, now);
        // A pusher waiting at the live cap may hibernate this chat now.
        pool.room_changed();
    }
}

impl<J: Send + 'static> Actor for ConversationActor<J> {
    type Msg = Drain<J>;
    /// Weak, so a dropped pool is not kept alive by its own actors: they stop at their next
    /// message instead.
    type State = Weak<PoolInner<J>>;
    type Arguments = Weak<PoolInner<J>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Drain<J>>,
        pool: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(pool)
    }

    async fn handle(
        &self,
        myself: ActorRef<Drain<J>>,
        Drain(mailbox): Drain<J>,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(pool) = pool.upgrade() else {
            myself.stop(None);
            return Ok(());
        };
        // A few queued items per message: fewer trips through the actor's mailbox, while a
        // busy chat still lets a stop request in between batches.
        for _ in 0..DRAIN_BATCH {
            let job = {
                let mut mb = mailbox.lock();
                match mb.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        Self::release(&pool, myself, &mailbox.key, mb);
                        return Ok(());
                    }
                }
            };
            mailbox.space.notify_one();
            (pool.worker)(job).await;
            pool.done_one();
        }
        let mb = mailbox.lock();
        if mb.queue.is_empty() {
            Self::release(&pool, myself, &mailbox.key, mb);
        } else {
            drop(mb);
            let _ = myself.send_message(Drain(mailbox));
        }
        Ok(())
    }
}
