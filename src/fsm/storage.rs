//! The storage contract every backend implements, and the atomic update built on it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::StorageKey;
use super::record::{StateRecord, Versioned, fresh_revision};
use crate::error::BoxError;
use crate::{Error, Result};

/// The boxed future returned by [`Storage`] methods (keeps the trait object-safe).
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A place to keep dialog records. Backends: [`MemoryStorage`](super::MemoryStorage),
/// `SqliteStorage` (feature `sqlite`), `RedisStorage` (feature `redis`).
///
/// Every write replaces the whole record in one operation. A record whose
/// [`expires_at`](StateRecord::expires_at) has passed reads as absent. Backend failures are
/// [`Error::Storage`] naming the key; transient ones are retried a few times first.
///
/// Use it as `Arc<dyn Storage>`; the read-modify-write helper is
/// [`update`](trait.Storage.html#method.update) on `dyn Storage`.
pub trait Storage: Send + Sync + 'static {
    /// The record under `key`, with its revision; `None` if absent or expired.
    fn get<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, Option<Versioned>>;

    /// Replaces the record under `key` unconditionally; returns the new revision.
    fn set<'a>(&'a self, key: &'a StorageKey, record: StateRecord) -> StorageFuture<'a, u64>;

    /// Deletes the record under `key` (no error if there is none).
    fn remove<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, ()>;

    /// Atomically: if the record under `key` has revision `expected` (`None`: is absent or
    /// expired), replace it with `new` (`None`: delete it) and return `true`; otherwise change
    /// nothing and return `false`.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a StorageKey,
        expected: Option<u64>,
        new: Option<Versioned>,
    ) -> StorageFuture<'a, bool>;

    /// The time this storage judges expiry by, in Unix milliseconds.
    fn now_ms(&self) -> u64 {
        super::record::Clock::now_ms(&super::record::SystemClock)
    }
}

/// How many compare-and-swap rounds [`update`](trait.Storage.html#method.update) tries
/// before giving up under contention.
const MAX_CAS_ROUNDS: usize = 1000;

impl dyn Storage {
    /// Atomically replaces the record under `key` with `f(current)`: `f` receives the current
    /// record (`None` if absent or expired) and returns the new one (`None`, or an empty
    /// record, deletes it). `f` may run more than once when other writers race; the returned
    /// value is the record that was stored.
    ///
    /// Errors from `f` abort the update and are returned as they are.
    pub async fn update<F>(&self, key: &StorageKey, mut f: F) -> Result<Option<StateRecord>>
    where
        F: FnMut(Option<StateRecord>) -> Result<Option<StateRecord>> + Send,
    {
        let mut current = self.get(key).await?;
        for round in 0..MAX_CAS_ROUNDS {
            let expected = current.as_ref().map(|v| v.revision);
            let next = f(current.map(|v| v.record))?.filter(|r| !r.is_empty());
            let new = next.clone().map(|record| Versioned {
                record,
                revision: fresh_revision(expected),
            });
            let written = new.as_ref().map(|v| v.revision);
            if self.compare_and_swap(key, expected, new).await? {
                return Ok(next);
            }
            current = self.get(key).await?;
            // A retried swap whose first reply was lost may have landed already: the random
            // revision it wrote identifies it.
            if let (Some(w), Some(now)) = (written, current.as_ref())
                && now.revision == w
            {
                return Ok(next);
            }
            if round >= 4 {
                let jitter = rand::random_range(0..=(round.min(20) as u64 * 100));
                tokio::time::sleep(Duration::from_micros(jitter)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        Err(Error::Storage {
            message: format!("update of {key} lost {MAX_CAS_ROUNDS} races in a row"),
            source: None,
        })
    }
}

// Used only by the SQLite and Redis backends.
#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
/// A backend failure before it becomes an [`Error::Storage`].
#[derive(Debug)]
pub(crate) struct BackendError {
    pub transient: bool,
    pub source: BoxError,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
impl BackendError {
    pub fn new(transient: bool, source: impl Into<BoxError>) -> Self {
        Self {
            transient,
            source: source.into(),
        }
    }
}

/// Runs `op` with bounded exponential retries of transient failures, and turns the final
/// failure into an [`Error::Storage`] naming `what` and `target` (usually the key).
#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
pub(crate) async fn with_retry<T, F, Fut>(
    backend: &'static str,
    what: &'static str,
    target: &(dyn std::fmt::Display + Sync),
    op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, BackendError>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(500))
        .with_max_times(4)
        .with_jitter();
    op.retry(policy)
        .when(|e: &BackendError| e.transient)
        .notify(|e: &BackendError, after: Duration| {
            tracing::warn!(backend, what, %target, error = %e.source, ?after, "state storage failed, retrying");
        })
        .await
        .map_err(|e| Error::Storage {
            message: format!("{backend}: {what} {target} failed: {}", e.source),
            source: Some(e.source),
        })
}
