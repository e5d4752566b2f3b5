//! Registering dialog storage with the dispatcher in whatever form the user holds it.

use std::sync::Arc;

use super::DispatcherBuilder;
use crate::fsm::Storage;

/// A dialog storage in any of the forms [`DispatcherBuilder::storage`] takes: a storage
/// value (`MemoryStorage::new()`), an `Arc` of one (`Arc<SqliteStorage>`), or an
/// `Arc<dyn Storage>`.
pub trait IntoStorage {
    /// The storage as the dispatcher shares it.
    fn into_storage(self) -> Arc<dyn Storage>;
}

impl<S: Storage> IntoStorage for S {
    fn into_storage(self) -> Arc<dyn Storage> {
        Arc::new(self)
    }
}

impl<S: Storage> IntoStorage for Arc<S> {
    fn into_storage(self) -> Arc<dyn Storage> {
        self
    }
}

impl IntoStorage for Arc<dyn Storage> {
    fn into_storage(self) -> Arc<dyn Storage> {
        self
    }
}

impl DispatcherBuilder {
    /// Registers the dialog storage that [`Dialogue`](crate::fsm::Dialogue) parameters use:
    /// any storage, or an `Arc` of one, concrete or `dyn`.
    ///
    /// ```
    /// use trueconf_bot::dispatch::{Dispatcher, Router};
    /// use trueconf_bot::fsm::MemoryStorage;
    ///
    /// let dispatcher = Dispatcher::detached(Router::new())
    ///     .storage(MemoryStorage::new())
    ///     .build()?;
    /// # let _ = dispatcher;
    /// # Ok::<(), trueconf_bot::Error>(())
    /// ```
    pub fn storage(self, storage: impl IntoStorage) -> Self {
        self.dependency(storage.into_storage())
    }
}
