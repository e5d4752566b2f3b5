//! The conversation pool: the lane map and the one entry point the dispatcher pushes events
//! through.
//!
//! Pushing is where the overflow policy applies and where a hibernating conversation is woken,
//! both under the map shard's lock, so the sweep can never evict a conversation an event is
//! being queued on.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ractor::{Actor, ActorId, ActorRef};
use tokio::sync::Notify;

use super::actor::ConversationActor;
use super::config::{LaneConfig, Overflow};
use super::key::LaneKey;
use super::mailbox::Mailbox;
use super::manager::Manager;
use super::shared::{Conv, Drain, PoolInner, Worker};

/// The outcome of [`ConversationPool::push`].
#[derive(Debug)]
pub(crate) enum Pushed<J> {
    /// Queued; it will run after the chat's earlier events.
    Queued,
    /// The queue was full and the policy is [`Overflow::Reject`]: here is the item back.
    Rejected(J),
    /// Queued, and this older item was discarded to make room ([`Overflow::DropOldest`]).
    Displaced(J),
    /// No conversation could be started for the lane.
    Failed(J, String),
}

/// The chat-id → conversation map and the supervisor of the conversation actors.
pub(crate) struct ConversationPool<J> {
    inner: Arc<PoolInner<J>>,
}

impl<J> Clone for ConversationPool<J> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<J: Send + 'static> ConversationPool<J> {
    pub(crate) fn new(config: LaneConfig, worker: Worker<J>) -> Self {
        let mut config = config;
        config.capacity = config.capacity.max(1);
        config.max_live = config.max_live.max(1);
        Self {
            inner: Arc::new(PoolInner {
                map: DashMap::new(),
                config,
                worker,
                manager: OnceLock::new(),
                unbound: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                all_done: Notify::new(),
                hibernating: AtomicUsize::new(0),
                awake: AtomicUsize::new(0),
                room_waiters: AtomicUsize::new(0),
                room: Notify::new(),
                idle: Mutex::new(VecDeque::new()),
                idle_seq: AtomicU64::new(0),
            }),
        }
    }

    /// Starts the manager actor that supervises the conversations. Idempotent.
    pub(crate) async fn start(&self) -> crate::Result<()> {
        if self.inner.manager.get().is_some() {
            return Ok(());
        }
        let (manager, _) =
            Manager::<J>::spawn(None, Manager::<J>(PhantomData), Arc::downgrade(&self.inner))
                .await
                .map_err(|e| {
                    crate::Error::disconnected(
                        crate::error::DisconnectKind::Internal,
                        format!("cannot start the conversation manager: {e}"),
                    )
                })?;
        let _ = self.inner.manager.set(manager);
        Ok(())
    }

    /// Live conversations (including the global lane when it is alive).
    pub(crate) fn live(&self) -> usize {
        self.inner.map.len()
    }

    /// Of the live conversations, those hibernating (no actor until their next event).
    pub(crate) fn hibernating(&self) -> usize {
        self.inner.hibernating.load(Ordering::Acquire)
    }

    /// Items queued or running across all conversations.
    pub(crate) fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// The longest queue of any conversation now (a walk over every lane: for metrics, not
    /// for the hot path).
    pub(crate) fn deepest_queue(&self) -> usize {
        let mut deepest = 0;
        for entry in self.inner.map.iter() {
            if let Conv::Live { mailbox, .. } = entry.value() {
                deepest = deepest.max(mailbox.lock().queue.len());
            }
        }
        deepest
    }

    /// Chat conversations with an actor now (not hibernating; the global lane not counted).
    #[cfg(test)]
    pub(crate) fn awake(&self) -> usize {
        self.inner.awake.load(Ordering::Acquire)
    }

    /// Conversation actors running now, bound to a chat or waiting unbound.
    #[cfg(test)]
    pub(crate) fn actors(&self) -> usize {
        self.inner
            .manager
            .get()
            .map_or(0, |m| m.get_cell().get_children().len())
    }

    /// Queues `job` on lane `key`, starting the lane's conversation if needed. Waits only
    /// under [`Overflow::Block`], and at the cap of live conversations while every live one is
    /// busy.
    pub(crate) async fn push(&self, key: LaneKey, job: J) -> Pushed<J> {
        loop {
            let mailbox = {
                let mut conv = self.inner.map.entry(key.clone()).or_insert_with(|| {
                    // Born hibernating: woken below like any hibernating one.
                    self.inner.hibernating.fetch_add(1, Ordering::AcqRel);
                    Conv::Hibernating {
                        since: Instant::now(),
                    }
                });
                let Some(mailbox) = self.wake(&mut conv, &key) else {
                    // At the cap. Nothing was queued, and the dispatcher pushes one event at a
                    // time, so waiting here keeps every chat's order.
                    drop(conv);
                    self.make_room().await;
                    continue;
                };
                let mut mb = mailbox.lock();
                if mb.queue.len() < self.inner.config.capacity {
                    if !mb.scheduled {
                        // Bound under the queue's lock: the actor that ran this chat before
                        // released it under the same lock with the queue empty, so the two
                        // never overlap.
                        match self.bind(&key, mailbox) {
                            Ok(actor) => {
                                mb.scheduled = true;
                                mb.bound = Some(actor);
                            }
                            Err(e) => return Pushed::Failed(job, e),
                        }
                    }
                    mb.queue.push_back(job);
                    self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
                    return Pushed::Queued;
                }
                match self.inner.config.overflow {
                    Overflow::Reject => return Pushed::Rejected(job),
                    Overflow::DropOldest => {
                        let oldest = mb.queue.pop_front();
                        mb.queue.push_back(job);
                        return match oldest {
                            Some(old) => Pushed::Displaced(old),
                            None => Pushed::Queued,
                        };
                    }
                    Overflow::Block => mailbox.clone(),
                }
            };
            // notify_one stores a permit when nobody waits yet, so a slot freed between
            // dropping the lock and this await is not missed.
            mailbox.space.notified().await;
        }
    }

    /// Binds an actor to `mailbox`, which has work and none bound: an unbound one from the
    /// pool, or a new one when none waits. Its `Drain` waits in its ractor mailbox until the
    /// caller lets go of the queue's lock. Returns the actor's id.
    fn bind(&self, key: &LaneKey, mailbox: &Arc<Mailbox<J>>) -> Result<ActorId, String> {
        // An unbound actor that failed meanwhile refuses the message: try the next one.
        while let Some(actor) = self.inner.take_unbound() {
            if actor.send_message(Drain(mailbox.clone())).is_ok() {
                return Ok(actor.get_id());
            }
        }
        let actor = self.spawn(key)?;
        actor
            .send_message(Drain(mailbox.clone()))
            .map_err(|e| format!("cannot start a conversation for {key}: {e}"))?;
        Ok(actor.get_id())
    }

    /// The live conversation of `conv`, with a fresh queue for a hibernating one; `None` when
    /// that would pass the cap of live conversations.
    fn wake<'c>(&self, conv: &'c mut Conv<J>, key: &LaneKey) -> Option<&'c Arc<Mailbox<J>>> {
        if let Conv::Hibernating { .. } = conv {
            if !self.inner.take_slot(key) {
                return None;
            }
            self.inner.hibernating.fetch_sub(1, Ordering::AcqRel);
            *conv = Conv::Live {
                mailbox: Arc::new(Mailbox::new(key.clone())),
            };
        }
        match conv {
            Conv::Live { mailbox } => Some(mailbox),
            // Made live just above.
            Conv::Hibernating { .. } => None,
        }
    }

    /// At the cap of live conversations: hibernates the least recently used ones with nothing
    /// to do, or waits until one has nothing to do (or is gone). Returns once a slot may be
    /// free; the caller tries again.
    async fn make_room(&self) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let inner = &self.inner;
        inner.room_waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&inner.room_waiters);
        loop {
            // Registered before looking, so a conversation that runs out of work after the
            // look still wakes this wait.
            let notified = inner.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if inner.awake.load(Ordering::SeqCst) < inner.config.max_live
                || self.hibernate_least_recent() > 0
            {
                return;
            }
            notified.await;
        }
    }

    /// Hibernates up to a sixteenth of the cap (at least one) of the idle chat conversations,
    /// least recently active first; returns how many. One batch serves the next many new
    /// chats.
    fn hibernate_least_recent(&self) -> usize {
        self.inner
            .hibernate_oldest((self.inner.config.max_live / 16).max(1))
    }

    fn spawn(&self, key: &LaneKey) -> Result<ActorRef<Drain<J>>, String> {
        let manager = self
            .inner
            .manager
            .get()
            .ok_or_else(|| "the conversation manager is not running".to_string())?;
        let (actor, _) = ractor::ActorRuntime::spawn_linked_instant(
            None,
            ConversationActor::<J>(PhantomData),
            Arc::downgrade(&self.inner),
            manager.get_cell(),
        )
        .map_err(|e| format!("cannot start a conversation for {key}: {e}"))?;
        tracing::trace!(lane = %key, "conversation actor started");
        Ok(actor)
    }

    /// Waits until every queued item ran, up to `deadline`. Returns whether all finished.
    pub(crate) async fn drain(&self, deadline: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inner.all_done.notified();
                if self.in_flight() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }

    /// Stops every conversation and the manager.
    pub(crate) async fn stop(&self) {
        if let Some(manager) = self.inner.manager.get() {
            manager
                .stop_children_and_wait(Some("dispatcher stopped".into()), None)
                .await;
            manager.stop(None);
        }
        self.inner.map.clear();
        crate::sync::lock(&self.inner.unbound).clear();
        crate::sync::lock(&self.inner.idle).clear();
        self.inner.hibernating.store(0, Ordering::Release);
        self.inner.awake.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::key::INLINE_KEY;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    type Log = Arc<Mutex<Vec<(String, u32)>>>;

    fn pool(config: LaneConfig, log: Log, delay: Duration) -> ConversationPool<(String, u32)> {
        let worker: Worker<(String, u32)> = Arc::new(move |job| {
            let log = log.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                log.lock().unwrap().push(job);
            })
        });
        ConversationPool::new(config, worker)
    }

    fn chat(id: &str) -> LaneKey {
        LaneKey::new(Some(id))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn per_chat_order_and_cross_chat_parallelism() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                capacity: 100,
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(5),
        );
        p.start().await.unwrap();
        let started = Instant::now();
        for i in 0..10 {
            for c in 0..20 {
                assert!(matches!(
                    p.push(chat(&c.to_string()), (c.to_string(), i)).await,
                    Pushed::Queued
                ));
            }
        }
        assert!(p.drain(Duration::from_secs(10)).await);
        // 20 chats × 10 events × 5 ms = 1 s sequentially; in parallel about 50 ms.
        assert!(started.elapsed() < Duration::from_millis(800));
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 200);
        for c in 0..20 {
            let seq: Vec<u32> = log
                .iter()
                .filter(|(k, _)| *k == c.to_string())
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(seq, (0..10).collect::<Vec<_>>(), "chat {c} out of order");
        }
        p.stop().await;
    }

    #[tokio::test]
    async fn reject_returns_the_event_and_keeps_queue_bounded() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                capacity: 2,
                overflow: Overflow::Reject,
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(50),
        );
        p.start().await.unwrap();
        let mut rejected = vec![];
        for i in 0..10 {
            if let Pushed::Rejected((_, i)) = p.push(chat("a"), ("a".into(), i)).await {
                rejected.push(i);
            }
        }
        // One may already be running, two queued: the rest come back.
        assert!(rejected.len() >= 7, "rejected {rejected:?}");
        assert!(p.in_flight() <= 3);
        assert!(p.drain(Duration::from_secs(5)).await);
        assert_eq!(log.lock().unwrap().len(), 10 - rejected.len());
        p.stop().await;
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                capacity: 3,
                overflow: Overflow::DropOldest,
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(30),
        );
        p.start().await.unwrap();
        let mut dropped = vec![];
        for i in 0..20 {
            if let Pushed::Displaced((_, i)) = p.push(chat("a"), ("a".into(), i)).await {
                dropped.push(i);
            }
        }
        assert!(p.drain(Duration::from_secs(5)).await);
        let handled: Vec<u32> = log.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(handled.len() + dropped.len(), 20);
        assert!(handled.ends_with(&[17, 18, 19]), "handled {handled:?}");
        let mut sorted = handled.clone();
        sorted.sort();
        assert_eq!(sorted, handled, "order kept");
        p.stop().await;
    }

    #[tokio::test]
    async fn block_waits_for_room_and_loses_nothing() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                capacity: 1,
                overflow: Overflow::Block,
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(2),
        );
        p.start().await.unwrap();
        for i in 0..30 {
            assert!(matches!(
                p.push(chat("a"), ("a".into(), i)).await,
                Pushed::Queued
            ));
            assert!(p.in_flight() <= 2);
        }
        assert!(p.drain(Duration::from_secs(5)).await);
        let handled: Vec<u32> = log.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(handled, (0..30).collect::<Vec<_>>());
        p.stop().await;
    }

    #[tokio::test]
    async fn idle_conversation_stops_and_respawns() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                idle_timeout: Duration::from_millis(50),
                ..Default::default()
            },
            log.clone(),
            Duration::ZERO,
        );
        p.start().await.unwrap();
        p.push(chat("a"), ("a".into(), 1)).await;
        p.push(LaneKey::Global, ("g".into(), 1)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert_eq!(p.live(), 2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(p.live(), 0, "idle conversations evicted");
        assert_eq!(p.awake(), 0, "their slots freed");
        p.push(chat("a"), ("a".into(), 2)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert_eq!(p.live(), 1);
        assert_eq!(log.lock().unwrap().len(), 3);
        p.stop().await;
    }

    #[tokio::test]
    async fn idle_conversation_hibernates_and_wakes_in_order() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                hibernate_after: Duration::from_millis(40),
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(1),
        );
        p.start().await.unwrap();
        p.push(chat("a"), ("a".into(), 0)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert_eq!(p.hibernating(), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!((p.live(), p.hibernating()), (1, 1), "kept as a record");
        for i in 1..5 {
            assert!(matches!(
                p.push(chat("a"), ("a".into(), i)).await,
                Pushed::Queued
            ));
        }
        assert_eq!(p.hibernating(), 0, "woken by its next event");
        assert!(p.drain(Duration::from_secs(1)).await);
        let handled: Vec<u32> = log.lock().unwrap().iter().map(|(_, i)| *i).collect();
        assert_eq!(handled, (0..5).collect::<Vec<_>>());
        p.stop().await;
    }

    fn is_hibernating(p: &ConversationPool<(String, u32)>, id: &str) -> bool {
        matches!(
            p.inner.map.get(&chat(id)).as_deref(),
            Some(Conv::Hibernating { .. })
        )
    }

    #[tokio::test]
    async fn at_the_live_cap_the_least_recently_used_idle_conversation_hibernates() {
        let log: Log = Default::default();
        let config = LaneConfig {
            max_live: 2,
            ..Default::default()
        };
        let p = pool(config, log.clone(), Duration::ZERO);
        p.start().await.unwrap();
        for key in ["a", "b"] {
            p.push(chat(key), (key.into(), 0)).await;
            assert!(p.drain(Duration::from_secs(1)).await);
        }
        p.push(LaneKey::Global, ("g".into(), 0)).await;
        assert_eq!(p.awake(), 2, "the global lane takes no slot");
        // c needs a slot: a, idle the longest, hibernates; b stays.
        p.push(chat("c"), ("c".into(), 0)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert_eq!(p.awake(), 2);
        assert!(is_hibernating(&p, "a") && !is_hibernating(&p, "b"));
        // a wakes for its next event, and b, now the least recent, makes room.
        p.push(chat("a"), ("a".into(), 1)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert!(is_hibernating(&p, "b") && !is_hibernating(&p, "a"));
        let handled: Vec<_> = log.lock().unwrap().clone();
        let expected = [("a", 0), ("b", 0), ("g", 0), ("c", 0), ("a", 1)];
        assert_eq!(handled, expected.map(|(k, i)| (k.to_string(), i)));
        p.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_live_cap_new_chats_wait_for_a_busy_one_to_finish() {
        const CAP: usize = 3;
        let log: Log = Default::default();
        let config = LaneConfig {
            max_live: CAP,
            ..Default::default()
        };
        let p = pool(config, log.clone(), Duration::from_millis(2));
        p.start().await.unwrap();
        for i in 0..4 {
            for c in 0..12 {
                let key = format!("c{c}");
                let pushed = p.push(chat(&key), (key, i)).await;
                assert!(matches!(pushed, Pushed::Queued));
                assert!(p.awake() <= CAP, "{} live", p.awake());
            }
        }
        assert!(p.drain(Duration::from_secs(10)).await);
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 48);
        for c in 0..12 {
            let key = format!("c{c}");
            let seq: Vec<u32> = log.iter().filter(|(k, _)| *k == key).map(|e| e.1).collect();
            assert_eq!(seq, [0, 1, 2, 3], "{key} in order");
        }
        p.stop().await;
    }

    #[tokio::test]
    async fn a_new_chat_reuses_the_actor_an_idle_one_let_go() {
        let log: Log = Default::default();
        let p = pool(LaneConfig::default(), log.clone(), Duration::ZERO);
        p.start().await.unwrap();
        for c in 0..50 {
            p.push(chat(&c.to_string()), (c.to_string(), 0)).await;
            assert!(p.drain(Duration::from_secs(1)).await);
            // The actor lets go of the chat after its last item.
            tokio::task::yield_now().await;
        }
        assert_eq!(log.lock().unwrap().len(), 50);
        assert_eq!(p.live(), 50, "every chat keeps its record");
        assert_eq!(p.actors(), 1, "one actor served the 50 chats in turn");
        p.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rebound_actors_keep_every_chats_order() {
        const CHATS: u32 = 200;
        let log: Log = Default::default();
        let log2 = log.clone();
        let worker: Worker<(String, u32)> = Arc::new(move |job: (String, u32)| {
            let log = log2.clone();
            Box::pin(async move {
                // Some items finish at once, some after a hop: chats go idle and busy again
                // in every order, and their actors are rebound to other chats in between.
                if job.1.is_multiple_of(3) {
                    tokio::task::yield_now().await;
                }
                log.lock().unwrap().push(job);
            })
        });
        let p = ConversationPool::new(LaneConfig::default(), worker);
        p.start().await.unwrap();
        for i in 0..10 {
            for c in 0..CHATS {
                p.push(chat(&c.to_string()), (c.to_string(), i)).await;
                if c.is_multiple_of(7) {
                    tokio::task::yield_now().await;
                }
            }
        }
        assert!(p.drain(Duration::from_secs(10)).await);
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), (CHATS * 10) as usize);
        for c in 0..CHATS {
            let seq: Vec<u32> = log
                .iter()
                .filter(|(k, _)| *k == c.to_string())
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(seq, (0..10).collect::<Vec<_>>(), "chat {c} out of order");
        }
        p.stop().await;
    }

    #[tokio::test]
    async fn unused_actors_stop_after_hibernate_after() {
        let log: Log = Default::default();
        let p = pool(
            LaneConfig {
                hibernate_after: Duration::from_millis(40),
                ..Default::default()
            },
            log.clone(),
            Duration::from_millis(5),
        );
        p.start().await.unwrap();
        for c in 0..20 {
            p.push(chat(&c.to_string()), (c.to_string(), 0)).await;
        }
        assert!(p.drain(Duration::from_secs(1)).await);
        assert!(p.actors() > 1, "busy chats at once took several actors");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(p.actors(), 0, "unused actors stopped");
        p.push(chat("0"), ("0".into(), 1)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        assert_eq!(log.lock().unwrap().len(), 21, "a later event still runs");
        p.stop().await;
    }

    #[tokio::test]
    async fn a_chat_busy_and_idle_again_and_again_keeps_the_idle_order_small() {
        let log: Log = Default::default();
        let p = pool(LaneConfig::default(), log.clone(), Duration::ZERO);
        p.start().await.unwrap();
        for i in 0..3000 {
            p.push(chat("a"), ("a".into(), i)).await;
            assert!(p.drain(Duration::from_secs(1)).await);
            tokio::task::yield_now().await;
        }
        assert_eq!(log.lock().unwrap().len(), 3000);
        let entries = p.inner.idle.lock().unwrap().len();
        assert_eq!(entries, 1, "one entry for one idle chat");
        p.stop().await;
    }

    #[tokio::test]
    async fn at_the_live_cap_a_batch_of_the_oldest_idle_chats_hibernates() {
        let log: Log = Default::default();
        let config = LaneConfig {
            max_live: 32,
            ..Default::default()
        };
        let p = pool(config, log.clone(), Duration::ZERO);
        p.start().await.unwrap();
        for c in 0..32 {
            p.push(chat(&c.to_string()), (c.to_string(), 0)).await;
            assert!(p.drain(Duration::from_secs(1)).await);
            tokio::task::yield_now().await;
        }
        // Chat 0 got work again: 1 is now the one idle the longest.
        p.push(chat("0"), ("0".into(), 1)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        tokio::task::yield_now().await;
        p.push(chat("new"), ("new".into(), 0)).await;
        assert!(p.drain(Duration::from_secs(1)).await);
        // A batch of a sixteenth of the cap: the two idle the longest.
        assert!(is_hibernating(&p, "1") && is_hibernating(&p, "2"));
        assert!(!is_hibernating(&p, "0") && !is_hibernating(&p, "3"));
        assert_eq!(p.awake(), 31);
        assert_eq!(log.lock().unwrap().len(), 34);
        p.stop().await;
    }

    #[tokio::test]
    async fn chats_with_long_ids_keep_their_own_order() {
        let log: Log = Default::default();
        let p = pool(LaneConfig::default(), log.clone(), Duration::ZERO);
        p.start().await.unwrap();
        let base = "c".repeat(INLINE_KEY);
        let ids = [format!("{base}1"), format!("{base}2"), base.clone()];
        for i in 0..5 {
            for id in &ids {
                p.push(LaneKey::new(Some(id)), (id.clone(), i)).await;
            }
        }
        assert!(p.drain(Duration::from_secs(2)).await);
        assert_eq!(p.live(), 3);
        let log = log.lock().unwrap().clone();
        for id in &ids {
            let seq: Vec<u32> = log
                .iter()
                .filter(|(k, _)| k == id)
                .map(|(_, i)| *i)
                .collect();
            assert_eq!(seq, (0..5).collect::<Vec<_>>(), "{id}");
        }
        p.stop().await;
    }

    #[tokio::test]
    async fn busy_chat_does_not_stall_others() {
        let slow_done = Arc::new(AtomicBool::new(false));
        let log: Log = Default::default();
        let flag = slow_done.clone();
        let log2 = log.clone();
        let worker: Worker<(String, u32)> = Arc::new(move |job: (String, u32)| {
            let log = log2.clone();
            let flag = flag.clone();
            Box::pin(async move {
                if job.0 == "slow" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    flag.store(true, Ordering::SeqCst);
                }
                log.lock().unwrap().push(job);
            })
        });
        let p = ConversationPool::new(
            LaneConfig {
                capacity: 4,
                ..Default::default()
            },
            worker,
        );
        p.start().await.unwrap();
        for i in 0..20 {
            p.push(chat("slow"), ("slow".into(), i)).await;
        }
        p.push(chat("fast"), ("fast".into(), 0)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            log.lock().unwrap().iter().any(|(k, _)| k == "fast"),
            "fast chat answered while the slow one is busy"
        );
        assert!(!slow_done.load(Ordering::SeqCst));
        p.stop().await;
    }
}
