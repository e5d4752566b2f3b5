//! What a user tunes about lanes: how deep each chat's queue is, what a full one does, and
//! when an idle conversation hibernates and goes.
//!
//! These are the only public knobs of the conversation layer (the dispatcher's builder sets
//! them), so they live apart from the machinery that obeys them.

use std::time::Duration;

/// What a full conversation queue does with one more event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Refuse the new event: it goes to the overflow handler and is counted, never dropped
    /// silently. Other chats are unaffected.
    #[default]
    Reject,
    /// Make room by discarding the oldest queued event of that chat (reported to the overflow
    /// handler like a rejection) and queue the new one.
    DropOldest,
    /// Wait until the chat has room. This stops the dispatcher from reading further events,
    /// so it slows *every* chat down (global backpressure): opt in only when losing an event
    /// is worse than latency.
    ///
    /// Once the bot's event buffer is full as well, its connection stops reading, responses
    /// included: handlers waiting for a bot call then finish only by timing out. Pair `Block`
    /// with a large [`event_buffer`](crate::bot::BotBuilder::event_buffer) and handlers that
    /// are quick to give their slot back.
    Block,
}

/// Limits of each conversation.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    /// Events queued per conversation (not counting the one being handled). At least 1.
    pub capacity: usize,
    /// What a full queue does.
    pub overflow: Overflow,
    /// How long a conversation with nothing to do lives before it stops and is forgotten.
    pub idle_timeout: Duration,
    /// How long a conversation with nothing to do stays live (keeps its queue). After that
    /// only a small record of it stays (until `idle_timeout`) and its next event gives it a new
    /// queue. Pooled conversation actors left unused this long stop too.
    pub hibernate_after: Duration,
    /// Chat conversations live (not hibernating) at most; see
    /// [`DispatcherBuilder::max_live_conversations`](crate::dispatch::DispatcherBuilder::max_live_conversations).
    /// At least 1.
    pub max_live: usize,
}

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            capacity: 64,
            overflow: Overflow::Reject,
            idle_timeout: Duration::from_secs(300),
            hibernate_after: Duration::from_secs(5),
            max_live: 10_000,
        }
    }
}
