//! Fault injection: the ways a real server or network misbehaves, on demand, so resilience
//! tests can provoke each one deterministically instead of waiting for it to happen.
//!
//! Every fault is a knob on the shared state that the connection tasks, the download handler or
//! the method dispatcher consult; [`Faults`] only turns the knobs.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::shared::Shared;
use super::wire::Out;
use crate::sync::lock;

/// Runtime fault injection.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Faults { shared }
    }

    /// Drops the next socket abruptly (no close frame) once `n` more frames have been sent to
    /// clients; one-shot. `0` disarms.
    pub fn drop_after_frames(&self, n: u64) {
        self.shared.drop_after.store(n, Relaxed);
    }

    /// Delays every response by `d` (`Duration::ZERO` = off).
    pub fn delay_responses(&self, d: Duration) {
        self.shared
            .delay_us
            .store(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    /// Refuses WebSocket handshakes (HTTP 503) for `d`.
    pub fn refuse_connections(&self, d: Duration) {
        *lock(&self.shared.refuse_until) = Some(Instant::now() + d);
    }

    /// Sends a frame that is not valid JSON to every authenticated connection.
    pub fn send_malformed_frame(&self) {
        self.shared
            .send_all(|| Out::Text(r#"{"type":1,"id":"#.to_owned()));
    }

    /// Sends `text` verbatim as one WebSocket text frame to every authenticated connection
    /// (bad-input tests: wrong types, unknown response ids, huge or deeply nested frames).
    pub fn send_raw_frame(&self, text: impl Into<String>) {
        let text = text.into();
        self.shared.send_all(|| Out::Text(text.clone()));
    }

    /// Pushes an event with an unknown method to every authenticated connection (it must be
    /// acked like any other).
    pub fn send_unknown_event(&self, method: &str, payload: Value) {
        let mut state = self.shared.state();
        for id in state.authed_conn_ids() {
            state.push_raw(id, method, payload.clone());
        }
    }

    /// Simulates a server restart: closes every socket (close code 1012) and refuses new
    /// connections for `down`. State is kept.
    pub fn restart(&self, down: Duration) {
        self.refuse_connections(down);
        self.shared.send_all(|| Out::Close(1012, "service restart"));
    }

    /// Drops every socket abruptly, without a close frame.
    pub fn drop_connections(&self) {
        self.shared.send_all(|| Out::Drop);
    }

    /// Makes `method` fail with `code`: `times` times, or always when `None`.
    pub fn fail_method(&self, method: &str, code: u16, times: Option<u32>) {
        self.shared
            .state()
            .failures
            .insert(method.to_owned(), (code, times));
    }

    /// Cuts the next file download (connection aborted) after `bytes` body bytes; one-shot.
    pub fn cut_next_download_after(&self, bytes: u64) {
        self.shared.cut_download.store(bytes, Relaxed);
    }

    /// Makes every file download stop sending after `bytes` body bytes (the connection stays
    /// open) until [`Faults::clear`]; `None` disarms.
    pub fn stall_downloads_after(&self, bytes: Option<u64>) {
        self.shared
            .stall_download
            .store(bytes.unwrap_or(u64::MAX), Relaxed);
    }

    /// Makes file downloads ignore `Range` headers and send the whole file, as a server without
    /// range support would.
    pub fn ignore_download_ranges(&self, on: bool) {
        self.shared.ignore_ranges.store(on, Relaxed);
    }

    /// Removes every injected method failure and the response delay.
    pub fn clear(&self) {
        self.ignore_download_ranges(false);
        self.shared.state().failures.clear();
        self.stall_downloads_after(None);
        self.shared.cut_download.store(u64::MAX, Relaxed);
        self.delay_responses(Duration::ZERO);
        self.drop_after_frames(0);
        *lock(&self.shared.refuse_until) = None;
    }
}
