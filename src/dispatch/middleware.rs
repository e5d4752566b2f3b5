//! Middleware: code around routing (outer) or around the chosen handler (inner). A middleware
//! that returns without calling [`Next::run`] stops the event there (access control,
//! throttling).

use std::future::Future;
use std::sync::Arc;

use super::handler::{Ctx, HandlerResult};
use crate::conversation::BoxFuture;

pub(crate) type Terminal = Arc<dyn Fn(Arc<Ctx>) -> BoxFuture<HandlerResult> + Send + Sync>;

/// Code that runs around the rest of the chain.
///
/// Implemented for closures `Fn(Arc<Ctx>, Next) -> impl Future<Output = HandlerResult>`:
///
/// ```
/// use trueconf_bot::dispatch::{Ctx, HandlerResult, Next};
/// use std::sync::Arc;
///
/// async fn only_alice(ctx: Arc<Ctx>, next: Next) -> HandlerResult {
///     if ctx.update().author_id() == Some("alice@srv") {
///         next.run(ctx).await
///     } else {
///         Ok(()) // stop here
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Runs this middleware; call `next.run(ctx)` to continue.
    fn call(&self, ctx: Arc<Ctx>, next: Next) -> BoxFuture<HandlerResult>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Arc<Ctx>, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call(&self, ctx: Arc<Ctx>, next: Next) -> BoxFuture<HandlerResult> {
        Box::pin((self)(ctx, next))
    }
}

/// The rest of the middleware chain.
pub struct Next {
    chain: Arc<[Arc<dyn Middleware>]>,
    index: usize,
    terminal: Terminal,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Next({} left)", self.chain.len() - self.index)
    }
}

impl Next {
    pub(crate) fn new(chain: Arc<[Arc<dyn Middleware>]>, terminal: Terminal) -> Self {
        Self {
            chain,
            index: 0,
            terminal,
        }
    }

    /// Continues with the next middleware, or routing / the handler at the end.
    pub fn run(self, ctx: Arc<Ctx>) -> BoxFuture<HandlerResult> {
        match self.chain.get(self.index).cloned() {
            Some(mw) => mw.call(
                ctx,
                Next {
                    chain: self.chain,
                    index: self.index + 1,
                    terminal: self.terminal,
                },
            ),
            None => (self.terminal)(ctx),
        }
    }
}
