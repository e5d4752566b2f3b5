//! The manager actor: supervisor of every conversation, and the one sweeper that hibernates
//! and forgets idle ones.
//!
//! One periodic sweep over the map costs far less than a timer per conversation, and as the
//! conversations' supervisor it is the one that learns when one fails.

use std::marker::PhantomData;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::shared::{Conv, PoolInner, Sweep};

/// Supervises the conversations: a conversation that fails is forgotten, so the next event
/// of its chat starts a fresh one; the other chats never notice.
pub(super) struct Manager<J>(pub(super) PhantomData<fn() -> J>);

impl<J: Send + 'static> Actor for Manager<J> {
    type Msg = Sweep;
    type State = Weak<PoolInner<J>>;
    type Arguments = Weak<PoolInner<J>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Sweep>,
        pool: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        if let Some(p) = pool.upgrade() {
            // An idle conversation hibernates (and goes) between one and one and a half
            // timeouts after its last event. The floor keeps a zero timeout from turning the
            // sweep into a busy loop over every chat.
            let period = (p.config.idle_timeout.min(p.config.hibernate_after) / 2)
                .max(Duration::from_millis(10));
            myself.send_interval(period, || Sweep);
        }
        Ok(pool)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Sweep>,
        _: Sweep,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(pool) = pool.upgrade() else {
            return Ok(());
        };
        let now = Instant::now();
        let config = &pool.config;
        // `retain` holds each shard's lock, which `push` also holds while queueing, so no
        // event can slip into a conversation being evicted or hibernated.
        pool.map.retain(|key, conv| match conv {
            Conv::Hibernating { since } => {
                let idle = now.saturating_duration_since(*since);
                if idle < config.idle_timeout {
                    return true;
                }
                pool.hibernating.fetch_sub(1, Ordering::AcqRel);
                tracing::trace!(lane = %key, "idle conversation forgotten");
                false
            }
            Conv::Live { mailbox } => {
                // Only `push` makes an idle conversation busy, and it needs the shard lock
                // `retain` holds: what is read here stays true below. Idle means bound to no
                // actor, so there is none to stop.
                let idle = {
                    let mb = mailbox.lock();
                    if !mb.queue.is_empty() || mb.scheduled {
                        return true;
                    }
                    now.saturating_duration_since(mb.last_active)
                };
                if idle < config.hibernate_after && idle < config.idle_timeout {
                    return true;
                }
                if idle >= config.idle_timeout {
                    pool.free_slot(key);
                    tracing::trace!(lane = %key, "idle conversation stopped");
                    return false;
                }
                if pool.hibernate(key, conv) {
                    tracing::trace!(lane = %key, "idle conversation hibernating");
                }
                true
            }
        });
        pool.compact_idle();
        // Actors waiting unbound as long as an idle chat waits to hibernate are more than the
        // traffic needs now: their memory goes back.
        if let Some(cutoff) = now.checked_sub(config.hibernate_after)
            && pool.retire_unbound(cutoff) > 0
        {
            tracing::trace!("unused conversation actors stopped");
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Sweep>,
        event: SupervisionEvent,
        pool: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = event {
            tracing::error!(actor = %cell.get_id(), error = %err, "conversation actor failed");
            if let Some(pool) = pool.upgrade() {
                let id = cell.get_id();
                let mut lost = 0;
                // Only a bound actor runs code that can fail; find its chat.
                pool.map.retain(|key, conv| match conv {
                    Conv::Live { mailbox } if mailbox.lock().bound == Some(id) => {
                        lost = mailbox.lock().queue.len();
                        // A pusher blocked on this queue retries and gets a fresh
                        // conversation.
                        mailbox.space.notify_waiters();
                        pool.free_slot(key);
                        false
                    }
                    _ => true,
                });
                for _ in 0..lost {
                    pool.done_one();
                }
            }
        }
        Ok(())
    }
}
