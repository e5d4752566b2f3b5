//! What a dispatcher counts, and the snapshot of it users read.
//!
//! The counters are bumped on the hot path of every event, so they are plain atomics shared
//! by pointer; reading them, with the conversation pool's own gauges, is the only place they
//! are put together.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::bot::EventBudget;
use crate::conversation::ConversationPool;

/// The counters themselves, bumped from the dispatch loop and the conversation actors.
///
/// Relaxed atomics: each counter is read on its own, so nothing needs ordering between them.
#[derive(Debug, Default)]
pub(super) struct Metrics {
    pub(super) events: AtomicU64,
    pub(super) handled: AtomicU64,
    pub(super) unhandled: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) panics: AtomicU64,
    pub(super) overflowed: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) skipped_own: AtomicU64,
}

impl Metrics {
    /// The counters now, with the gauges of the conversations they were counted over.
    pub(super) fn snapshot<J: Send + 'static>(
        &self,
        pool: &ConversationPool<J>,
        budget: Option<&EventBudget>,
    ) -> MetricsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MetricsSnapshot {
            events: get(&self.events),
            handled: get(&self.handled),
            unhandled: get(&self.unhandled),
            errors: get(&self.errors),
            panics: get(&self.panics),
            overflowed: get(&self.overflowed),
            duplicates: get(&self.duplicates),
            skipped_own: get(&self.skipped_own),
            live_conversations: pool.live(),
            hibernating_conversations: pool.hibernating(),
            in_flight: pool.in_flight(),
            buffered_bytes: budget.map_or(0, EventBudget::used),
        }
    }
}

/// Counters of a dispatcher at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Events received.
    pub events: u64,
    /// Events a handler ran for (successfully or not).
    pub handled: u64,
    /// Events no route took, or a middleware stopped.
    pub unhandled: u64,
    /// Handler / middleware errors and panics.
    pub errors: u64,
    /// Of those, panics.
    pub panics: u64,
    /// Events rejected or dropped by an overflow policy.
    pub overflowed: u64,
    /// Redelivered events suppressed by the duplicate window.
    pub duplicates: u64,
    /// The bot's own messages skipped.
    pub skipped_own: u64,
    /// Conversations alive now (including the global lane).
    pub live_conversations: usize,
    /// Of those, the ones hibernating: idle past
    /// [`hibernate_after`](super::DispatcherBuilder::hibernate_after), kept as a small record with
    /// no actor until their next event.
    pub hibernating_conversations: usize,
    /// Events queued or being handled now.
    pub in_flight: usize,
    /// Bytes of the bot's events read from the socket and not done with yet, wherever they
    /// are (the connection, the event stream, the chats' queues, running handlers): what
    /// [`BotBuilder::event_memory`](crate::bot::BotBuilder::event_memory) bounds. Zero for a
    /// dispatcher without a bot.
    pub buffered_bytes: usize,
}
