//! Finite-state dialogs and the storages that keep their state.
//!
//! A dialog is the state of a conversation with one user (or chat, see [`KeyStrategy`]): a
//! value of your own state type plus a free-form data map, kept in a [`Storage`] under a
//! [`StorageKey`]. [`Dialogue`] is the typed handle a handler works with.
//!
//! | storage | feature | survives restart | expiry | atomic update by |
//! |---|---|---|---|---|
//! | [`MemoryStorage`] | — | no | lazy, or `purge_expired` | shard lock |
//! | `SqliteStorage` | `sqlite` | yes (one WAL file) | lazy, or `purge_expired` | `BEGIN IMMEDIATE` |
//! | `RedisStorage` | `redis` | yes (shared by processes) | native `PX` | Lua script |
//!
//! Records are stored with a format-version header, so a future change of the encoding is
//! detected ([`StateError::Corrupt`]) rather than misread. A state written by an older version
//! of your state type that no longer decodes is [`StateError::Undecodable`]: report it and
//! [`reset`](Dialogue::reset) the dialog.
//!
//! ```
//! use std::sync::Arc;
//! use serde::{Deserialize, Serialize};
//! use trueconf_bot::fsm::{Dialogue, KeyStrategy, MemoryStorage, StateFilter, Storage};
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! enum Signup {
//!     Name,
//!     Age { name: String },
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> trueconf_bot::Result<()> {
//! let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
//! let key = KeyStrategy::UserInChat.key("bot@srv", "chat-1", Some("ann@srv")).unwrap();
//! let dialogue = Dialogue::<Signup>::new(storage, key);
//!
//! dialogue.update(Signup::Name).await?;
//! dialogue.set_data("source", "ad").await?;
//! dialogue.update(Signup::Age { name: "Ann".into() }).await?;
//!
//! let asking_age = StateFilter::new(|s: &Signup| matches!(s, Signup::Age { .. }));
//! assert!(asking_age.check(&dialogue).await?);
//! assert_eq!(dialogue.get_data::<String>("source").await?.as_deref(), Some("ad"));
//!
//! dialogue.exit().await?;
//! assert_eq!(dialogue.get().await?, None);
//! # Ok(())
//! # }
//! ```

mod dialogue;
mod filter;
mod key;
mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod storage;

pub use dialogue::Dialogue;
pub use filter::StateFilter;
pub use key::{KeyStrategy, StorageKey};
pub use memory::MemoryStorage;
pub use record::{Clock, FORMAT_VERSION, ManualClock, StateRecord, SystemClock, Versioned};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX as REDIS_DEFAULT_PREFIX, RedisStorage};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStorage;
pub use storage::{Storage, StorageFuture};

use crate::Error;

/// Why a stored dialog could not be read. Carried as the
/// [`source`](std::error::Error::source) of an [`Error::Storage`]; find it with
/// [`StateError::find`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The record is readable but its state (or a data field) does not decode as the
    /// requested type, typically because the state enum changed since it was stored. Resetting
    /// the dialog clears it.
    #[error("dialog {key}: stored value does not decode: {reason}")]
    Undecodable {
        /// The dialog's key.
        key: String,
        /// What failed to decode, and serde's reason.
        reason: String,
    },
    /// The stored bytes are not a record this build can read (damaged, or written by a newer
    /// format version).
    #[error("dialog {key}: unreadable record: {reason}")]
    Corrupt {
        /// The dialog's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StateError {
    /// The [`StateError`] behind `error`, if that is what it is; lets an error handler tell a
    /// stale dialog (reset it) from a storage outage (retry later).
    pub fn find(error: &Error) -> Option<&StateError> {
        match error {
            Error::Storage {
                source: Some(source),
                ..
            } => source.downcast_ref::<StateError>(),
            _ => None,
        }
    }
}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        Error::Storage {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}
