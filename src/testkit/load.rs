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
    /// Events never echoed (`sent - replied`).
    #[serde(default)]
    pub lost: u64,
    /// Echoes of an event that was echoed already (by any session).
    #[serde(default)]
    pub duplicates: u64,
    /// Bot sessions that sent echoes.
    #[serde(default)]
    pub sessions: u32,
    /// The chats with anything lost, duplicated or out of order, by index.
    #[serde(default)]
    pub chats_with_issues: Vec<ChatIssues>,
    /// For each bot session that closed during the run (replica mode): how long its chats
    /// went without an echo.
    #[serde(default)]
    pub failovers: Vec<Failover>,
    /// Median over all failovers of the time from a session's close to the first echo in
    /// each chat it had been answering (the chats whose last echo before the close came from
    /// it). Zero without failovers.
    #[serde(default, with = "ms")]
    pub failover_p50: Duration,
    /// 99th percentile of the same.
    #[serde(default, with = "ms")]
    pub failover_p99: Duration,
}

/// What went wrong in one chat of a load run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatIssues {
    /// The chat's index (`load-user-{index}`).
    pub chat: u32,
    /// Events of the chat never echoed.
    pub lost: u64,
    /// The first of them (its load sequence number), to find it in logs.
    #[serde(default)]
    pub first_lost: Option<u64>,
    /// Repeated echoes in the chat.
    pub duplicates: u64,
    /// Echoes that came after the echo of a later event of the chat.
    pub order_violations: u64,
}

/// One bot session that went away during a replica load run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failover {
    /// When its socket closed, from the start of the run.
    #[serde(with = "ms")]
    pub closed_at: Duration,
    /// Chats whose last echo before the close came from it.
    pub chats: u32,
    /// Of those, the chats that got an echo again before the run ended.
    pub recovered: u32,
    /// Median time from the close to the chat's next echo.
    #[serde(with = "ms")]
    pub p50: Duration,
    /// Slowest of those times.
    #[serde(with = "ms")]
    pub max: Duration,
}

pub(crate) struct LoadRun {
    sent_at: Vec<Option<Instant>>,
    echoed: Vec<bool>,
    latencies_us: Vec<u32>,
    last_per_chat: Vec<Option<u64>>,
    /// Per chat: (duplicates, order violations).
    chat_tally: Vec<(u64, u64)>,
    violations: u64,
    duplicates: u64,
    replied: u64,
    /// Replica mode: every echo as (chat, session, when), and when sessions closed.
    echo_log: Option<Vec<(u32, u64, Instant)>>,
    closed: Vec<(u64, Instant)>,
    sessions: std::collections::HashSet<u64>,
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
    /// `replicas`: sessions of the bot expected to answer (more than one: echoes are logged
    /// per session to time failovers).
    pub(crate) fn new(spec: &LoadSpec, replicas: u32) -> Self {
        LoadRun {
            sent_at: vec![None; spec.events as usize],
            echoed: vec![false; spec.events as usize],
            latencies_us: Vec::with_capacity(spec.events as usize),
            last_per_chat: vec![None; spec.chats as usize],
            chat_tally: vec![(0, 0); spec.chats as usize],
            violations: 0,
            duplicates: 0,
            replied: 0,
            echo_log: (replicas > 1).then(|| Vec::with_capacity(spec.events as usize)),
            closed: Vec::new(),
            sessions: Default::default(),
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

    /// A bot session closed (replica mode: the failover clock of its chats starts).
    pub(crate) fn session_closed(&mut self, session: u64) {
        if self.echo_log.is_some() && self.sessions.contains(&session) {
            self.closed.push((session, Instant::now()));
        }
    }

    /// The bot's session `session` posted `text` in load chat `chat`.
    pub(crate) fn on_reply(&mut self, chat: u32, text: &str, session: u64) {
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
        let Some(at) = self.sent_at.get(seq as usize).copied().flatten() else {
            return;
        };
        let now = Instant::now();
        self.sessions.insert(session);
        if let Some(log) = self.echo_log.as_mut() {
            log.push((chat, session, now));
        }
        let tally = self.chat_tally.get_mut(chat as usize);
        if std::mem::replace(&mut self.echoed[seq as usize], true) {
            self.duplicates += 1;
            if let Some(tally) = tally {
                tally.0 += 1;
            }
            return;
        }
        self.last_reply = now;
        self.latencies_us
            .push(now.duration_since(at).as_micros().min(u32::MAX as u128) as u32);
        self.replied += 1;
        if let Some(last) = self.last_per_chat.get_mut(chat as usize) {
            if last.is_some_and(|latest| seq < latest) {
                self.violations += 1;
                if let Some(tally) = tally {
                    tally.1 += 1;
                }
            }
            *last = Some(last.map_or(seq, |latest| latest.max(seq)));
        }
        self.window.add_permits(1);
        if self.replied == self.sent_at.len() as u64 {
            self.done.notify_one();
        }
    }

    /// Per closed session: the chats it was answering and how long until their next echo.
    fn failovers(&self, started: Instant) -> (Vec<Failover>, Vec<Duration>) {
        let Some(log) = &self.echo_log else {
            return (Vec::new(), Vec::new());
        };
        let chats = self.last_per_chat.len();
        let mut all = Vec::new();
        let mut out = Vec::new();
        for &(session, closed_at) in &self.closed {
            let mut last_from: Vec<Option<u64>> = vec![None; chats];
            let mut next_after: Vec<Option<Instant>> = vec![None; chats];
            for &(chat, from, at) in log {
                let c = chat as usize;
                if c >= chats {
                    continue;
                }
                if at <= closed_at {
                    last_from[c] = Some(from);
                } else if next_after[c].is_none() {
                    next_after[c] = Some(at);
                }
            }
            let mut times: Vec<Duration> = Vec::new();
            let mut orphaned = 0;
            for c in 0..chats {
                if last_from[c] == Some(session) {
                    orphaned += 1;
                    if let Some(at) = next_after[c] {
                        times.push(at.duration_since(closed_at));
                    }
                }
            }
            times.sort_unstable();
            all.extend_from_slice(&times);
            out.push(Failover {
                closed_at: closed_at.saturating_duration_since(started),
                chats: orphaned,
                recovered: times.len() as u32,
                p50: percentile(&times, 0.5),
                max: times.last().copied().unwrap_or_default(),
            });
        }
        all.sort_unstable();
        (out, all)
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
        let chats = self.chat_tally.len().max(1) as u64;
        let mut chats_with_issues = Vec::new();
        for (index, &(duplicates, order_violations)) in self.chat_tally.iter().enumerate() {
            let mut lost_seqs = (index as u64..sent)
                .step_by(chats as usize)
                .filter(|&seq| !self.echoed.get(seq as usize).copied().unwrap_or(false));
            let first_lost = lost_seqs.next();
            let lost = first_lost.map_or(0, |_| 1 + lost_seqs.count() as u64);
            if lost + duplicates + order_violations > 0 {
                chats_with_issues.push(ChatIssues {
                    chat: index as u32,
                    lost,
                    first_lost,
                    duplicates,
                    order_violations,
                });
            }
        }
        let (failovers, all_failovers) = self.failovers(started);
        LoadReport {
            sent,
            replied: self.replied,
            msgs_per_sec: self.replied as f64 / duration.as_secs_f64().max(1e-9),
            p50: percentile(0.5),
            p99: percentile(0.99),
            p999: percentile(0.999),
            order_violations: self.violations,
            duration,
            lost: sent.saturating_sub(self.replied),
            duplicates: self.duplicates,
            sessions: self.sessions.len() as u32,
            chats_with_issues,
            failovers,
            failover_p50: percentile_of(&all_failovers, 0.5),
            failover_p99: percentile_of(&all_failovers, 0.99),
        }
    }
}

/// The `fraction` percentile of sorted `times` (zero when empty).
fn percentile_of(times: &[Duration], fraction: f64) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let index = ((times.len() as f64 * fraction).ceil() as usize).clamp(1, times.len()) - 1;
    times[index]
}

fn percentile(times: &[Duration], fraction: f64) -> Duration {
    percentile_of(times, fraction)
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
        let mut run = LoadRun::new(&spec, 1);
        let t = Instant::now();
        for i in 0..4 {
            run.sent(i, t);
        }
        run.on_reply(0, "load#1", 1);
        run.on_reply(0, "echo: load#1", 1);
        run.on_reply(0, "load#0 late", 1);
        run.on_reply(0, "nothing", 1);
        let r = run.report(4, t);
        assert_eq!((r.replied, r.order_violations), (2, 1));
        assert_eq!((r.lost, r.duplicates), (2, 1));
        assert_eq!(
            r.chats_with_issues,
            [ChatIssues {
                chat: 0,
                lost: 2,
                first_lost: Some(2),
                duplicates: 1,
                order_violations: 1
            }]
        );
    }

    #[test]
    fn replica_mode_counts_across_sessions_and_times_failovers() {
        let spec = LoadSpec {
            events: 4,
            chats: 2,
            window: 4,
            ..LoadSpec::default()
        };
        let mut run = LoadRun::new(&spec, 2);
        let t = Instant::now();
        for i in 0..4 {
            run.sent(i, t);
        }
        run.on_reply(0, "load#0", 7); // session 7 answers chat 0
        run.on_reply(1, "load#1", 8); // session 8 answers chat 1
        run.session_closed(7);
        run.on_reply(0, "load#2", 8); // chat 0 moved to session 8
        run.on_reply(0, "load#2", 7); // and the old one's late duplicate
        run.on_reply(1, "load#3", 8);
        let r = run.report(4, t);
        assert_eq!((r.replied, r.lost, r.duplicates, r.sessions), (4, 0, 1, 2));
        assert_eq!(r.failovers.len(), 1);
        assert_eq!((r.failovers[0].chats, r.failovers[0].recovered), (1, 1));
    }
}
