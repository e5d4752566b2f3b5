//! [`Call`]: one method call, refined with setters, sent when awaited.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::Instrument;

use super::Bot;
use crate::error::{Error, Result};
use crate::methods::Request;

/// Where the late failure of a [`Call::queue`]d call goes, and what it keeps alive until its
/// response: the dispatcher sets one around each handler (its error handler, and the event's
/// acknowledgement in `AckMode::AfterHandled`).
pub(crate) trait QueueScope: Send + Sync {
    /// A queued call failed after [`Call::queue`] returned.
    fn failed(
        &self,
        method: &'static str,
        error: Error,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// The retired flag of the socket the event came on, when the event comes again unless
    /// acknowledged: calls are not sent once it is set (see
    /// [`DisconnectKind::EventRedelivered`](crate::error::DisconnectKind::EventRedelivered)).
    fn pinned(&self) -> Option<Arc<std::sync::atomic::AtomicBool>> {
        None
    }

    /// An awaited call of the handling was refused because the event's socket was retired
    /// ([`DisconnectKind::EventRedelivered`](crate::error::DisconnectKind::EventRedelivered)).
    /// The event then counts as not done even if the handler swallows the error: the answer
    /// never went out, and the copy the server sends again is handled. (A call cut off in
    /// flight, whose answer may have arrived, is the handler's to retry or to report.)
    fn cut_off(&self) {}
}

tokio::task_local! {
    /// The scope of the handler running on this task, if any.
    pub(crate) static QUEUE_SCOPE: Arc<dyn QueueScope>;
}

/// One pending method call: refine it with setters, then `.await` it.
///
/// ```no_run
/// # async fn demo(bot: trueconf_bot::bot::Bot, req: impl trueconf_bot::methods::Request) {
/// let response = bot.execute(req).timeout(std::time::Duration::from_secs(3)).await;
/// # let _ = response;
/// # }
/// ```
#[must_use = "a call does nothing until awaited"]
pub struct Call<R: Request> {
    pub(super) bot: Bot,
    pub(super) request: R,
    pub(super) chat: Option<String>,
    pub(super) timeout: Option<Duration>,
}

impl<R: Request + std::fmt::Debug> std::fmt::Debug for Call<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &R::METHOD)
            .field("request", &self.request)
            .finish()
    }
}

impl<R: Request> Call<R> {
    /// Changes the request with any of its setters: `.map(|r| r.some_setter(x))`.
    pub fn map(mut self, f: impl FnOnce(R) -> R) -> Self {
        self.request = f(self.request);
        self
    }

    /// Overrides the bot's request timeout for this call.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The request as it will be sent.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// The request, without sending it.
    pub fn into_request(self) -> R {
        self.request
    }
}

impl<R: Request> Call<R> {
    /// Sends the call without waiting for its response, in order: returns once the request
    /// is queued on the socket, so whatever the caller sends next goes out after it. This is
    /// the fast way for a handler that does not need the answer (an echo, a notification):
    /// the chat's next event can start while the response is on its way.
    ///
    /// An error found before the request was queued (an invalid argument, the bot shutting
    /// down, no socket within the timeout) is returned here. A failure that comes later (the
    /// server's error, a timeout, a lost connection) goes, in a handler, to the dispatcher's
    /// [error handler](crate::dispatch::DispatcherBuilder::error_handler) as
    /// `DispatchError::Queued`, and elsewhere to the log. In
    /// [`AckMode::AfterHandled`](crate::bot::AckMode::AfterHandled) the handler's event is
    /// acknowledged only once the handler and every call it queued are done.
    ///
    /// It waits only when sending must wait anyway (no socket yet, the throttle, a full
    /// writer queue), which keeps the order and the back-pressure of awaited calls.
    ///
    /// ```no_run
    /// # use trueconf_bot::dispatch::{HandlerResult, MessageContext};
    /// async fn echo(msg: MessageContext) -> HandlerResult {
    ///     if let Some(text) = msg.text() {
    ///         msg.answer(text).queue().await?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub async fn queue(self) -> Result<()> {
        let scope = QUEUE_SCOPE.try_with(Arc::clone).ok();
        let pinned = scope.as_ref().and_then(|s| s.pinned());
        let Call {
            bot,
            request,
            chat,
            timeout,
        } = self;
        if !R::IDEMPOTENT {
            // A write is never sent again, so nothing needs to wait for its answer: the
            // outcome comes to this callback wherever it is learnt, with no task per call.
            let done = Box::new(move |result: Result<()>| {
                if let Err(error) = result {
                    report_late(scope, R::METHOD, error);
                }
                // Otherwise the scope is let go here; its last holder acknowledges the event.
            });
            let queued = bot
                .runtime
                .requester()
                .enqueue(request, chat.as_deref(), timeout, pinned.as_deref(), done)
                .await;
            return refused_for_redelivery(queued);
        }
        // A read may go out again on the next socket: a task waits for it.
        let (tx, mut rx) = oneshot::channel();
        let mut call = Box::pin(async move {
            bot.runtime
                .requester()
                .execute_signalled(request, chat.as_deref(), timeout, Some(tx), pinned)
                .await
                .map(drop)
        });
        tokio::select! {
            biased;
            done = &mut call => return refused_for_redelivery(done),
            Ok(()) = &mut rx => {}
        }
        tokio::spawn(async move {
            if let Err(error) = call.await {
                report_late(scope, R::METHOD, error);
            }
        });
        Ok(())
    }
}

/// A call refused because its event's socket is gone marks the event not done, whatever the
/// handler does with the error: the copy the server sends again is handled.
fn refused_for_redelivery<T>(result: Result<T>) -> Result<T> {
    if let Err(error) = &result
        && error.disconnect_kind() == Some(crate::error::DisconnectKind::EventRedelivered)
    {
        let _ = QUEUE_SCOPE.try_with(|s| s.cut_off());
    }
    result
}

/// Hands the late failure of a queued call to its handler's scope (the dispatcher's error
/// handler), or to the log outside a handler; the scope is let go when that is done.
fn report_late(scope: Option<Arc<dyn QueueScope>>, method: &'static str, error: Error) {
    match scope {
        Some(scope) => {
            let report = scope.failed(method, error);
            tokio::spawn(async move {
                report.await;
                // The last holder of the scope acknowledges the event.
                drop(scope);
            });
        }
        None => tracing::warn!(method, %error, "queued call failed"),
    }
}

impl<R: Request> IntoFuture for Call<R> {
    type Output = Result<R::Response>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R::Response>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::info_span!("request", method = R::METHOD, id = tracing::field::Empty);
        Box::pin(
            async move {
                let runtime = self.bot.runtime;
                let pinned = QUEUE_SCOPE.try_with(|s| s.pinned()).ok().flatten();
                let result = runtime
                    .requester()
                    .execute_signalled(
                        self.request,
                        self.chat.as_deref(),
                        self.timeout,
                        None,
                        pinned,
                    )
                    .await;
                refused_for_redelivery(result)
            }
            .instrument(span),
        )
    }
}
