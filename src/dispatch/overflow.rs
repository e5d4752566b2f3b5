//! What happens to an event an overflow policy turned away: it goes to the overflow handler,
//! then is acknowledged.
//!
//! The handler runs off the dispatch loop, so a slow one cannot stall every chat, but only so
//! many at once, so a flood cannot pile up tasks.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::update::Update;
use crate::bot::Acknowledger;
use crate::conversation::BoxFuture;

/// Why an event did not reach a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowReason {
    /// The chat's queue was full ([`Overflow::Reject`](crate::conversation::Overflow::Reject)).
    Rejected,
    /// A newer event of the chat pushed this one out
    /// ([`Overflow::DropOldest`](crate::conversation::Overflow::DropOldest)).
    DroppedOldest,
    /// No conversation could be started for the chat.
    NoConversation(String),
}

/// Overflow handlers running at once, at most.
const MAX_OVERFLOW_TASKS: usize = 256;

pub(super) type OverflowHook = Arc<dyn Fn(Update, OverflowReason) -> BoxFuture<()> + Send + Sync>;

/// The overflow handler and the slots that bound how many of its calls run at once.
pub(super) struct OverflowHandler {
    hook: OverflowHook,
    slots: Arc<Semaphore>,
}

impl OverflowHandler {
    pub(super) fn new(hook: OverflowHook) -> Self {
        Self {
            hook,
            slots: Arc::new(Semaphore::new(MAX_OVERFLOW_TASKS)),
        }
    }

    /// Hands the event to the handler on a task of its own, then acknowledges it; past the
    /// limit of running handlers this waits for a slot.
    pub(super) async fn report(&self, update: Update, ack: Acknowledger, reason: OverflowReason) {
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let hook = self.hook.clone();
        tokio::spawn(async move {
            let _ = AssertUnwindSafe(hook(update, reason)).catch_unwind().await;
            ack.ack();
            drop(permit);
        });
    }
}
