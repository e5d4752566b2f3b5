//! What a test reads back from the emulator: counters, the requests the bot made, and the
//! files scripted users posted or the bot uploaded.
//!
//! They are snapshots, copied out of the emulator's state under its lock, so a test can hold
//! and compare them while the server keeps running.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

/// Counters for the acknowledgement rule and connection handling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// WebSocket connections accepted.
    pub connections: u64,
    /// Successful `auth` requests.
    pub auths: u64,
    /// Event frames (`type:1`) sent, including re-deliveries.
    pub pushed: u64,
    /// Events acknowledged by the client.
    pub acked: u64,
    /// Events sent again after a reconnect with `receiveUnread`.
    pub redelivered: u64,
    /// Client frames that were not valid JSON frames.
    pub malformed_frames: u64,
}

/// One request the bot made.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The wire method.
    pub method: String,
    /// The payload exactly as received.
    pub payload: Value,
}

/// A message with a file, posted by a scripted user.
#[derive(Debug, Clone)]
pub struct SentFile {
    /// Id of the attachment message.
    pub message_id: String,
    /// Permanent file id (for `getFileInfo`).
    pub file_id: String,
}

/// A stored file as the emulator sees it ([`Sim::file_info`]).
///
/// [`Sim::file_info`]: crate::testkit::Sim::file_info
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    /// File name.
    pub name: String,
    /// MIME type: the `Content-Type` of the uploaded `file` part.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it is stored as generated [`pattern`] content rather than bytes.
    ///
    /// [`pattern`]: fn@crate::testkit::pattern
    pub pattern: bool,
    /// The `preview` part: file name, MIME type, bytes.
    pub preview: Option<(String, String, Bytes)>,
}
