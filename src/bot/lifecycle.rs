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

    /// Like [`Bot::run`], but shuts down gracefully on Ctrl-C or SIGTERM.
    pub async fn run_until_signal(&self) -> Result<()> {
        self.runtime.start().await?;
        tokio::select! {
            result = self.runtime.finished() => return result,
            _ = shutdown_signal() => tracing::info!("signal received; shutting down"),
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
