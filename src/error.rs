//! The public error type.
//!
//! One [`Error`] enum that callers can `match` on. Failures that come from a dependency
//! (socket, TLS, HTTP, disk) keep the original error as [`std::error::Error::source`], boxed, so
//! no dependency type leaks into this crate's API.

use std::fmt;

/// Boxed source error from a dependency.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to a TrueConf server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered a request with a non-zero `errorCode`.
    #[error("{method}: server error {code} ({})", code.meaning())]
    Api {
        /// The wire method that failed.
        method: &'static str,
        /// The server's error code.
        code: ApiErrorCode,
        /// The raw error payload, for diagnostics.
        payload: Option<String>,
    },

    /// An argument broke a client-side rule; nothing was sent.
    #[error("invalid argument `{argument}`: {rule}")]
    InvalidArgument {
        /// The offending argument (or field) name.
        argument: &'static str,
        /// The rule it broke, naming the bad value where useful.
        rule: String,
    },

    /// Authentication failed (bad token, bad credentials, disabled account). Not retried.
    #[error("authentication failed: {reason}")]
    Auth {
        /// What the server (or the local token check) said.
        reason: String,
        /// The server's error code, when the failure came from an `auth` response.
        code: Option<ApiErrorCode>,
    },

    /// The request could not be completed over a connection: [`DisconnectKind`] says why
    /// (the socket was lost with a write in flight, the bot is shut down or failed, …).
    #[error("disconnected ({kind}): {detail}")]
    Disconnected {
        /// Why; match on this, not on `detail`.
        kind: DisconnectKind,
        /// Human-readable detail (the method, the request id, the cause).
        detail: String,
    },

    /// No response arrived within the deadline.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out (a method name or an operation).
        what: String,
        /// The deadline that passed.
        after: std::time::Duration,
    },

    /// WebSocket or TLS failure.
    #[error("transport error: {message}")]
    Transport {
        /// Human-readable summary.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// HTTP failure (token endpoint, server info, file upload or download).
    #[error("HTTP error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Http {
        /// HTTP status code, when a response arrived.
        status: Option<u16>,
        /// Human-readable summary.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// Local I/O failure (reading or writing files).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A frame or payload did not match the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The server is too old for chat bots (older than 5.5.0): from
    /// [`Bot::check_version`](crate::bot::Bot::check_version).
    #[error("TrueConf Server {version} is too old: chat bots need 5.5.0 or newer")]
    UnsupportedServer {
        /// The version the server reported.
        version: String,
    },

    /// A shared contact's vCard could not be read.
    #[error("unreadable vCard: {0}")]
    Vcard(#[from] VcardError),

    /// A state-storage backend failed.
    #[error("storage error: {message}")]
    Storage {
        /// Human-readable summary (names the key where relevant).
        message: String,
        /// Underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// A test expectation saw something else (the emulator's `expect_*` checks, replaying a
    /// transcript): `expected` says what was awaited, `found` what came instead.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the check waited for.
        expected: String,
        /// What it got instead.
        found: String,
    },
}

impl Error {
    /// An [`Error::InvalidArgument`].
    pub fn invalid(argument: &'static str, rule: impl Into<String>) -> Self {
        Error::InvalidArgument {
            argument,
            rule: rule.into(),
        }
    }

    /// An [`Error::Disconnected`].
    pub fn disconnected(kind: DisconnectKind, detail: impl Into<String>) -> Self {
        Error::Disconnected {
            kind,
            detail: detail.into(),
        }
    }

    /// Why the call was disconnected, for [`Error::Disconnected`].
    pub fn disconnect_kind(&self) -> Option<DisconnectKind> {
        match self {
            Error::Disconnected { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// An [`Error::Protocol`].
    pub fn protocol(message: impl Into<String>) -> Self {
        Error::Protocol(message.into())
    }

    /// An [`Error::Transport`] wrapping a source error.
    pub fn transport(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Transport {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Http`].
    pub fn http(status: Option<u16>, message: impl Into<String>) -> Self {
        Error::Http {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// The server error code, for [`Error::Api`] and [`Error::Auth`] from the server.
    pub fn api_code(&self) -> Option<ApiErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            Error::Auth { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether retrying the same operation later may succeed (transport trouble, timeouts,
    /// a lost connection), as opposed to a definite answer or a programming error.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Disconnected { .. }
                | Error::Timeout { .. }
                | Error::Transport { .. }
                | Error::Io(_)
        ) || matches!(self, Error::Http { status, .. } if status.is_none_or(|s| s >= 500))
    }
}

/// Why a vCard (a shared contact's file) could not be read: [`Error::Vcard`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VcardError {
    /// The text has no `BEGIN:VCARD` line.
    #[error("no BEGIN:VCARD line")]
    NotAVcard,
    /// `BEGIN:VCARD` without a matching `END:VCARD`.
    #[error("BEGIN:VCARD without END:VCARD")]
    Unterminated,
    /// The file is not UTF-8 text.
    #[error("not UTF-8 text (byte {valid_up_to} is the first bad one)")]
    NotUtf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// The file is larger than a contact card can reasonably be.
    #[error("{size} bytes; at most {max} are read")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// A line that is neither a property (`NAME[;PARAMS]:VALUE`) nor a folded continuation.
    #[error("line {line} is not a vCard property: {excerpt:?}")]
    BadLine {
        /// 1-based line number (after unfolding).
        line: usize,
        /// The start of the line (at most 40 characters).
        excerpt: String,
    },
}

/// Why a call ended in [`Error::Disconnected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectKind {
    /// The socket was lost after the request was written: the server may or may not have
    /// applied it. Writes are never re-sent automatically; reads are, so only writes end here.
    OutcomeUnknown,
    /// The bot is shutting down or was shut down.
    ShuttingDown,
    /// The bot was not started: call `start()` or `run()` first.
    NotStarted,
    /// The connection is down and `offline_queue` callers already wait for it.
    OfflineQueueFull,
    /// The runtime gave up for good; the kind says why (also published as the bot's state).
    Failed(FailureKind),
    /// The operation (a file transfer) was cancelled.
    Cancelled,
    /// Not sent: the handler's event came on a connection that is gone, and the server sends
    /// that event again (`AckMode::AfterHandled` with `receive_unread`); its handling then
    /// makes the call. Sending it on the new connection could overtake the answers of
    /// earlier events of the chat that were cut off with the old one.
    EventRedelivered,
    /// A runtime task stopped unexpectedly (a bug in this crate: please report it).
    Internal,
}

impl fmt::Display for DisconnectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisconnectKind::OutcomeUnknown => "outcome unknown",
            DisconnectKind::ShuttingDown => "shutting down",
            DisconnectKind::NotStarted => "not started",
            DisconnectKind::OfflineQueueFull => "offline queue full",
            DisconnectKind::Failed(FailureKind::Auth) => "failed: authentication",
            DisconnectKind::Failed(FailureKind::UnsupportedServer) => "failed: unsupported server",
            DisconnectKind::Failed(FailureKind::RetriesExhausted) => "failed: retries exhausted",
            DisconnectKind::Failed(FailureKind::RestartLimit) => "failed: restart limit",
            DisconnectKind::Failed(FailureKind::Tls) => "failed: TLS",
            DisconnectKind::Failed(FailureKind::Internal) => "failed: internal",
            DisconnectKind::Cancelled => "cancelled",
            DisconnectKind::EventRedelivered => "the event comes again",
            DisconnectKind::Internal => "internal",
        })
    }
}

/// Why the runtime gave up for good (see the bot's connection state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The token or credentials were rejected.
    Auth,
    /// The server is too old, or not a TrueConf server.
    UnsupportedServer,
    /// The reconnect policy's retry budget ran out.
    RetriesExhausted,
    /// The supervisor restarted its children too often.
    RestartLimit,
    /// The server's TLS certificate was rejected.
    Tls,
    /// The runtime's supervisor stopped unexpectedly (a bug in this crate: please report it);
    /// without it nothing would reconnect, so the bot fails instead of hanging.
    Internal,
}

/// A server error code (§7 of the protocol). Unknown codes are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiErrorCode(pub u32);

impl ApiErrorCode {
    /// 200: request sent before a successful `auth`.
    pub const NOT_AUTHORIZED: Self = Self(200);
    /// 201: invalid credentials (bad or unknown token).
    pub const INVALID_CREDENTIALS: Self = Self(201);
    /// 202: user disabled.
    pub const USER_DISABLED: Self = Self(202);
    /// 203: credentials expired.
    pub const CREDENTIALS_EXPIRED: Self = Self(203);
    /// 204: unsupported credentials.
    pub const UNSUPPORTED_CREDENTIALS: Self = Self(204);
    /// 302: access denied.
    pub const ACCESS_DENIED: Self = Self(302);
    /// 303: not enough rights.
    pub const NOT_ENOUGH_RIGHTS: Self = Self(303);
    /// 304: chat not found.
    pub const CHAT_NOT_FOUND: Self = Self(304);
    /// 305: user is not a chat participant.
    pub const NOT_A_PARTICIPANT: Self = Self(305);
    /// 306: message not found.
    pub const MESSAGE_NOT_FOUND: Self = Self(306);
    /// 308: file not found.
    pub const FILE_NOT_FOUND: Self = Self(308);
    /// 309: user already in chat.
    pub const ALREADY_IN_CHAT: Self = Self(309);
    /// 310: file upload failed (also: limits violated).
    pub const UPLOAD_FAILED: Self = Self(310);
    /// 311: file not ready.
    pub const FILE_NOT_READY: Self = Self(311);
    /// 399: wrong payload format.
    pub const WRONG_PAYLOAD: Self = Self(399);

    /// The readable meaning of the code.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            100 => "connection error",
            101 => "connection timeout",
            102 => "TLS/SSL error",
            103 => "unsupported protocol",
            104 => "route not found",
            200 => "not authorized",
            201 => "invalid credentials",
            202 => "user disabled",
            203 => "credentials expired",
            204 => "unsupported credentials",
            300 => "internal server error",
            301 => "operation timeout",
            302 => "access denied",
            303 => "not enough rights",
            304 => "chat not found",
            305 => "user is not a chat participant",
            306 => "message not found",
            307 => "unknown message",
            308 => "file not found",
            309 => "user already in chat",
            310 => "file upload failed",
            311 => "file not ready",
            312 => "role not found",
            399 => "wrong payload format",
            400 => "unknown file error",
            401 => "not enough space",
            402 => "bad file name",
            403 => "file upload forbidden",
            404 => "file not found",
            405 => "file not ready",
            406 => "maximum file size exceeded",
            407 => "upload task not found",
            408 => "invalid file",
            _ => "unknown error",
        }
    }

    /// Whether this is one of the authentication codes 200–204.
    pub fn is_auth(self) -> bool {
        (200..=204).contains(&self.0)
    }
}

impl fmt::Debug for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.meaning())
    }
}

impl fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
