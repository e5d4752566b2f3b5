//! Operations: what a bot's operators read. Metrics, health endpoints, traces, signals.
//!
//! # Metrics
//!
//! The crate reports through the [`metrics`] facade, so any exporter works; the
//! `prometheus` feature adds a ready-made endpoint ([`OpsServer`]). Names and labels follow
//! the Prometheus conventions; no label takes a chat id (one series per chat would grow
//! without bound), so "which chat floods" is answered by the deepest-queue gauge and the
//! traces' `chat` field.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `trueconf_events_received_total` | counter | `kind` | events the dispatcher took from the bot |
//! | `trueconf_events_handled_total` | counter | `kind`, `outcome` | events done: `handled` (a handler returned `Ok`), `unhandled` (no route, or a middleware stopped it), `error`, `panic`, `overflow` (turned away by the overflow policy), `duplicate` (a redelivery), `own` (the bot's own message) |
//! | `trueconf_handler_duration_seconds` | histogram | | middleware, routing and handler of one event |
//! | `trueconf_requests_total` | counter | `method`, `outcome` | finished requests: `ok`, `api_error`, `timeout`, `disconnected`, `invalid`, `transport`, `other` |
//! | `trueconf_request_duration_seconds` | histogram | `method` | from `.await` to the response, retries on a new socket included |
//! | `trueconf_conversations` | gauge | `state` (`live`, `hibernating`) | conversations with an actor, and hibernating ones |
//! | `trueconf_queued_events` | gauge | | events queued or being handled, all chats |
//! | `trueconf_chat_queue_depth_max` | gauge | | the longest queue of one chat |
//! | `trueconf_event_buffer_bytes` | gauge | | event bytes held (what `event_memory` bounds) |
//! | `trueconf_connection_state` | gauge | `state` | 1 for the current state (`idle`, `connecting`, `authenticating`, `ready`, `reconnecting`, `stopped`, `failed`), 0 for the others |
//! | `trueconf_reconnects_total` | counter | | authorised sockets lost (each starts reconnecting) |
//! | `trueconf_transfer_bytes_total` | counter | `direction` (`upload`, `download`) | file content moved over HTTP |
//!
//! `kind` is the event's [`EventKind`](crate::dispatch::EventKind) in snake case
//! (`message`, `command`, `message_edited`, …); `method` a wire method name (`sendMessage`).
//!
//! Counting costs an atomic add per series and never allocates: each series' handle is taken
//! from the installed recorder the first time it is used and kept. So install the recorder
//! (for example by starting an [`OpsServer`]) before the first bot starts. Gauges are set from
//! the dispatcher's counters every second while it runs
//! ([`DispatcherHandle::export_gauges`](crate::dispatch::DispatcherHandle::export_gauges)).
//! The connection series are per process: with several bots in one process they show the
//! last change of any of them.
//!
//! # Traces
//!
//! Every event gets an `event` span (a root: one trace per event) with its `kind`, `method`,
//! `chat`, `message` id, `ack` mode and, once done, its `outcome`; it travels with the event
//! into its conversation actor, and inside it are the `handler` span and a `request` span for
//! every call the handler makes (`method`, request `id`). A `fmt` subscriber at INFO prints
//! that chain in front of each log line; the `otel` feature exports it ([`otel`]).
//!
//! # Signals
//!
//! [`Dispatcher::run_until_signal`](crate::dispatch::Dispatcher::run_until_signal) (and
//! [`Bot::run_until_signal`](crate::bot::Bot::run_until_signal) without a dispatcher) stop
//! gracefully on Ctrl-C or SIGTERM.

#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg(feature = "prometheus")]
pub use prometheus::{OpsServer, OpsServerBuilder, install_recorder};
