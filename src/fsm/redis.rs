//! Redis storage: shared between bot processes, native expiry.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

use super::StorageKey;
use super::record::{self, StateRecord, Versioned, fresh_revision};
use super::storage::{BackendError, Storage, StorageFuture, with_retry};
use crate::{Error, Result};

/// The default prefix of every Redis key this storage writes.
pub const DEFAULT_PREFIX: &str = "trueconf:fsm:";

// Compares the revision in the stored header with the expected one and replaces the value in
// the same server-side step. ARGV: expected revision ('' = absent), new value ('' = delete),
// time to live in ms ('0' = none).
const CAS_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
local rev = ''
if cur then rev = string.match(cur, '^tcfsm %d+ (%d+) ') or '?' end
if rev ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// Dialog records in Redis, one string value per dialog under `prefix + key`, expiring by
/// Redis's own TTL.
///
/// Uses a managed multiplexed connection that reconnects by itself; while Redis is
/// unreachable, operations are retried a few times and then fail with [`Error::Storage`].
#[derive(Clone)]
pub struct RedisStorage {
    conn: ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisStorage {
    // The URL may carry a password, so only the prefix is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn classify(e: RedisError) -> BackendError {
    let transient = e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error();
    BackendError::new(transient, e)
}

impl RedisStorage {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`) with the default key prefix.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// Connects to `url`, writing keys under `prefix`.
    pub async fn connect_with_prefix(url: &str, prefix: impl Into<String>) -> Result<Self> {
        let fail = |e: RedisError| Error::Storage {
            message: format!("redis: cannot connect: {e}"),
            source: Some(Box::new(e)),
        };
        let client = Client::open(url).map_err(fail)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(fail)?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn redis_key(&self, key: &StorageKey) -> String {
        format!("{}{}", self.prefix, key.encode())
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        key: &StorageKey,
        cmd: redis::Cmd,
    ) -> Result<T> {
        with_retry("redis", what, key, || {
            let mut conn = self.conn.clone();
            let cmd = &cmd;
            async move { cmd.query_async(&mut conn).await.map_err(classify) }
        })
        .await
    }

    /// The time to live for a record, in ms: `Some(0)` = none, `None` = already expired.
    fn ttl_ms(&self, record: &StateRecord) -> Option<u64> {
        match record.expires_at {
            None => Some(0),
            Some(at) => at.checked_sub(self.now_ms()).filter(|ms| *ms > 0),
        }
    }
}

impl Storage for RedisStorage {
    fn get<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.redis_key(key));
            let raw: Option<String> = self.run("get", key, cmd).await?;
            let Some(raw) = raw else { return Ok(None) };
            let v = record::decode(key, &raw)?;
            Ok((!v.record.is_expired(self.now_ms())).then_some(v))
        })
    }

    fn set<'a>(&'a self, key: &'a StorageKey, record: StateRecord) -> StorageFuture<'a, u64> {
        Box::pin(async move {
            let v = Versioned {
                revision: fresh_revision(None),
                record,
            };
            let mut cmd;
            match self.ttl_ms(&v.record) {
                None => {
                    cmd = redis::cmd("DEL");
                    cmd.arg(self.redis_key(key));
                }
                Some(ttl) => {
                    cmd = redis::cmd("SET");
                    cmd.arg(self.redis_key(key)).arg(record::encode(&v));
                    if ttl > 0 {
                        cmd.arg("PX").arg(ttl);
                    }
                }
            }
            self.run::<()>("set", key, cmd).await?;
            Ok(v.revision)
        })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.redis_key(key));
            self.run::<()>("remove", key, cmd).await
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a StorageKey,
        expected: Option<u64>,
        new: Option<Versioned>,
    ) -> StorageFuture<'a, bool> {
        Box::pin(async move {
            let (value, ttl) = match &new {
                Some(v) => match self.ttl_ms(&v.record) {
                    Some(ttl) => (record::encode(v), ttl),
                    None => (String::new(), 0),
                },
                None => (String::new(), 0),
            };
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(CAS_SCRIPT)
                .arg(1)
                .arg(self.redis_key(key))
                .arg(expected.map_or_else(String::new, |r| r.to_string()))
                .arg(value)
                .arg(ttl);
            let swapped: i64 = self.run("compare-and-swap", key, cmd).await?;
            Ok(swapped == 1)
        })
    }
}
