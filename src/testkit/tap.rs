//! The frame tap: a copy of every WebSocket frame between the emulator and its clients, for
//! the web page's frame inspector.
//!
//! It is off until something asks for it ([`Tap::enable`]) so tests and load runs pay one
//! relaxed load per frame. When on it keeps the last [`RECENT`] frames (a page opened late
//! still sees the start of a conversation) and broadcasts new ones; a slow page loses old
//! frames (it is told it lagged) instead of holding the emulator back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::sync::lock;

/// How many frames a newly opened page gets.
const RECENT: usize = 1000;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    /// Client (the bot) → emulator.
    In,
    /// Emulator → client.
    Out,
}

/// One frame as the inspector shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TapFrame {
    pub(crate) seq: u64,
    /// Milliseconds since the emulator started.
    pub(crate) at_ms: u64,
    pub(crate) conn: u64,
    pub(crate) dir: Direction,
    /// The request or event method; for a response, the method of its request; `ack` for an
    /// acknowledgement.
    pub(crate) method: Option<String>,
    pub(crate) chat: Option<String>,
    /// The frame, parsed (the raw text when it is not JSON).
    pub(crate) frame: Value,
}

/// The tap shared by every connection task.
pub(crate) struct Tap {
    on: AtomicBool,
    seq: AtomicU64,
    started: Instant,
    tx: broadcast::Sender<Arc<TapFrame>>,
    recent: Mutex<VecDeque<Arc<TapFrame>>>,
    /// `(connection, request id)` → method, to name the responses.
    requests: Mutex<HashMap<(u64, u64), String>>,
}

impl Tap {
    pub(crate) fn new() -> Self {
        Tap {
            on: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            started: Instant::now(),
            tx: broadcast::channel(RECENT).0,
            recent: Mutex::new(VecDeque::new()),
            requests: Mutex::new(HashMap::new()),
        }
    }

    /// Starts copying frames.
    pub(crate) fn enable(&self) {
        self.on.store(true, Relaxed);
    }

    /// The frames kept so far and a receiver for the next ones.
    pub(crate) fn subscribe(&self) -> (Vec<Arc<TapFrame>>, broadcast::Receiver<Arc<TapFrame>>) {
        let recent = lock(&self.recent);
        (recent.iter().cloned().collect(), self.tx.subscribe())
    }

    /// Copies one text frame, if the tap is on.
    pub(crate) fn record(&self, conn: u64, dir: Direction, text: &str) {
        if !self.on.load(Relaxed) {
            return;
        }
        let frame: Value =
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        let id = frame["id"].as_u64().unwrap_or(0);
        let method = match (frame["type"].as_u64(), frame["method"].as_str()) {
            (Some(1), Some(method)) => {
                if dir == Direction::In {
                    lock(&self.requests).insert((conn, id), method.to_owned());
                }
                Some(method.to_owned())
            }
            (Some(2), _) if dir == Direction::In => Some("ack".to_owned()),
            (Some(2), _) => lock(&self.requests).remove(&(conn, id)),
            _ => None,
        };
        let payload = &frame["payload"];
        let chat = payload["chatId"]
            .as_str()
            .or_else(|| payload["chat"]["chatId"].as_str())
            .or_else(|| payload["commandSource"]["message"]["chatId"].as_str())
            .map(str::to_owned);
        let entry = Arc::new(TapFrame {
            seq: self.seq.fetch_add(1, Relaxed) + 1,
            at_ms: self.started.elapsed().as_millis() as u64,
            conn,
            dir,
            method,
            chat,
            frame,
        });
        {
            let mut recent = lock(&self.recent);
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(entry.clone());
        }
        let _ = self.tx.send(entry);
    }

    /// A connection closed: forget its unanswered requests.
    pub(crate) fn closed(&self, conn: u64) {
        if self.on.load(Relaxed) {
            lock(&self.requests).retain(|(c, _), _| *c != conn);
        }
    }
}
