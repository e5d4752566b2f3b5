//! The dispatcher: reads events, routes them to per-chat conversations, runs handlers,
//! acknowledges, counts.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use super::handler::{Ctx, Deps, ExtractError, HandlerError, HandlerResult};
use super::middleware::{Middleware, Next, Terminal};
use super::router::{FlatRoute, Router};
use super::update::{EventKind, Update};
use crate::bot::Bot;
use crate::connection::{Acknowledger, ServerEvent};
use crate::conversation::{
    BoxFuture, ConversationPool, LaneConfig, LaneKey, Overflow, Pushed, Worker,
};

/// What went wrong while handling one event. Goes to the error handler; never stops the bot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// A handler or middleware returned an error (including a parameter that could not be
    /// extracted: downcast to [`ExtractError`]).
    #[error("handler {} failed: {error}", handler.unwrap_or("(routing or middleware)"))]
    Handler {
        /// The handler's type name, when the error came from a handler.
        handler: Option<&'static str>,
        /// The error.
        error: HandlerError,
    },
    /// A handler or middleware panicked; the conversation goes on with its next event.
    #[error("handler {} panicked: {message}", handler.unwrap_or("(routing or middleware)"))]
    Panic {
        /// The handler's type name, when the panic came from a handler.
        handler: Option<&'static str>,
        /// The panic message.
        message: String,
    },
}

/// Why an event did not reach a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowReason {
    /// The chat's queue was full ([`Overflow::Reject`]).
    Rejected,
    /// A newer event of the chat pushed this one out ([`Overflow::DropOldest`]).
    DroppedOldest,
    /// No conversation could be started for the chat.
    NoConversation(String),
}

/// Overflow handlers running at once, at most.
const MAX_OVERFLOW_TASKS: usize = 256;

type ErrorHook = Arc<dyn Fn(Update, DispatchError) -> BoxFuture<()> + Send + Sync>;
type OverflowHook = Arc<dyn Fn(Update, OverflowReason) -> BoxFuture<()> + Send + Sync>;

#[derive(Debug, Default)]
struct Metrics {
    events: AtomicU64,
    handled: AtomicU64,
    unhandled: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    overflowed: AtomicU64,
    duplicates: AtomicU64,
    skipped_own: AtomicU64,
}

/// Counters of a dispatcher at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Events received.
    pub events: u64,
    /// Events a handler ran for (successfully or not).
    pub handled: u64,
    /// Events no route took, or a middleware stopped.
    pub unhandled: u64,
    /// Handler / middleware errors and panics.
    pub errors: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Events rejected or dropped by an overflow policy.
    pub overflowed: u64,
    /// Redelivered events suppressed by the duplicate window.
    pub duplicates: u64,
    /// The bot's own messages skipped.
    pub skipped_own: u64,
    /// Conversations alive now (including the global lane).
    pub live_conversations: usize,
    /// Of those, the ones hibernating: idle past
    /// [`hibernate_after`](DispatcherBuilder::hibernate_after), kept as a small record with
    /// no actor until their next event.
    pub hibernating_conversations: usize,
    /// Events queued or being handled now.
    pub in_flight: usize,
}

struct Job {
    update: Update,
    ack: Acknowledger,
}

struct Shared {
    routes: Vec<FlatRoute>,
    deps: Arc<Deps>,
    outer: Arc<[Arc<dyn Middleware>]>,
    inner: Arc<[Arc<dyn Middleware>]>,
    on_error: ErrorHook,
    /// Set by the builder, or from `bot.me()` once the bot is authorised.
    self_id: std::sync::OnceLock<Arc<str>>,
    metrics: Arc<Metrics>,
}

/// A cheap-to-clone handle to a dispatcher: counters and shutdown.
#[derive(Clone)]
pub struct DispatcherHandle {
    metrics: Arc<Metrics>,
    pool: ConversationPool<Job>,
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
        let m = &self.metrics;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            events: get(&m.events),
            handled: get(&m.handled),
            unhandled: get(&m.unhandled),
            errors: get(&m.errors),
            panics: get(&m.panics),
            overflowed: get(&m.overflowed),
            duplicates: get(&m.duplicates),
            skipped_own: get(&m.skipped_own),
            live_conversations: self.pool.live(),
            hibernating_conversations: self.pool.hibernating(),
            in_flight: self.pool.in_flight(),
        }
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

    /// How long an idle conversation keeps its actor (default 5 seconds). After that only a
    /// small record of it stays until the idle timeout, and its next event starts a new actor
    /// (a few microseconds): an actor costs about 7 KiB, a record under 200 bytes.
    pub fn hibernate_after(mut self, after: Duration) -> Self {
        self.lanes.hibernate_after = after;
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
        if let Err((handler, e)) = super::router::check(&routes, &deps) {
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
        let worker_shared = shared.clone();
        let worker: Worker<Job> =
            Arc::new(move |job| Box::pin(process(worker_shared.clone(), job)));
        let pool = ConversationPool::new(self.lanes, worker);
        let (tx, _) = watch::channel(false);
        Ok(Dispatcher {
            shared,
            handle: DispatcherHandle {
                metrics,
                pool: pool.clone(),
                shutdown: Arc::new(tx),
            },
            pool,
            on_overflow: self.on_overflow.unwrap_or_else(|| {
                Arc::new(|u: Update, r: OverflowReason| {
                    Box::pin(async move {
                        tracing::warn!(method = u.method(), chat = ?u.chat_id(), reason = ?r, "event not handled: chat queue overflow");
                    })
                })
            }),
            overflow_slots: Arc::new(tokio::sync::Semaphore::new(MAX_OVERFLOW_TASKS)),
            dedup: Dedup::new(self.dedup_window),
            skip_own: self.skip_own,
            shutdown_timeout: self.shutdown_timeout,
            bot: self.bot,
        })
    }
}

/// Bounded memory of recently seen event keys.
struct Dedup {
    cap: usize,
    set: HashSet<u64, BuildNoHash>,
    order: VecDeque<u64>,
}

/// The keys are SipHash fingerprints already: hashing them again would only cost time.
#[derive(Default, Clone, Copy)]
struct BuildNoHash;

#[derive(Default)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::hash::BuildHasher for BuildNoHash {
    type Hasher = NoHash;
    fn build_hasher(&self) -> NoHash {
        NoHash::default()
    }
}

impl Dedup {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    /// Records `key`; false when it was seen already.
    fn first_time(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return true;
        }
        if !self.set.insert(key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key);
        true
    }
}

/// Runs the routing tree over incoming events on per-chat conversation actors.
///
/// ```no_run
/// # async fn demo() -> trueconf_bot::Result<()> {
/// use std::time::Duration;
/// use trueconf_bot::bot::Bot;
/// use trueconf_bot::connection::AckMode;
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
    shared: Arc<Shared>,
    handle: DispatcherHandle,
    pool: ConversationPool<Job>,
    on_overflow: OverflowHook,
    overflow_slots: Arc<tokio::sync::Semaphore>,
    dedup: Dedup,
    skip_own: bool,
    shutdown_timeout: Duration,
    bot: Option<Bot>,
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
    /// [`Dispatcher::run_on`]; handlers asking for a `Bot` are refused at build time.
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
    /// With the bot in [`AckMode::AfterHandled`](crate::connection::AckMode::AfterHandled),
    /// each event is acknowledged only once its handler finished, so events a crash or a
    /// dropped connection interrupted are delivered again; the duplicate window makes sure a
    /// redelivered message is not handled twice.
    pub async fn run(self) -> crate::Result<()> {
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
            let _ = self.shared.self_id.set(Arc::from(me));
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
        struct AbortOnDrop(tokio::task::AbortHandle);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let task = tokio::spawn(self.serve(events));
        let _stop_with_caller = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(crate::Error::disconnected(
                crate::error::DisconnectKind::Internal,
                format!("the dispatcher stopped: {e}"),
            )),
        }
    }

    async fn serve(mut self, mut events: mpsc::Receiver<ServerEvent>) -> crate::Result<()> {
        self.pool.start().await?;
        let mut stop = self.handle.shutdown.subscribe();
        let stopped = async move {
            let asked = stop.wait_for(|s| *s).await.is_ok();
            if !asked {
                // The sender lives in the handle held by `self`; it cannot go away first.
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                ev = events.recv() => match ev {
                    Some(ev) => self.dispatch(ev).await,
                    None => break,
                },
            }
        }
        if !self.pool.drain(self.shutdown_timeout).await {
            tracing::warn!(
                in_flight = self.pool.in_flight(),
                "shutdown timeout passed with handlers still running"
            );
        }
        self.pool.stop().await;
        Ok(())
    }

    async fn dispatch(&mut self, ev: ServerEvent) {
        let metrics = &self.shared.metrics;
        metrics.events.fetch_add(1, Ordering::Relaxed);
        let ServerEvent {
            id,
            method,
            payload,
            ack,
        } = ev;
        let update = Update::new(id, method, payload);
        if self.skip_own
            && update.kind() == EventKind::Message
            && update.author_id().is_some()
            && update.author_id() == self.shared.self_id.get().map(|s| &**s)
        {
            metrics.skipped_own.fetch_add(1, Ordering::Relaxed);
            ack.ack();
            return;
        }
        if let Some(key) = update.dedup_key()
            && !self.dedup.first_time(key)
        {
            // A redelivery after a reconnect: acknowledge again, handle once.
            metrics.duplicates.fetch_add(1, Ordering::Relaxed);
            ack.ack();
            return;
        }
        let lane = LaneKey::new(update.chat_id());
        let (job, reason) = match self.pool.push(lane, Job { update, ack }).await {
            Pushed::Queued => return,
            Pushed::Rejected(job) => (job, OverflowReason::Rejected),
            Pushed::Displaced(job) => (job, OverflowReason::DroppedOldest),
            Pushed::Failed(job, e) => (job, OverflowReason::NoConversation(e)),
        };
        metrics.overflowed.fetch_add(1, Ordering::Relaxed);
        // Off the dispatch loop, so a slow overflow handler does not stall every chat; but
        // bounded, so a flood cannot pile up overflow tasks: past the limit this waits.
        let Ok(permit) = self.overflow_slots.clone().acquire_owned().await else {
            return;
        };
        let hook = self.on_overflow.clone();
        tokio::spawn(async move {
            let Job { update, ack } = job;
            let _ = AssertUnwindSafe(hook(update, reason)).catch_unwind().await;
            ack.ack();
            drop(permit);
        });
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

async fn call_handler(ctx: Arc<Ctx>, handler: super::handler::BoxedHandler) -> HandlerResult {
    let result = handler.call(ctx.clone()).await;
    if let Err(e) = &result
        && let Some(ExtractError::BadArgs(bad)) = e.downcast_ref::<ExtractError>()
        && let Some(hook) = ctx.matched_command().and_then(|m| m.on_bad_args.clone())
    {
        let _ = ctx.bad_args.set(bad.clone());
        return hook.call(ctx).await;
    }
    result
}

async fn run_routes(shared: Arc<Shared>, ctx: Arc<Ctx>) -> HandlerResult {
    let handler = match super::router::route(&shared.routes, &ctx).await {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(()),
        Err(e) => return Err(HandlerError::from(e)),
    };
    let _ = ctx.handler.set(handler.name);
    if shared.inner.is_empty() {
        return call_handler(ctx, handler).await;
    }
    let terminal: Terminal = Arc::new(move |ctx| Box::pin(call_handler(ctx, handler.clone())));
    Next::new(shared.inner.clone(), terminal).run(ctx).await
}

fn route_terminal(shared: Arc<Shared>) -> Terminal {
    Arc::new(move |ctx: Arc<Ctx>| Box::pin(run_routes(shared.clone(), ctx)))
}

async fn process(shared: Arc<Shared>, job: Job) {
    let Job { update, ack } = job;
    let ctx = Arc::new(Ctx::new(
        update.clone(),
        shared.deps.clone(),
        shared.self_id.get().cloned(),
    ));
    let chain = async {
        // Without outer middleware, route inline: no terminal closure and no boxed future
        // per event.
        if shared.outer.is_empty() {
            run_routes(shared.clone(), ctx.clone()).await
        } else {
            Next::new(shared.outer.clone(), route_terminal(shared.clone()))
                .run(ctx.clone())
                .await
        }
    };
    let outcome = AssertUnwindSafe(chain).catch_unwind().await;
    let handler = ctx.handler.get().copied();
    let metrics = &shared.metrics;
    if handler.is_some() {
        metrics.handled.fetch_add(1, Ordering::Relaxed);
    } else {
        metrics.unhandled.fetch_add(1, Ordering::Relaxed);
    }
    let error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(DispatchError::Handler { handler, error }),
        Err(panic) => {
            metrics.panics.fetch_add(1, Ordering::Relaxed);
            Some(DispatchError::Panic {
                handler,
                message: panic_message(&*panic),
            })
        }
    };
    if let Some(error) = error {
        metrics.errors.fetch_add(1, Ordering::Relaxed);
        if AssertUnwindSafe((shared.on_error)(update, error))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("the error handler panicked");
        }
    }
    // With AckMode::AfterHandled this is the moment the server learns the event is done; in
    // OnReceive mode the acknowledger is a no-op.
    ack.ack();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Frame, RawValue};
    use std::sync::atomic::AtomicUsize;

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

    #[test]
    fn dedup_window_is_bounded() {
        let mut d = Dedup::new(2);
        assert!(d.first_time(1));
        assert!(!d.first_time(1));
        assert!(d.first_time(2));
        assert!(d.first_time(3));
        assert!(d.first_time(1), "forgotten after the window");
        assert_eq!(d.set.len(), 2);
    }
}
