//! The spans of an event's handling: one `event` span per event, made where the event enters
//! the dispatcher and carried in its job across the hop into the conversation actor; the
//! `handler` span inside it; and every request the handler makes (the `request` spans of
//! [`Call`](crate::bot::Call)) inside that. So a log line, or an exported trace, tells which
//! event caused which request.
//!
//! The event span is a root: each event is its own trace, whatever span the dispatcher was
//! started in. With no subscriber interested, making a span costs one check of a cached flag
//! and its fields are never computed.

use tracing::Span;

use super::update::Update;
use crate::bot::Acknowledger;

/// The span of one event: its kind, chat, message id and acknowledgement mode, and (recorded
/// once it is done) its outcome.
pub(super) fn event_span(update: &Update, ack: &Acknowledger) -> Span {
    tracing::info_span!(
        parent: None,
        "event",
        kind = ?update.kind(),
        method = update.method(),
        chat = update.chat_id(),
        message = update.message_id(),
        ack = if ack.is_pending() { "after_handled" } else { "on_receive" },
        outcome = tracing::field::Empty,
    )
}

/// The span of the handler chosen for an event, inside the event's span.
pub(super) fn handler_span(name: &'static str) -> Span {
    tracing::info_span!("handler", handler = name)
}
