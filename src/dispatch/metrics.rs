//! What a dispatcher counts, and the snapshot of it users read.
//!
//! The counters are bumped on the hot path of every event, so they are plain atomics shared
//! by pointer; reading them, with the conversation pool's own gauges, is the only place they
//! are put together. Each count also goes to the `metrics` facade (names in
//! [`crate::ops`]) through handles registered on first use and kept, so an event costs a few
//! atomic adds and no allocation, with or without a recorder installed.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram};

use super::update::EventKind;
use crate::bot::EventBudget;
use crate::conversation::ConversationPool;

/// `trueconf_events_received_total{kind}`.
const RECEIVED: &str = "trueconf_events_received_total";
/// `trueconf_events_handled_total{kind, outcome}`.
const HANDLED: &str = "trueconf_events_handled_total";
/// `trueconf_handler_duration_seconds`.
const HANDLER_SECONDS: &str = "trueconf_handler_duration_seconds";

/// The `kind` labels, in the order of [`kind_index`].
const KINDS: [&str; 15] = [
    "message",
    "command",
    "message_edited",
    "message_removed",
    "chat_created",
    "chat_removed",
    "title_edited",
    "avatar_edited",
    "history_cleared",
    "participant_added",
    "participant_removed",
    "role_changed",
    "limits_changed",
    "upload_progress",
    "unknown",
];

fn kind_index(kind: EventKind) -> usize {
    #[allow(unreachable_patterns)] // a kind added later counts as `unknown` until listed
    match kind {
        EventKind::Message => 0,
        EventKind::Command => 1,
        EventKind::MessageEdited => 2,
        EventKind::MessageRemoved => 3,
        EventKind::ChatCreated => 4,
        EventKind::ChatRemoved => 5,
        EventKind::TitleEdited => 6,
        EventKind::AvatarEdited => 7,
        EventKind::HistoryCleared => 8,
        EventKind::ParticipantAdded => 9,
        EventKind::ParticipantRemoved => 10,
        EventKind::RoleChanged => 11,
        EventKind::LimitsChanged => 12,
        EventKind::UploadProgress => 13,
        _ => 14,
    }
}

/// How an event ended, the `outcome` label of `trueconf_events_handled_total`. Each event
/// gets exactly one, so the outcomes of a kind add up to its received events once they are
/// done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// A handler ran and returned `Ok`.
    Handled,
    /// No route took it, or a middleware stopped it.
    Unhandled,
    /// A handler or middleware returned an error.
    Error,
    /// A handler or middleware panicked.
    Panic,
    /// An overflow policy turned it away.
    Overflow,
    /// A redelivery the duplicate window suppressed.
    Duplicate,
    /// The bot's own message, skipped.
    Own,
}

impl Outcome {
    /// Its label.
    pub(super) fn label(self) -> &'static str {
        OUTCOMES[self as usize]
    }
}

const OUTCOMES: [&str; 7] = [
    "handled",
    "unhandled",
    "error",
    "panic",
    "overflow",
    "duplicate",
    "own",
];

/// The facade's handles: registered on first use, so only series that happened exist.
#[derive(Default)]
struct Exported {
    received: [OnceLock<Counter>; KINDS.len()],
    done: [[OnceLock<Counter>; OUTCOMES.len()]; KINDS.len()],
    handler_seconds: OnceLock<Histogram>,
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exported")
    }
}

/// The dispatcher's gauges, set from a [`MetricsSnapshot`] by [`Metrics::export_gauges`].
struct Gauges {
    live: Gauge,
    hibernating: Gauge,
    in_flight: Gauge,
    deepest: Gauge,
    buffered: Gauge,
}

fn gauges() -> &'static Gauges {
    static G: OnceLock<Gauges> = OnceLock::new();
    G.get_or_init(|| Gauges {
        live: ::metrics::gauge!("trueconf_conversations", "state" => "live"),
        hibernating: ::metrics::gauge!("trueconf_conversations", "state" => "hibernating"),
        in_flight: ::metrics::gauge!("trueconf_queued_events"),
        deepest: ::metrics::gauge!("trueconf_chat_queue_depth_max"),
        buffered: ::metrics::gauge!("trueconf_event_buffer_bytes"),
    })
}

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
    exported: Exported,
}

impl Metrics {
    /// An event came in.
    pub(super) fn received(&self, kind: EventKind) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let k = kind_index(kind);
        self.exported.received[k]
            .get_or_init(|| ::metrics::counter!(RECEIVED, "kind" => KINDS[k]))
            .increment(1);
    }

    /// An event is done with `outcome`. The facade's counter only: the snapshot's atomics
    /// are bumped where the outcome is decided.
    pub(super) fn done(&self, kind: EventKind, outcome: Outcome) {
        let (k, o) = (kind_index(kind), outcome as usize);
        self.exported.done[k][o]
            .get_or_init(
                || ::metrics::counter!(HANDLED, "kind" => KINDS[k], "outcome" => OUTCOMES[o]),
            )
            .increment(1);
    }

    /// How long the handling of one event took (middleware, routing and the handler).
    pub(super) fn handler_took(&self, took: Duration) {
        self.exported
            .handler_seconds
            .get_or_init(|| ::metrics::histogram!(HANDLER_SECONDS))
            .record(took.as_secs_f64());
    }

    /// Sets the facade's gauges (conversations, queued events, the deepest chat queue,
    /// buffered bytes) from `snapshot` and the pool's deepest queue.
    pub(super) fn export_gauges(snapshot: &MetricsSnapshot, deepest: usize) {
        let g = gauges();
        g.live.set(
            snapshot
                .live_conversations
                .saturating_sub(snapshot.hibernating_conversations) as f64,
        );
        g.hibernating.set(snapshot.hibernating_conversations as f64);
        g.in_flight.set(snapshot.in_flight as f64);
        g.deepest.set(deepest as f64);
        g.buffered.set(snapshot.buffered_bytes as f64);
    }

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
