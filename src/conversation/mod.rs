//! Per-chat Conversation actors: strict per-chat ordering, parallelism across chats, bounded
//! mailboxes and idle eviction.
//!
//! A chat with work is bound to one ractor actor, which handles that chat's events one at a
//! time, in arrival order; different chats run in parallel. Actors are pooled: once a chat's
//! queue runs dry its actor goes back to the pool and is bound to the next chat that gets
//! work, so a new chat costs a queue and a map entry, not an actor spawn (two tasks, four
//! channels and a supervision link). A chat is bound to at most one actor at a time, and the
//! next binding starts only after the previous actor found the queue empty, so per-chat order
//! holds across rebinding. Actors left unbound for `hibernate_after` stop. Events that belong to no chat (upload limits, upload progress) share one extra
//! lane, the global one.
//!
//! ractor mailboxes are unbounded, so the actors here do not carry the events in their
//! mailbox: each conversation owns a bounded queue, and the actor only ever has at most one
//! "drain" message pending. What happens when a queue is full is the [`Overflow`] policy.
//! Memory per conversation is therefore bounded by its capacity under every policy.
//!
//! A conversation with nothing to do for [`LaneConfig::hibernate_after`] hibernates: its
//! queue goes and only a record of a few dozen bytes (its chat id, inline, and its last
//! activity) stays in the map, so a freed actor's pages are not pinned by a small allocation
//! that outlives it; the next event gives it a new queue. After the idle timeout the
//! record goes too. One sweeper in the manager finds both (a per-actor timer would cost every
//! idle conversation a task of its own). Anything that must survive that (dialog state)
//! belongs in [`fsm`](crate::fsm) storage, not in the actor.
//!
//! At most [`LaneConfig::max_live`] chats are live (not hibernating) at once. A chat that
//! needs to be live past that takes the slot of the least recently used conversation with
//! nothing to do, which hibernates early (found from an idle order, not by a walk over the
//! map); when every live one is busy, the push waits for one to finish. Either
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
