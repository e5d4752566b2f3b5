//! Per-chat Conversation actors: strict per-chat ordering, parallelism across chats, bounded
//! mailboxes and idle eviction.
//!
//! Every chat gets its own ractor actor the first time an event for it arrives. The actor
//! handles that chat's events one at a time, in arrival order; different chats run in
//! parallel. Events that belong to no chat (upload limits, upload progress) share one extra
//! lane, the global one.
//!
//! ractor mailboxes are unbounded, so the actors here do not carry the events in their
//! mailbox: each conversation owns a bounded queue, and the actor only ever has at most one
//! "drain" message pending. What happens when a queue is full is the [`Overflow`] policy.
//! Memory per conversation is therefore bounded by its capacity under every policy.
//!
//! A conversation with nothing to do for [`LaneConfig::hibernate_after`] hibernates: its actor
//! and queue go and only a record of a few dozen bytes (its chat id, inline, and its last
//! activity) stays in the map, so a freed actor's pages are not pinned by a small allocation
//! that outlives it; the next event starts a new actor for it. After the idle timeout the
//! record goes too. One sweeper in the manager finds both (a per-actor timer would cost every
//! idle conversation a task of its own). Anything that must survive that (dialog state)
//! belongs in [`fsm`](crate::fsm) storage, not in the actor.
//!
//! At most [`LaneConfig::max_live`] chats have an actor at once. A chat that needs one past
//! that takes the slot of the least recently used conversation with nothing to do, which
//! hibernates early; when every live one is busy, the push waits for one to finish. Either
//! way nothing is dropped and no chat's order changes.

mod actor;
mod config;
mod key;
mod mailbox;
mod manager;
mod pool;
mod shared;

pub use config::{LaneConfig, Overflow};
pub use shared::BoxFuture;

pub(crate) use key::LaneKey;
pub(crate) use pool::{ConversationPool, Pushed};
pub(crate) use shared::Worker;
