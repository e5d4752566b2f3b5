//! Load mode: push many `sendMessage` events with a bounded window and time the echoes.
//!
//! This file is the bookkeeping of one run (what was sent when, which echoes came back, in
//! what order) and its public spec and report; it knows nothing of sockets, so the state can
//! feed it from inside the message path. The driver that paces the pushes is `sim::load`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// Parameters of a load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSpec {
    /// Events to push.
    pub events: u64,
    /// Chats the events are spread over (round-robin).
    pub chats: u32,
    /// At most this many events may be un-replied at a time.
    pub window: u32,
    #[serde(with = "ms")]
    /// Give up waiting for echoes after this long (the report then has `replied < sent`).
    pub timeout: Duration,
    #[serde(with = "ms")]
    /// How long to wait for a bot to connect and authenticate before starting.
    pub connect_timeout: Duration,
    /// Push at most this many events per second (still bounded by `window`); `None` pushes
    /// as fast as the window allows. Latency under a steady rate below the maximum is what a
    /// bot's users see; latency at the maximum is mostly queueing.
    #[serde(default)]
    pub rate: Option<f64>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            events: 20_000,
            chats: 100,
            window: 200,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            rate: None,
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadReport {
    /// Events pushed.
    pub sent: u64,
    /// Events whose echo came back.
    pub replied: u64,
    /// Replied events per second over the whole run.
    pub msgs_per_sec: f64,
    /// Median push→echo latency.
    #[serde(with = "ms")]
    pub p50: Duration,
    /// 99th percentile latency.
    #[serde(with = "ms")]
    pub p99: Duration,
    /// 99.9th percentile latency.
    #[serde(with = "ms")]
    pub p999: Duration,
    /// Echoes that arrived in a chat after the echo of a later event of the same chat.
    pub order_violations: u64,
    /// Wall time from the first push to the last echo (or the timeout).
    #[serde(with = "ms")]
    pub duration: Duration,
}

pub(crate) struct LoadRun {
    sent_at: Vec<Option<Instant>>,
    latencies_us: Vec<u32>,
    last_per_chat: Vec<Option<u64>>,
    violations: u64,
    replied: u64,
    /// One permit per event that may still be pushed without exceeding the window.
    pub(crate) window: Arc<Semaphore>,
    pub(crate) done: Arc<Notify>,
    last_reply: Instant,
}

/// The text of event `seq`; the echo must contain it.
pub(crate) fn event_text(seq: u64) -> String {
    format!("load#{seq}")
}

impl LoadRun {
    pub(crate) fn new(spec: &LoadSpec) -> Self {
        LoadRun {
            sent_at: vec![None; spec.events as usize],
            latencies_us: Vec::with_capacity(spec.events as usize),
            last_per_chat: vec![None; spec.chats as usize],
            violations: 0,
            replied: 0,
            window: Arc::new(Semaphore::new(spec.window.max(1) as usize)),
            done: Arc::new(Notify::new()),
            last_reply: Instant::now(),
        }
    }

    pub(crate) fn sent(&mut self, seq: u64, at: Instant) {
        if let Some(slot) = self.sent_at.get_mut(seq as usize) {
            *slot = Some(at);
        }
    }

    pub(crate) fn on_reply(&mut self, chat: u32, text: &str) {
        let Some(marker) = text.find("load#") else {
            return;
        };
        let digits = &text[marker + 5..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        let Ok(seq) = digits[..end].parse::<u64>() else {
            return;
        };
        let Some(at) = self.sent_at.get_mut(seq as usize).and_then(Option::take) else {
            return;
        };
        let now = Instant::now();
        self.last_reply = now;
        self.latencies_us
            .push(now.duration_since(at).as_micros().min(u32::MAX as u128) as u32);
        self.replied += 1;
        if let Some(last) = self.last_per_chat.get_mut(chat as usize) {
            if last.is_some_and(|latest| seq < latest) {
                self.violations += 1;
            }
            *last = Some(last.map_or(seq, |latest| latest.max(seq)));
        }
        self.window.add_permits(1);
        if self.replied == self.sent_at.len() as u64 {
            self.done.notify_one();
        }
    }

    pub(crate) fn report(mut self, sent: u64, started: Instant) -> LoadReport {
        let end = if self.replied == sent {
            self.last_reply
        } else {
            Instant::now()
        };
        let duration = end.duration_since(started);
        self.latencies_us.sort_unstable();
        let percentile = |fraction: f64| {
            let count = self.latencies_us.len();
            if count == 0 {
                return Duration::ZERO;
            }
            let index = ((count as f64 * fraction).ceil() as usize).clamp(1, count) - 1;
            Duration::from_micros(self.latencies_us[index] as u64)
        };
        LoadReport {
            sent,
            replied: self.replied,
            msgs_per_sec: self.replied as f64 / duration.as_secs_f64().max(1e-9),
            p50: percentile(0.5),
            p99: percentile(0.99),
            p999: percentile(0.999),
            order_violations: self.violations,
            duration,
        }
    }
}

/// Durations in JSON reports are milliseconds (floating point).
mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let millis = f64::deserialize(deserializer)?;
        Ok(Duration::from_secs_f64((millis / 1000.0).max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_replies_once_and_detects_reordering() {
        let spec = LoadSpec {
            events: 4,
            chats: 1,
            window: 4,
            ..LoadSpec::default()
        };
        let mut run = LoadRun::new(&spec);
        let t = Instant::now();
        for i in 0..4 {
            run.sent(i, t);
        }
        run.on_reply(0, "load#1");
        run.on_reply(0, "echo: load#1");
        run.on_reply(0, "load#0 late");
        run.on_reply(0, "nothing");
        let r = run.report(4, t);
        assert_eq!((r.replied, r.order_violations), (2, 1));
    }
}
