//! Several processes of one bot account sharing its chats, coordinated through Redis.
//!
//! Every session of a bot account receives every event, so two processes of one bot answer
//! everything twice. With [`RedisCoordination`] given to
//! [`DispatcherBuilder::replicas`](crate::dispatch::DispatcherBuilder::replicas), each chat is
//! handled by exactly one live replica at a time; when a replica dies or shuts down, the
//! others take its chats over and handle what it left unfinished. ARCHITECTURE.md
//! ("Replicas") has the design and its failure cases; docs/deployment.md how to run it.
//!
//! ```no_run
//! use std::time::Duration;
//! use trueconf_bot::bot::{AckMode, Bot};
//! use trueconf_bot::dispatch::{Dispatcher, MessageContext, Router};
//! use trueconf_bot::replicas::RedisCoordination;
//!
//! # async fn demo() -> trueconf_bot::Result<()> {
//! let bot = Bot::builder("video.example.com")
//!     .token("…")
//!     .ack_mode(AckMode::AfterHandled)
//!     .receive_unread(true)
//!     .build()?;
//! let router = Router::new().message(|msg: MessageContext| async move {
//!     msg.reply("hi").await.map(drop)
//! });
//! Dispatcher::builder(bot, router)
//!     .replicas(
//!         RedisCoordination::new("redis://127.0.0.1:6379/")
//!             .prefix("mybot:")
//!             .lease(Duration::from_secs(15)),
//!     )
//!     .build()?
//!     .run()
//!     .await
//! # }
//! ```

mod coordinator;
mod slots;
#[cfg(all(test, unix))]
mod tick_tests;

use std::fmt;
use std::time::Duration;

pub(crate) use coordinator::Coordinator;
pub use slots::SlotTable;

/// The default key prefix of a replica group.
pub const DEFAULT_PREFIX: &str = "trueconf:replicas:";

/// Configuration of a replica group coordinated through one Redis server (or a Sentinel
/// primary; not Redis Cluster: the scripts touch keys of the whole group).
///
/// Every replica of one bot must use the same URL (database), prefix and slot count; give
/// each bot its own prefix.
#[derive(Clone)]
pub struct RedisCoordination {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) lease: Duration,
    pub(crate) slots: usize,
    pub(crate) buffer: usize,
    pub(crate) marks_ttl: Duration,
    pub(crate) name: Option<String>,
}

impl fmt::Debug for RedisCoordination {
    // The URL may carry a password: not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCoordination")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .field("slots", &self.slots)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl RedisCoordination {
    /// A group coordinated through the Redis at `url` (`redis://[:password@]host:port[/db]`),
    /// with the defaults: prefix [`DEFAULT_PREFIX`], 15 s leases, 64 slots, a buffer of
    /// 50 000 events, handled marks kept 10 minutes.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            lease: Duration::from_secs(15),
            slots: 64,
            buffer: 50_000,
            marks_ttl: Duration::from_secs(600),
            name: None,
        }
    }

    /// The prefix of every key the group writes (default [`DEFAULT_PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a replica's hold on its chats lasts without renewal (default 15 s, at least
    /// 1 s): chats of a dead replica move after about this long; a Redis outage shorter than
    /// this goes unnoticed, a longer one pauses handling until Redis is back.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// Slots the chats are spread over (default 64; the unit of hand-over). Every replica of
    /// the group must use the same number.
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.clamp(1, 16_384);
        self
    }

    /// Events of chats owned by other replicas kept for a takeover (default 50 000; the
    /// oldest are dropped first, and any older than [`marks_ttl`](Self::marks_ttl), whose
    /// marks may be gone). Size it for the event rate times the lease.
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// How long handled marks are kept (default 10 minutes); buffered events older than this
    /// are dropped too, since replaying them could handle them twice.
    pub fn marks_ttl(mut self, ttl: Duration) -> Self {
        self.marks_ttl = ttl;
        self
    }

    /// A readable name for this replica in logs and in Redis (default: the `HOSTNAME`
    /// environment variable); a random suffix is added, so a restarted process is a new
    /// member.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn member_id(&self) -> String {
        let base = self
            .name
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "replica".into());
        let base: String = base.chars().filter(|c| *c != '|').take(64).collect();
        format!("{base}-{:08x}", rand::random::<u32>())
    }

    /// The prefix of the group's handled marks.
    pub(crate) fn marks_prefix(&self) -> String {
        format!("{}h:", self.prefix)
    }

    /// Checks the URL without connecting.
    pub(crate) fn check(&self) -> crate::Result<()> {
        redis::Client::open(self.url.as_str())
            .map(drop)
            .map_err(|e| crate::Error::invalid("replicas", format!("bad redis url: {e}")))
    }
}
