//! The dispatch loop: reads the bot's events one by one, drops the ones not to handle (the
//! bot's own messages, redeliveries), and queues the rest on their chat's lane.
//!
//! It runs on one task and never waits for a handler, only for room in a lane under
//! [`Overflow::Block`](crate::conversation::Overflow::Block), for an overflow slot, or, at the
//! cap of live conversations, for one of them to run out of work; so one slow chat does not
//! hold up the others.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::distribution::Distribution;
use super::gate::Gate;
use super::metrics::Outcome;
use super::overflow::{OverflowHandler, OverflowReason};
use super::redelivery::{Admit, Ticket, Window};
use super::update::{EventKind, Update};
use super::worker::{Job, Shared};
use crate::bot::ServerEvent;
use crate::conversation::{ConversationPool, Pushed};

/// The loop's state: what it filters on and where it queues.
pub(super) struct Pipeline {
    pub(super) shared: Arc<Shared>,
    pub(super) pool: ConversationPool<Job>,
    pub(super) overflow: OverflowHandler,
    pub(super) dedup: Arc<Window>,
    pub(super) distribution: Distribution,
    pub(super) gate: Arc<Gate>,
    pub(super) skip_own: bool,
    pub(super) shutdown_timeout: Duration,
}

impl Pipeline {
    /// Reads `events` until the channel closes or `stop` turns true, then lets in-flight
    /// handlers finish within the shutdown timeout and stops every conversation.
    pub(super) async fn serve(
        mut self,
        mut events: mpsc::Receiver<ServerEvent>,
        mut stop: watch::Receiver<bool>,
    ) -> crate::Result<()> {
        self.pool.start().await?;
        self.gate.start().await?;
        let stopped = async move {
            let asked = stop.wait_for(|s| *s).await.is_ok();
            if !asked {
                // The sender lives in the handle of the dispatcher running this loop; it
                // cannot go away first.
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                _ = self.gate.acquired() => self.replay().await,
                ev = events.recv() => match ev {
                    Some(ev) => self.dispatch(ev).await,
                    None => break,
                },
            }
        }
        if !self.pool.drain(self.shutdown_timeout).await {
            tracing::warn!(
                in_flight = self.pool.in_flight(),
                "shutdown timeout passed with handlers still running"
            );
        }
        self.gate.leave(self.shutdown_timeout).await;
        self.pool.stop().await;
        Ok(())
    }

    async fn dispatch(&mut self, ev: ServerEvent) {
        let metrics = &self.shared.metrics;
        let ServerEvent {
            id,
            method,
            payload,
            ack,
        } = ev;
        let update = Update::new(id, method, payload);
        let kind = update.kind();
        metrics.received(kind);
        let span = super::trace::event_span(&update, &ack);
        if update.kind() == EventKind::Message
            && update.author_id().is_some()
            && update.author_id() == self.shared.self_id.get().map(|s| &**s)
        {
            self.gate.saw_own_message(&update);
            if self.skip_own {
                metrics.skipped_own.fetch_add(1, Ordering::Relaxed);
                metrics.done(kind, Outcome::Own);
                ack.ack();
                return;
            }
        }
        let ticket = match update.dedup_key().map(|key| self.dedup.admit(key, &ack)) {
            Some(Admit::Duplicate) => {
                // A redelivery after a reconnect: acknowledge again, handle once.
                metrics.duplicates.fetch_add(1, Ordering::Relaxed);
                metrics.done(kind, Outcome::Duplicate);
                ack.ack();
                return;
            }
            Some(Admit::Queue(ticket)) => ticket,
            None => None,
        };
        if !self.gate.admit(&update) {
            // Another replica owns the chat; kept for a takeover.
            ack.ack();
            return;
        }
        self.queue(update, ack, span, ticket).await;
    }

    /// Queues the buffered events of the chats this replica just took over, before any new
    /// event of those chats.
    #[cfg(feature = "redis")]
    async fn replay(&mut self) {
        let gate = self.gate.clone();
        let Some(replicas) = gate.replicas() else {
            return;
        };
        for (slot, events) in replicas.take_replay() {
            for (seq, update) in events {
                replicas.enter_replay(slot, seq, &update);
                // Acknowledged when it was buffered; handled marks keep it from running twice.
                let ack = crate::bot::Acknowledger::noop(update.id());
                let span = super::trace::event_span(&update, &ack);
                self.queue(update, ack, span, None).await;
            }
            replicas.table().activate(slot);
        }
    }

    #[cfg(not(feature = "redis"))]
    async fn replay(&mut self) {}

    /// Pushes an event onto its chat's lane; the overflow policy decides if it is full.
    async fn queue(
        &mut self,
        update: Update,
        ack: crate::bot::Acknowledger,
        span: tracing::Span,
        ticket: Option<Ticket>,
    ) {
        let metrics = &self.shared.metrics;
        let lane = self.distribution.lane(&update);
        let job = Job {
            update,
            ack,
            span,
            ticket,
        };
        let (job, reason) = match self.pool.push(lane, job).await {
            Pushed::Queued => return,
            Pushed::Rejected(job) => (job, OverflowReason::Rejected),
            Pushed::Displaced(job) => (job, OverflowReason::DroppedOldest),
            Pushed::Failed(job, e) => (job, OverflowReason::NoConversation(e)),
        };
        metrics.overflowed.fetch_add(1, Ordering::Relaxed);
        // Under DropOldest the job turned away is an older one, maybe of another kind.
        metrics.done(job.update.kind(), Outcome::Overflow);
        self.gate.not_queued(&job.update);
        // Off the dispatch loop, so a slow overflow handler does not stall every chat; but
        // bounded, so a flood cannot pile up overflow tasks: past the limit this waits.
        let Job { update, ack, .. } = job;
        self.overflow.report(update, ack, reason).await;
    }
}
