//! Starting, running and stopping a bot. The work is the runtime's; this is its face.

use super::Bot;
use crate::error::Result;

impl Bot {
    /// Connects and authorises; returns once the bot is ready. Calling it again is harmless.
    /// A rejected token or credentials, an unsupported server, or a refused certificate fail
    /// at once; network trouble is retried per the [`ReconnectPolicy`](super::ReconnectPolicy).
    pub async fn start(&self) -> Result<()> {
        self.runtime.start().await
    }

    /// Starts the bot and waits until it is shut down (`Ok`) or fails for good (`Err`).
    pub async fn run(&self) -> Result<()> {
        self.runtime.start().await?;
        self.runtime.finished().await
    }

    /// Like [`Bot::run`], but shuts down gracefully on Ctrl-C or SIGTERM, including one that
    /// arrives while the bot is still connecting.
    pub async fn run_until_signal(&self) -> Result<()> {
        // Listening starts before anything else, so no signal falls between start and run.
        let mut signals = Signals::listen();
        tokio::select! {
            result = async {
                self.runtime.start().await?;
                self.runtime.finished().await
            } => return result,
            _ = signals.recv() => tracing::info!("signal received; shutting down"),
        }
        self.shutdown().await
    }

    /// Graceful shutdown: stop taking events and new requests, let in-flight requests finish
    /// within the shutdown timeout, fail the rest with [`Error::Disconnected`](crate::Error::Disconnected), close the
    /// socket cleanly and stop the actors.
    pub async fn shutdown(&self) -> Result<()> {
        self.runtime.shutdown().await
    }
}

/// Ctrl-C and SIGTERM, listened to from the moment it is made.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
