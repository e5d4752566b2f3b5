//! The dispatcher's side of replicas: which events this replica queues, the buffer of the
//! others' events, the replay on takeover and the fence right before a handler.
//!
//! The coordination itself (membership, leases) is [`crate::replicas`]; this file only reads
//! its slot table, so the dispatch loop never waits on Redis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::watch;
// Tokio's clock: the tests of the age limit pause it.
use tokio::time::Instant;

use super::dedup::{HandledMarks, RedisMarks};
use super::update::Update;
use crate::bot::ConnectionState;
use crate::replicas::{Coordinator, RedisCoordination, SlotTable};

/// Events of slots this replica does not own, oldest first, for a takeover.
struct Buffer {
    /// Arrival number → (slot, when it was kept, event).
    entries: BTreeMap<u64, (usize, Instant, Update)>,
    cap: usize,
    /// Entries older than this are dropped: their handled marks may have expired, so
    /// replaying them could handle them twice (and nobody waits for them any more).
    max_age: Duration,
    dropped: u64,
}

impl Buffer {
    /// Drops the entries older than `max_age` (the oldest are first: arrival order).
    fn prune(&mut self, now: Instant) {
        while let Some(entry) = self.entries.first_entry() {
            if now.saturating_duration_since(entry.get().1) <= self.max_age {
                break;
            }
            entry.remove();
        }
    }
}

pub(super) struct ReplicaGate {
    cfg: RedisCoordination,
    state: Option<watch::Receiver<ConnectionState>>,
    table: Arc<SlotTable>,
    buffer: Mutex<Buffer>,
    /// Arrival numbers of the queued events (by duplicate key), so a fenced one goes back
    /// into the buffer in its place.
    queued: DashMap<u64, u64>,
    next_seq: AtomicU64,
    coordinator: tokio::sync::Mutex<Option<Coordinator>>,
}

impl ReplicaGate {
    pub(super) fn new(
        cfg: RedisCoordination,
        state: Option<watch::Receiver<ConnectionState>>,
    ) -> crate::Result<Self> {
        cfg.check()?;
        Ok(Self {
            table: Arc::new(SlotTable::new(cfg.slots)),
            buffer: Mutex::new(Buffer {
                entries: BTreeMap::new(),
                cap: cfg.buffer,
                max_age: cfg.marks_ttl,
                dropped: 0,
            }),
            cfg,
            state,
            queued: DashMap::new(),
            next_seq: AtomicU64::new(0),
            coordinator: tokio::sync::Mutex::new(None),
        })
    }

    /// Connects the handled marks (unless the user set a store) and joins the group.
    pub(super) async fn start(&self, marks: &OnceLock<Arc<dyn HandledMarks>>) -> crate::Result<()> {
        if marks.get().is_none() {
            let store = RedisMarks::connect_with(
                &self.cfg.url,
                self.cfg.marks_prefix(),
                self.cfg.marks_ttl,
            )
            .await?;
            let _ = marks.set(Arc::new(store));
        }
        let coordinator =
            Coordinator::start(&self.cfg, self.table.clone(), self.state.clone()).await?;
        *self.coordinator.lock().await = Some(coordinator);
        Ok(())
    }

    /// Hands every owned chat over (after in-flight events, within `timeout`) and leaves.
    pub(super) async fn leave(&self, timeout: Duration) {
        if let Some(coordinator) = self.coordinator.lock().await.take() {
            coordinator.leave(timeout).await;
        }
    }

    pub(super) fn table(&self) -> &SlotTable {
        &self.table
    }

    pub(super) fn slot(&self, update: &Update) -> usize {
        self.table.slot_of(update.chat_id())
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // Each step under this lock leaves the map consistent.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn keep(&self, seq: u64, slot: usize, update: Update) {
        let now = Instant::now();
        let mut buffer = self.buffer();
        buffer.prune(now);
        if buffer.entries.len() >= buffer.cap && buffer.entries.pop_first().is_some() {
            buffer.dropped += 1;
            if buffer.dropped == 1 || buffer.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = buffer.dropped,
                    capacity = buffer.cap,
                    "replica buffer full: the oldest events of other replicas' chats are \
                     dropped (a takeover can no longer replay them); raise \
                     RedisCoordination::buffer"
                );
            }
        }
        buffer.entries.insert(seq, (slot, now, update));
    }

    /// The dispatch loop: true if this replica queues `update` now; otherwise it was kept in
    /// the buffer (events without a duplicate key cannot be replayed safely and are not) and
    /// the caller acknowledges it.
    pub(super) fn admit(&self, update: &Update) -> bool {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let slot = self.slot(update);
        let key = update.dedup_key();
        if self.table.enter(slot) {
            if let Some(key) = key {
                self.queued.insert(key, seq);
            }
            return true;
        }
        if key.is_some() {
            self.keep(seq, slot, update.clone());
        }
        false
    }

    /// An admitted event that never reached its handler (overflow): no longer in flight.
    pub(super) fn not_queued(&self, update: &Update) {
        if let Some(key) = update.dedup_key() {
            self.queued.remove(&key);
        }
        self.table.exit(self.slot(update));
    }

    /// The buffered events of the slots just taken over, each slot's in arrival order. The
    /// caller queues them, then [`SlotTable::activate`]s the slot.
    pub(super) fn take_replay(&self) -> Vec<(usize, Vec<(u64, Update)>)> {
        let slots = self.table.acquired_slots();
        if slots.is_empty() {
            return Vec::new();
        }
        let mut wanted = vec![false; self.table.len()];
        slots.iter().for_each(|&s| wanted[s] = true);
        let mut per_slot: BTreeMap<usize, Vec<(u64, Update)>> =
            slots.iter().map(|&s| (s, Vec::new())).collect();
        let mut buffer = self.buffer();
        buffer.prune(Instant::now());
        buffer.entries.retain(|seq, (slot, _, update)| {
            if wanted[*slot] {
                if let Some(list) = per_slot.get_mut(slot) {
                    list.push((*seq, update.clone()));
                }
                false
            } else {
                true
            }
        });
        drop(buffer);
        per_slot.into_iter().collect()
    }

    /// A replayed event is about to be queued.
    pub(super) fn enter_replay(&self, slot: usize, seq: u64, update: &Update) {
        if let Some(key) = update.dedup_key() {
            self.queued.insert(key, seq);
        }
        self.table.enter_replay(slot);
    }

    /// Right before the handler: may this replica still handle `update`? If not (its lease
    /// ended meanwhile) the event goes back into the buffer, in its place, and is no longer in
    /// flight.
    pub(super) fn fence(&self, slot: usize, update: &Update) -> bool {
        if self.table.may_handle(slot) {
            return true;
        }
        if let Some(key) = update.dedup_key()
            && let Some((_, seq)) = self.queued.remove(&key)
        {
            self.keep(seq, slot, update.clone());
        }
        self.table.exit(slot);
        false
    }

    /// The event's handling (and mark) is over.
    pub(super) fn done(&self, slot: usize, update: &Update) {
        if let Some(key) = update.dedup_key() {
            self.queued.remove(&key);
        }
        self.table.exit(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::RawValue;

    fn event(n: u64) -> Update {
        let payload = serde_json::json!({
            "messageId": format!("m-{n}"),
            "chat": {"chatId": "c", "chatType": 1},
            "timestamp": 1u64, "type": 200,
            "author": {"id": "alice@srv", "type": 1},
            "content": {"text": "hi", "parseMode": "text"}
        });
        Update::new(
            n,
            "sendMessage",
            RawValue::from_string(payload.to_string()).unwrap(),
        )
    }

    /// A takeover long after an event was buffered must not replay it: its handled mark may
    /// have expired (it would be handled twice), and a chat answered minutes late is worse
    /// than one not answered again.
    #[tokio::test(start_paused = true)]
    async fn buffered_events_older_than_the_marks_are_not_replayed() {
        let cfg = RedisCoordination::new("redis://127.0.0.1:1/")
            .slots(1)
            .marks_ttl(Duration::from_secs(60));
        let gate = ReplicaGate::new(cfg, None).unwrap();
        assert!(!gate.admit(&event(1)), "not owned: buffered");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!gate.admit(&event(2)));
        assert_eq!(gate.buffer().entries.len(), 1, "the old one was dropped");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(!gate.admit(&event(3)));
        let deadline = gate.table.ms_at(std::time::Instant::now()) + 60_000;
        gate.table.held(0, deadline);
        let replay = gate.take_replay();
        let ids: Vec<_> = replay[0].1.iter().map(|(_, u)| u.id()).collect();
        assert_eq!(ids, [2, 3]);
    }
}
