//! The local view of ownership: which slots this replica holds, until when, and how many of
//! their events are still being handled.
//!
//! Written by the coordinator task (leases), read by the dispatch loop (may an event of this
//! chat be queued?) and by each conversation right before a handler runs (may it still be
//! handled?). Plain atomics: the loop and the handlers never wait for the coordinator.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use tokio::sync::Notify;

/// Not held.
const IDLE: u8 = 0;
/// Held; its buffered events must be queued before it takes new ones.
const ACQUIRED: u8 = 1;
/// Held and taking events.
const ACTIVE: u8 = 2;
/// Held, taking no new events: being handed over once its in-flight events are done.
const RELEASING: u8 = 3;

/// FNV-1a, 64 bits: every replica of every build must map a chat to the same slot, which
/// std's hashers do not promise across releases.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[derive(Default)]
struct Cell {
    state: AtomicU8,
    /// Milliseconds since the table's epoch until which the lease is ours by our own clock.
    deadline: AtomicU64,
    /// Events of this slot queued or running.
    in_flight: AtomicUsize,
    /// Server time (ms) of the last tick before the release began: written to Redis as the
    /// moment from which a taker must have the slot's events. Earlier than the real moment,
    /// never later, so a taker that qualifies has them all.
    released_at: AtomicU64,
}

/// Per-slot ownership state shared by the coordinator, the dispatch loop and the handlers.
pub struct SlotTable {
    cells: Box<[Cell]>,
    epoch: Instant,
    acquired: Notify,
}

impl std::fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTable")
            .field("slots", &self.cells.len())
            .field("owned", &self.owned().len())
            .finish()
    }
}

impl SlotTable {
    /// `slots` slots (at least 1), none held.
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            cells: (0..slots.max(1)).map(|_| Cell::default()).collect(),
            epoch: Instant::now(),
            acquired: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn ms_at(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// The slot of a chat (events without a chat share the slot of the empty id).
    pub(crate) fn slot_of(&self, chat: Option<&str>) -> usize {
        (fnv1a64(chat.unwrap_or_default().as_bytes()) % self.cells.len() as u64) as usize
    }

    fn cell(&self, slot: usize) -> &Cell {
        &self.cells[slot % self.cells.len()]
    }

    fn lease_valid(&self, cell: &Cell) -> bool {
        self.now_ms() < cell.deadline.load(SeqCst)
    }

    /// The dispatch loop: may a new event of `slot` be queued here? If so it counts as in
    /// flight until [`exit`](Self::exit).
    pub(crate) fn enter(&self, slot: usize) -> bool {
        let cell = self.cell(slot);
        // Counted first, checked second: a release that starts meanwhile either sees this
        // event in flight or this check sees the release (both sides use SeqCst).
        cell.in_flight.fetch_add(1, SeqCst);
        if cell.state.load(SeqCst) == ACTIVE && self.lease_valid(cell) {
            return true;
        }
        cell.in_flight.fetch_sub(1, SeqCst);
        false
    }

    /// A replayed event of a slot being taken over: in flight whatever the state.
    pub(crate) fn enter_replay(&self, slot: usize) {
        self.cell(slot).in_flight.fetch_add(1, SeqCst);
    }

    /// An event counted by `enter` is done (handled, put back or turned away).
    pub(crate) fn exit(&self, slot: usize) {
        let cell = self.cell(slot);
        // Never below zero, whatever a caller does.
        let _ = cell
            .in_flight
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
    }

    /// The handler side: may an event of `slot` be handled now (lease still ours)? Also
    /// while the slot is being taken over: its replayed events can start running before the
    /// dispatch loop has queued the last of them and activated it (fencing them then would
    /// leave them in the buffer of a slot that is never replayed again).
    pub(crate) fn may_handle(&self, slot: usize) -> bool {
        let cell = self.cell(slot);
        cell.state.load(SeqCst) != IDLE && self.lease_valid(cell)
    }

    /// Slots taken over and not yet replayed (the dispatch loop then calls
    /// [`activate`](Self::activate) for each).
    pub(crate) fn acquired_slots(&self) -> Vec<usize> {
        (0..self.cells.len())
            .filter(|&s| self.cells[s].state.load(SeqCst) == ACQUIRED)
            .collect()
    }

    /// Resolves when a slot was taken over (a permit is kept if nobody waits).
    pub(crate) async fn acquired(&self) {
        self.acquired.notified().await;
    }

    /// The buffered events of `slot` are queued: it takes new events from now on.
    pub(crate) fn activate(&self, slot: usize) {
        let _ = self
            .cell(slot)
            .state
            .compare_exchange(ACQUIRED, ACTIVE, SeqCst, SeqCst);
    }

    /// Slots held now (any state but idle).
    pub fn owned(&self) -> Vec<usize> {
        (0..self.cells.len())
            .filter(|&s| self.cells[s].state.load(SeqCst) != IDLE)
            .collect()
    }

    // --- the coordinator's side ---

    /// The lease of `slot` is ours until `deadline` (ms since epoch).
    pub(crate) fn held(&self, slot: usize, deadline: u64) {
        let cell = self.cell(slot);
        // A lease that lapsed by our clock and was renewed anyway (Redis's end is later than
        // ours): while it lapsed, the slot's events were buffered, so it is taken over again,
        // replay first. The state changes before the deadline, so nothing is admitted between.
        let lapsed = !self.lease_valid(cell)
            && cell
                .state
                .compare_exchange(ACTIVE, ACQUIRED, SeqCst, SeqCst)
                .is_ok();
        let fresh = cell
            .state
            .compare_exchange(IDLE, ACQUIRED, SeqCst, SeqCst)
            .is_ok();
        cell.deadline.store(deadline, SeqCst);
        if lapsed || fresh {
            self.acquired.notify_one();
        }
    }

    /// The lease of `slot` is not ours (any more): stop handling its events now.
    /// Returns whether it was held.
    pub(crate) fn drop_slot(&self, slot: usize) -> bool {
        let cell = self.cell(slot);
        cell.deadline.store(0, SeqCst);
        cell.state.swap(IDLE, SeqCst) != IDLE
    }

    /// Starts handing `slot` over: no new events; returns false if it was not active.
    /// `server_ms` is the server time of the last tick (see `Cell::released_at`); a slot
    /// already being released keeps its earlier time.
    pub(crate) fn begin_release(&self, slot: usize, server_ms: u64) -> bool {
        let cell = self.cell(slot);
        let started = cell
            .state
            .compare_exchange(ACTIVE, RELEASING, SeqCst, SeqCst)
            .or_else(|_| {
                cell.state
                    .compare_exchange(ACQUIRED, RELEASING, SeqCst, SeqCst)
            })
            .is_ok();
        if started {
            // Stored after the state: `drained` reads it only for slots with nothing in
            // flight, which the coordinator (the only caller) asks on the same task.
            cell.released_at.store(server_ms, SeqCst);
        }
        started
    }

    /// Whether `slot` is being released.
    pub(crate) fn is_releasing(&self, slot: usize) -> bool {
        self.cell(slot).state.load(SeqCst) == RELEASING
    }

    /// Whether `slot` is active (taking events).
    pub(crate) fn is_active(&self, slot: usize) -> bool {
        self.cell(slot).state.load(SeqCst) == ACTIVE
    }

    /// Releasing slots with nothing left in flight, and the earliest server time at which
    /// one of them stopped taking events (0 if none).
    pub(crate) fn drained(&self) -> (Vec<usize>, u64) {
        let mut earliest = u64::MAX;
        let slots: Vec<usize> = (0..self.cells.len())
            .filter(|&s| {
                let cell = &self.cells[s];
                let done = cell.state.load(SeqCst) == RELEASING && cell.in_flight.load(SeqCst) == 0;
                if done {
                    earliest = earliest.min(cell.released_at.load(SeqCst));
                }
                done
            })
            .collect();
        (slots, if earliest == u64::MAX { 0 } else { earliest })
    }

    /// Whether any releasing slot still has events in flight.
    pub(crate) fn draining(&self) -> bool {
        self.cells
            .iter()
            .any(|c| c.state.load(SeqCst) == RELEASING && c.in_flight.load(SeqCst) > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference: a change would move every chat to another slot.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_slot_takes_events_only_while_active_and_leased() {
        let t = SlotTable::new(4);
        assert!(!t.enter(1), "not held");
        t.held(1, t.now_ms() + 60_000);
        assert!(!t.enter(1), "held but not replayed yet");
        assert!(t.may_handle(1), "its replayed events may run");
        assert_eq!(t.acquired_slots(), [1]);
        t.activate(1);
        assert!(t.enter(1));
        assert!(t.may_handle(1));
        assert!(t.begin_release(1, 1_000));
        assert!(!t.enter(1), "releasing takes nothing new");
        assert!(t.may_handle(1), "but finishes what it has");
        assert!(t.drained().0.is_empty(), "one event still in flight");
        t.exit(1);
        assert_eq!(t.drained(), (vec![1], 1_000));
        assert!(!t.begin_release(1, 2_000), "already releasing");
        assert_eq!(t.drained().1, 1_000, "keeps the time its release began");
        assert!(t.drop_slot(1));
        assert!(!t.may_handle(1));
    }

    #[test]
    fn an_expired_lease_fences_at_once() {
        let t = SlotTable::new(2);
        t.held(0, t.now_ms() + 60_000);
        t.activate(0);
        assert!(t.may_handle(0));
        t.held(0, 0); // the lease ran out by our clock
        assert!(!t.may_handle(0));
        assert!(!t.enter(0));
        // Renewed after all: what was buffered meanwhile is replayed before new events.
        t.held(0, t.now_ms() + 60_000);
        assert_eq!(t.acquired_slots(), [0]);
        assert!(!t.enter(0));
        t.activate(0);
        assert!(t.enter(0));
    }
}
