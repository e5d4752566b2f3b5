//! A transfer on a task of its own, cancelled when its handle is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{DisconnectKind, Error, Result};

/// A transfer running on its own task. Await it for the result; drop it (or call
/// [`TransferHandle::abort`]) to cancel: the HTTP request is aborted and a half-written file
/// removed.
#[must_use = "dropping the handle cancels the transfer"]
pub struct TransferHandle<T> {
    task: tokio::task::JoinHandle<Result<T>>,
}

impl<T: Send + 'static> TransferHandle<T> {
    /// Runs `transfer` (e.g. `bot.download_file_by_id(id).to_path(p)`) on its own task.
    pub fn spawn(transfer: impl Future<Output = Result<T>> + Send + 'static) -> Self {
        TransferHandle {
            task: tokio::spawn(transfer),
        }
    }
}

impl<T> TransferHandle<T> {
    /// Cancels the transfer.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether it has finished (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl<T> std::fmt::Debug for TransferHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandle")
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

impl<T> Drop for TransferHandle<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> Future for TransferHandle<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.task).poll(cx).map(|r| match r {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(Error::disconnected(
                DisconnectKind::Cancelled,
                "the transfer was cancelled",
            )),
            Err(e) => Err(Error::disconnected(
                DisconnectKind::Internal,
                format!("the transfer task failed: {e}"),
            )),
        })
    }
}
