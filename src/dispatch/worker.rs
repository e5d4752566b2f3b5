//! Handling one event on its conversation: outer middleware, routing, inner middleware, the
//! handler; then counting, reporting what failed, and acknowledging.
//!
//! This is the work a conversation actor runs for each queued event. Panics are caught here,
//! so a handler that panics costs its own event and never its conversation.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::FutureExt;
use tracing::Instrument;

use super::handler::{BoxedHandler, Ctx, Deps, ExtractError, HandlerError, HandlerResult};
use super::metrics::{Metrics, Outcome};
use super::middleware::{Middleware, Next, Terminal};
use super::redelivery::{Claim, Ticket};
use super::router::{FlatRoute, route};
use super::trace::handler_span;
use super::update::Update;
use crate::bot::{Acknowledger, QUEUE_SCOPE, QueueScope};
use crate::conversation::{BoxFuture, Worker};

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
    /// A call the handler sent with [`Call::queue`](crate::bot::Call::queue) failed after
    /// the handler moved on (the server's error, a timeout, a lost connection).
    #[error("queued call `{method}` failed: {error}")]
    Queued {
        /// The protocol method of the call.
        method: &'static str,
        /// The error.
        error: crate::Error,
    },
}

pub(super) type ErrorHook = Arc<dyn Fn(Update, DispatchError) -> BoxFuture<()> + Send + Sync>;

/// One event on its way to a conversation, with what acknowledges it once handled.
pub(super) struct Job {
    pub(super) update: Update,
    pub(super) ack: Acknowledger,
    /// The event's span, made by the dispatch loop: the handling runs inside it.
    pub(super) span: tracing::Span,
    /// Settles the event's duplicate key by the outcome, when lost acknowledgements come back.
    pub(super) ticket: Option<Ticket>,
}

/// What every event's handling reads: the routes, the middleware, the hooks, the counters.
pub(super) struct Shared {
    pub(super) routes: Vec<FlatRoute>,
    pub(super) deps: Arc<Deps>,
    pub(super) outer: Arc<[Arc<dyn Middleware>]>,
    pub(super) inner: Arc<[Arc<dyn Middleware>]>,
    pub(super) on_error: ErrorHook,
    /// Set by the builder, or from `bot.me()` once the bot is authorised.
    pub(super) self_id: std::sync::OnceLock<Arc<str>>,
    pub(super) metrics: Arc<Metrics>,
}

/// The conversation pool's worker: runs [`process`] for each job.
pub(super) fn worker(shared: Arc<Shared>) -> Worker<Job> {
    Arc::new(move |job| Box::pin(process(shared.clone(), job)))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

async fn call_handler(ctx: Arc<Ctx>, handler: BoxedHandler) -> HandlerResult {
    let result = handler
        .call(ctx.clone())
        .instrument(handler_span(handler.name))
        .await;
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
    let handler = match route(&shared.routes, &ctx).await {
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

/// One event as the calls its handler [`queue`](crate::bot::Call::queue)s see it: their late
/// failures go to the error handler, and the event is acknowledged when the last holder (the
/// handling itself, or a queued call waiting for its response) lets go.
struct EventScope {
    update: Update,
    shared: Arc<Shared>,
    ack: Option<Acknowledger>,
    ticket: Option<Ticket>,
    /// A call of the handling was cut off by a lost connection: its redelivery is handled.
    cut_off: AtomicBool,
}

/// Whether `error` means a call did not complete because the connection went away.
fn cut_off(error: &crate::Error) -> bool {
    error.disconnect_kind().is_some()
}

impl QueueScope for EventScope {
    fn pinned(&self) -> Option<Arc<AtomicBool>> {
        // Only when the event comes again if its handling is cut off (it has a ticket).
        self.ticket.as_ref()?;
        self.ack.as_ref()?.retired_flag()
    }

    fn cut_off(&self) {
        self.cut_off.store(true, Ordering::Relaxed);
    }

    fn failed(&self, method: &'static str, error: crate::Error) -> BoxFuture<()> {
        if cut_off(&error) {
            self.cut_off.store(true, Ordering::Relaxed);
        }
        self.shared.metrics.errors.fetch_add(1, Ordering::Relaxed);
        let hook =
            (self.shared.on_error)(self.update.clone(), DispatchError::Queued { method, error });
        Box::pin(async move {
            if AssertUnwindSafe(hook).catch_unwind().await.is_err() {
                tracing::error!("the error handler panicked");
            }
        })
    }
}

impl Drop for EventScope {
    fn drop(&mut self) {
        // With AckMode::AfterHandled this is the moment the server learns the event is done;
        // in OnReceive mode the acknowledger is a no-op.
        if let Some(mut ticket) = self.ticket.take()
            && !self.cut_off.load(Ordering::Relaxed)
        {
            ticket.done();
        }
        if let Some(ack) = self.ack.take() {
            ack.ack();
        }
    }
}

async fn process(shared: Arc<Shared>, job: Job) {
    let span = job.span.clone();
    run(shared, job).instrument(span).await
}

async fn run(shared: Arc<Shared>, job: Job) {
    let Job {
        update,
        ack,
        span,
        mut ticket,
    } = job;
    if let Some(ticket) = ticket.as_mut() {
        match ticket.claim(&ack).await {
            Claim::Go => {}
            Claim::Duplicate => {
                shared.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                shared.metrics.done(update.kind(), Outcome::Duplicate);
                span.record("outcome", Outcome::Duplicate.label());
                ack.ack();
                return;
            }
            Claim::Stale => {
                // Counted as a duplicate: the copy the server sends again is the one handled.
                shared.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                shared.metrics.done(update.kind(), Outcome::Duplicate);
                span.record("outcome", Outcome::Duplicate.label());
                return;
            }
        }
    }
    let started = Instant::now();
    let scope = Arc::new(EventScope {
        update: update.clone(),
        shared: shared.clone(),
        ack: Some(ack),
        ticket,
        cut_off: AtomicBool::new(false),
    });
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
    let outcome = QUEUE_SCOPE
        .scope(
            scope.clone() as Arc<dyn QueueScope>,
            AssertUnwindSafe(chain).catch_unwind(),
        )
        .await;
    let handler = ctx.handler.get().copied();
    let metrics = &shared.metrics;
    metrics.handler_took(started.elapsed());
    let router_error = ctx.router_error.load(Ordering::Relaxed);
    let counted = match (&outcome, handler) {
        (Err(_), _) => Outcome::Panic,
        (Ok(Err(_)), _) => Outcome::Error,
        (Ok(Ok(())), _) if router_error => Outcome::Error,
        (Ok(Ok(())), None) => Outcome::Unhandled,
        (Ok(Ok(())), Some(_)) => Outcome::Handled,
    };
    if router_error {
        // Taken by a router's own error handler: counted as the dispatcher's would be.
        metrics.errors.fetch_add(1, Ordering::Relaxed);
    }
    if ctx.router_cut_off.load(Ordering::Relaxed) {
        scope.cut_off.store(true, Ordering::Relaxed);
    }
    metrics.done(update.kind(), counted);
    span.record("outcome", counted.label());
    if handler.is_some() {
        metrics.handled.fetch_add(1, Ordering::Relaxed);
    } else {
        metrics.unhandled.fetch_add(1, Ordering::Relaxed);
    }
    if let Ok(Err(error)) = &outcome
        && error.downcast_ref::<crate::Error>().is_some_and(cut_off)
    {
        scope.cut_off.store(true, Ordering::Relaxed);
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
    // Acknowledges, unless a queued call still waits for its response.
    drop(scope);
}
