//! Progress reports and the stream that carries them, coalesced so a slow reader sees the
//! latest state rather than a backlog.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::watch;

/// Which way the bytes of a [`Progress`] report move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// This bot uploading: bytes handed to the connection.
    Upload,
    /// This bot downloading: bytes received.
    Download,
    /// Someone else uploading the file to the server (`uploadFileProgress` events).
    Remote,
}

/// One progress report of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Which transfer this is.
    pub direction: Direction,
    /// The file, when known (an upload learns its id only from `sendFile`).
    pub file_id: Option<String>,
    /// Bytes moved so far.
    pub transferred: u64,
    /// Size of the file, when known.
    pub total: Option<u64>,
}

impl Progress {
    /// `transferred / total` in `0.0..=1.0`, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total.map(|t| {
            if t == 0 {
                1.0
            } else {
                (self.transferred as f64 / t as f64).min(1.0)
            }
        })
    }

    /// Whether every byte has moved.
    pub fn is_done(&self) -> bool {
        self.total.is_some_and(|t| self.transferred >= t)
    }
}

/// A stream of [`Progress`] reports. Reports are coalesced: a slow reader sees the latest
/// state, never a backlog. It ends after the report that completes the transfer.
#[must_use = "streams do nothing unless polled"]
pub struct ProgressStream {
    inner: Pin<Box<dyn Stream<Item = Progress> + Send>>,
}

impl std::fmt::Debug for ProgressStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressStream")
    }
}

impl Stream for ProgressStream {
    type Item = Progress;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Progress>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl ProgressStream {
    /// `keep` lives as long as the stream (a subscription guard).
    pub(crate) fn new<K: Send + 'static>(
        mut rx: watch::Receiver<Option<Progress>>,
        keep: K,
    ) -> Self {
        if rx.borrow().is_some() {
            rx.mark_changed();
        }
        let inner = futures_util::stream::unfold(Some((rx, keep)), |state| async move {
            let (mut rx, keep) = state?;
            loop {
                rx.changed().await.ok()?;
                let latest = rx.borrow_and_update().clone();
                if let Some(p) = latest {
                    let next = (!p.is_done()).then_some((rx, keep));
                    return Some((p, next));
                }
            }
        });
        ProgressStream {
            inner: Box::pin(inner),
        }
    }

    /// A sender for one transfer's own reports and the stream reading them.
    pub(crate) fn channel() -> (watch::Sender<Option<Progress>>, ProgressStream) {
        let (tx, rx) = watch::channel(None);
        (tx, ProgressStream::new(rx, ()))
    }
}
