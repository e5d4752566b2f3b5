//! The duplicate window: suppresses events the server delivers again.
//!
//! After a reconnect the server redelivers what it did not see acknowledged; with
//! acknowledge-after-handling that includes events already handled. Remembering the last few
//! thousand message keys is enough to handle each of them once.
//!
//! Within one process that is [`Dedup`], in memory. Across restarts and across replicas it is
//! a [`HandledMarks`] store: the worker checks it before handling and marks the event after
//! the handler (before the acknowledgement), so a restarted or taking-over process skips
//! what was done.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use crate::conversation::BoxFuture;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "redis")]
pub use self::redis::RedisMarks;
#[cfg(feature = "sqlite")]
pub use self::sqlite::SqliteMarks;

/// A persisted duplicate window: which events were handled already, by their 64-bit
/// fingerprint (the same for every process: the message id, or the payload of a timestamped
/// event).
///
/// Set one with [`DispatcherBuilder::handled_marks`](super::DispatcherBuilder::handled_marks).
/// A failing store never stops handling: a failed check counts as "not handled" (the
/// in-memory window still catches redeliveries within the process) and a failed mark is
/// logged.
pub trait HandledMarks: Send + Sync + 'static {
    /// Whether `key` was marked handled.
    fn is_handled(&self, key: u64) -> BoxFuture<crate::Result<bool>>;
    /// Marks `key` handled.
    fn mark_handled(&self, key: u64) -> BoxFuture<crate::Result<()>>;
}

impl<T: HandledMarks + ?Sized> HandledMarks for Arc<T> {
    fn is_handled(&self, key: u64) -> BoxFuture<crate::Result<bool>> {
        (**self).is_handled(key)
    }
    fn mark_handled(&self, key: u64) -> BoxFuture<crate::Result<()>> {
        (**self).mark_handled(key)
    }
}

/// Handled marks in this process's memory, the last `capacity` of them: what the dispatcher
/// does without a store, as a [`HandledMarks`] (lost on restart; for tests and as a model).
#[derive(Debug)]
pub struct MemoryMarks {
    window: std::sync::Mutex<Dedup>,
}

impl MemoryMarks {
    /// Remembers the last `capacity` marks.
    pub fn new(capacity: usize) -> Self {
        Self {
            window: std::sync::Mutex::new(Dedup::new(capacity)),
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Dedup> {
        // A panic while holding this lock leaves a consistent window (each step is one insert).
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HandledMarks for MemoryMarks {
    fn is_handled(&self, key: u64) -> BoxFuture<crate::Result<bool>> {
        let seen = self.window().set.contains(&key);
        Box::pin(std::future::ready(Ok(seen)))
    }
    fn mark_handled(&self, key: u64) -> BoxFuture<crate::Result<()>> {
        self.window().first_time(key);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Bounded memory of recently seen event keys.
#[derive(Debug)]
pub(super) struct Dedup {
    cap: usize,
    set: HashSet<u64, BuildNoHash>,
    order: VecDeque<u64>,
}

/// The keys are SipHash fingerprints already: hashing them again would only cost time.
#[derive(Default, Clone, Copy, Debug)]
pub(super) struct BuildNoHash;

#[derive(Default)]
pub(super) struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::hash::BuildHasher for BuildNoHash {
    type Hasher = NoHash;
    fn build_hasher(&self) -> NoHash {
        NoHash::default()
    }
}

impl Dedup {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            cap,
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    /// Records `key`; false when it was seen already.
    pub(super) fn first_time(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return true;
        }
        if !self.set.insert(key) {
            return false;
        }
        if self.order.len() >= self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_window_is_bounded() {
        let mut d = Dedup::new(2);
        assert!(d.first_time(1));
        assert!(!d.first_time(1));
        assert!(d.first_time(2));
        assert!(d.first_time(3));
        assert!(d.first_time(1), "forgotten after the window");
        assert_eq!(d.set.len(), 2);
    }
}
