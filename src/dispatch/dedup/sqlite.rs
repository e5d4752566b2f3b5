//! Handled marks in one SQLite file: a single bot process that restarts handles nothing twice.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::HandledMarks;
use crate::conversation::BoxFuture;
use crate::{Error, Result};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Old marks are deleted after this many new ones (and at open).
const PURGE_EVERY: u64 = 4096;

/// [`HandledMarks`] in one SQLite file (WAL mode), kept for a configurable time (default 10
/// minutes), so a bot restarted with `receive_unread(true)` skips what it handled before.
///
/// The connection lives on a dedicated thread, so the runtime never blocks on disk I/O. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct SqliteMarks {
    jobs: mpsc::Sender<Job>,
    path: Arc<PathBuf>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS handled_marks (
    key INTEGER PRIMARY KEY NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS handled_marks_at ON handled_marks(at);";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> Error {
    Error::Storage {
        message: format!("sqlite handled marks {}: {what}: {e}", path.display()),
        source: Some(Box::new(e)),
    }
}

impl SqliteMarks {
    /// Opens (creating if needed) the database at `path`, marks kept 10 minutes.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_ttl(path, Duration::from_secs(600)).await
    }

    /// Opens the database at `path`, marks kept for `ttl`.
    pub async fn open_with_ttl(path: impl AsRef<Path>, ttl: Duration) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let ttl_ms = ttl.as_millis().min(i64::MAX as u128) as i64;
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, opened) = oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("trueconf-marks-sqlite".into())
            .spawn(move || {
                let opened = (|| {
                    let conn = Connection::open(&thread_path)?;
                    conn.pragma_update(None, "journal_mode", "WAL")?;
                    conn.pragma_update(None, "synchronous", "NORMAL")?;
                    conn.busy_timeout(Duration::from_secs(5))?;
                    conn.execute_batch(SCHEMA)?;
                    conn.execute(
                        "DELETE FROM handled_marks WHERE at < ?1",
                        params![now_ms() - ttl_ms],
                    )?;
                    Ok::<_, rusqlite::Error>(conn)
                })();
                let mut conn = match opened {
                    Ok(conn) => {
                        let _ = ready.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let mut marks = 0u64;
                // Ends when every sender (every clone of the store) is dropped.
                while let Ok(job) = inbox.recv() {
                    job(&mut conn);
                    marks += 1;
                    if marks.is_multiple_of(PURGE_EVERY) {
                        let _ = conn.execute(
                            "DELETE FROM handled_marks WHERE at < ?1",
                            params![now_ms() - ttl_ms],
                        );
                    }
                }
            })
            .map_err(Error::Io)?;
        match opened.await {
            Ok(Ok(())) => Ok(Self {
                jobs,
                path: Arc::new(path),
            }),
            Ok(Err(e)) => Err(sql_error(&path, "open", e)),
            Err(_) => Err(Error::Storage {
                message: format!(
                    "sqlite handled marks {}: open: the thread stopped",
                    path.display()
                ),
                source: None,
            }),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> BoxFuture<Result<T>> {
        let (tx, rx) = oneshot::channel();
        let path = self.path.clone();
        let sent = self.jobs.send(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        Box::pin(async move {
            if sent.is_err() {
                return Err(Error::Storage {
                    message: format!(
                        "sqlite handled marks {}: the thread stopped",
                        path.display()
                    ),
                    source: None,
                });
            }
            match rx.await {
                Ok(result) => result.map_err(|e| sql_error(&path, what, e)),
                Err(_) => Err(Error::Storage {
                    message: format!(
                        "sqlite handled marks {}: the thread stopped",
                        path.display()
                    ),
                    source: None,
                }),
            }
        })
    }
}

impl HandledMarks for SqliteMarks {
    fn is_handled(&self, key: u64) -> BoxFuture<Result<bool>> {
        self.run("check", move |conn| {
            conn.query_row(
                "SELECT 1 FROM handled_marks WHERE key = ?1",
                params![key as i64],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
        })
    }

    fn mark_handled(&self, key: u64) -> BoxFuture<Result<()>> {
        self.run("mark", move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO handled_marks (key, at) VALUES (?1, ?2)",
                params![key as i64, now_ms()],
            )
            .map(drop)
        })
    }
}
