//! The emulator's small shared vocabulary: protocol numbers (chat types, roles, error codes),
//! what a connection task writes to its socket, and the ids and timestamps the server mints.
//!
//! Every other file of the emulator imports from here and this file imports from none of them,
//! so the numbers PROTOCOL.md defines are written down exactly once and no import can go round
//! in a circle through them.

use serde_json::Value;

/// The answer of one client→server method: a payload, or an error code (§7.2).
pub(crate) type ApiResult<T> = Result<T, u16>;

// Chat types (§10.3).
pub(crate) const P2P: u8 = 1;
pub(crate) const GROUP: u8 = 2;
pub(crate) const FAVORITES: u8 = 5;
pub(crate) const CHANNEL: u8 = 6;

/// Participant roles; a numeric role on the wire is an index into this list.
pub(crate) const ROLES: [&str; 7] = [
    "owner",
    "admin",
    "user",
    "conf_owner",
    "conf_moderator",
    "favorites_owner",
    "writer",
];

// Error codes (§7.2).
pub(crate) const E_NOT_AUTHORIZED: u16 = 200;
pub(crate) const E_INVALID_CREDENTIALS: u16 = 201;
pub(crate) const E_USER_DISABLED: u16 = 202;
pub(crate) const E_EXPIRED: u16 = 203;
pub(crate) const E_UNSUPPORTED_CREDENTIALS: u16 = 204;
pub(crate) const E_UNKNOWN_METHOD: u16 = 104;
pub(crate) const E_ACCESS_DENIED: u16 = 302;
pub(crate) const E_NO_RIGHTS: u16 = 303;
pub(crate) const E_NO_CHAT: u16 = 304;
pub(crate) const E_NOT_PARTICIPANT: u16 = 305;
pub(crate) const E_NO_MESSAGE: u16 = 306;
pub(crate) const E_NO_FILE: u16 = 308;
pub(crate) const E_ALREADY_IN_CHAT: u16 = 309;
pub(crate) const E_UPLOAD_FAILED: u16 = 310;
pub(crate) const E_FILE_NOT_READY: u16 = 311;
pub(crate) const E_NO_ROLE: u16 = 312;
pub(crate) const E_BAD_PAYLOAD: u16 = 399;

// Envelope types (the `type` of a message) the emulator creates; below 200 are system notices.
pub(crate) const SYS_PARTICIPANT_ADDED: u16 = 1;
pub(crate) const SYS_PARTICIPANT_REMOVED: u16 = 2;
pub(crate) const SYS_TITLE_CHANGED: u16 = 21;
pub(crate) const SYS_AVATAR_CHANGED: u16 = 22;
pub(crate) const SYS_HISTORY_CLEARED: u16 = 23;
pub(crate) const SYS_ROLE_SET: u16 = 110;
pub(crate) const MSG_TEXT: u16 = 200;
pub(crate) const MSG_FORWARD: u16 = 201;
pub(crate) const MSG_FILE: u16 = 202;
pub(crate) const MSG_SURVEY: u16 = 204;

// File `readyState` values.
pub(crate) const FILE_NOT_AVAILABLE: u8 = 0;
pub(crate) const FILE_UPLOADING: u8 = 1;
pub(crate) const FILE_READY: u8 = 2;

/// What a connection task writes to its socket.
pub(crate) enum Out {
    Text(String),
    Close(u16, &'static str),
    /// Drop the TCP connection without a close handshake.
    Drop,
}

/// The response frame (`type:2`) to request `id`.
pub(crate) fn response_frame(id: u64, result: &ApiResult<Value>) -> String {
    match result {
        Ok(payload) => format!(r#"{{"type":2,"id":{id},"payload":{payload}}}"#),
        Err(code) => format!(r#"{{"type":2,"id":{id},"payload":{{"errorCode":{code}}}}}"#),
    }
}

/// A random version-4 UUID, as the server uses for message, task and connection ids.
pub(crate) fn uuid() -> String {
    let random: u128 = rand::random();
    let random = (random & !(0xf << 76)) | (0x4 << 76);
    let random = (random & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{random:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// 40 random hex digits, the shape of chat and file ids and of download tokens.
pub(crate) fn hex40() -> String {
    let high: u128 = rand::random();
    let low: u32 = rand::random();
    format!("{high:032x}{low:08x}")
}

/// Milliseconds since the Unix epoch, the protocol's timestamp.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
