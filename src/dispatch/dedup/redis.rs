//! Handled marks in Redis: shared by replicas, kept across restarts, expiring by Redis's TTL.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use super::HandledMarks;
use crate::conversation::BoxFuture;
use crate::{Error, Result};

/// The default prefix of the marks' keys.
const DEFAULT_PREFIX: &str = "trueconf:marks:";

/// Marks that failed to be written while Redis was away, kept to write later (at most this
/// many; past that the oldest are forgotten, which can only cause a duplicate).
const RETRY_CAP: usize = 100_000;

/// How long a failed call keeps the store from trying Redis again: while Redis is down, every
/// event would otherwise wait for a timeout.
const BACKOFF: Duration = Duration::from_secs(1);

/// [`HandledMarks`] in Redis: one key `{prefix}{fingerprint}` per handled event, expiring after
/// the configured time (default 10 minutes: long enough for a restart or a takeover to replay
/// anything older).
///
/// While Redis is unreachable, checks fail fast (the event counts as not handled: the
/// in-memory window still catches redeliveries within the process) and marks are kept in
/// memory and written when Redis answers again. Cheap to clone.
#[derive(Clone)]
pub struct RedisMarks(Arc<Inner>);

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
    epoch: Instant,
    /// Milliseconds since `epoch` until which Redis is not tried (0: try).
    down_until: AtomicU64,
    retry: Mutex<VecDeque<u64>>,
}

impl fmt::Debug for RedisMarks {
    // The URL may carry a password: it is not kept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisMarks")
            .field("prefix", &self.0.prefix)
            .field("ttl", &self.0.ttl)
            .finish_non_exhaustive()
    }
}

fn storage_error(what: &str, e: RedisError) -> Error {
    Error::Storage {
        message: format!("redis handled marks: {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

fn unavailable() -> Error {
    Error::Storage {
        message: "redis handled marks: unavailable (tried again shortly)".into(),
        source: None,
    }
}

impl RedisMarks {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`), keys under
    /// `trueconf:marks:`, marks kept 10 minutes.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, DEFAULT_PREFIX, Duration::from_secs(600)).await
    }

    /// Connects to `url`, keys under `prefix`, marks kept for `ttl`.
    pub async fn connect_with(url: &str, prefix: impl Into<String>, ttl: Duration) -> Result<Self> {
        let client = Client::open(url).map_err(|e| storage_error("bad url", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| storage_error("cannot connect", e))?;
        Ok(Self(Arc::new(Inner {
            conn,
            prefix: prefix.into(),
            ttl: ttl.max(Duration::from_millis(1)),
            epoch: Instant::now(),
            down_until: AtomicU64::new(0),
            retry: Mutex::new(VecDeque::new()),
        })))
    }

    /// Marks kept to be written once Redis answers again.
    pub fn pending_marks(&self) -> usize {
        self.0.retry().len()
    }
}

impl Inner {
    fn key(&self, key: u64) -> String {
        format!("{}{key:016x}", self.prefix)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn is_down(&self) -> bool {
        self.now_ms() < self.down_until.load(Ordering::Relaxed)
    }

    fn retry(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        // Each step under this lock is one push or one take: never inconsistent.
        self.retry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn went_down(&self, e: &RedisError) {
        let was = self.down_until.swap(
            self.now_ms() + BACKOFF.as_millis() as u64,
            Ordering::Relaxed,
        );
        if was == 0 {
            tracing::warn!(error = %e, "redis handled marks unavailable: duplicates are checked in memory only until it is back");
        }
    }

    fn came_back(&self) {
        if self.down_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!("redis handled marks available again");
        }
    }

    fn keep_for_later(&self, keys: impl IntoIterator<Item = u64>) {
        let mut retry = self.retry();
        for key in keys {
            if retry.len() >= RETRY_CAP {
                retry.pop_front();
            }
            retry.push_back(key);
        }
    }

    fn set_cmd(&self, pipe: &mut redis::Pipeline, key: u64) {
        pipe.cmd("SET")
            .arg(self.key(key))
            .arg(1)
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .ignore();
    }

    /// Writes `key` and the marks kept while Redis was away, in one pipeline.
    async fn mark(&self, key: u64) -> Result<()> {
        let kept: Vec<u64> = self.retry().drain(..).collect();
        let mut pipe = redis::pipe();
        self.set_cmd(&mut pipe, key);
        for k in &kept {
            self.set_cmd(&mut pipe, *k);
        }
        let mut conn = self.conn.clone();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => {
                self.came_back();
                Ok(())
            }
            Err(e) => {
                self.went_down(&e);
                self.keep_for_later(std::iter::once(key).chain(kept));
                Err(storage_error("mark", e))
            }
        }
    }

    async fn check(&self, key: u64) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.key(key));
        let mut conn = self.conn.clone();
        match cmd.query_async::<bool>(&mut conn).await {
            Ok(found) => Ok(found),
            Err(e) => {
                self.went_down(&e);
                Err(storage_error("check", e))
            }
        }
    }
}

impl HandledMarks for RedisMarks {
    fn is_handled(&self, key: u64) -> BoxFuture<Result<bool>> {
        if self.0.is_down() {
            return Box::pin(std::future::ready(Err(unavailable())));
        }
        let inner = self.0.clone();
        Box::pin(async move { inner.check(key).await })
    }

    fn mark_handled(&self, key: u64) -> BoxFuture<Result<()>> {
        if self.0.is_down() {
            self.0.keep_for_later([key]);
            return Box::pin(std::future::ready(Err(unavailable())));
        }
        let inner = self.0.clone();
        Box::pin(async move { inner.mark(key).await })
    }
}
