//! Running a dispatcher until the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM, what
//! `docker stop`, Kubernetes and systemd send. The stop is the graceful one of
//! [`DispatcherHandle::shutdown`]: no new events are taken, queued and running handlers
//! finish (within the shutdown timeout) and their requests go out, then the bot disconnects.

use std::future::Future;

use tokio_util::task::AbortOnDropHandle;

use super::dispatcher::{Dispatcher, DispatcherHandle};

impl Dispatcher {
    /// [`run`](Self::run), stopping gracefully on Ctrl-C or SIGTERM (also one that arrives
    /// while the bot is still connecting). Returns `Ok` after such a stop.
    ///
    /// ```no_run
    /// # async fn demo(bot: trueconf_bot::bot::Bot, router: trueconf_bot::dispatch::Router)
    /// # -> trueconf_bot::Result<()> {
    /// use trueconf_bot::dispatch::Dispatcher;
    /// Dispatcher::builder(bot, router).build()?.run_until_signal().await
    /// # }
    /// ```
    pub async fn run_until_signal(self) -> crate::Result<()> {
        // Listening starts before the bot does, so no signal falls in between.
        let mut signals = Signals::listen()?;
        self.run_until(async move {
            let name = signals.recv().await;
            tracing::info!(signal = name, "signal received; shutting down");
        })
        .await
    }

    /// [`run`](Self::run), stopping gracefully once `stop` completes: the injectable form of
    /// [`run_until_signal`](Self::run_until_signal), for your own signals or tests.
    pub async fn run_until<F>(self, stop: F) -> crate::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle: DispatcherHandle = self.handle();
        let _watch = AbortOnDropHandle::new(tokio::spawn(async move {
            stop.await;
            handle.shutdown();
        }));
        self.run().await
    }
}

/// Ctrl-C and SIGTERM, listened to from the moment it is made.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> crate::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next signal and names it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
