//! [`Call`]: one method call, refined with setters, sent when awaited.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use tracing::Instrument;

use super::Bot;
use crate::error::Result;
use crate::methods::Request;

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

impl<R: Request> IntoFuture for Call<R> {
    type Output = Result<R::Response>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R::Response>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let span = tracing::info_span!("request", method = R::METHOD, id = tracing::field::Empty);
        Box::pin(
            async move {
                let runtime = self.bot.runtime;
                runtime
                    .requester()
                    .execute(self.request, self.chat.as_deref(), self.timeout)
                    .await
            }
            .instrument(span),
        )
    }
}
