//! Where a dispatcher runs: on a thread of its own, or on the caller's runtime.
//!
//! An event's way through a bot is a chain of small tasks: the socket reader, the dispatch
//! loop, the chat's conversation, the socket writer (and back through the reader for the
//! answer). On tokio's multi-thread runtime every hand-off in that chain may wake another
//! worker and move the event's data to another core. Measured with the echo bench (100
//! chats, 2 cores), that doubles the CPU per event: 19.4 µs spread over the workers against
//! 8.8 µs with the same chain on one thread, which also handled more events per second.
//!
//! So by default ([`Engine::Auto`]) a dispatcher started from a multi-thread runtime runs the
//! bot's connection, the dispatch loop and every handler on one thread of its own, with a
//! current-thread runtime. Chats still run concurrently, interleaved at their `.await`s as
//! tasks are on any runtime, and each chat keeps its order. From a current-thread runtime
//! (`#[tokio::test]`, a paused test clock) it runs in place, as before.
//!
//! What it changes for handlers: they share one core. A handler that computes for long or
//! blocks (a synchronous database driver, `std::thread::sleep`) holds up every chat; it
//! should hand that work to `tokio::task::spawn_blocking`, or the bot should choose
//! [`Engine::CallerRuntime`], which spreads the chats over the caller's workers (and is the
//! only choice where `tokio::task::block_in_place` works).

use std::future::Future;
use std::panic::AssertUnwindSafe;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;

use crate::error::DisconnectKind;

/// Where [`Dispatcher::run`](super::Dispatcher::run) runs the bot and its handlers.
///
/// An event's way through a bot is a chain of small tasks (socket reader, dispatch loop, the
/// chat's conversation, socket writer). Spread over a multi-thread runtime's workers, every
/// hand-off may wake another thread and move the event's data to another core: on the echo
/// bench (100 chats, 2 cores) that doubled the CPU per event, 19.4 µs against 8.8 µs with the
/// chain on one thread. Hence the default, [`Engine::Auto`]. On one thread chats still run
/// concurrently, interleaved at their `.await`s, each in its order; but a handler that
/// computes for long or blocks holds up every chat: it should use
/// `tokio::task::spawn_blocking`, or the bot [`Engine::CallerRuntime`].
///
/// ```no_run
/// # use trueconf_bot::dispatch::{Dispatcher, Engine, Router};
/// # async fn demo(bot: trueconf_bot::bot::Bot) -> trueconf_bot::Result<()> {
/// // Handlers that crunch numbers: spread the chats over the runtime's workers.
/// Dispatcher::builder(bot, Router::new())
///     .engine(Engine::CallerRuntime)
///     .build()?
///     .run()
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// [`OwnThread`](Engine::OwnThread) when called from a multi-thread runtime,
    /// [`CallerRuntime`](Engine::CallerRuntime) from a current-thread one.
    #[default]
    Auto,
    /// One thread of its own with a current-thread runtime, for the bot's connection, the
    /// dispatch loop and every handler: the least CPU per event, on one core.
    OwnThread,
    /// The caller's runtime: on a multi-thread runtime the chats spread over its workers, for
    /// handlers that compute or block.
    CallerRuntime,
}

impl Engine {
    /// Whether to run on a thread of its own, asked from the caller's context.
    pub(super) fn own_thread(self) -> bool {
        match self {
            Engine::OwnThread => true,
            Engine::CallerRuntime => false,
            Engine::Auto => Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread),
        }
    }
}

/// Asks the dispatcher to stop when the caller gives up on `run` (drops its future): the
/// thread then finishes the handlers in flight and shuts the bot down on its own.
struct StopOnDrop<S: FnOnce()>(Option<S>);

impl<S: FnOnce()> Drop for StopOnDrop<S> {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop();
        }
    }
}

type Outcome = std::thread::Result<crate::Result<()>>;

/// Runs `work` to its end on a new thread with a current-thread runtime, under the caller's
/// tracing dispatcher; `stop` asks it to end if this future is dropped first. A panic in it
/// resumes in the caller.
pub(super) async fn on_own_thread<F>(work: F, stop: impl FnOnce()) -> crate::Result<()>
where
    F: Future<Output = crate::Result<()>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<Outcome>();
    // A subscriber set for the caller's thread only (`set_default`) would not reach the new
    // thread by itself.
    let tracing = tracing::dispatcher::get_default(Clone::clone);
    let thread = std::thread::Builder::new()
        .name("trueconf-bot".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                tracing::dispatcher::with_default(&tracing, || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| thread_failed(format!("its runtime did not start: {e}")))?;
                    runtime.block_on(work)
                })
            }));
            let _ = tx.send(outcome);
        });
    if let Err(e) = thread {
        return Err(thread_failed(format!("it did not start: {e}")));
    }
    let mut stop = StopOnDrop(Some(stop));
    let outcome = rx.await;
    stop.0 = None;
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => Err(thread_failed("it ended without a result".into())),
    }
}

fn thread_failed(why: String) -> crate::Error {
    crate::Error::disconnected(
        DisconnectKind::Internal,
        format!("the dispatcher's thread failed: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_a_thread_only_from_a_multi_thread_runtime() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(!current.block_on(async { Engine::Auto.own_thread() }));
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert!(multi.block_on(async { Engine::Auto.own_thread() }));
        assert!(!multi.block_on(async { Engine::CallerRuntime.own_thread() }));
        assert!(current.block_on(async { Engine::OwnThread.own_thread() }));
    }
}
