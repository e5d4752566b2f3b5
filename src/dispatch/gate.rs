//! What stands between the dispatch loop and the handlers when a bot is not alone: the
//! persisted duplicate window (handled marks) and, with replicas, chat ownership.
//!
//! Without marks or replicas none of this runs: the worker is the plain one. With them, the
//! worker is wrapped: before the handler the event's mark is checked (a redelivery or a replay
//! of something done is acknowledged and skipped), after it the mark is written, and only then
//! the event is acknowledged, so a crash between handling and acknowledging costs no duplicate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::dedup::HandledMarks;
use super::metrics::Metrics;
use super::update::Update;
use super::worker::Job;
use crate::bot::Acknowledger;
use crate::conversation::Worker;

/// Shared by the dispatch loop and every conversation's worker.
pub(super) struct Gate {
    marks: Option<Arc<dyn HandledMarks>>,
    metrics: Arc<Metrics>,
    /// Whether several sessions of the account are expected (replicas are configured).
    coordinated: bool,
    warned_own: AtomicBool,
}

impl Gate {
    pub(super) fn new(
        marks: Option<Arc<dyn HandledMarks>>,
        metrics: Arc<Metrics>,
        coordinated: bool,
    ) -> Self {
        Self {
            marks,
            metrics,
            coordinated,
            warned_own: AtomicBool::new(false),
        }
    }

    /// Whether the worker needs wrapping at all.
    pub(super) fn active(&self) -> bool {
        self.marks.is_some()
    }

    /// The dispatch loop saw a message authored by the bot itself. The server sends a
    /// session the bot's messages from *other* sessions only (PROTOCOL.md §9), so another
    /// process is answering as this bot: without coordination both handle every event.
    pub(super) fn saw_own_message(&self, update: &Update) {
        if !self.coordinated && !self.warned_own.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                chat = ?update.chat_id(),
                message = ?update.message_id(),
                "another session of this bot account is sending messages: if it is another \
                 process of this bot, both handle every event (each session receives all of \
                 them); run one process, or coordinate them with DispatcherBuilder::replicas"
            );
        }
    }

    /// Wraps `inner` with the mark check before and the mark after each event.
    pub(super) fn wrap(self: &Arc<Self>, inner: Worker<Job>) -> Worker<Job> {
        let gate = self.clone();
        Arc::new(move |job: Job| {
            let (gate, inner) = (gate.clone(), inner.clone());
            Box::pin(async move { gate.run(inner, job).await })
        })
    }

    async fn run(&self, inner: Worker<Job>, job: Job) {
        let Job { update, ack } = job;
        let key = update.dedup_key();
        if let (Some(marks), Some(key)) = (&self.marks, key) {
            match marks.is_handled(key).await {
                Ok(true) => {
                    // Handled before a restart, or by another replica: acknowledge again only.
                    self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                    ack.ack();
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "handled mark not checked"),
            }
        }
        // The real acknowledgement waits for the mark; the inner worker gets a stand-in.
        let stand_in = Acknowledger::noop(update.id());
        inner(Job {
            update: update.clone(),
            ack: stand_in,
        })
        .await;
        if let (Some(marks), Some(key)) = (&self.marks, key)
            && let Err(e) = marks.mark_handled(key).await
        {
            tracing::debug!(error = %e, "handled mark not written");
        }
        ack.ack();
    }
}
