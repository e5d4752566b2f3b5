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

/// One tick for one member: refresh membership, renew held leases, release the drained ones,
/// adopt the slots of dead owners it may take, take free slots up to the fair share. Everything is decided on the server, by its clock.
///
/// Slot values: `o|<member>|<lease end ms>` (owned) or `r|<ms>` (released, with the time its
/// owner stopped taking events). Members: sorted set, score = lease end. `since`: hash member
/// → when its current session began receiving events (absent while it is not receiving).
///
/// ARGV: prefix, member, lease ms, slots, mode (`run` | `leave`), receiving (`1` | `0`),
/// drained ms, then the slots to release. Returns {live members, fair share, {held slots}}.
const TICK_SCRIPT: &str = r"
local p, me = ARGV[1], ARGV[2]
local lease, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local mode, receiving, drained = ARGV[5], ARGV[6], tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mk, sk = p .. 'members', p .. 'since'
for _, m in ipairs(redis.call('ZRANGEBYSCORE', mk, '-inf', '(' .. now)) do
  redis.call('HDEL', sk, m)
end
redis.call('ZREMRANGEBYSCORE', mk, '-inf', '(' .. now)
if mode == 'leave' then
  redis.call('ZREM', mk, me)
  redis.call('HDEL', sk, me)
else
  redis.call('ZADD', mk, now + lease, me)
  if receiving == '1' then
    if redis.call('HEXISTS', sk, me) == 0 then redis.call('HSET', sk, me, now) end
  else
    redis.call('HDEL', sk, me)
  end
end
local since = tonumber(redis.call('HGET', sk, me) or '-1')
local release = {}
for i = 8, #ARGV do release[tonumber(ARGV[i])] = true end
local live = math.max(redis.call('ZCARD', mk), 1)
local share = math.ceil(n / live)
local held, free, orphans = {}, {}, {}
for i = 0, n - 1 do
  local k = p .. 'slot:' .. i
  local v = redis.call('GET', k)
  if not v then
    table.insert(free, i)
  elseif string.sub(v, 1, 2) == 'o|' then
    local owner, till = string.match(v, '^o|(.*)|(%d+)$')
    till = tonumber(till) or 0
    if owner == me and till >= now then
      if release[i] then
        redis.call('SET', k, 'r|' .. (now - drained))
      elseif mode ~= 'leave' then
        redis.call('SET', k, 'o|' .. me .. '|' .. (now + lease))
        table.insert(held, i)
      end
    elseif till < now and since >= 0 and (since <= till - lease or now > till + lease) then
      table.insert(orphans, i)
    end
  else
    local at = tonumber(string.match(v, '^r|(%-?%d+)$') or '0') or 0
    if since >= 0 and (since <= at or now > at + lease) then table.insert(free, i) end
  end
end
if mode == 'run' and since >= 0 then
  -- A dead owner's slots first, whatever the share: only members that were receiving when
  -- it died have its unfinished events. The surplus is handed on gracefully later.
  for _, i in ipairs(orphans) do
    redis.call('SET', p .. 'slot:' .. i, 'o|' .. me .. '|' .. (now + lease))
    table.insert(held, i)
  end
  local want = share - #held
  for _, i in ipairs(free) do
    if want <= 0 then break end
    redis.call('SET', p .. 'slot:' .. i, 'o|' .. me .. '|' .. (now + lease))
    table.insert(held, i)
    want = want - 1
  end
end
return {live, share, held}
";

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
}

/// What one tick returned.
struct Reply {
    live: i64,
    share: i64,
    held: Vec<usize>,
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

    async fn call(&mut self, mode: &str, release: &[usize], drained: u64) -> Result<Reply> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TICK_SCRIPT)
            .arg(0)
            .arg(&self.prefix)
            .arg(&self.id)
            .arg(self.lease.as_millis() as u64)
            .arg(self.table.len())
            .arg(mode)
            .arg(if self.receiving() { "1" } else { "0" })
            .arg(drained);
        for slot in release {
            cmd.arg(*slot);
        }
        let (live, share, held): (i64, i64, Vec<usize>) = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(|e| redis_error("tick", e))?;
        Ok(Reply { live, share, held })
    }

    async fn tick(&mut self, mode: &str) {
        let (release, drained) = self.table.drained();
        // The lease counts from before the call left: it ends here no later than in Redis.
        let sent = Instant::now();
        match self.call(mode, &release, drained).await {
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
                if self.table.is_active(slot) && self.table.begin_release(slot) {
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
            self.table.begin_release(slot);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while self.table.draining() && tokio::time::Instant::now() < deadline {
            // Keep the leases while the last events finish.
            self.tick("run").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (release, drained) = self.table.drained();
        let sent = Instant::now();
        match self.call("leave", &release, drained).await {
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
