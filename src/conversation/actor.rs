//! The conversation actor: the one place a chat's events run, one at a time.
//!
//! Its only message is a wake-up to drain the chat's [`Mailbox`]; the events themselves never
//! travel through ractor, which is what keeps memory bounded per chat.

use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::mailbox::Mailbox;
use super::shared::{Drain, PoolInner};

/// Queued items one `Drain` runs at most.
const DRAIN_BATCH: usize = 16;

pub(super) struct ConvState<J> {
    pub(super) mailbox: Arc<Mailbox<J>>,
    /// Weak, so a dropped pool is not kept alive by its own actors: they stop at their next
    /// message instead.
    pub(super) pool: Weak<PoolInner<J>>,
}

/// One chat's actor: runs the chat's queued items one at a time, in order.
pub(super) struct ConversationActor<J>(pub(super) PhantomData<fn() -> J>);

impl<J: Send + 'static> Actor for ConversationActor<J> {
    type Msg = Drain;
    type State = ConvState<J>;
    type Arguments = ConvState<J>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Drain>,
        state: ConvState<J>,
    ) -> Result<ConvState<J>, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Drain>,
        _: Drain,
        state: &mut ConvState<J>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(pool) = state.pool.upgrade() else {
            myself.stop(None);
            return Ok(());
        };
        // A few queued items per message: fewer trips through the actor's mailbox, while a
        // busy chat still lets a stop request in between batches.
        for _ in 0..DRAIN_BATCH {
            let job = {
                let mut mb = state.mailbox.lock();
                match mb.queue.pop_front() {
                    Some(job) => job,
                    None => {
                        mb.scheduled = false;
                        mb.last_active = Instant::now();
                        drop(mb);
                        // A pusher waiting at the live cap may hibernate this one now.
                        pool.room_changed();
                        return Ok(());
                    }
                }
            };
            state.mailbox.space.notify_one();
            (pool.worker)(job).await;
            pool.done_one();
        }
        let mut mb = state.mailbox.lock();
        if mb.queue.is_empty() {
            mb.scheduled = false;
            mb.last_active = Instant::now();
            drop(mb);
            pool.room_changed();
        } else {
            drop(mb);
            let _ = myself.send_message(Drain);
        }
        Ok(())
    }
}
