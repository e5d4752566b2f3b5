//! SQLite storage: one file, survives restarts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::StorageKey;
use super::record::{self, Clock, StateRecord, SystemClock, Versioned, fresh_revision};
use super::storage::{BackendError, Storage, StorageFuture, with_retry};
use crate::{Error, Result};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Dialog records in one SQLite file (WAL mode), so dialogs survive a restart.
///
/// The connection lives on a dedicated thread; async callers send it jobs over a channel, so
/// the runtime never blocks on disk I/O. Expired rows read as absent and are deleted when
/// next read, or all at once by [`purge_expired`](Self::purge_expired). A busy or locked
/// database is retried a few times before the error is returned.
#[derive(Debug)]
pub struct SqliteStorage {
    jobs: mpsc::Sender<Job>,
    clock: Arc<dyn Clock>,
    path: PathBuf,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS fsm_state (
    key TEXT PRIMARY KEY NOT NULL,
    rev INTEGER NOT NULL,
    expires_at INTEGER,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fsm_state_expiry ON fsm_state(expires_at) WHERE expires_at IS NOT NULL;";

fn classify(e: rusqlite::Error) -> BackendError {
    let transient = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    BackendError::new(transient, e)
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_clock(path, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), judging expiry by `clock`.
    pub async fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("trueconf-fsm-sqlite".into())
            .spawn(move || {
                let mut conn = match Self::init(&thread_path) {
                    Ok(conn) => {
                        let _ = ready.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                // Ends when every sender (the storage) is dropped, closing the file.
                while let Ok(job) = inbox.recv() {
                    job(&mut conn);
                }
            })
            .map_err(Error::Io)?;
        let storage_error = |message: String, source: Option<crate::error::BoxError>| {
            Error::Storage { message, source }
        };
        match opened.await {
            Ok(Ok(())) => Ok(Self { jobs, clock, path }),
            Ok(Err(e)) => Err(storage_error(
                format!("sqlite: cannot open {}: {e}", path.display()),
                Some(Box::new(e)),
            )),
            Err(_) => Err(storage_error(
                format!("sqlite: the thread opening {} stopped", path.display()),
                None,
            )),
        }
    }

    fn init(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    /// How long one statement waits for another process's lock before failing (default 2 s);
    /// a failed attempt is then retried a few times with backoff.
    pub async fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        let path = self.path.display().to_string();
        self.call("set busy timeout on", &path, move |c| {
            c.busy_timeout(timeout)
        })
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes every expired row; returns how many.
    pub async fn purge_expired(&self) -> Result<usize> {
        let now = self.clock.now_ms() as i64;
        self.call("purge", &"expired rows", move |c| {
            c.execute(
                "DELETE FROM fsm_state WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                [now],
            )
        })
        .await
    }

    async fn call<T, F>(
        &self,
        what: &'static str,
        target: &(dyn std::fmt::Display + Sync),
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&mut Connection) -> rusqlite::Result<T> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        with_retry("sqlite", what, target, || {
            let f = f.clone();
            let jobs = self.jobs.clone();
            async move {
                let (reply, answer) = oneshot::channel();
                jobs.send(Box::new(move |c: &mut Connection| {
                    let _ = reply.send(f(c));
                }))
                .map_err(|_| BackendError::new(false, "the SQLite thread has stopped"))?;
                answer
                    .await
                    .map_err(|_| BackendError::new(false, "the SQLite thread has stopped"))?
                    .map_err(classify)
            }
        })
        .await
    }
}

fn row_expiry(record: &StateRecord) -> Option<i64> {
    record.expires_at.map(|e| e.min(i64::MAX as u64) as i64)
}

impl Storage for SqliteStorage {
    fn get<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let now = self.clock.now_ms() as i64;
            let k = key.encode();
            let raw = self
                .call("get", key, move |c| {
                    let row: Option<(String, Option<i64>)> = c
                        .prepare_cached("SELECT record, expires_at FROM fsm_state WHERE key = ?1")?
                        .query_row([&k], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    match row {
                        Some((_, Some(exp))) if exp <= now => {
                            c.prepare_cached(
                                "DELETE FROM fsm_state WHERE key = ?1 AND expires_at <= ?2",
                            )?
                            .execute(params![&k, now])?;
                            Ok(None)
                        }
                        other => Ok(other.map(|(raw, _)| raw)),
                    }
                })
                .await?;
            raw.map(|raw| record::decode(key, &raw)).transpose()
        })
    }

    fn set<'a>(&'a self, key: &'a StorageKey, record: StateRecord) -> StorageFuture<'a, u64> {
        Box::pin(async move {
            let v = Versioned {
                revision: fresh_revision(None),
                record,
            };
            let (k, raw, exp, rev) = (
                key.encode(),
                record::encode(&v),
                row_expiry(&v.record),
                v.revision as i64,
            );
            self.call("set", key, move |c| {
                c.prepare_cached(
                    "INSERT INTO fsm_state (key, rev, expires_at, record) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(key) DO UPDATE SET rev = ?2, expires_at = ?3, record = ?4",
                )?
                .execute(params![&k, rev, exp, &raw])
            })
            .await?;
            Ok(v.revision)
        })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let k = key.encode();
            self.call("remove", key, move |c| {
                c.prepare_cached("DELETE FROM fsm_state WHERE key = ?1")?
                    .execute([&k])
            })
            .await?;
            Ok(())
        })
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a StorageKey,
        expected: Option<u64>,
        new: Option<Versioned>,
    ) -> StorageFuture<'a, bool> {
        Box::pin(async move {
            let now = self.clock.now_ms() as i64;
            let k = key.encode();
            let new = new.map(|v| (v.revision as i64, row_expiry(&v.record), record::encode(&v)));
            self.call("compare-and-swap", key, move |c| {
                // IMMEDIATE takes the write lock up front, so no other process can slip a
                // write between the check and the replace.
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current: Option<(i64, Option<i64>)> = tx
                    .prepare_cached("SELECT rev, expires_at FROM fsm_state WHERE key = ?1")?
                    .query_row([&k], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let live = current
                    .filter(|(_, exp)| exp.is_none_or(|e| e > now))
                    .map(|(rev, _)| rev as u64);
                if live != expected {
                    return Ok(false);
                }
                match &new {
                    Some((rev, exp, raw)) => tx
                        .prepare_cached(
                            "INSERT OR REPLACE INTO fsm_state (key, rev, expires_at, record)
                             VALUES (?1, ?2, ?3, ?4)",
                        )?
                        .execute(params![&k, rev, exp, raw])?,
                    None => tx
                        .prepare_cached("DELETE FROM fsm_state WHERE key = ?1")?
                        .execute([&k])?,
                };
                tx.commit()?;
                Ok(true)
            })
            .await
        })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}
