//! In-process storage: fast, lost on restart.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::StorageKey;
use super::record::{self, Clock, StateRecord, SystemClock, Versioned, fresh_revision};
use super::storage::{Storage, StorageFuture};

/// One stored record, kept encoded: a small JSON string costs a fraction of the memory of a
/// `serde_json::Value` tree (whose maps allocate whole B-tree nodes), and idle dialogs are
/// what a busy bot holds most of.
#[derive(Debug)]
struct Slot {
    revision: u64,
    expires_at: Option<u64>,
    encoded: Box<str>,
}

impl Slot {
    fn new(v: &Versioned) -> Self {
        Self {
            revision: v.revision,
            expires_at: v.record.expires_at,
            encoded: record::encode(v).into_boxed_str(),
        }
    }

    fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// Dialog records in a concurrent hash map. The default storage; everything is lost when the
/// process exits. Expired records read as absent and are dropped when next touched, or all at
/// once by [`purge_expired`](Self::purge_expired).
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    map: Arc<DashMap<Box<str>, Slot>>,
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
        self.map.retain(|_, slot| !slot.is_expired(now));
        before.saturating_sub(self.map.len())
    }
}

fn map_key(key: &StorageKey) -> Box<str> {
    key.encode().into_boxed_str()
}

impl Storage for MemoryStorage {
    fn get<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, Option<Versioned>> {
        let now = self.clock.now_ms();
        let k = map_key(key);
        let found = match self.map.get(&k) {
            Some(slot) if slot.is_expired(now) => {
                let stale = slot.revision;
                drop(slot);
                self.map.remove_if(&k, |_, s| s.revision == stale);
                Ok(None)
            }
            Some(slot) => record::decode(key, &slot.encoded).map(Some),
            None => Ok(None),
        };
        Box::pin(async move { found })
    }

    fn set<'a>(&'a self, key: &'a StorageKey, record: StateRecord) -> StorageFuture<'a, u64> {
        let mut v = Versioned {
            record,
            revision: 0,
        };
        let revision = match self.map.entry(map_key(key)) {
            Entry::Occupied(mut e) => {
                v.revision = fresh_revision(Some(e.get().revision));
                e.insert(Slot::new(&v));
                v.revision
            }
            Entry::Vacant(e) => {
                v.revision = fresh_revision(None);
                e.insert(Slot::new(&v));
                v.revision
            }
        };
        Box::pin(async move { Ok(revision) })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, ()> {
        self.map.remove(&*map_key(key));
        Box::pin(async { Ok(()) })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a StorageKey,
        expected: Option<u64>,
        new: Option<Versioned>,
    ) -> StorageFuture<'a, bool> {
        let now = self.clock.now_ms();
        let new = new.as_ref().map(Slot::new);
        // The entry guard holds the shard lock, so compare and replace are one step.
        let swapped = match self.map.entry(map_key(key)) {
            Entry::Occupied(mut e) => {
                let current = (!e.get().is_expired(now)).then_some(e.get().revision);
                if current != expected {
                    false
                } else {
                    match new {
                        Some(slot) => {
                            e.insert(slot);
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
                    if let Some(slot) = new {
                        e.insert(slot);
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
