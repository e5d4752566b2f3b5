//! The coordinator task: membership, slot leases and hand-overs, one Lua script per tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::AbortOnDropHandle;

use super::RedisCoordination;
use super::slots::SlotTable;
use crate::bot::ConnectionState;
use crate::{Error, Result};

/// One tick for one member, one Lua script (the rules and the key layout are in the file).
pub(super) const TICK_SCRIPT: &str = include_str!("tick.lua");

/// Refuses to join a group whose slot count differs (they would split chats differently).
const CONFIG_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end
return cur
";

fn redis_error(what: &str, e: redis::RedisError) -> Error {
    Error::Storage {
        message: format!("replicas: redis {what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// The running coordinator: owns the task, asks it to leave.
pub(crate) struct Coordinator {
    leave: mpsc::Sender<(Duration, oneshot::Sender<()>)>,
    /// Dropping the coordinator (a dispatcher dropped without shutdown) stops the ticks: the
    /// leases then end by themselves.
    task: AbortOnDropHandle<()>,
}

impl Coordinator {
    /// Connects, checks the group's slot count, and starts ticking.
    pub(crate) async fn start(
        cfg: &RedisCoordination,
        table: Arc<SlotTable>,
        state: Option<watch::Receiver<ConnectionState>>,
    ) -> Result<Self> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| redis_error("url", e))?;
        let timeout = (cfg.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(
            client,
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(0),
        )
        .await
        .map_err(|e| redis_error("connect", e))?;
        let mut c = conn.clone();
        let agreed: String = redis::cmd("EVAL")
            .arg(CONFIG_SCRIPT)
            .arg(1)
            .arg(format!("{}config", cfg.prefix))
            .arg(table.len().to_string())
            .query_async(&mut c)
            .await
            .map_err(|e| redis_error("config", e))?;
        if agreed != table.len().to_string() {
            return Err(Error::invalid(
                "replicas",
                format!(
                    "this replica has {} slots but the group under prefix {:?} has {agreed}: \
                     every replica must use the same slot count",
                    table.len(),
                    cfg.prefix
                ),
            ));
        }
        let (leave, leave_rx) = mpsc::channel(1);
        let member = Member {
            conn,
            prefix: cfg.prefix.clone(),
            id: cfg.member_id(),
            lease: cfg.lease,
            margin: cfg.lease / 10,
            tick: (cfg.lease / 10).min(Duration::from_millis(250)),
            table,
            state,
            failing: false,
            server_ms: 0,
        };
        tracing::info!(member = %member.id, slots = member.table.len(), lease = ?member.lease, "joining the replica group");
        let task = AbortOnDropHandle::new(tokio::spawn(member.run(leave_rx)));
        Ok(Self { leave, task })
    }

    /// Waits (up to `timeout`) for the releasing slots to drain, hands them over and leaves
    /// the group; the task ends.
    pub(crate) async fn leave(self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.leave.send((timeout, tx)).await.is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

struct Member {
    conn: ConnectionManager,
    prefix: String,
    id: String,
    lease: Duration,
    margin: Duration,
    tick: Duration,
    table: Arc<SlotTable>,
    state: Option<watch::Receiver<ConnectionState>>,
    /// Whether the last tick failed (to log an outage once).
    failing: bool,
    /// Server time (ms) of the last tick that succeeded: a release beginning now is stamped
    /// with it (earlier than the real moment, so a taker that qualifies has every event).
    server_ms: u64,
}

/// What one tick returned.
struct Reply {
    /// Receiving members.
    live: i64,
    share: i64,
    held: Vec<usize>,
    /// Server time of the tick (ms).
    now: u64,
    /// Slots taken although no live member had their unfinished events.
    lossy: i64,
}

impl Member {
    async fn run(mut self, mut leave: mpsc::Receiver<(Duration, oneshot::Sender<()>)>) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                asked = leave.recv() => {
                    if let Some((timeout, done)) = asked {
                        self.leave(timeout).await;
                        let _ = done.send(());
                    }
                    return;
                }
                _ = interval.tick() => self.tick("run").await,
            }
        }
    }

    fn receiving(&self) -> bool {
        self.state
            .as_ref()
            .is_none_or(|s| matches!(*s.borrow(), ConnectionState::Ready))
    }

    async fn call(&mut self, mode: &str, release: &[usize], released_at: u64) -> Result<Reply> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TICK_SCRIPT)
            .arg(0)
            .arg(&self.prefix)
            .arg(&self.id)
            .arg(self.lease.as_millis() as u64)
            .arg(self.table.len())
            .arg(mode)
            .arg(if self.receiving() { "1" } else { "0" })
            .arg(released_at);
        for slot in release {
            cmd.arg(*slot);
        }
        let (live, share, held, now, lossy): (i64, i64, Vec<usize>, u64, i64) = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(|e| redis_error("tick", e))?;
        Ok(Reply {
            live,
            share,
            held,
            now,
            lossy,
        })
    }

    async fn tick(&mut self, mode: &str) {
        let (release, released_at) = self.table.drained();
        // The lease counts from before the call left: it ends here no later than in Redis.
        let sent = Instant::now();
        match self.call(mode, &release, released_at).await {
            Ok(reply) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(member = %self.id, "redis reachable again");
                }
                self.apply(reply, sent, &release);
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(member = %self.id, error = %e, "replica coordination failed: chats owned here are handled until their leases end, then buffered until redis is back");
                }
            }
        }
    }

    fn apply(&mut self, reply: Reply, sent: Instant, released: &[usize]) {
        self.server_ms = reply.now;
        if reply.lossy > 0 {
            tracing::warn!(member = %self.id, slots = reply.lossy, "took over chats no live replica was receiving when their owner stopped: events of theirs it had not finished are lost");
        }
        let deadline = self.table.ms_at(sent + self.lease - self.margin);
        let mut held = vec![false; self.table.len()];
        for &slot in &reply.held {
            if let Some(h) = held.get_mut(slot) {
                *h = true;
                self.table.held(slot, deadline);
            }
        }
        for (slot, is_held) in held.iter().enumerate() {
            if !is_held && self.table.drop_slot(slot) {
                if released.contains(&slot) {
                    tracing::debug!(member = %self.id, slot, "slot handed over");
                } else {
                    tracing::warn!(member = %self.id, slot, "slot lease lost: its events are no longer handled here");
                }
            }
        }
        // A member joined: hand the surplus over (newest slots first), gracefully.
        let keeping = reply
            .held
            .iter()
            .filter(|&&s| !self.table.is_releasing(s))
            .count() as i64;
        let surplus = keeping - reply.share.max(1);
        if surplus > 0 {
            let mut chosen = 0;
            for &slot in reply.held.iter().rev() {
                if chosen == surplus {
                    break;
                }
                if self.table.is_active(slot) && self.table.begin_release(slot, reply.now) {
                    chosen += 1;
                }
            }
            tracing::debug!(member = %self.id, live = reply.live, share = reply.share, releasing = chosen, "rebalancing");
        }
    }

    /// Stops taking events of every slot, waits for their in-flight events, hands them over
    /// and leaves the member set.
    async fn leave(&mut self, timeout: Duration) {
        for slot in self.table.owned() {
            self.table.begin_release(slot, self.server_ms);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while self.table.draining() && tokio::time::Instant::now() < deadline {
            // Keep the leases while the last events finish.
            self.tick("run").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (release, released_at) = self.table.drained();
        let sent = Instant::now();
        match self.call("leave", &release, released_at).await {
            Ok(reply) => {
                self.apply(reply, sent, &release);
                tracing::info!(member = %self.id, handed_over = release.len(), "left the replica group");
            }
            Err(e) => {
                tracing::warn!(member = %self.id, error = %e, "could not hand the chats over: they move when the leases end");
            }
        }
        for slot in self.table.owned() {
            self.table.drop_slot(slot);
        }
    }
}
