//! The typed dialog handle.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{StateError, StateRecord, Storage, StorageKey};
use crate::{Error, Result};

/// One dialog: a typed state `S` plus a data map, bound to a storage and a key.
///
/// Cheap to clone. Every write is atomic (a compare-and-swap on the whole record), so
/// concurrent handlers of the same dialog never lose each other's changes.
///
/// In a handler, take it as a parameter: the dispatcher builds it from the event's chat and
/// author and the `Arc<dyn Storage>` registered as a dependency.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use trueconf_bot::dispatch::{HandlerResult, MessageContext, Router, Text};
/// use trueconf_bot::fsm::{Dialogue, StateFilter};
///
/// #[derive(Clone, PartialEq, Serialize, Deserialize)]
/// enum Quiz { Asked { answer: u32 } }
///
/// async fn ask(msg: MessageContext, quiz: Dialogue<Quiz>) -> HandlerResult {
///     quiz.update(Quiz::Asked { answer: 4 }).await?;
///     msg.answer("2 + 2 = ?").await?;
///     Ok(())
/// }
///
/// async fn check(msg: MessageContext, quiz: Dialogue<Quiz>, Text(t): Text) -> HandlerResult {
///     if let Some(Quiz::Asked { answer }) = quiz.get().await? {
///         let right = t.trim().parse() == Ok(answer);
///         msg.answer(if right { "right!" } else { "no" }).await?;
///         quiz.exit().await?;
///     }
///     Ok(())
/// }
///
/// let router = Router::new()
///     .command("quiz", ask)
///     .message_in(StateFilter::<Quiz>::any(), check);
/// # let _ = router;
/// ```
pub struct Dialogue<S> {
    storage: Arc<dyn Storage>,
    key: StorageKey,
    _state: PhantomData<fn() -> S>,
}

impl<S> Clone for Dialogue<S> {
    fn clone(&self) -> Self {
        Self {
            storage: self.storage.clone(),
            key: self.key.clone(),
            _state: PhantomData,
        }
    }
}

impl<S> fmt::Debug for Dialogue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialogue")
            .field("key", &self.key)
            .field("state", &type_name::<S>())
            .finish()
    }
}

fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| {
        Error::invalid(
            what,
            format!("{} does not serialize to JSON: {e}", type_name::<T>()),
        )
    })
}

impl<S> Dialogue<S>
where
    S: Serialize + DeserializeOwned + Clone + Send + Sync,
{
    /// The dialog under `key` in `storage`.
    pub fn new(storage: Arc<dyn Storage>, key: StorageKey) -> Self {
        Self {
            storage,
            key,
            _state: PhantomData,
        }
    }

    /// The dialog's key.
    pub fn key(&self) -> &StorageKey {
        &self.key
    }

    /// The storage the dialog lives in.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    fn decode_state(&self, value: Option<Value>) -> Result<Option<S>> {
        value
            .map(|v| {
                serde_json::from_value::<S>(v).map_err(|e| {
                    StateError::Undecodable {
                        key: self.key.to_string(),
                        reason: format!("state as {}: {e}", type_name::<S>()),
                    }
                    .into()
                })
            })
            .transpose()
    }

    /// The whole stored record (state undecoded), if any.
    pub async fn record(&self) -> Result<Option<StateRecord>> {
        Ok(self.storage.get(&self.key).await?.map(|v| v.record))
    }

    /// The current state; `None` when the dialog is not in any state. A stored state that no
    /// longer decodes as `S` is an error whose [`StateError::find`] is
    /// [`StateError::Undecodable`]; [`reset`](Self::reset) clears it.
    pub async fn get(&self) -> Result<Option<S>> {
        self.decode_state(self.record().await?.and_then(|r| r.state))
    }

    /// Moves the dialog to `state`, keeping its data, with no expiry.
    pub async fn update(&self, state: S) -> Result<()> {
        self.put_state(state, None).await
    }

    /// Moves the dialog to `state`, keeping its data; the whole dialog (state and data)
    /// disappears after `ttl` unless updated again.
    pub async fn update_with_ttl(&self, state: S, ttl: Duration) -> Result<()> {
        let at = self.storage.now_ms().saturating_add(ttl.as_millis() as u64);
        self.put_state(state, Some(at)).await
    }

    async fn put_state(&self, state: S, expires_at: Option<u64>) -> Result<()> {
        let value = to_json("state", &state)?;
        self.storage
            .update(&self.key, |current| {
                let mut record = current.unwrap_or_default();
                record.state = Some(value.clone());
                record.expires_at = expires_at;
                Ok(Some(record))
            })
            .await?;
        Ok(())
    }

    /// Atomically computes the next state from the current one (`None`: no state); returning
    /// `None` clears the state. Data and expiry are kept. `f` may run more than once if
    /// another writer races; returns the state stored.
    pub async fn update_with<F>(&self, mut f: F) -> Result<Option<S>>
    where
        F: FnMut(Option<S>) -> Option<S> + Send,
    {
        let mut stored = None;
        self.storage
            .update(&self.key, |current| {
                let mut record = current.unwrap_or_default();
                let next = f(self.decode_state(record.state.take())?);
                record.state = next.as_ref().map(|s| to_json("state", s)).transpose()?;
                stored = next;
                Ok(Some(record))
            })
            .await?;
        Ok(stored)
    }

    /// Ends the dialog: removes its state and data.
    pub async fn reset(&self) -> Result<()> {
        self.storage.remove(&self.key).await
    }

    /// Same as [`reset`](Self::reset).
    pub async fn exit(&self) -> Result<()> {
        self.reset().await
    }

    /// The whole data map (empty when there is none).
    pub async fn data(&self) -> Result<Map<String, Value>> {
        Ok(self.record().await?.map(|r| r.data).unwrap_or_default())
    }

    /// One data field decoded as `T`; `None` if absent. A field that does not decode as `T`
    /// is a [`StateError::Undecodable`] error.
    pub async fn get_data<T: DeserializeOwned>(&self, field: &str) -> Result<Option<T>> {
        let Some(value) = self.data().await?.remove(field) else {
            return Ok(None);
        };
        serde_json::from_value(value).map(Some).map_err(|e| {
            StateError::Undecodable {
                key: self.key.to_string(),
                reason: format!("data field `{field}` as {}: {e}", type_name::<T>()),
            }
            .into()
        })
    }

    /// Sets one data field, keeping the state and other fields.
    pub async fn set_data<T: Serialize>(&self, field: &str, value: T) -> Result<()> {
        let value = to_json("value", &value)?;
        self.modify_data(|data| {
            data.insert(field.to_owned(), value.clone());
        })
        .await
        .map(drop)
    }

    /// Merges `fields` into the data map (replacing fields of the same name); returns the
    /// resulting map.
    pub async fn update_data(&self, fields: Map<String, Value>) -> Result<Map<String, Value>> {
        self.modify_data(|data| {
            data.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        })
        .await
    }

    /// Removes one data field; returns its old value.
    pub async fn remove_data(&self, field: &str) -> Result<Option<Value>> {
        let mut old = None;
        self.modify_data(|data| old = data.remove(field)).await?;
        Ok(old)
    }

    /// Empties the data map, keeping the state.
    pub async fn clear_data(&self) -> Result<()> {
        self.modify_data(Map::clear).await.map(drop)
    }

    async fn modify_data<F>(&self, mut f: F) -> Result<Map<String, Value>>
    where
        F: FnMut(&mut Map<String, Value>) + Send,
    {
        let stored = self
            .storage
            .update(&self.key, |current| {
                let mut record = current.unwrap_or_default();
                f(&mut record.data);
                Ok(Some(record))
            })
            .await?;
        Ok(stored.map(|r| r.data).unwrap_or_default())
    }
}
