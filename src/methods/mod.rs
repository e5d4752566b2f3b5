//! One typed request per client → server method.
//!
//! Every request type implements [`Request`], which ties it to its wire method name and its
//! typed response, so the request router stays generic: it sends any `R: Request` and hands
//! back an `R::Response`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;

/// A client → server method call.
pub trait Request: Serialize + Send + Sync + 'static {
    /// The wire method name, e.g. `"sendMessage"`.
    const METHOD: &'static str;

    /// Whether the call only reads server state, so that it is safe to send again when the
    /// connection dropped before its response arrived.
    const IDEMPOTENT: bool = false;

    /// The typed success payload.
    type Response: DeserializeOwned + Send + 'static;

    /// Client-side validation, run before anything is sent. Mirrors the official client's
    /// checks; the default accepts everything.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}
