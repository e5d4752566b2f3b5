//! Feeding a dispatcher synthetic events, without a socket: for tests of routing, filters,
//! ordering and overflow, where what matters is what the handlers see, not the wire.

use serde_json::Value;
use tokio::sync::mpsc;

use crate::bot::{Acknowledger, ServerEvent};
use crate::dispatch::{Dispatcher, DispatcherHandle};
use crate::error::{Error, Result};
use crate::protocol::RawValue;

/// A server event as the connection would hand it to the dispatcher: `method` with
/// `payload`, request id `id`, and an acknowledger that goes nowhere.
///
/// ```
/// use serde_json::json;
/// let e = trueconf_bot::harness::event(7, "removedChatMessage", json!({"messageId": "m1"}));
/// assert_eq!((e.id, e.method.as_str()), (7, "removedChatMessage"));
/// ```
pub fn event(id: u64, method: &str, payload: Value) -> ServerEvent {
    // A `Value` always serialises to valid JSON, so `from_string` cannot refuse it; the
    // fallback keeps this free of `unwrap` all the same.
    let payload =
        RawValue::from_string(payload.to_string()).unwrap_or_else(|_| RawValue::NULL.to_owned());
    ServerEvent {
        id,
        method: method.to_owned(),
        payload,
        ack: Acknowledger::noop(id),
    }
}

/// Runs `dispatcher` (typically [`Dispatcher::detached`]) over `events` in order, closes the
/// stream and waits until every handler has finished; returns the handle for its counters.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> trueconf_bot::Result<()> {
/// use serde_json::json;
/// use trueconf_bot::dispatch::{Dispatcher, EventKind, Router};
/// use trueconf_bot::harness::{event, run_events};
///
/// let router = Router::new().on(EventKind::ChatRemoved, || async {});
/// let d = Dispatcher::detached(router).build()?;
/// let handle = run_events(d, [event(1, "removeChat", json!({"chatId": "c1"}))]).await?;
/// assert_eq!(handle.metrics().handled, 1);
/// # Ok(()) }
/// ```
pub async fn run_events(
    dispatcher: Dispatcher,
    events: impl IntoIterator<Item = ServerEvent>,
) -> Result<DispatcherHandle> {
    let handle = dispatcher.handle();
    let (tx, rx) = mpsc::channel(1024);
    let task = tokio::spawn(dispatcher.run_on(rx));
    for event in events {
        if tx.send(event).await.is_err() {
            // The dispatcher stopped early: its own outcome says why.
            break;
        }
    }
    drop(tx);
    task.await.map_err(|e| Error::Unexpected {
        expected: "the dispatcher task to finish".into(),
        found: e.to_string(),
    })??;
    Ok(handle)
}
