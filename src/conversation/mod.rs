//! Per-chat Conversation actors: strict per-chat ordering, parallelism across chats, bounded
//! mailboxes and idle eviction.
//!
//! Every chat gets its own ractor actor the first time an event for it arrives. The actor
//! handles that chat's events one at a time, in arrival order; different chats run in
//! parallel. Events that belong to no chat (upload limits, upload progress) share one extra
//! lane, the global one.
//!
//! ractor mailboxes are unbounded, so the actors here do not carry the events in their
//! mailbox: each conversation owns a bounded queue, and the actor only ever has at most one
//! "drain" message pending. What happens when a queue is full is the [`Overflow`] policy.
//! Memory per conversation is therefore bounded by its capacity under every policy.
//!
//! A conversation with nothing to do for [`LaneConfig::hibernate_after`] hibernates: its actor
//! and queue go and only a record of a few dozen bytes (its chat id, inline, and its last
//! activity) stays in the map, so a freed actor's pages are not pinned by a small allocation
//! that outlives it; the next event starts a new actor for it. After the idle timeout the
//! record goes too. One sweeper in the manager finds both (a per-actor timer would cost every
//! idle conversation a task of its own). Anything that must survive that (dialog state)
//! belongs in [`fsm`](crate::fsm) storage, not in the actor.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::Notify;

/// What a full conversation queue does with one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the new event: it goes to the overflow handler and is counted, never dropped
    /// silently. Other chats are unaffected.
    #[default]
    Reject,
    /// Make room by discarding the oldest queued event of that chat (reported to the overflow
    /// handler like a rejection) and queue the new one.
    DropOldest,
    /// Wait until the chat has room. This stops the dispatcher from reading further events,
    /// so it slows *every* chat down (global backpressure): opt in only when losing an event
    /// is worse than latency.
    ///
    /// Once the bot's event buffer is full as well, its connection stops reading, responses
    /// included: handlers waiting for a bot call then finish only by timing out. Pair `Block`
    /// with a large [`event_buffer`](crate::bot::BotBuilder::event_buffer) and handlers that
    /// are quick to give their slot back.
    Block,
}

/// Chat ids up to this many bytes are stored inline in the map key. TrueConf's are 40 hex
/// digits; a longer id still works, it just costs a heap allocation.
const INLINE_KEY: usize = 46;

/// The map key of a lane: one per chat, plus the global lane for events without a chat.
///
/// Inline rather than an `Arc<str>`: the key is the one part of a conversation that lives as
/// long as its record, and a small heap allocation made next to the actor's would keep that
/// actor's pages resident after it stopped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum LaneKey {
    Global,
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl LaneKey {
    pub(crate) fn new(chat: Option<&str>) -> Self {
        match chat {
            None => LaneKey::Global,
            Some(id) if id.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                LaneKey::Inline {
                    len: id.len() as u8,
                    bytes,
                }
            }
            Some(id) => LaneKey::Heap(id.into()),
        }
    }
}

impl fmt::Display for LaneKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaneKey::Global => f.write_str("global lane"),
            LaneKey::Inline { len, bytes } => {
                let id = bytes.get(..usize::from(*len)).unwrap_or_default();
                write!(f, "chat {}", String::from_utf8_lossy(id))
            }
            LaneKey::Heap(id) => write!(f, "chat {id}"),
        }
    }
}

/// Limits of each conversation.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    /// Events queued per conversation (not counting the one being handled). At least 1.
    pub capacity: usize,
    /// What a full queue does.
    pub overflow: Overflow,
    /// How long a conversation with nothing to do lives before it stops and is forgotten.
    pub idle_timeout: Duration,
    /// How long a conversation with nothing to do keeps its actor. After that only a small
    /// record of it stays (until `idle_timeout`) and its next event starts a new actor, which
    /// costs a few microseconds; an actor costs a few KiB of memory.
    pub hibernate_after: Duration,
}

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            capacity: 64,
            overflow: Overflow::Reject,
            idle_timeout: Duration::from_secs(300),
            hibernate_after: Duration::from_secs(5),
        }
    }
}

/// A boxed, `Send` future (what handlers and middleware return once type-erased).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs one queued item. Must not panic (the dispatcher's worker catches handler panics).
pub(crate) type Worker<J> = Arc<dyn Fn(J) -> BoxFuture<()> + Send + Sync>;

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

struct MailboxState<J> {
    queue: VecDeque<J>,
    /// A `Drain` message is pending in the actor's (unbounded) ractor mailbox or being
    /// handled; keeping it to at most one is what keeps that mailbox bounded.
    scheduled: bool,
    /// When the queue last became empty; the manager's sweep evicts on it.
    last_active: Instant,
}

struct Mailbox<J> {
    state: Mutex<MailboxState<J>>,
    space: Notify,
}

impl<J> Mailbox<J> {
    fn lock(&self) -> MutexGuard<'_, MailboxState<J>> {
        crate::sync::lock(&self.state)
    }
}

impl<J> Mailbox<J> {
    fn new() -> Self {
        Self {
            state: Mutex::new(MailboxState {
                queue: VecDeque::new(),
                scheduled: false,
                last_active: Instant::now(),
            }),
            space: Notify::new(),
        }
    }
}

enum Conv<J> {
    Live {
        mailbox: Arc<Mailbox<J>>,
        actor: ActorRef<Drain>,
    },
    /// No actor and no queue: the chat's last event was done at `since`.
    Hibernating { since: Instant },
}

struct PoolInner<J> {
    map: DashMap<LaneKey, Conv<J>>,
    config: LaneConfig,
    worker: Worker<J>,
    manager: OnceLock<ActorRef<Sweep>>,
    in_flight: AtomicUsize,
    all_done: Notify,
    hibernating: AtomicUsize,
}

impl<J> PoolInner<J> {
    fn done_one(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.notify_waiters();
        }
    }
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
        Self {
            inner: Arc::new(PoolInner {
                map: DashMap::new(),
                config,
                worker,
                manager: OnceLock::new(),
                in_flight: AtomicUsize::new(0),
                all_done: Notify::new(),
                hibernating: AtomicUsize::new(0),
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

    /// Queues `job` on lane `key`, starting the lane's conversation if needed. Only
    /// [`Overflow::Block`] ever waits.
    pub(crate) async fn push(&self, key: LaneKey, job: J) -> Pushed<J> {
        let mut job = job;
        loop {
            let mailbox = {
                let mut conv = self.inner.map.entry(key.clone()).or_insert_with(|| {
                    // Born hibernating: woken below like any hibernating one.
                    self.inner.hibernating.fetch_add(1, Ordering::AcqRel);
                    Conv::Hibernating {
                        since: Instant::now(),
                    }
                });
                let (mailbox, actor) = match self.wake(&mut conv, &key) {
                    Ok(live) => live,
                    // The record stays, hibernating, until the sweep forgets it.
                    Err(e) => return Pushed::Failed(job, e),
                };
                let mut mb = mailbox.lock();
                if mb.queue.len() < self.inner.config.capacity {
                    mb.queue.push_back(job);
                    self.inner.in_flight.fetch_add(1, Ordering::AcqRel);
                    if mb.scheduled {
                        return Pushed::Queued;
                    }
                    mb.scheduled = true;
                    if actor.send_message(Drain).is_ok() {
                        return Pushed::Queued;
                    }
                    // The actor died between lookups and the supervisor has not forgotten it
                    // yet: forget it here and retry on a fresh conversation.
                    mb.scheduled = false;
                    let back = mb.queue.pop_back();
                    drop(mb);
                    drop(conv);
                    self.inner.map.remove(&key);
                    match back {
                        Some(j) => {
                            self.inner.done_one();
                            job = j;
                            continue;
                        }
                        None => return Pushed::Queued,
                    }
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

    /// The live conversation of `conv`, starting an actor (and a fresh queue) for a
    /// hibernating one. A hibernated conversation's old actor had an empty queue and was
    /// stopped, so the new one cannot overlap it.
    fn wake<'c>(
        &self,
        conv: &'c mut Conv<J>,
        key: &LaneKey,
    ) -> Result<(&'c Arc<Mailbox<J>>, &'c ActorRef<Drain>), String> {
        if let Conv::Hibernating { .. } = conv {
            let mailbox = Arc::new(Mailbox::new());
            let actor = self.spawn(key, &mailbox)?;
            self.inner.hibernating.fetch_sub(1, Ordering::AcqRel);
            *conv = Conv::Live { mailbox, actor };
        }
        match conv {
            Conv::Live { mailbox, actor } => Ok((mailbox, actor)),
            Conv::Hibernating { .. } => Err(format!("{key} did not wake")),
        }
    }

    fn spawn(&self, key: &LaneKey, mailbox: &Arc<Mailbox<J>>) -> Result<ActorRef<Drain>, String> {
        let manager = self
            .inner
            .manager
            .get()
            .ok_or_else(|| "the conversation manager is not running".to_string())?;
        let args = ConvState {
            mailbox: mailbox.clone(),
            pool: Arc::downgrade(&self.inner),
        };
        let (actor, _) = ractor::ActorRuntime::spawn_linked_instant(
            None,
            ConversationActor::<J>(PhantomData),
            args,
            manager.get_cell(),
        )
        .map_err(|e| format!("cannot start a conversation for {key}: {e}"))?;
        tracing::trace!(lane = %key, "conversation started");
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
        self.inner.hibernating.store(0, Ordering::Release);
    }
}

/// Queued items one `Drain` runs at most.
const DRAIN_BATCH: usize = 16;

/// Run the next queued items: the only message a conversation actor gets.
#[derive(Debug)]
struct Drain;

struct ConvState<J> {
    mailbox: Arc<Mailbox<J>>,
    pool: std::sync::Weak<PoolInner<J>>,
}

struct ConversationActor<J>(PhantomData<fn() -> J>);

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
        } else {
            drop(mb);
            let _ = myself.send_message(Drain);
        }
        Ok(())
    }
}

/// Supervises the conversations: a conversation that fails is forgotten, so the next event
/// of its chat starts a fresh one; the other chats never notice.
struct Manager<J>(PhantomData<fn() -> J>);

/// The manager's one message: evict the conversations idle for the timeout.
#[derive(Debug)]
struct Sweep;

impl<J: Send + 'static> Actor for Manager<J> {
    type Msg = Sweep;
    type State = std::sync::Weak<PoolInner<J>>;
    type Arguments = std::sync::Weak<PoolInner<J>>;

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
        pool.map.retain(|key, conv| {
            let since = match conv {
                Conv::Hibernating { since } => {
                    let idle = now.saturating_duration_since(*since);
                    if idle < config.idle_timeout {
                        return true;
                    }
                    pool.hibernating.fetch_sub(1, Ordering::AcqRel);
                    tracing::trace!(lane = %key, "idle conversation forgotten");
                    return false;
                }
                Conv::Live { mailbox, actor } => {
                    let mb = mailbox.lock();
                    if !mb.queue.is_empty() || mb.scheduled {
                        return true;
                    }
                    let idle = now.saturating_duration_since(mb.last_active);
                    if idle < config.hibernate_after && idle < config.idle_timeout {
                        return true;
                    }
                    if idle >= config.idle_timeout {
                        actor.stop(Some("idle".into()));
                        tracing::trace!(lane = %key, "idle conversation stopped");
                        return false;
                    }
                    actor.stop(Some("hibernating".into()));
                    mb.last_active
                }
            };
            *conv = Conv::Hibernating { since };
            pool.hibernating.fetch_add(1, Ordering::AcqRel);
            tracing::trace!(lane = %key, "idle conversation hibernating");
            true
        });
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
                pool.map.retain(|_, conv| match conv {
                    Conv::Live { mailbox, actor } if actor.get_id() == id => {
                        lost = mailbox.lock().queue.len();
                        // A pusher blocked on this queue retries and gets a fresh
                        // conversation.
                        mailbox.space.notify_waiters();
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

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn chat_ids_of_trueconf_length_are_kept_inline() {
        let id = "4a1f88f1070d2f43d385cde9ff61964bc6b74477";
        let key = LaneKey::new(Some(id));
        assert!(matches!(key, LaneKey::Inline { len: 40, .. }));
        assert_eq!(key.to_string(), format!("chat {id}"));
        // A hibernating record is the key and an `Instant`, with nothing on the heap.
        assert!(std::mem::size_of::<Conv<()>>() <= 24);
        let long = "x".repeat(INLINE_KEY + 1);
        let key = LaneKey::new(Some(&long));
        assert!(matches!(key, LaneKey::Heap(_)));
        assert!(key != LaneKey::new(Some(&long[..INLINE_KEY])));
        assert_eq!(LaneKey::new(None).to_string(), "global lane");
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
