//! The dispatcher's public face: the builder that wires a router, dependencies, middleware
//! and hooks together, the [`Dispatcher`] that runs them on a bot, and the
//! [`DispatcherHandle`] users keep to read counters and ask for shutdown.
//!
//! The work itself is elsewhere ([`pipeline`](super::pipeline) reads and queues events,
//! [`worker`](super::worker) handles them); this file only builds and starts it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::task::AbortOnDropHandle;

use super::dedup::HandledMarks;
use super::distribution::Distribution;
use super::engine::Engine;
use super::gate::Gate;
use super::handler::Deps;
use super::metrics::{Metrics, MetricsSnapshot};
use super::middleware::Middleware;
use super::overflow::{OverflowHandler, OverflowHook, OverflowReason};
use super::pipeline::Pipeline;
use super::router::{Router, check};
use super::update::Update;
use super::worker::{DispatchError, ErrorHook, Job, Shared, worker};
use crate::bot::{Bot, EventBudget, ServerEvent};
use crate::conversation::{ConversationPool, LaneConfig, Overflow};

/// A cheap-to-clone handle to a dispatcher: counters and shutdown.
#[derive(Clone)]
pub struct DispatcherHandle {
    metrics: Arc<Metrics>,
    pool: ConversationPool<Job>,
    /// The bot's event memory, not the bot: a handle must not keep the bot alive.
    budget: Option<Arc<EventBudget>>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for DispatcherHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherHandle")
            .field("metrics", &self.metrics())
            .finish()
    }
}

impl DispatcherHandle {
    /// The counters now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot(&self.pool, self.budget.as_deref())
    }

    /// Sets the `metrics` facade's gauges (see [`crate::ops`]) to the values
    /// now: conversations, queued events, the deepest chat queue, buffered event bytes. A
    /// running dispatcher does this every second, and the `prometheus` endpoint before every
    /// scrape.
    pub fn export_gauges(&self) {
        Metrics::export_gauges(&self.metrics(), self.pool.deepest_queue());
    }

    /// Asks the dispatcher to stop reading events, let in-flight handlers finish (up to the
    /// shutdown timeout) and return from `run`.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Configures a [`Dispatcher`].
pub struct DispatcherBuilder {
    router: Router,
    deps: Deps,
    bot: Option<Bot>,
    lanes: LaneConfig,
    outer: Vec<Arc<dyn Middleware>>,
    inner: Vec<Arc<dyn Middleware>>,
    on_error: Option<ErrorHook>,
    on_overflow: Option<OverflowHook>,
    self_id: Option<String>,
    skip_own: bool,
    dedup_window: usize,
    shutdown_timeout: Duration,
    distribution: Distribution,
    marks: Option<Arc<dyn HandledMarks>>,
    engine: Engine,
    #[cfg(feature = "redis")]
    replicas: Option<crate::replicas::RedisCoordination>,
}

impl std::fmt::Debug for DispatcherBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("lanes", &self.lanes)
            .finish_non_exhaustive()
    }
}

impl DispatcherBuilder {
    /// Registers a dependency handlers take as `Dep<T>`, looked up by type.
    pub fn dependency<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.deps.insert(value);
        self
    }

    /// Events queued per chat before the overflow policy applies (default 64).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.lanes.capacity = capacity;
        self
    }

    /// What a full chat queue does (default [`Overflow::Reject`]).
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.lanes.overflow = policy;
        self
    }

    /// How long an idle conversation lives (default 5 minutes). A sweep every half timeout
    /// stops it, so it goes between one and one and a half timeouts after its last event.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.lanes.idle_timeout = timeout;
        self
    }

    /// How long an idle conversation stays live (default 5 seconds). After that only a small
    /// record of it stays until the idle timeout, and its next event gives it a new queue: a
    /// live idle conversation costs under 1 KiB, a record under 200 bytes. Pooled
    /// conversation actors (about 6 KiB each) left unused this long stop as well.
    pub fn hibernate_after(mut self, after: Duration) -> Self {
        self.lanes.hibernate_after = after;
        self
    }

    /// Chat conversations live (not hibernating) at once, at most (default 10 000; the global
    /// lane is not counted; zero is taken as 1).
    ///
    /// When an event is for a chat that is not live (a new chat, or a hibernating one) and the
    /// cap is reached, the least recently used conversations with nothing queued or running
    /// hibernate at once, as they would after
    /// [`hibernate_after`](Self::hibernate_after) (a batch of a sixteenth of the cap, taken
    /// from the front of an idle order: no walk over the conversations). If every live conversation is
    /// busy, the dispatcher waits until one is done: no event is lost and each chat keeps its
    /// order, but while it waits no chat gets new events (global backpressure, as with
    /// [`Overflow::Block`]). An idle live conversation costs its queue, under 1 KiB;
    /// conversation actors (about 6 KiB each) are pooled and bound only to chats with work,
    /// so there are as many as chats busy at once (at most this cap, plus the global lane).
    pub fn max_live_conversations(mut self, n: usize) -> Self {
        self.lanes.max_live = n;
        self
    }

    /// Middleware run before routing, for every event.
    pub fn outer_middleware(mut self, mw: impl Middleware) -> Self {
        self.outer.push(Arc::new(mw));
        self
    }

    /// Middleware run around the chosen handler, only when a route matched.
    pub fn inner_middleware(mut self, mw: impl Middleware) -> Self {
        self.inner.push(Arc::new(mw));
        self
    }

    /// Receives every handler error and panic (default: logged with `tracing`).
    pub fn error_handler<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Update, DispatchError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_error = Some(Arc::new(move |u, e| Box::pin(f(u, e))));
        self
    }

    /// Receives every event an overflow policy turned away (default: logged).
    pub fn overflow_handler<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Update, OverflowReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_overflow = Some(Arc::new(move |u, r| Box::pin(f(u, r))));
        self
    }

    /// The bot's own TrueConf ID: used to skip its own messages, for `/cmd@bot` and for the
    /// mention filter.
    pub fn self_id(mut self, id: impl Into<String>) -> Self {
        self.self_id = Some(id.into());
        self
    }

    /// Whether the bot's own messages are skipped (default `true`, as in the official
    /// client). Needs [`DispatcherBuilder::self_id`].
    pub fn skip_own_messages(mut self, skip: bool) -> Self {
        self.skip_own = skip;
        self
    }

    /// How many recently seen message keys the duplicate filter remembers (default 10 000;
    /// 0 disables it).
    pub fn dedup_window(mut self, size: usize) -> Self {
        self.dedup_window = size;
        self
    }

    /// Which events share a conversation, and so run one at a time in arrival order
    /// (default [`Distribution::Chat`]: one per chat). See [`Distribution`] for the ordering
    /// each key gives.
    ///
    /// ```
    /// use trueconf_bot::dispatch::{Dispatcher, Distribution, Router};
    ///
    /// // Each user of a group chat gets their own lane; one user's messages stay in order.
    /// let d = Dispatcher::detached(Router::new())
    ///     .distribution(Distribution::UserInChat)
    ///     .build();
    /// // Or any function of the event (`None`: the global lane).
    /// let d = Dispatcher::detached(Router::new())
    ///     .distribution(Distribution::custom(|u| u.author_id().map(str::to_owned)))
    ///     .build();
    /// # let _ = d;
    /// ```
    pub fn distribution(mut self, key: Distribution) -> Self {
        self.distribution = key;
        self
    }

    /// Persists the duplicate window: each event is checked against `marks` before its
    /// handler and marked handled after it, before it is acknowledged. With
    /// [`SqliteMarks`](super::SqliteMarks) or [`RedisMarks`](super::RedisMarks) and a bot in
    /// `AckMode::AfterHandled` with `receive_unread(true)`, a restarted process does not
    /// handle again what it handled before (default: none, only the in-memory window).
    pub fn handled_marks(mut self, marks: impl HandledMarks) -> Self {
        self.marks = Some(Arc::new(marks));
        self
    }

    /// Makes this process one replica of a group sharing the bot account's chats through
    /// Redis: each chat is handled by one live replica at a time, chats of a replica that
    /// dies or shuts down move to the others, which handle what it left unfinished (see
    /// [`crate::replicas`]). Implies handled marks in the same Redis unless
    /// [`handled_marks`](Self::handled_marks) set a store. Use with
    /// `AckMode::AfterHandled` and `receive_unread(true)`.
    #[cfg(feature = "redis")]
    pub fn replicas(mut self, coordination: crate::replicas::RedisCoordination) -> Self {
        self.replicas = Some(coordination);
        self
    }

    /// Where [`Dispatcher::run`] runs the bot and the handlers (default [`Engine::Auto`]: on a
    /// thread of its own when called from a multi-thread runtime; see [`Engine`]).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// How long `run` waits for in-flight handlers when stopping (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Checks that every handler's dependencies are registered and builds the dispatcher.
    pub fn build(self) -> crate::Result<Dispatcher> {
        let mut deps = self.deps;
        if let Some(bot) = self.bot.clone() {
            deps.insert(bot);
        }
        let routes = self.router.flatten();
        if let Err((handler, e)) = check(&routes, &deps) {
            return Err(crate::Error::invalid(
                "router",
                format!("handler `{handler}` cannot run: {e}"),
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            routes,
            deps: Arc::new(deps),
            outer: self.outer.into(),
            inner: self.inner.into(),
            on_error: self.on_error.unwrap_or_else(|| {
                Arc::new(|u: Update, e: DispatchError| {
                    Box::pin(async move {
                        tracing::error!(method = u.method(), chat = ?u.chat_id(), error = %e, "event handling failed");
                    })
                })
            }),
            self_id: self
                .self_id
                .map(|id| std::sync::OnceLock::from(Arc::from(id)))
                .unwrap_or_default(),
            metrics: metrics.clone(),
        });
        #[cfg(feature = "redis")]
        let replicas = match self.replicas {
            Some(cfg) => Some(super::replica_gate::ReplicaGate::new(
                cfg,
                self.bot.as_ref().map(Bot::state),
            )?),
            None => None,
        };
        #[cfg(not(feature = "redis"))]
        let replicas = None;
        let gate = Arc::new(Gate::new(self.marks, replicas, metrics.clone()));
        let mut run_event = worker(shared.clone());
        if gate.active() {
            run_event = gate.wrap(run_event);
        }
        let pool = ConversationPool::new(self.lanes, run_event);
        let (tx, _) = watch::channel(false);
        Ok(Dispatcher {
            handle: DispatcherHandle {
                metrics,
                pool: pool.clone(),
                budget: self.bot.as_ref().map(Bot::event_budget),
                shutdown: Arc::new(tx),
            },
            pipeline: Pipeline {
                shared,
                pool,
                overflow: OverflowHandler::new(self.on_overflow.unwrap_or_else(|| {
                    Arc::new(|u: Update, r: OverflowReason| {
                        Box::pin(async move {
                            tracing::warn!(method = u.method(), chat = ?u.chat_id(), reason = ?r, "event not handled: chat queue overflow");
                        })
                    })
                })),
                dedup: super::redelivery::Window::new(
                    self.dedup_window,
                    self.bot.as_ref().is_some_and(Bot::redelivers_unacked),
                ),
                distribution: self.distribution,
                gate,
                skip_own: self.skip_own,
                shutdown_timeout: self.shutdown_timeout,
            },
            bot: self.bot,
            engine: self.engine,
        })
    }
}

/// Runs the routing tree over incoming events on per-chat conversation actors.
///
/// ```no_run
/// # async fn demo() -> trueconf_bot::Result<()> {
/// use std::time::Duration;
/// use trueconf_bot::bot::Bot;
/// use trueconf_bot::bot::AckMode;
/// use trueconf_bot::dispatch::{Dispatcher, MessageContext, Overflow, Router};
///
/// let bot = Bot::builder("video.example.com")
///     .token("eyJ…")
///     .ack_mode(AckMode::AfterHandled) // at-least-once
///     .build()?;
/// let router = Router::new().message(|msg: MessageContext| async move {
///     msg.reply("got it").await.map(drop)
/// });
/// let dispatcher = Dispatcher::builder(bot, router)
///     .queue_capacity(128)
///     .overflow(Overflow::DropOldest)
///     .idle_timeout(Duration::from_secs(60))
///     .error_handler(|update, error| async move {
///         eprintln!("{} failed: {error}", update.method());
///     })
///     .build()?;
/// let handle = dispatcher.handle(); // metrics() and shutdown()
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     handle.shutdown();
/// });
/// dispatcher.run().await
/// # }
/// ```
pub struct Dispatcher {
    pipeline: Pipeline,
    handle: DispatcherHandle,
    bot: Option<Bot>,
    engine: Engine,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A builder for a dispatcher serving `bot` with `router`. Handlers can take the `Bot`.
    pub fn builder(bot: Bot, router: Router) -> DispatcherBuilder {
        let mut b = Self::detached(router);
        b.bot = Some(bot);
        b
    }

    /// A builder without a bot, for tests and benches that feed events themselves with
    /// [`Dispatcher::run_on`]. Handlers that take a `Bot` (or a context holding one, such as
    /// `MessageContext`) are refused at build time: the bot is not a dependency to register
    /// but what [`Dispatcher::builder`] takes; use that to serve a bot.
    pub fn detached(router: Router) -> DispatcherBuilder {
        DispatcherBuilder {
            router,
            deps: Deps::default(),
            bot: None,
            lanes: LaneConfig::default(),
            outer: Vec::new(),
            inner: Vec::new(),
            on_error: None,
            on_overflow: None,
            self_id: None,
            skip_own: true,
            dedup_window: 10_000,
            shutdown_timeout: Duration::from_secs(10),
            distribution: Distribution::default(),
            marks: None,
            engine: Engine::default(),
            #[cfg(feature = "redis")]
            replicas: None,
        }
    }

    /// The handle for counters and shutdown.
    pub fn handle(&self) -> DispatcherHandle {
        self.handle.clone()
    }

    /// The bot this dispatcher serves, if any.
    pub fn bot(&self) -> Option<&Bot> {
        self.bot.as_ref()
    }

    /// Takes the bot's event stream, starts the bot and handles its events until the bot shuts
    /// down or [`DispatcherHandle::shutdown`] is called; then lets in-flight handlers finish
    /// (they can still use the bot) and shuts the bot down.
    ///
    /// With the bot in [`AckMode::AfterHandled`](crate::bot::AckMode::AfterHandled),
    /// each event is acknowledged only once its handler finished, so events a crash or a
    /// dropped connection interrupted are delivered again; the duplicate window makes sure a
    /// redelivered message is not handled twice.
    ///
    /// Called from a multi-thread runtime, it runs the bot and the handlers on a thread of
    /// its own unless the builder chose otherwise ([`Engine`]); dropping this future then
    /// asks the dispatcher to stop, as [`DispatcherHandle::shutdown`] does.
    pub async fn run(self) -> crate::Result<()> {
        if self.engine.own_thread() {
            let handle = self.handle.clone();
            return super::engine::on_own_thread(self.run_here(), move || handle.shutdown()).await;
        }
        self.run_here().await
    }

    async fn run_here(self) -> crate::Result<()> {
        let Some(bot) = self.bot.clone() else {
            return Err(crate::Error::invalid(
                "dispatcher",
                "run() needs a bot: build with Dispatcher::builder(bot, router), or feed a \
                 detached dispatcher with run_on",
            ));
        };
        let events = bot.events().ok_or_else(|| {
            crate::Error::invalid(
                "bot",
                "its event stream is gone: it was taken already, or the bot was started \
                 before the dispatcher (let Dispatcher::run start the bot)",
            )
        })?;
        bot.start().await?;
        if let Some(me) = bot.me() {
            let _ = self.pipeline.shared.self_id.set(Arc::from(me));
        }
        let result = self.run_on(events.into_inner()).await;
        bot.shutdown().await?;
        result
    }

    /// Handles events from `events` until the channel closes or
    /// [`DispatcherHandle::shutdown`] is called, then lets in-flight handlers finish within
    /// the shutdown timeout and stops every conversation.
    pub async fn run_on(self, events: mpsc::Receiver<ServerEvent>) -> crate::Result<()> {
        // The loop runs as a task of its own: awaited straight from `#[tokio::main]` it would
        // run on the main thread outside the worker pool, and every event would cost a
        // cross-thread wake-up of that thread. Dropping this future still stops it.
        let task = AbortOnDropHandle::new(tokio::spawn(self.serve(events)));
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(crate::Error::disconnected(
                crate::error::DisconnectKind::Internal,
                format!("the dispatcher stopped: {e}"),
            )),
        }
    }

    /// The loop, with the whole dispatcher (its handle, so the shutdown signal, and its bot)
    /// kept alive until it ends.
    async fn serve(self, events: mpsc::Receiver<ServerEvent>) -> crate::Result<()> {
        let stop = self.handle.shutdown.subscribe();
        let handle = self.handle.clone();
        let _gauges = AbortOnDropHandle::new(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                handle.export_gauges();
            }
        }));
        self.pipeline.serve(events, stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::Acknowledger;
    use crate::protocol::{Frame, RawValue};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn message(id: u64, ack: Acknowledger) -> ServerEvent {
        let payload = serde_json::json!({
            "messageId": "m-1",
            "chat": {"chatId": "c", "chatType": 1},
            "timestamp": 1u64, "type": 200,
            "author": {"id": "alice@srv", "type": 1},
            "content": {"text": "hi", "parseMode": "text"}
        });
        ServerEvent {
            id,
            method: "sendMessage".into(),
            payload: RawValue::from_string(payload.to_string()).unwrap(),
            ack,
        }
    }

    #[tokio::test]
    async fn after_handled_acks_once_the_handler_finished_and_reacks_duplicates() {
        let (frames, mut acks) = mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Notify::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let (g, c) = (gate.clone(), calls.clone());
        let router = Router::new().message(move || {
            let (g, c) = (g.clone(), c.clone());
            async move {
                g.notified().await;
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        let d = Dispatcher::detached(router).build().unwrap();
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(d.run_on(rx));
        tx.send(message(7, Acknowledger::new(7, frames.clone())))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            acks.try_recv().is_err(),
            "acked before the handler finished"
        );
        gate.notify_one();
        let ack = tokio::time::timeout(Duration::from_secs(1), acks.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                ack,
                Frame::Response {
                    id: 7,
                    payload: None
                }
            ),
            "{ack:?}"
        );
        // The same message redelivered on a new connection: acknowledged, not handled again.
        tx.send(message(8, Acknowledger::new(8, frames.clone())))
            .await
            .unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(1), acks.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            ack,
            Frame::Response {
                id: 8,
                payload: None
            }
        ));
        drop(tx);
        task.await.unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn dropping_the_run_future_stops_the_loop() {
        let d = Dispatcher::detached(Router::new().message(|| async {}))
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel(8);
        // The loop runs as its own task; giving up on `run_on` must still end it.
        let gave_up = tokio::time::timeout(Duration::from_millis(30), d.run_on(rx)).await;
        assert!(gave_up.is_err());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            tx.send(message(1, Acknowledger::noop(1))).await.is_err(),
            "the loop (and its receiver) is gone"
        );
    }
}
