//! The runtime's metrics, through the [`metrics`] facade: requests, the connection state,
//! reconnects and transfer bytes. Names and labels follow the Prometheus conventions; the
//! list with their meaning is in [`crate::ops`].
//!
//! Handles are registered with the global recorder the first time each series is used and
//! kept, so counting costs an atomic add (or nothing, with no recorder installed) and never
//! allocates. A recorder must therefore be installed before the bot's first request for these
//! series to reach it.

use std::sync::OnceLock;
use std::time::Duration;

use dashmap::DashMap;
use metrics::{Counter, Gauge, Histogram};

use crate::error::Error;

/// `trueconf_requests_total{method, outcome}`.
pub(crate) const REQUESTS: &str = "trueconf_requests_total";
/// `trueconf_request_duration_seconds{method}`.
pub(crate) const REQUEST_SECONDS: &str = "trueconf_request_duration_seconds";
/// `trueconf_reconnects_total`.
pub(crate) const RECONNECTS: &str = "trueconf_reconnects_total";
/// `trueconf_connection_state{state}`.
pub(crate) const CONNECTION_STATE: &str = "trueconf_connection_state";
/// `trueconf_transfer_bytes_total{direction}`.
pub(crate) const TRANSFER_BYTES: &str = "trueconf_transfer_bytes_total";

/// The outcomes a request is counted under, in the order of [`MethodMetrics::outcomes`].
const OUTCOMES: [&str; 7] = [
    "ok",
    "api_error",
    "timeout",
    "disconnected",
    "invalid",
    "transport",
    "other",
];

fn outcome_index(result: Result<(), &Error>) -> usize {
    match result {
        Ok(()) => 0,
        Err(Error::Api { .. }) => 1,
        Err(Error::Timeout { .. }) => 2,
        Err(Error::Disconnected { .. }) => 3,
        Err(Error::InvalidArgument { .. }) => 4,
        Err(Error::Transport { .. } | Error::Http { .. } | Error::Io(_)) => 5,
        Err(_) => 6,
    }
}

/// One method's series: a counter per outcome (registered on first use, so only outcomes
/// that happened show up) and the duration histogram.
struct MethodMetrics {
    method: &'static str,
    outcomes: [OnceLock<Counter>; OUTCOMES.len()],
    duration: Histogram,
}

/// Methods are a fixed set of `&'static str`s, so this map stays small and its entries are
/// leaked on purpose: a request then looks its handles up without a reference count.
fn methods() -> &'static DashMap<&'static str, &'static MethodMetrics> {
    static METHODS: OnceLock<DashMap<&'static str, &'static MethodMetrics>> = OnceLock::new();
    METHODS.get_or_init(DashMap::new)
}

fn method_metrics(method: &'static str) -> &'static MethodMetrics {
    if let Some(m) = methods().get(method) {
        return *m;
    }
    *methods().entry(method).or_insert_with(|| {
        Box::leak(Box::new(MethodMetrics {
            method,
            outcomes: Default::default(),
            duration: metrics::histogram!(REQUEST_SECONDS, "method" => method),
        }))
    })
}

/// Counts one finished request (every retry within its deadline included) and its duration.
pub(crate) fn request_done<T>(method: &'static str, result: &Result<T, Error>, took: Duration) {
    let m = method_metrics(method);
    let i = outcome_index(result.as_ref().map(drop));
    m.outcomes[i]
        .get_or_init(|| metrics::counter!(REQUESTS, "method" => m.method, "outcome" => OUTCOMES[i]))
        .increment(1);
    m.duration.record(took.as_secs_f64());
}

/// The `state` labels, one per [`ConnectionState`](super::connection::ConnectionState)
/// variant.
pub(crate) const STATES: [&str; 7] = [
    "idle",
    "connecting",
    "authenticating",
    "ready",
    "reconnecting",
    "stopped",
    "failed",
];

struct ConnectionMetrics {
    states: [Gauge; STATES.len()],
    reconnects: Counter,
}

fn connection_metrics() -> &'static ConnectionMetrics {
    static M: OnceLock<ConnectionMetrics> = OnceLock::new();
    M.get_or_init(|| ConnectionMetrics {
        states: STATES.map(|s| metrics::gauge!(CONNECTION_STATE, "state" => s)),
        reconnects: metrics::counter!(RECONNECTS),
    })
}

/// The published state changed to the one labelled `current`: the state gauge shows 1 for
/// it and 0 for the others. `lost` (an authorised socket went away) counts a reconnect.
pub(crate) fn state_changed(current: &str, lost: bool) {
    let m = connection_metrics();
    for (label, gauge) in STATES.iter().zip(&m.states) {
        gauge.set(if *label == current { 1.0 } else { 0.0 });
    }
    if lost {
        m.reconnects.increment(1);
    }
}

fn transfer_counters() -> &'static [Counter; 2] {
    static M: OnceLock<[Counter; 2]> = OnceLock::new();
    M.get_or_init(|| {
        [
            metrics::counter!(TRANSFER_BYTES, "direction" => "upload"),
            metrics::counter!(TRANSFER_BYTES, "direction" => "download"),
        ]
    })
}

/// Counts `bytes` of file content sent over HTTP.
pub(crate) fn uploaded(bytes: usize) {
    transfer_counters()[0].increment(bytes as u64);
}

/// Counts `bytes` of file content received over HTTP.
pub(crate) fn downloaded(bytes: usize) {
    transfer_counters()[1].increment(bytes as u64);
}
