//! In-process storage: fast, lost on restart.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::StorageKey;
use super::record::{Clock, StateRecord, SystemClock, Versioned, fresh_revision};
use super::storage::{Storage, StorageFuture};

/// Dialog records in a concurrent hash map. The default storage; everything is lost when the
/// process exits. Expired records read as absent and are dropped when next touched, or all at
/// once by [`purge_expired`](Self::purge_expired).
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    map: Arc<DashMap<StorageKey, Versioned>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// An empty storage on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty storage that judges expiry by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            map: Arc::new(DashMap::new()),
            clock,
        }
    }

    /// How many records are held, counting expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drops every expired record; returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = self.clock.now_ms();
        let before = self.map.len();
        self.map.retain(|_, v| !v.record.is_expired(now));
        before.saturating_sub(self.map.len())
    }

    fn live(&self, key: &StorageKey) -> Option<Versioned> {
        let now = self.clock.now_ms();
        let found = self.map.get(key).map(|v| v.clone())?;
        if found.record.is_expired(now) {
            self.map.remove_if(key, |_, v| v.revision == found.revision);
            return None;
        }
        Some(found)
    }
}

impl Storage for MemoryStorage {
    fn get<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, Option<Versioned>> {
        let found = self.live(key);
        Box::pin(async move { Ok(found) })
    }

    fn set<'a>(&'a self, key: &'a StorageKey, record: StateRecord) -> StorageFuture<'a, u64> {
        let revision = match self.map.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let revision = fresh_revision(Some(e.get().revision));
                e.insert(Versioned { record, revision });
                revision
            }
            Entry::Vacant(e) => {
                let revision = fresh_revision(None);
                e.insert(Versioned { record, revision });
                revision
            }
        };
        Box::pin(async move { Ok(revision) })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, ()> {
        self.map.remove(key);
        Box::pin(async { Ok(()) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a StorageKey,
        expected: Option<u64>,
        new: Option<Versioned>,
    ) -> StorageFuture<'a, bool> {
        let now = self.clock.now_ms();
        // The entry guard holds the shard lock, so compare and replace are one step.
        let swapped = match self.map.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let current = (!e.get().record.is_expired(now)).then_some(e.get().revision);
                if current != expected {
                    false
                } else {
                    match new {
                        Some(v) => {
                            e.insert(v);
                        }
                        None => {
                            e.remove();
                        }
                    }
                    true
                }
            }
            Entry::Vacant(e) => {
                if expected.is_some() {
                    false
                } else {
                    if let Some(v) = new {
                        e.insert(v);
                    }
                    true
                }
            }
        };
        Box::pin(async move { Ok(swapped) })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}
