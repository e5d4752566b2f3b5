//! What stands between the dispatch loop and the handlers when a bot is not alone: the
//! persisted duplicate window (handled marks) and, with replicas, chat ownership.
//!
//! Without marks or replicas none of this runs: the worker is the plain one. With them, the
//! worker is wrapped: before the handler the event's mark is checked (a redelivery or a replay
//! of something done is acknowledged and skipped), after it the mark is written, and only then
//! the event is acknowledged, so a crash between handling and acknowledging costs no duplicate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::dedup::HandledMarks;
use super::metrics::Metrics;
use super::update::Update;
use super::worker::Job;
use crate::bot::Acknowledger;
use crate::conversation::Worker;

#[cfg(feature = "redis")]
use super::replica_gate::ReplicaGate;

/// Stands in for the replica gate when the `redis` feature is off: never built.
#[cfg(not(feature = "redis"))]
pub(super) enum ReplicaGate {}

/// Shared by the dispatch loop and every conversation's worker.
pub(super) struct Gate {
    /// Set at build time, or when replicas start (their Redis marks).
    marks: OnceLock<Arc<dyn HandledMarks>>,
    replicas: Option<ReplicaGate>,
    metrics: Arc<Metrics>,
    /// Whether several sessions of the account are expected (replicas are configured).
    coordinated: bool,
    warned_own: AtomicBool,
}

impl Gate {
    pub(super) fn new(
        marks: Option<Arc<dyn HandledMarks>>,
        replicas: Option<ReplicaGate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(marks) = marks {
            let _ = cell.set(marks);
        }
        Self {
            marks: cell,
            coordinated: replicas.is_some(),
            replicas,
            metrics,
            warned_own: AtomicBool::new(false),
        }
    }

    /// Whether the worker needs wrapping at all.
    pub(super) fn active(&self) -> bool {
        self.marks.get().is_some() || self.replicas.is_some()
    }

    /// The replica gate, when replicas are configured.
    #[cfg(feature = "redis")]
    pub(super) fn replicas(&self) -> Option<&ReplicaGate> {
        self.replicas.as_ref()
    }

    /// Joins the replica group, if any (before the first event is read).
    pub(super) async fn start(&self) -> crate::Result<()> {
        #[cfg(feature = "redis")]
        if let Some(replicas) = &self.replicas {
            replicas.start(&self.marks).await?;
        }
        Ok(())
    }

    /// Hands this replica's chats over, if it is one (after its handlers finished).
    pub(super) async fn leave(&self, _timeout: Duration) {
        #[cfg(feature = "redis")]
        if let Some(replicas) = &self.replicas {
            replicas.leave(_timeout).await;
        }
    }

    /// Resolves when this replica took chats over (never without replicas).
    pub(super) async fn acquired(&self) {
        #[cfg(feature = "redis")]
        if let Some(replicas) = &self.replicas {
            return replicas.table().acquired().await;
        }
        std::future::pending::<()>().await;
    }

    /// The dispatch loop: false if another replica owns the event's chat (it was buffered;
    /// acknowledge it).
    pub(super) fn admit(&self, _update: &Update) -> bool {
        #[cfg(feature = "redis")]
        if let Some(replicas) = &self.replicas {
            return replicas.admit(_update);
        }
        true
    }

    /// An admitted event was turned away by the overflow policy.
    pub(super) fn not_queued(&self, _update: &Update) {
        #[cfg(feature = "redis")]
        if let Some(replicas) = &self.replicas {
            replicas.not_queued(_update);
        }
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
        let Job {
            update,
            ack,
            span,
            ticket,
        } = job;
        #[cfg(feature = "redis")]
        let slot = match &self.replicas {
            Some(replicas) => {
                let slot = replicas.slot(&update);
                if !replicas.fence(slot, &update) {
                    // The lease ended while it waited: another replica handles it.
                    ack.ack();
                    return;
                }
                Some((replicas, slot))
            }
            None => None,
        };
        let key = update.dedup_key();
        if let (Some(marks), Some(key)) = (self.marks.get(), key) {
            match marks.is_handled(key).await {
                Ok(true) => {
                    // Handled before a restart, or by another replica: acknowledge again only.
                    self.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "redis")]
                    if let Some((replicas, slot)) = slot {
                        replicas.done(slot, &update);
                    }
                    ack.ack();
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "handled mark not checked"),
            }
        }
        // The real acknowledgement waits for the mark; the inner worker gets a stand-in.
        let (stand_in, answered) = answered_stand_in(update.id());
        inner(Job {
            update: update.clone(),
            ack: stand_in,
            span,
            ticket,
        })
        .await;
        answered.await;
        if let (Some(marks), Some(key)) = (self.marks.get(), key)
            && let Err(e) = marks.mark_handled(key).await
        {
            tracing::debug!(error = %e, "handled mark not written");
        }
        #[cfg(feature = "redis")]
        if let Some((replicas, slot)) = slot {
            replicas.done(slot, &update);
        }
        ack.ack();
    }
}

/// The acknowledger the inner worker gets, and what resolves once the worker let go of it.
/// The worker acknowledges an event only when its handler and every call the handler
/// [queued](crate::bot::Call::queue) are done; marking it handled before that would turn a
/// crash while a queued answer is still unsent into a lost answer instead of a duplicate.
fn answered_stand_in(id: crate::protocol::RequestId) -> (Acknowledger, impl Future<Output = ()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Resolves on the acknowledgement, or when the acknowledger is dropped without one.
    (Acknowledger::new(id, tx), async move {
        let _ = rx.recv().await;
    })
}
