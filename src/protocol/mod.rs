//! The WebSocket frame layer of the Chatbot Connector protocol.
//!
//! Every WebSocket text message is one JSON object, a [`Frame`]: a request (`type: 1`, sent by
//! either side; server requests are *events*), a response (`type: 2`) that echoes the id of the
//! request it answers, or a bare acknowledgement (`type: 2` with no payload) the client sends for
//! every server request.
//!
//! Payloads stay as raw JSON text ([`RawValue`]) until someone needs them typed, so routing a
//! frame never parses its body twice.

mod frame;
pub mod token;

pub use frame::{Frame, FrameType, RequestId};
pub use serde_json::value::RawValue;
